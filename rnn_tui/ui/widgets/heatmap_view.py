"""Units x time heatmaps, drawn line by line (Textual's line API) from cached rows.

One row per hidden unit, one column per step; several matrices (h, c, every gate) side by side
when the width allows. The time window moves in jumps (when the current step nears its edge), so
most steps move only the marked column, which runs through every row: every row is drawn again.
A row is therefore joined from pieces drawn once per window (the runs of equal colour, the marks,
the unit labels), each a segment whose terminal text is rendered once: a row's strip is made of
those segments with its rendered text joined from theirs, so a step re-renders 45 rows at 200x60
by joining lists and strings rather than by styling and encoding some 3,000 segments. And `render_lines` hands Textual these strips as they are: the maps
have no border, padding, tint or opacity, so Textual's per-line styling pass (which would copy
each strip and lose its rendered text) is left out while that holds.

    row 0   matrix titles and scales        h ±1            │ i 0…1
    row 1   time axis, ▼ at the current step    10   ▼      │
    row 2+  "▶ 12 " gutter, then cells       ██████████████ │ ████████
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import partial

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.filter import ANSIToTruecolor
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui.ui.compositor import SparseStrip, forward, repaint
from rnn_tui.ui.keys import KeysUp
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
from rnn_tui.ui.widgets.lines_view import finish_strips, fit, plain_box

HEADER_ROWS = 2
MIN_STEPS = 8  # fewest steps a panel may show before panels are dropped
WIDE_STEPS = 12  # fewest steps a panel shows with two cells per step (else one)
LOOK_AHEAD = 3  # steps from a jump of the time window at which its next window is built ahead
AHEAD_ROWS = 8  # rows of it built per turn of the event loop


@dataclass(frozen=True)
class Run:
    """One panel's cells in a cached row: per merged run of one level its segment and that
    segment's terminal text, the cell at which each run starts, and every cell's level."""

    segments: list[Segment]
    texts: list[str]
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


class HeatmapView(KeysUp, Widget, can_focus=True):
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
        self._rows_gen = 0  # bumped when the cached rows are dropped: keys the drawn lines
        self._rows: dict[int, list[Run]] = {}  # row -> its runs, panel by panel
        self._window_levels: list[list[list[int]]] = []  # per panel, per row, per step
        self._ahead: tuple | None = None  # (window key, levels, kinds, rows): the next window, built ahead
        self._ahead_target: tuple | None = None  # (window key, geometry) of the window being built ahead
        self._kinds: list[str] = []  # per panel, its scale's kind (which look its cells take)
        self._pieces: dict[tuple, Strip] = {}  # drawn once per look: runs, marks, labels, gaps
        self._lines: dict[int, tuple[tuple, Strip]] = {}  # row -> (what it shows, its strip)
        self._looks_key: tuple | None = None
        self._looks: dict[str, CellLook] = {}
        self._panel_looks: tuple[tuple, list[CellLook]] | None = None
        self._styles: dict[str, Style] = {}
        self._frame: Geometry | None = None  # while render_lines draws a frame: its geometry, window checked

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
        self._pieces.clear()
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
            # the marked column runs through every row: the old and the new step's columns of
            # every panel change, and the time axis (see `render_changed`)
            repaint(self, *self._step_regions(after, old.step, new.step))
            self._look_ahead(new, after, 1 if new.step > old.step else -1)
            return
        # only the unit moved: repaint its old and new rows
        regions = [Region(0, HEADER_ROWS + unit - after.top, self.size.width, 1)
                   for unit in {old.unit, new.unit} if after.top <= unit < after.top + after.rows]
        repaint(self, *regions)

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
            self._pieces.clear()
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
    def _window_key(self, view: View, g: Geometry) -> tuple:
        self.panel_looks(view, g)  # the looks first: they are part of the key
        return (self._trace_gen, view.layer, view.direction, g, self._area.width, self._looks_key, self.app.theme)

    def _levels(self, view: View, g: Geometry) -> tuple[list[list[list[int]]], list[str]]:
        """The levels of a window's cells, per panel, per row, per step (one numpy call per
        panel), and each panel's scale kind."""
        entry = view.entry
        t0, t1, u0, u1 = g.start, g.start + g.steps, g.top, g.top + g.rows
        levels = [
            self.scale(view, name).levels(matrix(entry, name)[t0:t1, u0:u1].T, mark_clipped=True).tolist()
            for name in g.panels
        ]
        return levels, [self.scale(view, name).kind for name in g.panels]

    def _window(self, view: View, g: Geometry) -> None:
        """Drop the cached rows and lines when the window, the trace, the looks or the width
        changed (taking the rows built ahead for the new window, if they were)."""
        key = self._window_key(view, g)
        if key != self._rows_key:
            self._lines.clear()
            self._rows_key = key
            self._rows_gen += 1
            ahead, self._ahead = self._ahead, None
            if ahead is not None and ahead[0] == key:
                self._window_levels, self._kinds, self._rows = ahead[1], ahead[2], ahead[3]
            else:
                self._rows = {}
                self._window_levels, self._kinds = self._levels(view, g)
            if len(self._pieces) > 50_000:  # a long session of many windows: start again
                self._pieces.clear()

    def _row(self, view: View, g: Geometry, row: int) -> list[Run]:
        """A unit row's runs without the cursor marks (cached for the window)."""
        if self._frame is None:  # else render_lines checked the window once for the frame
            self._window(view, g)
        cached = self._rows.get(row)
        if cached is None:
            cached = self._rows[row] = self._runs(self.panel_looks(view, g), self._kinds, g.cell,
                                                  [panel[row] for panel in self._window_levels])
        return cached

    def _runs(self, looks: list[CellLook], kinds: list[str], cell: int, levels: list[list[int]]) -> list[Run]:
        """Per panel, a row's cells with runs of equal level merged into one piece (fewer
        segments: less for Textual to write)."""
        runs: list[Run] = []
        for p, lv in enumerate(levels):
            starts: list[int] = []
            segments: list[Segment] = []
            texts: list[str] = []
            k, n = 0, len(lv)
            while k < n:
                level, j = lv[k], k + 1
                while j < n and lv[j] == level:
                    j += 1
                starts.append(k)
                segment, text = self._run_piece(looks[p], kinds[p], cell, level, j - k)
                segments.append(segment)
                texts.append(text)
                k = j
            runs.append(Run(segments, texts, starts, lv))
        return runs

    # ---- the next window, built ahead --------------------------------------------------------
    def _look_ahead(self, view: View, g: Geometry, direction: int) -> None:
        """When a few more steps this way would jump the time window, build that window's rows
        after this frame is drawn, a few rows at a time, so the step that jumps draws its rows
        from them as any other step does (else that one step builds every row: a slow frame)."""
        cfg, size = view.trace.config, self._area
        names = matrix_names(cfg)
        for ahead in range(1, LOOK_AHEAD + 1):
            step = view.step + direction * ahead
            if not 0 <= step < view.trace.T:
                return
            nxt = layout(names, view.matrix, view.all_maps, view.trace.T, cfg.hidden_size, step,
                         size.width, size.height, self._top, None, self._start)
            if nxt.start != g.start:
                break
        else:
            return
        key = self._window_key(view, nxt)
        if self._ahead_target is None or self._ahead_target[0] != key:
            scheduled = self._ahead_target is not None
            self._ahead_target = (key, nxt)
            if not scheduled:
                self.call_after_refresh(self._build_ahead)

    def _build_ahead(self) -> None:
        target, view = self._ahead_target, self.view
        if target is None or view is None or target[0] == self._rows_key:
            self._ahead_target = None
            return
        key, g = target
        if key != self._window_key(view, g):
            self._ahead_target = None  # the trace, maps, width or looks changed since: not that window
            return
        if self._ahead is None or self._ahead[0] != key:
            self._ahead = (key, *self._levels(view, g), {})
            self.call_later(self._build_ahead)  # the rows next, in later turns
            return
        _, levels, kinds, rows = self._ahead
        looks = self.panel_looks(view, g)
        todo = [row for row in range(self._shown_rows(g)) if row not in rows]
        for row in todo[:AHEAD_ROWS]:
            rows[row] = self._runs(looks, kinds, g.cell, [panel[row] for panel in levels])
        if len(todo) > AHEAD_ROWS:
            self.call_later(self._build_ahead)
        else:
            self._ahead_target = None

    def _piece(self, key: tuple, text: str, style: Style) -> tuple[Segment, str]:
        """One segment and its terminal text, rendered once and kept while the looks stay: a row
        is these segments and these texts joined."""
        segment = Segment(text, style)
        piece = self._pieces[key] = (segment, Strip([segment], cell_len(text)).render(self.app.console))
        return piece

    def _run_piece(self, look: CellLook, kind: str, cell: int, level: int, length: int) -> tuple[Segment, str]:
        """`length` cells of one level (a look is fixed by its kind and cell width while the
        looks key holds)."""
        piece = self._pieces.get(("run", kind, cell, level, length))
        if piece is None:
            plain = look.plain[level]
            piece = self._piece(("run", kind, cell, level, length), plain.text * length, plain.style)
        return piece

    def _mark_piece(self, look: CellLook, kind: str, cell: int, level: int, selected: bool) -> tuple[Segment, str]:
        """The current step's cell: the cursor's look on the selected unit's row, else the mark."""
        piece = self._pieces.get(("mark", kind, cell, level, selected))
        if piece is None:
            drawn = (look.cursor if selected else look.marked)[level]
            piece = self._piece(("mark", kind, cell, level, selected), drawn.text, drawn.style)
        return piece

    def _row_line(self, view: View, g: Geometry, row: int, width: int) -> Strip:
        """The unit label, then each panel's runs with the current step's cell marked, a gap
        between panels, blank to the end. Runs on every step for every row: written for speed
        (pieces looked up by key, drawn only the first time one is needed; the strip is made
        from the pieces' segments with its terminal text joined from theirs, as `Strip.join`
        joins the texts of rendered strips, without its per-strip passes)."""
        runs = self._row(view, g, row)
        unit = g.top + row
        selected = unit == view.unit
        k = view.step - g.start
        key = (self._rows_gen, k, selected)
        cached = self._lines.get(row)
        if cached is not None and cached[0] == key:
            return cached[1]
        get = self._pieces.get
        label = get(("label", unit, selected, g.gutter))
        if label is None:
            text = ("▶" if selected else " ") + str(unit).rjust(g.gutter - 2) + " "
            label = self._piece(("label", unit, selected, g.gutter), text,
                                self.style("selected" if selected else "label"))
        gap_segment, gap_text = get(("gap",)) or self._piece(("gap",), " ", self.style("base"))
        segments, texts = [label[0]], [label[1]]
        add_segment, add_text = segments.append, texts.append
        last = len(runs) - 1
        if 0 <= k < g.steps:
            looks, kinds, cell = self.panel_looks(view, g), self._kinds, g.cell
            for p, run in enumerate(runs):
                starts = run.starts
                i = bisect_right(starts, k) - 1
                start = starts[i]
                end = starts[i + 1] if i + 1 < len(starts) else len(run.levels)
                level = run.levels[k]
                kind = kinds[p]
                segments += run.segments[:i]
                texts += run.texts[:i]
                if k > start:
                    piece = get(("run", kind, cell, level, k - start)) or self._run_piece(
                        looks[p], kind, cell, level, k - start)
                    add_segment(piece[0])
                    add_text(piece[1])
                piece = get(("mark", kind, cell, level, selected)) or self._mark_piece(
                    looks[p], kind, cell, level, selected)
                add_segment(piece[0])
                add_text(piece[1])
                if end > k + 1:
                    piece = get(("run", kind, cell, level, end - k - 1)) or self._run_piece(
                        looks[p], kind, cell, level, end - k - 1)
                    add_segment(piece[0])
                    add_text(piece[1])
                segments += run.segments[i + 1 :]
                texts += run.texts[i + 1 :]
                if p < last:
                    add_segment(gap_segment)
                    add_text(gap_text)
        else:
            for p, run in enumerate(runs):
                segments += run.segments
                texts += run.texts
                if p < last:
                    add_segment(gap_segment)
                    add_text(gap_text)
        used = g.gutter + len(g.panels) * g.steps * g.cell + len(g.panels) - 1
        if used < width:
            pad = get(("pad", width - used)) or self._piece(("pad", width - used), " " * (width - used),
                                                            self.style("base"))
            add_segment(pad[0])
            add_text(pad[1])
        strip = Strip(segments, max(used, width))
        strip._render_cache = "".join(texts)  # what strip.render(console) would make of the segments
        self._lines[row] = (key, strip)
        return strip

    # ---- drawing -----------------------------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines as `render_line` draws them, handed over without Textual's per-line styling
        pass while the maps have nothing for it to do (no border, outline, padding, tint,
        opacity or hatch): that pass copies every strip, so a row's rendered text would be lost
        and its ~70 segments styled and encoded again on every step."""
        if not plain_box(self):
            return super().render_lines(crop)
        width = self.size.width
        base = self.style("base")
        view = self.view
        if view is not None:  # the geometry and the window, once for the frame rather than per row
            self._frame = self.geometry()
            self._window(view, self._frame)
        try:
            strips = [fit(self.render_line(y), width, base) for y in crop.line_range]
        finally:
            self._frame = None
        return finish_strips(self, strips, crop)

    def _step_regions(self, g: Geometry, *steps: int) -> list[Region]:
        """The time axis, and the columns of these steps in every panel, over the rows shown."""
        height = self._shown_rows(g)
        regions = [Region(0, 1, self._area.width, 1)]
        for step in sorted(set(steps)):
            k = step - g.start
            if 0 <= k < g.steps and height:
                regions += [Region(g.panel_x(p) + k * g.cell, HEADER_ROWS, g.cell, height)
                            for p in range(len(g.panels))]
        return regions

    def _shown_rows(self, g: Geometry) -> int:
        view = self.view
        return 0 if view is None else max(min(g.rows, view.trace.config.hidden_size - g.top), 0)

    def render_changed(self, crop: Region, regions: list[Region]) -> list[Strip | SparseStrip]:
        """The lines for a partial update of `regions`: where they are only step columns of the
        panels (a step's change), each row line holds just those cells (a `SparseStrip`: the
        compositor writes only them), the header lines whole; else every line, whole."""
        view = self.view
        if view is None or not plain_box(self) or crop != Region(0, 0, *self.size) or self.get_line_filters():
            return self.render_lines(crop)  # (a line filter, a theme's dimming or mono, applies to whole lines)
        g = self.geometry()
        assert g is not None
        self._frame = g
        try:
            self._window(view, g)
            columns = self._columns(g, regions)
            if columns is None:
                return self.render_lines(crop)
            width = self.size.width
            lines: list = [self._whole_line(y) for y in range(min(HEADER_ROWS, crop.height))]
            top, shown = HEADER_ROWS, self._shown_rows(g)
            columns.sort()
            texts: dict[tuple, str] = {}
            for row in range(crop.height - len(lines)):
                wanted = [c for c in columns if c[1] <= top + row < c[2]]
                if wanted and row < shown:
                    lines.append(self._sparse_row(view, g, row, wanted, width, texts))
                else:  # nothing of it changed
                    lines.append(SparseStrip(width, [], partial(self._whole_line, top + row)))
            return lines
        finally:
            self._frame = None

    def _whole_line(self, y: int) -> Strip:
        return fit(self.render_line(y), self.size.width, self.style("base"))

    def _columns(self, g: Geometry, regions: list[Region]) -> list[tuple[int, int, int, int, int]] | None:
        """(x, first line, end line, step, panel) of each region that is one step's column of a
        panel below the header; None if a region is anything else (below the header)."""
        columns = []
        pw = g.steps * g.cell
        for x, y, w, h in regions:
            if y + h <= HEADER_ROWS:
                continue  # header lines are drawn whole
            p, off = divmod(x - g.gutter, pw + 1)
            if y < HEADER_ROWS or x < g.gutter or p >= len(g.panels) or w != g.cell or off % g.cell \
                    or off + w > pw:
                return None
            columns.append((x, y, y + h, g.start + off // g.cell, p))
        return columns

    def _sparse_row(self, view: View, g: Geometry, row: int, columns: list, width: int,
                    texts: dict[tuple, str]) -> SparseStrip:
        """A row line known in `columns` (in order) only: the step's mark where the current step
        is, the cell's plain look elsewhere (their terminal texts kept in `texts` for the frame),
        as one piece with the cursor moved forward between them."""
        levels = self._window_levels
        selected = g.top + row == view.unit
        parts: list[str] = []
        start = at = columns[0][0]
        for x, _, _, step, p in columns:
            if x < at:
                continue  # the same column twice
            key = (p, levels[p][row][step - g.start], step == view.step, selected)
            text = texts.get(key)
            if text is None:
                text = texts[key] = self._cell_text(view, g, *key)
            if x > at:
                parts.append(forward(x - at))
            parts.append(text)
            at = x + g.cell
        return SparseStrip(width, [(start, "".join(parts))], partial(self._row_line, view, g, row, width))

    def _cell_text(self, view: View, g: Geometry, p: int, level: int, current: bool, selected: bool) -> str:
        look, kind, cell = self.panel_looks(view, g)[p], self._kinds[p], g.cell
        piece = self._mark_piece(look, kind, cell, level, selected) if current else \
            self._run_piece(look, kind, cell, level, 1)
        return piece[1]

    def render_line(self, y: int) -> Strip:
        view = self.view
        if view is None:
            return self._message_line(y, self.size.width)
        g = self._frame or self.geometry()
        width = self._area.width
        assert g is not None
        if y < HEADER_ROWS:  # the titles (they change with the focused matrix) and the time axis
            if self._frame is None:
                self._window(view, g)  # a new window, trace or look: new lines
            key = (self._rows_gen, view.matrix) if y == 0 else (self._rows_gen, view.step)
            cached = self._lines.get(-1 - y)
            if cached is None or cached[0] != key:
                line = self._title_line(view, g, width) if y == 0 else self._axis_line(view, g, width)
                cached = self._lines[-1 - y] = (key, line)
            return cached[1]
        row = y - HEADER_ROWS
        if row >= g.rows or g.top + row >= view.trace.config.hidden_size:
            return Strip.blank(width, self.style("base"))
        return self._row_line(view, g, row, width)

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
    """The corner over the unit numbers and before the time ticks: rows are units, columns t;
    always a space before the first tick (a 3-column gutter has room for "u╲" only)."""
    label = "unit╲t" if gutter >= 7 else "u╲t" if gutter >= 4 else "u╲"
    return label[: max(gutter - 1, 0)].rjust(gutter - 1) + " " if gutter > 0 else ""
