"""Units x time heatmaps, drawn line by line (Textual's line API) from cached strips.

One row per hidden unit, one column per step, windowed around the current step; several
matrices (h, c, every gate) side by side when the width allows. Rendering a line is an index per
cell into pre-built styles (`palette.cell_look`), so a step at 200x60 stays well inside a frame.

    row 0   matrix titles and scales        h  -1 … 1       │ i  0 … 1
    row 1   time axis, ▼ at the current step    10   ▼      │
    row 2+  "▶ 12 " gutter, then cells       ██████████████ │ ████████
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui.ui.palette import (
    Palette,
    Scale,
    cell_look,
    matrix,
    matrix_label,
    matrix_names,
    palette_for_theme,
    scale_for,
)
from rnn_tui.ui.state import View

HEADER_ROWS = 2
MIN_STEPS = 8  # fewest steps a panel may show before panels are dropped


@dataclass(frozen=True)
class Geometry:
    """Where everything goes for one size and view; recomputed only when those change."""

    panels: tuple[str, ...]  # matrix names, left to right
    cell: int  # terminal cells per step (1 or 2)
    steps: int  # steps per panel
    start: int  # first step shown
    gutter: int  # width of the unit labels
    top: int  # first unit shown
    rows: int  # unit rows that fit

    def panel_x(self, p: int) -> int:
        return self.gutter + p * (self.steps * self.cell + 1)

    def locate(self, x: int, y: int) -> tuple[str, int, int] | None:
        """(matrix, step, unit) under a point of the widget, or None."""
        if y < HEADER_ROWS or x < self.gutter:
            return None
        width = self.steps * self.cell
        p, off = divmod(x - self.gutter, width + 1)
        if p >= len(self.panels) or off >= width:
            return None
        return self.panels[p], self.start + off // self.cell, self.top + y - HEADER_ROWS


def layout(names: list[str], focus: str, show_all: bool, T: int, H: int, step: int,
           width: int, height: int, top: int, unit: int | None) -> Geometry:
    """Fit as many matrices as keep MIN_STEPS steps each (the focused one always among them),
    two cells per step where they fit; centre the time window on `step`; scroll the unit rows
    from `top` just enough to show `unit` (None: leave them where they are)."""
    gutter = len(str(max(H - 1, 0))) + 2
    avail = max(width - gutter, 1)
    candidates = names if show_all else [focus]
    chosen, cell = [focus], 1
    for k in range(len(candidates), 0, -1):
        for cw in (2, 1):
            per = (avail - (k - 1)) // k  # panel width with k-1 gaps
            if per // cw >= min(MIN_STEPS, T) or (k == 1 and cw == 1):
                i = candidates.index(focus) if focus in candidates else 0
                lo = min(max(i - k // 2, 0), len(candidates) - k)
                chosen, cell = candidates[lo : lo + k], cw
                break
        else:
            continue
        break
    k = len(chosen)
    steps = max(min((avail - (k - 1)) // k // cell, T), 1)
    start = min(max(step - steps // 2, 0), max(T - steps, 0))
    rows = max(height - HEADER_ROWS, 0)
    if rows and unit is not None:
        if unit < top:
            top = unit
        elif unit >= top + rows:
            top = unit - rows + 1
    top = min(max(top, 0), max(H - rows, 0))
    return Geometry(tuple(chosen), cell, steps, start, gutter, top, rows)


def render_mode(app, palette: Palette) -> str:
    """Background colours in 256/true-colour terminals; a glyph ramp in colour on 16 colours
    (where shades of one hue collapse); the bare glyph ramp for monochrome and NO_COLOR."""
    if palette.glyphs or getattr(app, "no_color", False):
        return "glyph"
    system = app.console.color_system
    if system in (None, "standard", "windows"):
        return "glyph+colour"
    return "colour"


class HeatmapView(Widget, can_focus=True):
    """The heatmaps. Bound to the screen's View; tells its pane what the mouse is over."""

    COMPONENT_CLASSES = {
        "heatmap-view--label",
        "heatmap-view--selected",
        "heatmap-view--axis",
        "heatmap-view--marker",
        "heatmap-view--title",
        "heatmap-view--focus-title",
        "heatmap-view--message",
    }

    DEFAULT_CSS = """
    HeatmapView { height: 1fr; min-height: 3; }
    """

    view: reactive[View | None] = reactive(None)
    busy: reactive[str] = reactive("")  # shown instead of the maps while there is no trace

    class Hover(Message):
        """The mouse is over a cell (or left the maps: matrix is None)."""

        def __init__(self, matrix: str | None, step: int = 0, unit: int = 0) -> None:
            super().__init__()
            self.matrix, self.step, self.unit = matrix, step, unit

    class Picked(Message):
        """A cell was clicked: go to its step and unit, and focus its matrix."""

        def __init__(self, matrix: str, step: int, unit: int) -> None:
            super().__init__()
            self.matrix, self.step, self.unit = matrix, step, unit

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._top = 0
        self._shown_unit: int | None = None  # the selected unit the rows last scrolled to
        self._trace_gen = 0  # bumped when the trace (or layer) changes: keys the caches
        self._geometry: Geometry | None = None
        self._geometry_key: tuple | None = None
        self._levels: dict[str, list[list[int]]] = {}
        self._levels_key: tuple | None = None
        self._scales: dict[tuple, Scale] = {}
        self._strips: dict[tuple, Strip] = {}
        self._style_key: tuple | None = None

    # ---- reacting --------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._restyle, init=False)

    def _restyle(self, *_args) -> None:
        self._strips.clear()
        self._style_key = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def watch_view(self, old: View | None, new: View | None) -> None:
        if old is None or new is None or old.trace is not new.trace:
            self._scales.clear()
            self._strips.clear()
            self._trace_gen += 1
        self.refresh()

    def watch_busy(self) -> None:
        if self.view is None:
            self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    # ---- geometry and levels -----------------------------------------------------------------
    def geometry(self) -> Geometry | None:
        view = self.view
        if view is None:
            return None
        cfg = view.trace.config
        key = (self._trace_gen, view.matrix, view.step, view.unit, self.size, view.all_maps, self._top)
        if key != self._geometry_key:
            follow = view.unit if view.unit != self._shown_unit else None
            g = layout(
                matrix_names(cfg), view.matrix, view.all_maps, view.trace.T, cfg.hidden_size,
                view.step, self.size.width, self.size.height, self._top, follow,
            )
            self._top, self._shown_unit = g.top, view.unit
            self._geometry = g
            self._geometry_key = key[:-1] + (self._top,)
        return self._geometry

    def scale(self, view: View, name: str) -> Scale:
        key = (view.layer, view.direction, name)
        if key not in self._scales:
            self._scales[key] = scale_for(name, view.trace.config, matrix(view.entry, name))
        return self._scales[key]

    def _window_levels(self, view: View, g: Geometry) -> dict[str, list[list[int]]]:
        key = (self._trace_gen, view.layer, view.direction, g)
        if key != self._levels_key:
            entry = view.entry
            t0, t1 = g.start, g.start + g.steps
            u0, u1 = g.top, g.top + g.rows
            levels = {}
            for name in g.panels:
                block = matrix(entry, name)[t0:t1, u0:u1].T  # (units, steps)
                levels[name] = self.scale(view, name).levels(block).tolist()
            self._levels, self._levels_key = levels, key
        return self._levels

    # ---- drawing -----------------------------------------------------------------------------
    def _looks(self):
        palette = palette_for_theme(self.app.theme)
        mode = render_mode(self.app, palette)
        base = self.rich_style
        key = (palette.name, mode, base)
        if key != self._style_key:
            self._strips.clear()
            self._style_key = key
        return palette, mode, base

    def render_line(self, y: int) -> Strip:
        view = self.view
        width = self.size.width
        if view is None:
            return self._message_line(y, width)
        g = self.geometry()
        assert g is not None
        palette, mode, base = self._looks()
        if y == 0:
            key: tuple = (self._trace_gen, view.layer, view.direction, g, width, y, view.matrix)
        elif y == 1:
            key = (g, width, y, view.step)
        else:  # a unit row depends on the window, and on whether it holds the cursor
            key = (self._trace_gen, view.layer, view.direction, g, width, y, view.step,
                   g.top + y - HEADER_ROWS == view.unit)
        strip = self._strips.get(key)
        if strip is None:
            if len(self._strips) > 4 * max(self.size.height, 1):
                self._strips.clear()
            if y == 0:
                strip = self._title_line(view, g, width)
            elif y == 1:
                strip = self._axis_line(view, g, width)
            else:
                strip = self._unit_line(view, g, y, width, palette, mode, base)
            self._strips[key] = strip
        return strip

    def _message_line(self, y: int, width: int) -> Strip:
        if y != self.size.height // 2 or not self.busy:
            return Strip.blank(width, self.rich_style)
        text = self.busy[:width].center(width)
        return Strip([Segment(text, self.get_component_rich_style("heatmap-view--message"))], width)

    def _title_line(self, view: View, g: Geometry, width: int) -> Strip:
        base = self.rich_style
        title = self.get_component_rich_style("heatmap-view--title")
        focus = self.get_component_rich_style("heatmap-view--focus-title")
        segments = [Segment(" " * g.gutter, base)]
        pw = g.steps * g.cell
        for p, name in enumerate(g.panels):
            text = f" {matrix_label(name)}  {self.scale(view, name).label()}"
            text = text[:pw].ljust(pw)
            segments.append(Segment(text, focus if name == view.matrix else title))
            if p < len(g.panels) - 1:
                segments.append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)

    def _axis_line(self, view: View, g: Geometry, width: int) -> Strip:
        base = self.rich_style
        axis = self.get_component_rich_style("heatmap-view--axis")
        marker = self.get_component_rich_style("heatmap-view--marker")
        pw = g.steps * g.cell
        tick = 5 if g.cell == 2 else 10
        chars = [" "] * pw
        for k in range(g.steps):
            t = g.start + k
            if t % tick == 0:
                label = str(t)
                x = k * g.cell
                if x + len(label) <= pw and all(c == " " for c in chars[x : x + len(label) + 1]):
                    chars[x : x + len(label)] = label
        cursor_x = (view.step - g.start) * g.cell
        row = "".join(chars)
        segments = [Segment("t".rjust(g.gutter - 1) + " ", axis)]
        for p in range(len(g.panels)):
            segments.append(Segment(row[:cursor_x], axis))
            segments.append(Segment("▼" * g.cell if g.cell == 1 else "▼ ", marker))
            segments.append(Segment(row[cursor_x + g.cell :], axis))
            if p < len(g.panels) - 1:
                segments.append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)

    def _unit_line(self, view, g: Geometry, y: int, width: int, palette, mode, base) -> Strip:
        unit = g.top + y - HEADER_ROWS
        H = view.trace.config.hidden_size
        if y - HEADER_ROWS >= g.rows or unit >= H:
            return Strip.blank(width, base)
        selected = unit == view.unit
        digits = g.gutter - 2
        label = ("▶" if selected else " ") + str(unit).rjust(digits) + " "
        style = self.get_component_rich_style("heatmap-view--selected" if selected else "heatmap-view--label")
        segments = [Segment(label, style)]
        levels = self._window_levels(view, g)
        cursor_k = view.step - g.start
        row = y - HEADER_ROWS
        cw = g.cell
        if mode == "colour":
            mark_text = "▏" + " " * (cw - 1)
            cursor_text = "▏◆" if cw == 2 else "◆"
        for p, name in enumerate(g.panels):
            kind = self.scale(view, name).kind
            look = cell_look(palette, kind, mode, cw, base)
            styles, texts = look.styles, look.texts
            line = levels[name][row]
            append = segments.append
            for k, lvl in enumerate(line):
                if k == cursor_k:
                    if mode == "colour":
                        append(Segment(cursor_text if selected else mark_text,
                                       (look.cursor if selected else look.marked)[lvl]))
                    else:
                        append(Segment(texts[lvl], (look.cursor if selected else look.marked)[lvl]))
                else:
                    append(Segment(texts[lvl], styles[lvl]))
            if p < len(g.panels) - 1:
                append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)

    # ---- mouse ---------------------------------------------------------------------------------
    def on_mouse_move(self, event: events.MouseMove) -> None:
        g = self.geometry()
        hit = g.locate(event.x, event.y) if g else None
        if hit is None or self.view is None or hit[1] >= self.view.trace.T:
            self.post_message(self.Hover(None))
        else:
            self.post_message(self.Hover(*hit))

    def on_leave(self, event: events.Leave) -> None:
        self.post_message(self.Hover(None))

    def on_click(self, event: events.Click) -> None:
        g = self.geometry()
        hit = g.locate(event.x, event.y) if g else None
        if hit is not None and self.view is not None and hit[1] < self.view.trace.T:
            self.post_message(self.Picked(*hit))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll_units(+3)
        event.stop()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll_units(-3)
        event.stop()

    def _scroll_units(self, delta: int) -> None:
        if self.view is None:
            return
        H = self.view.trace.config.hidden_size
        rows = max(self.size.height - HEADER_ROWS, 1)
        self._top = min(max(self._top + delta, 0), max(H - rows, 0))
        self._geometry_key = None
        self.refresh()
