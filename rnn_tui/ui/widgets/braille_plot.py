"""Braille plots in the terminal: each character cell is a 2 x 4 grid of dots (U+2800..U+28FF),
so a W x H cell plot has 2W x 4H pixels. Pure Python and Rich (no torch, no numpy needed).

`BrailleCanvas` draws dots and lines in data coordinates and overlays glyphs on cells;
`render_phase(portrait, width, height)` draws a two-unit RNN's phase portrait: the vector field
as arrows (where one step moves each state), the state's path as a braille line, the fixed points
as ● stable, ○ unstable, + saddle, ◇ marginal, the axes h1 = 0 and h2 = 0 dimly, and a legend.
`PhasePlot` is the widget that shows it at its own size.
"""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BRAILLE = 0x2800
# dot bit for the pixel at (column 0..1, row 0..3) inside a cell
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
ARROWS = "→↗↑↖←↙↓↘"  # by angle, counter-clockwise from east, 45 degrees apart
MARKERS = {"stable": "●", "unstable": "○", "saddle": "+", "marginal": "◇"}

DEFAULT_STYLES = {
    "axis": Style(color="grey35"),
    "field": Style(color="grey50"),
    "path": Style(color="cyan", bold=True),
    "start": Style(color="bright_white", bold=True),
    "end": Style(color="yellow", bold=True),
    "stable": Style(color="green", bold=True),
    "unstable": Style(color="red", bold=True),
    "saddle": Style(color="yellow", bold=True),
    "marginal": Style(color="magenta", bold=True),
    "label": Style(dim=True),
}


