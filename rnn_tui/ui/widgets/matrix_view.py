"""Any (rows x columns) array as a heatmap, drawn line by line from cached strips.

The analysis panes draw the gradient-flow matrix ||d l_r / d h_k||, the difference an
intervention makes to h, and per-unit gate saturation with it. Colours come from the same
palette, levels and cell looks as the state heatmaps (`palette.cell_look`), so themes,
monochrome and 16-colour terminals behave the same.

    row 0   title  lo ▮▮▮▮▮▮ hi                 (the scale's legend)
    row 1   column axis, ▼ at the cursor column
    row 2+  row label, then one cell per column, windowed around the cursor
    last    the value under the mouse or the cursor (when `readout`)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui.ui.palette import Scale, cell_look, legend_cells, palette_for_theme
from rnn_tui.ui.widgets.heatmap_view import render_mode

HEADER_ROWS = 2


def window(n: int, cursor: int | None, room: int) -> tuple[int, int]:
    """[start, stop) of `room` consecutive indices out of n, centred on the cursor."""
    room = max(min(room, n), 0)
    c = 0 if cursor is None else cursor
    start = min(max(c - room // 2, 0), max(n - room, 0))
    return start, start + room


def fit(text: str, width: int) -> str:
    """Pad or cut to exactly `width` terminal cells (wide characters measured as two)."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return set_cell_size(text, width)


@dataclass(frozen=True, eq=False)
class Matrix:
    """What a MatrixView draws (compared by identity: a new record is a new picture)."""

    values: np.ndarray  # (rows, cols)
    scale: Scale
    title: str
    row_axis: str = ""  # written above the row labels
    col_axis: str = "t"  # written before the column ticks
    row_labels: tuple[str, ...] | None = None  # default: the row index
    col_labels: tuple[str, ...] | None = None  # one per column (drawn when they fit); default ticks
    cell: int = 0  # terminal cells per column; 0: two where every column fits, else one
    value_format: str = "{:.4g}"  # the readout
    raw: np.ndarray | None = None  # the values the readout shows, when `values` are transformed (log10)
    unit_name: str = "row"  # the readout names a row with this
    raw_title: str | None = None  # the readout's name for a `raw` value (the title names the colours: "(log10)")

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.values.shape[0]), int(self.values.shape[1])


