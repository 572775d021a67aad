"""A zoomed heatmap for a projector: the focused matrix in few, large cells around the current
step and the selected unit, each cell with its value written in it, colours from the theme's
heatmap palette (the glyph ramp in monochrome).

    zoom 0:  4 x 1 cells     zoom 1:  6 x 1     zoom 2:  8 x 2     zoom 3:  10 x 3
"""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.ui.keys import KeysUp
from rnn_tui.ui.numbers import nonfinite
from rnn_tui.ui.palette import LEVELS, glyph, matrix, matrix_label, palette_for_theme, scale_for
from rnn_tui.ui.state import View

ZOOMS = ((4, 1), (6, 1), (8, 2), (10, 3))  # (cell width, cell height) per zoom level
HEADER = 2


def _ramp(stops: tuple[str, ...]) -> list[Color]:
    rgb = np.array([Color.parse(s).get_truecolor()[:3] for s in stops], dtype=np.float64)
    pos = np.linspace(0.0, 1.0, len(stops))
    return [Color.from_rgb(*[int(round(np.interp(x, pos, rgb[:, k]))) for k in range(3)])
            for x in np.linspace(0.0, 1.0, LEVELS)]


def _fit(text: str, width: int) -> str:
    """Centre text in `width` cells, cutting it when too wide."""
    while cell_len(text) > width:
        text = text[:-1]
    pad = width - cell_len(text)
    return " " * (pad // 2) + text + " " * (pad - pad // 2)


def _value(v: float, width: int) -> str:
    if not np.isfinite(v):
        return nonfinite(v)
    if width >= 7:
        return f"{v:+.3f}"
    if width >= 5:
        return f"{v:+.2f}"
    return f"{v:+.1f}"[:width] if width >= 4 else ""


def window(center: int, count: int, total: int) -> tuple[int, int]:
    """[start, stop) of `count` items around `center`, inside 0..total."""
    count = max(1, min(count, total))
    start = min(max(center - count // 2, 0), total - count)
    return start, start + count


def shown_units(unit: int, narrated: int | None, rows: int, total: int) -> list[int]:
    """The unit rows on screen: a window around the selected unit, and the unit the narration
    names (marked »), in place of the window's last row where it lies outside it."""
    u0, u1 = window(unit, rows, total)
    units = list(range(u0, u1))
    if narrated is None or not 0 <= narrated < total or narrated in units or rows < 2:
        return units
    u0, u1 = window(unit, rows - 1, total)
    return sorted([*range(u0, u1), narrated])


class ZoomMap(KeysUp, Widget, can_focus=True):
    """The focused matrix of a View, zoomed."""

    DEFAULT_CSS = """
    ZoomMap { height: 1fr; background: $background; }
    """

    view: reactive[View | None] = reactive(None)
    zoom: reactive[int] = reactive(1)
    narrated: reactive[int | None] = reactive(None)  # the unit the narration names: kept on screen

    def validate_zoom(self, value: int) -> int:
        return min(max(int(value), 0), len(ZOOMS) - 1)

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda *_: self.refresh(), init=False)

    def render(self) -> Text:
        return self.draw(self.size.width, self.size.height)

    def draw(self, width: int, height: int) -> Text:
        view = self.view
        out = Text(no_wrap=True, overflow="crop")
        if view is None:
            out.append("no trace yet", style="italic")
            return out
        trace, entry = view.trace, view.entry
        cfg = trace.config
        name = view.matrix
        values = matrix(entry, name)  # (T, H)
        scale = scale_for(name, cfg, values)
        palette = palette_for_theme(self.app.theme)
        cw, ch = ZOOMS[self.zoom]
        gutter = len(str(cfg.hidden_size - 1)) + 3
        t0, t1 = window(view.step, max(1, (width - gutter) // cw), trace.T)
        rows = max(1, (height - HEADER) // ch)
        units = shown_units(view.unit, self.narrated, rows, cfg.hidden_size)
        levels = scale.levels(values[t0:t1][:, units])  # (steps, units)
        colours = _ramp(palette.diverging if scale.kind == "diverging" else palette.sequential)
        nan = Color.parse(palette.nan)
        from rnn_tui.ui.widgets.heatmap_view import render_mode

        mode = render_mode(self.app, palette)  # colour | glyph+colour (16 colours) | glyph (mono)
        head = Style(bold=True)
        # line 0: what this is
        out.append(f" {matrix_label(name)}  {scale.label()}  ·  {entry.name}  ·  t {view.step}  unit {view.unit}"
                   f"  ·  zoom {self.zoom + 1}/{len(ZOOMS)}", style=head)
        out.append("\n")
        # line 1: the tokens over their columns
        out.append(" " * gutter)
        for t in range(t0, t1):
            label = _fit(trace.tokens[t] if t < len(trace.tokens) else str(t), cw)
            out.append(label, Style(bold=True, reverse=True) if t == view.step else Style(dim=True))
        for row, u in enumerate(units):
            for line in range(ch):
                out.append("\n")
                mid = line == ch // 2
                mark = "▶" if u == view.unit else "»" if u == self.narrated else " "
                out.append(f"{mark}{u:>{gutter - 2}} " if mid else " " * gutter,
                           Style(bold=True) if u == view.unit else Style(dim=True))
                for k, t in enumerate(range(t0, t1)):
                    level = int(levels[k, row])
                    v = float(values[t, u])
                    text = _fit(_value(v, cw - 1), cw) if mid else " " * cw
                    here = t == view.step and u == view.unit
                    if mode != "colour":  # the glyph ramp carries the value (in colour on 16 colours)
                        g = glyph(level)
                        colour = (colours[level] if level >= 0 else nan) if mode == "glyph+colour" else None
                        style = Style(color=colour, reverse=here, bold=t == view.step)
                        # the number in the terminal's own colour: on 16 colours a value near zero
                        # takes the background's colour, which would hide it
                        plain = Style(reverse=here, bold=t == view.step)
                        if ch == 1:
                            number = _value(v, cw - 2)[: max(cw - 1, 0)]
                            pad = cw - 1 - cell_len(number)
                            out.append(" " * (pad // 2) + g, style)
                            out.append(number + " " * (pad - pad // 2), plain)
                            continue
                        if not mid:
                            text = _fit(g * (cw - 2), cw)
                        else:
                            style = plain
                    else:
                        bg = colours[level] if level >= 0 else nan
                        r, g_, b = bg.get_truecolor()[:3]
                        fg = "black" if (0.299 * r + 0.587 * g_ + 0.114 * b) > 140 else "white"
                        style = Style(bgcolor=bg, color=fg, bold=here or t == view.step, underline=here and mid)
                    out.append(text, style)
        return out
