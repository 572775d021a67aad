"""Heatmap colour: which matrices a cell has, their value scales, and the colour or glyph per value.

Pure functions and small records (numpy and Rich only), so they are tested without an app.

A value is mapped to one of `LEVELS` discrete levels of its scale, and each level to one
pre-built Rich `Style` and cell text. Rendering a heatmap line is then an index per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from rich.color import Color
from rich.segment import Segment
from rich.style import Style

from rnn_tui.engine.config import ModelConfig

if TYPE_CHECKING:  # numpy is needed once there is a trace to colour: not for the first frame
    import numpy as np

    from rnn_tui.engine.records import LayerTrace

LEVELS = 33  # odd, so a diverging scale has a level exactly at zero
ABOVE, BELOW = LEVELS, LEVELS + 1  # cells beyond a robust scale (Scale.levels(mark_clipped=True))
GLYPH_RAMP = " ▁▂▃▄▅▆▇█"  # monochrome: the bar height is the value's place on its scale

MODES = ("colour", "glyph", "glyph+colour")  # background colour | glyph ramp | glyph in colour


@dataclass(frozen=True)
class Palette:
    """Colour stops for the two kinds of scale, low to high."""

    name: str
    diverging: tuple[str, ...]  # from the most negative through zero to the most positive
    sequential: tuple[str, ...]  # from 0 to 1 (or 0 to the maximum)
    marker: str  # the current step and selected unit
    nan: str  # a value that is not a number (a diverged model)
    glyphs: bool = False  # this palette draws with the glyph ramp (monochrome)
    band: str = "#3a3a3a"  # glyph modes: the background of the current step's column


PALETTES: dict[str, Palette] = {
    # blue through the dark background to red; gates on viridis
    "dark": Palette(
        "dark",
        diverging=("#4393c3", "#2166ac", "#16345a", "#1e1e1e", "#5c1a22", "#b2182b", "#f4a582"),
        sequential=("#1e1e1e", "#3b0f70", "#31688e", "#35b779", "#fde725"),
        marker="#ffffff",
        nan="#ff00ff",
    ),
    # saturated and bright, on black: survives a washed-out projector
    "high-contrast": Palette(
        "high-contrast",
        diverging=("#00ffff", "#0080ff", "#000000", "#ff4000", "#ffff00"),
        sequential=("#000000", "#ffffff"),
        marker="#00ff00",
        nan="#ff00ff",
    ),
    # blue to orange (PuOr family) and cividis: distinct under the common colour-vision deficiencies
    "colorblind": Palette(
        "colorblind",
        diverging=("#b2abd2", "#5e3c99", "#2a1f45", "#1e1e1e", "#5a3a0a", "#e66101", "#fdb863"),
        sequential=("#00204c", "#414d6b", "#7c7b78", "#bcaf6f", "#ffe945"),
        marker="#ffffff",
        nan="#ff0000",
    ),
    # no colour at all: the glyph ramp carries the value (NO_COLOR)
    "mono": Palette(
        "mono",
        diverging=("#000000", "#ffffff"),
        sequential=("#000000", "#ffffff"),
        marker="#ffffff",
        nan="#ffffff",
        glyphs=True,
    ),
}


def palette_for_theme(theme_name: str) -> Palette:
    """The heatmap palette of an app theme ("rnn-mono" -> mono); other themes draw as dark."""
    short = theme_name.removeprefix("rnn-")
    return PALETTES.get(short, PALETTES["dark"])


# ---------------------------------------------------------------------------------------------
# which matrices a layer has, and how each is scaled


def matrix_names(config: ModelConfig) -> list[str]:
    """The heatmaps of one layer: h, c for LSTMs, then every gate in torch's order.

    The Elman cell's only "gate" is h itself, so it shows its pre-activation a_t instead.
    """
    names = ["h"]
    if config.has_cell_state:
        names.append("c")
    names.extend(config.gates)
    return names


def matrix(entry: LayerTrace, name: str) -> np.ndarray:
    """(T, H) values of one heatmap."""
    if name == "h":
        return entry.h
    if name == "c":
        assert entry.c is not None
        return entry.c
    if name == "a":
        return entry.preacts["a"]
    return entry.gates[name]


def matrix_label(name: str) -> str:
    return {"a": "a (pre-act)"}.get(name, name)


@dataclass(frozen=True)
class Scale:
    kind: str  # "diverging" | "sequential"
    lo: float
    hi: float
    peak: float | None = None  # a robust scale (see robust_bound): the largest |value|, beyond it

    @property
    def clipped(self) -> bool:
        """Some values lie beyond the scale (a robust scale cut at a percentile)."""
        return self.peak is not None

    def levels(self, values: np.ndarray, mark_clipped: bool = False) -> np.ndarray:
        """Level index per value, 0 .. LEVELS-1 (clipped to the scale); -1 for NaN/inf.
        mark_clipped: a value beyond the scale is ABOVE or BELOW instead of the end level."""
        import numpy as np

        v = np.asarray(values, dtype=np.float64)
        span = self.hi - self.lo
        with np.errstate(invalid="ignore"):
            x = (v - self.lo) / span if span > 0 else np.zeros_like(v)
            out = np.rint(np.clip(x, 0.0, 1.0) * (LEVELS - 1))
            if mark_clipped and self.clipped:
                out = np.where(v > self.hi, ABOVE, np.where(v < self.lo, BELOW, out))
        out = np.where(np.isfinite(v), out, -1)
        return out.astype(np.int16)

    def label(self, brief: bool = False) -> str:
        """"±1", "±2.37", "0…1": the range in a few cells; a robust scale adds how far the values
        beyond it go, "±2.37 (+ to 26.5)", or (brief) only that some do, "±2.37+"."""
        if self.kind == "diverging" and self.lo == -self.hi:
            text = f"±{_short(self.hi)}"
        else:
            text = f"{_short(self.lo)}…{_short(self.hi)}"
        if self.peak is None:
            return text
        return f"{text}+" if brief else f"{text} (+ to {_short(self.peak)})"

    def ends(self) -> tuple[str, str]:
        return _short(self.lo), _short(self.hi)


def _short(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _bound(values: np.ndarray) -> float:
    import numpy as np

    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size else 1.0
    return m if m > 0 else 1.0


ROBUST_PERCENTILE = 98.0  # an unbounded map's scale: this percentile of |v| ...
ROBUST_RATIO = 1.5  # ... where the largest |v| is more than this many times it


def robust_bound(values: np.ndarray) -> tuple[float, float | None]:
    """(the scale's bound, the largest |value| where it is beyond the bound, else None).

    A few large values (the demo's c reaches 26.5 while half its values are within ±2.4) set
    the whole map's scale and left the rest nearly black: where the largest |v| is more than
    ROBUST_RATIO times the ROBUST_PERCENTILE-th percentile of |v|, the scale ends at that
    percentile, and the cells beyond it are drawn marked, + or − (heatmap_view), their true
    values still in the readout under the cursor."""
    import numpy as np

    finite = np.abs(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    if not finite.size:
        return 1.0, None
    peak = float(finite.max())
    cut = float(np.percentile(finite, ROBUST_PERCENTILE))
    if cut > 0 and peak > ROBUST_RATIO * cut:
        return cut, peak
    return (peak if peak > 0 else 1.0), None


def scale_for(name: str, config: ModelConfig, values: np.ndarray) -> Scale:
    """The fixed range a gate's nonlinearity gives it, or the data's own range where unbounded."""
    cell = config.cell_spec  # each gate's nonlinearity, from the cell's registry entry
    fn = cell.gate_fns[cell.gates.index(name)] if name in cell.gates else None
    if fn == "σ":
        return Scale("sequential", 0.0, 1.0)
    if fn == "tanh":
        return Scale("diverging", -1.0, 1.0)
    if name == "h":
        if config.cell != "rnn" or config.activation == "tanh":
            return Scale("diverging", -1.0, 1.0)
        if config.activation == "sigmoid":
            return Scale("sequential", 0.0, 1.0)
        if config.activation == "relu":
            m, peak = robust_bound(values)
            return Scale("sequential", 0.0, m, peak)
    m, peak = robust_bound(values)  # c, a, identity h: symmetric about zero
    return Scale("diverging", -m, m, peak)


# ---------------------------------------------------------------------------------------------
# level -> style and text


def _ramp(stops: tuple[str, ...], n: int) -> list[Color]:
    import numpy as np

    rgb = np.array([Color.parse(s).get_truecolor()[:3] for s in stops], dtype=np.float64)
    pos = np.linspace(0.0, 1.0, len(stops))
    out = []
    for x in np.linspace(0.0, 1.0, n):
        channels = [int(round(np.interp(x, pos, rgb[:, k]))) for k in range(3)]
        out.append(Color.from_rgb(*channels))
    return out


def glyph(level: int) -> str:
    if level < 0:
        return "?"
    return GLYPH_RAMP[round(level * (len(GLYPH_RAMP) - 1) / (LEVELS - 1))]


@dataclass(frozen=True)
class CellLook:
    """One heatmap cell of each level, ready to draw: index by level (0 .. LEVELS-1; ABOVE and
    BELOW, beyond a robust scale; -1, the last entry, is NaN). `marked` is the current step's column, `cursor` the cell at the
    current step and selected unit."""

    plain: tuple[Segment, ...]
    marked: tuple[Segment, ...]
    cursor: tuple[Segment, ...]

    @property
    def styles(self) -> tuple[Style, ...]:
        return tuple(s.style for s in self.plain)  # type: ignore[misc]

    @property
    def texts(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.plain)


@lru_cache(maxsize=64)
def cell_look(palette: Palette, kind: str, mode: str, width: int, base: Style) -> CellLook:
    """Segments for every level of one scale kind; `base` carries the widget's colours.

    colour: a background colour per level; the current step is a thin bar "▏", the cursor "◆".
    glyph (monochrome) and glyph+colour (16 colours): the glyph ramp carries the value; the
    current step's column is a grey band, the cursor reversed.
    """
    if palette.glyphs:
        mode = "glyph"
    colours = _ramp(palette.diverging if kind == "diverging" else palette.sequential, LEVELS)
    colours += [colours[-1], colours[0]]  # ABOVE, BELOW: the end colours, marked + and −
    colours.append(Color.parse(palette.nan))
    marker = Style(color=Color.parse(palette.marker), bold=True)
    plain, marked, cursor = [], [], []
    for level, colour in enumerate(colours):
        lvl = level if level < LEVELS else -1
        beyond = {ABOVE: "+", BELOW: "−"}.get(level)
        if beyond is not None:  # a cell beyond a robust scale: its end colour (glyph), and a sign
            style = base + (Style(bgcolor=colour) + marker if mode == "colour" else
                            Style(color=colour, bold=True) if mode == "glyph+colour" else Style(bold=True))
            text = (beyond * min(width, 1)).ljust(width)
            plain.append(Segment(text, style))
            marked.append(Segment(("▏" + beyond if width >= 2 else beyond).ljust(width), style))
            cursor.append(Segment(("▏◆" if width >= 2 else "◆").ljust(width), style + Style(reverse=mode != "colour")))
            continue
        if mode == "colour":
            style = base + Style(bgcolor=colour)
            plain.append(Segment(" " * width, style))
            marked.append(Segment("▏" + " " * (width - 1), style + marker))
            cursor.append(Segment(("▏◆" if width >= 2 else "◆") + " " * (width - 2), style + marker))
        else:
            style = base + (Style(color=colour) if mode == "glyph+colour" else Style())
            if lvl < 0:
                style += Style(bold=True)
            text = glyph(lvl) * width
            plain.append(Segment(text, style))
            marked.append(Segment(text, style + Style(bgcolor=Color.parse(palette.band), bold=True)))
            cursor.append(Segment(text, style + Style(reverse=True)))
    return CellLook(tuple(plain), tuple(marked), tuple(cursor))


def legend_cells(palette: Palette, kind: str, mode: str, base: Style, n: int) -> list[tuple[str, Style]]:
    """n cells stepping evenly through a scale, low to high, for the colour legend."""
    look = cell_look(palette, kind, mode if not palette.glyphs else "glyph", 1, base)
    out = []
    for k in range(n):
        level = round(k * (LEVELS - 1) / max(n - 1, 1))
        out.append((look.texts[level], look.styles[level]))
    return out