class MatrixView(Widget):
    """A Matrix with a cursor (row, column); a click on a cell posts Picked."""

    COMPONENT_CLASSES = {
        "matrix-view--label",
        "matrix-view--selected",
        "matrix-view--axis",
        "matrix-view--marker",
        "matrix-view--title",
        "matrix-view--message",
    }

    DEFAULT_CSS = """
    MatrixView { height: 1fr; min-height: 4; }
    MatrixView > .matrix-view--label { color: $foreground-muted; }
    MatrixView > .matrix-view--selected { color: $accent; text-style: bold reverse; }
    MatrixView > .matrix-view--axis { color: $foreground-muted; }
    MatrixView > .matrix-view--marker { color: $accent; text-style: bold; }
    MatrixView > .matrix-view--title { color: $foreground; text-style: bold; }
    MatrixView > .matrix-view--message { color: $foreground-muted; text-style: italic; }
    """

    matrix: reactive[Matrix | None] = reactive(None)
    cursor: reactive[tuple[int | None, int | None]] = reactive((None, None))
    message: reactive[str] = reactive("")  # shown when there is no matrix
    readout: reactive[bool] = reactive(True)

    class Picked(Message):
        """A cell was clicked."""

        def __init__(self, view: "MatrixView", row: int, col: int) -> None:
            super().__init__()
            self.view, self.row, self.col = view, row, col

        @property
        def control(self) -> "MatrixView":
            return self.view

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._levels: np.ndarray | None = None
        self._strips: dict[tuple, Strip] = {}
        self._hover: tuple[int, int] | None = None
        self._top = 0

    # ---- reacting ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda *_: self._restyle(), init=False)

    def _restyle(self) -> None:
        self._strips.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def watch_matrix(self, matrix: Matrix | None) -> None:
        self._levels = None if matrix is None else matrix.scale.levels(matrix.values)
        self._hover = None
        self._strips.clear()
        self.refresh()

    def watch_cursor(self) -> None:
        self._strips.clear()
        self.refresh()

    def watch_message(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._strips.clear()
        self.refresh()

    # ---- geometry ------------------------------------------------------------------------------
    def label_width(self) -> int:
        m = self.matrix
        if m is None:
            return 0
        rows = m.shape[0]
        labels = m.row_labels or (str(rows - 1),)
        return max(max(cell_len(s) for s in labels), cell_len(m.row_axis), 1) + 2

    def body_rows(self) -> int:
        return max(self.size.height - HEADER_ROWS - (1 if self.readout else 0), 0)

    def cell_width(self) -> int:
        m = self.matrix
        if m is None:
            return 1
        if m.cell > 0:
            return m.cell
        return 2 if 2 * m.shape[1] <= self.size.width - self.label_width() else 1

    def geometry(self) -> tuple[int, int, int, int]:
        """(col start, col stop, row start, row stop) of what is drawn."""
        m = self.matrix
        assert m is not None
        rows, cols = m.shape
        room = max((self.size.width - self.label_width()) // self.cell_width(), 1)
        c0, c1 = window(cols, self.cursor[1], room)
        body = self.body_rows()
        row = self.cursor[0]
        if row is not None:
            if row < self._top:
                self._top = row
            elif row >= self._top + body:
                self._top = row - body + 1
        self._top = min(max(self._top, 0), max(rows - body, 0))
        return c0, c1, self._top, min(self._top + body, rows)

    def locate(self, x: int, y: int) -> tuple[int, int] | None:
        m = self.matrix
        if m is None or y < HEADER_ROWS or y >= HEADER_ROWS + self.body_rows():
            return None
        c0, c1, r0, r1 = self.geometry()
        g = self.label_width()
        if x < g:
            return None
        col = c0 + (x - g) // self.cell_width()
        row = r0 + y - HEADER_ROWS
        if col >= c1 or row >= r1:
            return None
        return row, col

    # ---- drawing ---------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        m = self.matrix
        if m is None or self._levels is None:
            if y == self.size.height // 2 and self.message:
                style = self.get_component_rich_style("matrix-view--message")
                return Strip([Segment(fit(self.message.center(width), width), style)], width)
            return Strip.blank(width, self.rich_style)
        palette = palette_for_theme(self.app.theme)
        mode = render_mode(self.app, palette)
        body = self.body_rows()
        if self.readout and y == self.size.height - 1 and y >= HEADER_ROWS:
            return self._readout_line(m, width)
        key = (y, palette.name, mode, self._hover if y >= HEADER_ROWS + body else None)
        strip = self._strips.get(key)
        if strip is None:
            if y == 0:
                strip = self._title_line(m, width, palette, mode)
            elif y == 1:
                strip = self._axis_line(m, width)
            elif y - HEADER_ROWS < body:
                strip = self._row_line(m, y - HEADER_ROWS, width, palette, mode)
            else:
                strip = Strip.blank(width, self.rich_style)
            self._strips[key] = strip
        return strip

    def _title_line(self, m: Matrix, width: int, palette, mode) -> Strip:
        base = self.rich_style
        title = self.get_component_rich_style("matrix-view--title")
        lo, hi = m.scale.ends()
        segments = [Segment(f" {m.title}  ", title), Segment(f"{lo} ", base)]
        for text, style in legend_cells(palette, m.scale.kind, mode, base, 10):
            segments.append(Segment(text, style))
        segments.append(Segment(f" {hi}", base))
        return Strip(segments).crop(0, width).adjust_cell_length(width, base)

    def _axis_line(self, m: Matrix, width: int) -> Strip:
        axis = self.get_component_rich_style("matrix-view--axis")
        marker = self.get_component_rich_style("matrix-view--marker")
        c0, c1, _, _ = self.geometry()
        g, cw = self.label_width(), self.cell_width()
        n = c1 - c0
        chars = [" "] * (n * cw)
        if m.col_labels is not None and all(cell_len(s) <= cw for s in m.col_labels[c0:c1]):
            for k in range(n):
                chars[k * cw : (k + 1) * cw] = list(fit(m.col_labels[c0 + k], cw))
        else:
            tick = 5 if cw >= 2 else 10
            for k in range(n):
                c = c0 + k
                if c % tick == 0:
                    label = str(c)
                    x = k * cw
                    if x + len(label) <= len(chars) and all(ch == " " for ch in chars[max(x - 1, 0) : x + len(label) + 1]):
                        chars[x : x + len(label)] = label
        segments = [Segment(fit(m.col_axis, g - 1).rjust(g - 1) + " ", axis)]
        cur = self.cursor[1]
        row = "".join(chars)
        if cur is not None and c0 <= cur < c1:
            x = (cur - c0) * cw
            segments += [Segment(row[:x], axis), Segment("▼" + " " * (cw - 1), marker), Segment(row[x + cw :], axis)]
        else:
            segments.append(Segment(row, axis))
        return Strip(segments).adjust_cell_length(width, self.rich_style)

    def _row_line(self, m: Matrix, k: int, width: int, palette, mode) -> Strip:
        base = self.rich_style
        c0, c1, r0, r1 = self.geometry()
        row = r0 + k
        if row >= r1:
            return Strip.blank(width, base)
        g, cw = self.label_width(), self.cell_width()
        selected = row == self.cursor[0]
        name = m.row_labels[row] if m.row_labels is not None else str(row)
        name = fit(name, g - 2) if cell_len(name) > g - 2 else " " * (g - 2 - cell_len(name)) + name
        style = self.get_component_rich_style("matrix-view--selected" if selected else "matrix-view--label")
        segments = [Segment(("▶" if selected else " ") + name + " ", style)]
        look = cell_look(palette, m.scale.kind, mode, cw, base)
        levels = self._levels[row, c0:c1].tolist()
        cur = self.cursor[1]
        plain, mark = look.plain, (look.cursor if selected else look.marked)
        for j, lvl in enumerate(levels):
            segments.append(mark[lvl] if c0 + j == cur else plain[lvl])
        return Strip(segments).adjust_cell_length(width, base)

    def _readout_line(self, m: Matrix, width: int) -> Strip:
        style = self.rich_style
        at = self._hover
        source = "mouse"
        if at is None:
            source = "cursor"
            r, c = self.cursor
            at = None if r is None or c is None else (r, c)
        if at is None and self.cursor[0] is not None and m.col_labels is not None and 0 <= self.cursor[0] < m.shape[0]:
            r = self.cursor[0]  # a row without a column: the whole row
            raw = m.values if m.raw is None else m.raw
            rname = m.row_labels[r] if m.row_labels is not None else str(r)
            cells = "  ".join(f"{name} {m.value_format.format(float(v))}" for name, v in zip(m.col_labels, raw[r]))
            return Strip([Segment(fit(f" {m.unit_name} {rname}: {cells}", width), style)], width)
        if at is None or not (0 <= at[0] < m.shape[0] and 0 <= at[1] < m.shape[1]):
            return Strip.blank(width, style)
        r, c = at
        v = float((m.values if m.raw is None else m.raw)[r, c])
        rname = m.row_labels[r] if m.row_labels is not None else str(r)
        cname = m.col_labels[c] if m.col_labels is not None else str(c)
        title = m.title if m.raw is None or m.raw_title is None else m.raw_title
        shown = m.value_format.format(v)
        if m.raw is not None and m.raw_title is not None:  # the number itself, then what the colour reads
            coloured = float(m.values[r, c])
            shown += f" (log10 {coloured:.2f})" if np.isfinite(coloured) else ""
        text = f" {title} [{m.unit_name} {rname}, {m.col_axis} {cname}] = {shown}   ({source})"
        return Strip([Segment(fit(text, width), style)], width)

    # ---- mouse ---------------------------------------------------------------------------------------
    def on_mouse_move(self, event: events.MouseMove) -> None:
        hit = self.locate(event.x, event.y)
        if hit != self._hover:
            self._hover = hit
            self.refresh(self._readout_region())

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh(self._readout_region())

    def _readout_region(self):
        from textual.geometry import Region

        return Region(0, self.size.height - 1, self.size.width, 1)

    def on_click(self, event: events.Click) -> None:
        hit = self.locate(event.x, event.y)
        if hit is not None:
            self.post_message(self.Picked(self, *hit))
