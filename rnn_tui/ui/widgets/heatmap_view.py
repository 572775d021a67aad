"""Units x time heatmaps, drawn line by line (Textual's line API) from cached rows.

One row per hidden unit, one column per step; several matrices (h, c, every gate) side by side
when the width allows. The time window moves in jumps (when the current step nears its edge), so
most steps change two columns only: the widget then refreshes just those columns, and a line is
its cached row with the marked cells patched in. That keeps a step at 200x60 within a frame and
the bytes sent over a slow link small.

    row 0   matrix titles and scales        h ±1            │ i 0…1
    row 1   time axis, ▼ at the current step    10   ▼      │
    row 2+  "▶ 12 " gutter, then cells       ██████████████ │ ████████
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.filter import ANSIToTruecolor
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui.ui.palette import (
    CellLook,
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
WIDE_STEPS = 12  # fewest steps a panel shows with two cells per step (else one)


@dataclass(frozen=True)
class Run:
    """Where one panel's cells sit in a cached row: its first segment, the cell at which each
    merged run starts, and every cell's level."""

    first: int
    starts: list[int]
    levels: list[int]


@dataclass(frozen=True)
class Geometry:
    """Where everything goes for one size and view."""

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
           width: int, height: int, top: int, unit: int | None, start: int | None = None) -> Geometry:
    """Fit as many matrices as keep MIN_STEPS steps each (the focused one always among them),
    two cells per step where WIDE_STEPS fit; keep the time window from `start` while `step`
    stays clear of its edges, else jump it so the step has most of the window ahead; scroll the unit rows from `top` just
    enough to show `unit` (None: leave them where they are)."""
    gutter = len(str(max(H - 1, 0))) + 2
    avail = max(width - gutter, 1)
    candidates = names if show_all else [focus]
    chosen, cell = [focus], 1
    for k in range(len(candidates), 0, -1):
        for cw in (2, 1):
            per = (avail - (k - 1)) // k  # panel width with k-1 gaps
            need = WIDE_STEPS if cw == 2 else MIN_STEPS
            if per // cw >= min(need, T) or (k == 1 and cw == 1):
                i = candidates.index(focus) if focus in candidates else 0
                lo = min(max(i - k // 2, 0), len(candidates) - k)
                chosen, cell = candidates[lo : lo + k], cw
                break
        else:
            continue
        break
    k = len(chosen)
    steps = max(min((avail - (k - 1)) // k // cell, T), 1)
    margin = steps // 8
    if start is None or start + steps > T:
        start = step - steps // 2
    elif step >= start + steps - margin:  # ran off the right: the step a quarter in, room ahead
        start = step - steps // 4
    elif step < start + margin:  # ran off the left: the step three quarters in
        start = step - steps + 1 + steps // 4
    start = min(max(start, 0), max(T - steps, 0))
    if not start <= step < start + steps:  # the clamp above keeps this, but be sure
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

    view: reactive[View | None] = reactive(None, repaint=False)
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
        self._area = Size(0, 0)  # the size the geometry was computed for
        self._start: int | None = None
        self._shown_unit: int | None = None  # the selected unit the rows last scrolled to
        self._trace_gen = 0  # bumped when the trace changes: keys the caches
        self._geometry: Geometry | None = None
        self._geometry_key: tuple | None = None
        self._scales: dict[tuple, Scale] = {}
        self._rows_key: tuple | None = None
        self._rows: dict[int, tuple[list[Segment], list[Run]]] = {}  # row -> (segments, runs)
        self._window_levels: list[list[list[int]]] = []  # per panel, per row, per step
        self._run_segments: dict[tuple[int, int, int], Segment] = {}  # (panel, level, length)
        self._looks_key: tuple | None = None
        self._looks: dict[str, CellLook] = {}
        self._panel_looks: tuple[tuple, list[CellLook]] | None = None
        self._styles: dict[str, Style] = {}

    def get_line_filters(self):
        """The app's filters, less the ANSI-to-truecolor conversion: every colour drawn here is
        already truecolor (or, under an ANSI theme, meant as ANSI), and that filter would walk
        every cell of every repainted line. NO_COLOR's monochrome filter still applies."""
        return [f for f in super().get_line_filters() if not isinstance(f, ANSIToTruecolor)]

    # ---- reacting --------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._restyle, init=False)

    def _restyle(self, *_args) -> None:
        self._looks_key = None
        self._panel_looks = None
        self._rows_key = None
        self._styles.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def watch_view(self, old: View | None, new: View | None) -> None:
        if old is None or new is None or old.trace is not new.trace:
            self._scales.clear()
            self._trace_gen += 1
            self._rows_key = None
            self.refresh()
            return
        before = self._geometry
        after = self.geometry()
        same_maps = (old.layer, old.direction, old.matrix, old.all_maps) == (
            new.layer, new.direction, new.matrix, new.all_maps)
        if before is None or after != before or not same_maps:
            self.refresh()
            return
        if old.step != new.step:
            # the marked column runs through every row: repaint the maps (a line is one cached
            # row with a few cells patched, so this is cheap)
            self.refresh()
            return
        # only the unit moved: repaint its old and new rows
        regions = [Region(0, HEADER_ROWS + unit - after.top, self.size.width, 1)
                   for unit in {old.unit, new.unit} if after.top <= unit < after.top + after.rows]
        self.refresh(*regions)

    def watch_busy(self) -> None:
        if self.view is None:
            self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._area = event.size
        self._rows_key = None
        self.refresh()

    # ---- geometry, scales, styles ------------------------------------------------------------
    def geometry(self) -> Geometry | None:
        view = self.view
        if view is None:
            return None
        cfg = view.trace.config
        # Widget.size is computed on every read (a compositor lookup): the size of the last Resize
        size = self._area if self._area.area else self.size
        self._area = size
        key = (self._trace_gen, view.matrix, view.step, view.unit, size, view.all_maps,
               self._top, self._start)
        if key != self._geometry_key:
            follow = view.unit if view.unit != self._shown_unit else None
            g = layout(
                matrix_names(cfg), view.matrix, view.all_maps, view.trace.T, cfg.hidden_size,
                view.step, size.width, size.height, self._top, follow, self._start,
            )
            self._top, self._start, self._shown_unit = g.top, g.start, view.unit
            self._geometry = g
            self._geometry_key = key[:-2] + (self._top, self._start)
        return self._geometry

    def rescale(self) -> None:
        """Read every scale again: for a subclass whose `scale` depends on more than the view (the
        Compare tab's maps share one scale with the other side's)."""
        self._scales.clear()
        self._trace_gen += 1
        self._rows_key = None
        self._panel_looks = None
        self.refresh()

    def scale(self, view: View, name: str) -> Scale:
        key = (view.layer, view.direction, name)
        if key not in self._scales:
            self._scales[key] = scale_for(name, view.trace.config, matrix(view.entry, name))
        return self._scales[key]

    def style(self, name: str) -> Style:
        """A component class's style (cached until the theme or CSS changes)."""
        if name not in self._styles:
            self._styles[name] = self.rich_style if name == "base" else self.get_component_rich_style(
                f"heatmap-view--{name}")
        return self._styles[name]

    def look(self, view: View, name: str, cell: int) -> CellLook:
        palette = palette_for_theme(self.app.theme)
        key = (palette.name, render_mode(self.app, palette), cell, self.style("base"))
        if key != self._looks_key:
            self._looks.clear()
            self._looks_key = key
        kind = self.scale(view, name).kind
        if kind not in self._looks:
            self._looks[kind] = cell_look(palette, kind, key[1], cell, key[3])
        return self._looks[kind]

    def panel_looks(self, view: View, g: Geometry) -> list[CellLook]:
        """The look of each panel's cells (cached until the panels or the theme change)."""
        key = (self._trace_gen, view.layer, view.direction, g.panels, g.cell)
        if self._panel_looks is None or self._panel_looks[0] != key:
            self._panel_looks = (key, [self.look(view, name, g.cell) for name in g.panels])
        return self._panel_looks[1]

    # ---- rows ----------------------------------------------------------------------------------
    def _row(self, view: View, g: Geometry, row: int) -> tuple[list[Segment], list[Run]]:
        """A unit row without the cursor marks: the gutter, then per panel its cells with runs of
        equal level merged into one segment (fewer segments: less for Textual to write), and a
        gap. Cached for the current window; the levels of the whole window come from one numpy
        call per panel."""
        key = (self._trace_gen, view.layer, view.direction, g, self._area.width, self._looks_key,
               self.app.theme)
        if key != self._rows_key:
            self._rows.clear()
            self._run_segments.clear()
            self._rows_key = key
            entry = view.entry
            t0, t1, u0, u1 = g.start, g.start + g.steps, g.top, g.top + g.rows
            self._window_levels = [
                self.scale(view, name).levels(matrix(entry, name)[t0:t1, u0:u1].T, mark_clipped=True).tolist()
                for name in g.panels
            ]
        cached = self._rows.get(row)
        if cached is not None:
            return cached
        base = self.style("base")
        segments: list[Segment] = [Segment(" " * g.gutter, base)]
        runs: list[Run] = []
        gap = Segment(" ", base)
        looks = self.panel_looks(view, g)
        for p in range(len(g.panels)):
            lv = self._window_levels[p][row]
            starts: list[int] = []
            first = len(segments)
            k, n = 0, len(lv)
            while k < n:
                level, j = lv[k], k + 1
                while j < n and lv[j] == level:
                    j += 1
                starts.append(k)
                segments.append(self._run_segment(looks[p], p, level, j - k))
                k = j
            runs.append(Run(first, starts, lv))
            if p < len(g.panels) - 1:
                segments.append(gap)
        used = g.gutter + len(g.panels) * g.steps * g.cell + len(g.panels) - 1
        if used < self._area.width:
            segments.append(Segment(" " * (self._area.width - used), base))
        self._rows[row] = (segments, runs)
        return segments, runs

    def _run_segment(self, look: CellLook, panel: int, level: int, length: int) -> Segment:
        key = (panel, level, length)
        segment = self._run_segments.get(key)
        if segment is None:
            cell = look.plain[level]
            segment = self._run_segments[key] = Segment(cell.text * length, cell.style)
        return segment

    # ---- drawing -----------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        view = self.view
        if view is None:
            return self._message_line(y, self.size.width)
        g = self.geometry()
        width = self._area.width
        assert g is not None
        if y == 0:
            return self._title_line(view, g, width)
        if y == 1:
            return self._axis_line(view, g, width)
        row = y - HEADER_ROWS
        unit = g.top + row
        if row >= g.rows or unit >= view.trace.config.hidden_size:
            return Strip.blank(width, self.style("base"))
        plain, runs = self._row(view, g, row)
        segments = list(plain)
        selected = unit == view.unit
        digits = g.gutter - 2
        label = ("▶" if selected else " ") + str(unit).rjust(digits) + " "
        segments[0] = Segment(label, self.style("selected" if selected else "label"))
        k = view.step - g.start
        if 0 <= k < g.steps:
            looks = self.panel_looks(view, g)
            for p in reversed(range(len(runs))):  # right to left: a split shifts only what follows
                run = runs[p]
                i = bisect_right(run.starts, k) - 1
                start = run.starts[i]
                end = run.starts[i + 1] if i + 1 < len(run.starts) else len(run.levels)
                level = run.levels[k]
                look = looks[p]
                pieces = []
                if k > start:
                    pieces.append(self._run_segment(look, p, level, k - start))
                pieces.append((look.cursor if selected else look.marked)[level])
                if end > k + 1:
                    pieces.append(self._run_segment(look, p, level, end - k - 1))
                segments[run.first + i : run.first + i + 1] = pieces
        return Strip(segments, width)

    def _message_line(self, y: int, width: int) -> Strip:
        if y != self.size.height // 2 or not self.busy:
            return Strip.blank(width, self.rich_style)
        text = self.busy[:width].center(width)
        return Strip([Segment(text, self.get_component_rich_style("heatmap-view--message"))], width)

    def _title_line(self, view: View, g: Geometry, width: int) -> Strip:
        base = self.style("base")
        segments = [Segment(" " * g.gutter, base)]
        pw = g.steps * g.cell
        for p, name in enumerate(g.panels):
            scale = self.scale(view, name)
            text = f" {matrix_label(name)} {scale.label()}"
            if len(text) > pw:  # a number is never cut: the brief label ("±2.37+") instead
                text = f" {matrix_label(name)} {scale.label(brief=True)}"
            text = text[:pw].ljust(pw)
            segments.append(Segment(text, self.style("focus-title" if name == view.matrix else "title")))
            if p < len(g.panels) - 1:
                segments.append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)

    def _axis_line(self, view: View, g: Geometry, width: int) -> Strip:
        base, axis, marker = self.style("base"), self.style("axis"), self.style("marker")
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
        segments = [Segment(axis_corner(g.gutter), axis)]
        for p in range(len(g.panels)):
            segments.append(Segment(row[:cursor_x], axis))
            segments.append(Segment("▼" + " " * (g.cell - 1), marker))
            segments.append(Segment(row[cursor_x + g.cell :], axis))
            if p < len(g.panels) - 1:
                segments.append(Segment(" ", base))
        return Strip(segments).adjust_cell_length(width, base)

    # ---- mouse ---------------------------------------------------------------------------------
    def on_mouse_move(self, event: events.MouseMove) -> None:
        g = self.geometry()
        hit = g.locate(event.x, event.y) if g else None
        if hit is None or self.view is None or hit[1] >= self.view.trace.T or \
                hit[2] >= self.view.trace.config.hidden_size:
            self.post_message(self.Hover(None))
        else:
            self.post_message(self.Hover(*hit))

    def on_leave(self, event: events.Leave) -> None:
        self.post_message(self.Hover(None))

    def on_click(self, event: events.Click) -> None:
        g = self.geometry()
        hit = g.locate(event.x, event.y) if g else None
        if hit is not None and self.view is not None and hit[1] < self.view.trace.T and \
                hit[2] < self.view.trace.config.hidden_size:
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
        self.refresh()


def axis_corner(gutter: int) -> str:
    """The corner over the unit numbers and before the time ticks: rows are units, columns t."""
    label = "unit╲t" if gutter >= 7 else "u╲t"
    return label.rjust(gutter - 1) + " " if len(label) < gutter else label[:gutter].ljust(gutter)