class BrailleCanvas:
    """A width x height cell canvas over data bounds (x0, x1, y0, y1); y grows upwards."""

    def __init__(self, width: int, height: int, bounds: tuple[float, float, float, float]):
        if width < 1 or height < 1:
            raise ValueError(f"a canvas needs at least 1 x 1 cells, got {width} x {height}")
        self.width, self.height = width, height
        self.bounds = bounds
        self.bits = [[0] * width for _ in range(height)]
        self.styles: list[list[Style | None]] = [[None] * width for _ in range(height)]
        self.priority = [[-1] * width for _ in range(height)]
        self.glyphs: dict[tuple[int, int], tuple[str, Style, int]] = {}

    # ---- coordinates
    def pixel(self, x: float, y: float) -> tuple[int, int] | None:
        """Data (x, y) -> pixel (px, py), py counted from the top; None off the canvas."""
        x0, x1, y0, y1 = self.bounds
        if not (math.isfinite(x) and math.isfinite(y)) or x1 <= x0 or y1 <= y0:
            return None
        px = (x - x0) / (x1 - x0) * (2 * self.width - 1)
        py = (y1 - y) / (y1 - y0) * (4 * self.height - 1)
        px, py = round(px), round(py)
        if 0 <= px < 2 * self.width and 0 <= py < 4 * self.height:
            return px, py
        return None

    def cell(self, x: float, y: float) -> tuple[int, int] | None:
        p = self.pixel(x, y)
        return None if p is None else (p[0] // 2, p[1] // 4)

    # ---- drawing
    def dot(self, px: int, py: int, style: Style, priority: int = 0) -> None:
        if not (0 <= px < 2 * self.width and 0 <= py < 4 * self.height):
            return
        cx, cy = px // 2, py // 4
        self.bits[cy][cx] |= DOTS[py % 4][px % 2]
        if priority >= self.priority[cy][cx]:  # a cell has one colour: the most important layer's
            self.priority[cy][cx] = priority
            self.styles[cy][cx] = style

    def line(self, a: tuple[float, float], b: tuple[float, float], style: Style, priority: int = 0) -> None:
        """A straight line between two data points (clipped to the canvas pixel by pixel)."""
        x0, x1, y0, y1 = self.bounds
        sx, sy = (2 * self.width - 1) / (x1 - x0), (4 * self.height - 1) / (y1 - y0)
        ax, ay = (a[0] - x0) * sx, (y1 - a[1]) * sy
        bx, by = (b[0] - x0) * sx, (y1 - b[1]) * sy
        if not all(math.isfinite(v) for v in (ax, ay, bx, by)):
            return
        n = int(max(abs(bx - ax), abs(by - ay), 1)) + 1
        if n > 20_000:  # a point far off the canvas: draw the part that can be seen, coarsely
            n = 20_000
        for k in range(n + 1):
            s = k / n
            self.dot(round(ax + (bx - ax) * s), round(ay + (by - ay) * s), style, priority)

    def glyph(self, x: float, y: float, char: str, style: Style, priority: int = 10) -> bool:
        """Put a character on the cell holding data point (x, y); a higher priority wins."""
        c = self.cell(x, y)
        if c is None:
            return False
        if c in self.glyphs and self.glyphs[c][2] > priority:
            return True
        self.glyphs[c] = (char, style, priority)
        return True

    def to_text(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        for cy in range(self.height):
            for cx in range(self.width):
                if (cx, cy) in self.glyphs:
                    char, style, _ = self.glyphs[(cx, cy)]
                    out.append(char, style)
                elif self.bits[cy][cx]:
                    out.append(chr(BRAILLE + self.bits[cy][cx]), self.styles[cy][cx])
                else:
                    out.append(" ")
            if cy < self.height - 1:
                out.append("\n")
        return out


def arrow(dx: float, dy: float) -> str:
    """The arrow closest to the direction (dx, dy), y up."""
    k = round(math.atan2(dy, dx) / (math.pi / 4)) % 8
    return ARROWS[k]


def render_phase(portrait, width: int, height: int, styles: dict[str, Style] | None = None,
                 step: int | None = None, legend: bool = True) -> Text:
    """A phase portrait (rnn_tui.engine.phase.PhasePortrait) in width x height cells.

    step: draw the path only up to h_step (the state after reading step-1 ... as the explorer steps);
    None draws it whole. With `legend`, the last line names the markers and the fixed points.
    """
    st = {**DEFAULT_STYLES, **(styles or {})}
    rows = max(1, height - (2 if legend else 0))
    canvas = BrailleCanvas(max(1, width), rows, portrait.bounds)
    x0, x1, y0, y1 = portrait.bounds
    if x0 < 0 < x1:
        canvas.line((0.0, y0), (0.0, y1), st["axis"], 0)
    if y0 < 0 < y1:
        canvas.line((x0, 0.0), (x1, 0.0), st["axis"], 0)
    # the field: about one arrow every 6 x 3 cells, recomputed for this size
    f = _field(portrait, max(2, width // 6), max(2, rows // 3))
    for iy, y in enumerate(f.ys):
        for ix, x in enumerate(f.xs):
            dx, dy = float(f.U[iy, ix]), float(f.V[iy, ix])
            if math.hypot(dx, dy) < 1e-9 or not (math.isfinite(dx) and math.isfinite(dy)):
                continue
            canvas.glyph(float(x), float(y), arrow(dx, dy), st["field"], priority=1)
    path = [tuple(map(float, p)) for p in portrait.path]
    if step is not None:
        path = path[: max(1, step + 2)]
    for a, b in zip(path, path[1:]):
        canvas.line(a, b, st["path"], 5)
    for c in [c for c, g in canvas.glyphs.items() if g[2] <= 1]:  # arrows give way to the path
        if canvas.priority[c[1]][c[0]] >= 5:
            del canvas.glyphs[c]
    if path:
        canvas.glyph(*path[0], "◦" if len(path) > 1 else "•", st["start"], priority=6)
        canvas.glyph(*path[-1], "◉", st["end"], priority=11)  # "now" above everything
    for fp in portrait.fixed_points:
        canvas.glyph(float(fp.h[0]), float(fp.h[1]), MARKERS[fp.kind], st[fp.kind], priority=9)
    text = canvas.to_text()
    if legend:
        text.append("\n")
        text.append_text(legend_line(portrait, width, st, path[-1] if path else None))
        text.append("\n")
        text.append(f"h1 {x0:+.2f}..{x1:+.2f}  h2 {y0:+.2f}..{y1:+.2f}  input held: {portrait.input_label!r}"[:width], st["label"])
    return text


def _field(portrait, nx: int, ny: int):
    """The portrait's vector field on an nx x ny grid (numpy only, no torch)."""
    from rnn_tui.engine.phase import vector_field

    x0, x1, y0, y1 = portrait.bounds
    dx, dy = (x1 - x0) / (2 * nx), (y1 - y0) / (2 * ny)  # cell centres, not the edges
    return vector_field(portrait.W, portrait.u, portrait.activation, (x0 + dx, x1 - dx, y0 + dy, y1 - dy), nx, ny)


def legend_line(portrait, width: int, st: dict[str, Style], now=None) -> Text:
    """"◉ now  ● 4 stable  + 4 saddle  ○ 1 unstable  nearest: stable (+0.96,+0.96) |λ|max 0.17"."""
    line = Text(no_wrap=True, overflow="crop")
    line.append("◉", st["end"])
    line.append(" now  ")
    fps = portrait.fixed_points
    if not fps:
        line.append("no fixed point found", st["label"])
    for kind in ("stable", "saddle", "unstable", "marginal"):
        n = sum(1 for fp in fps if fp.kind == kind)
        if n:
            line.append(MARKERS[kind], st[kind])
            line.append(f" {n} {kind}  ")
    if fps and now is not None:
        near = min(fps, key=lambda fp: math.hypot(fp.h[0] - now[0], fp.h[1] - now[1]))
        line.append(f"nearest: {near.kind} ({near.h[0]:+.2f},{near.h[1]:+.2f}) |λ|max {near.radius:.2f}")
    line.truncate(width)
    return line


class PhasePlot(Widget):
    """Shows a phase portrait at the widget's size; `step` limits the path drawn."""

    DEFAULT_CSS = """
    PhasePlot { height: 1fr; min-height: 6; }
    """

    portrait = reactive(None, always_update=True)  # a PhasePortrait (holds arrays: never compared)
    step: reactive[int | None] = reactive(None)

    def render(self) -> Text:
        if self.portrait is None:
            return Text("no phase portrait: it needs a two-unit rnn", style="dim")
        return render_phase(self.portrait, self.size.width, self.size.height, step=self.step)
