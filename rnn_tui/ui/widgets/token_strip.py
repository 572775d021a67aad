"""The sequence, one column per step: the token read, the target, and the top-k predictions.

    x    h    e    l    l    o
    y*   e    l    l    o    ␣
    ŷ1   e 41 l 30 …

Columns are as wide as their widest cell measured in terminal cells (`rich.cells.cell_len`), so
CJK and other wide characters line up; the window of columns follows the current step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from textual import events
from textual.reactive import reactive

from rnn_tui.engine.tokens import label
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.numbers import number
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.lines_view import Line, LinesView

if TYPE_CHECKING:  # numpy's records: the strip draws "loading" in the first frame without them
    from rnn_tui.engine.records import Trace

LABEL_WIDTH = 4  # "ŷ1  "
MAX_COLUMN = 14  # a very long word token is cut to this many cells


def _fit(text: str, width: int) -> str:
    """Pad or cut to exactly `width` terminal cells (an ellipsis marks a cut)."""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    return set_cell_size(text, width - 1) + "…"


def blank_safe(style: Style) -> bool:
    """A space in this style looks like a plain space: no background and nothing drawn through,
    under or over it, nothing reversed."""
    return style.bgcolor is None and not (style.reverse or style.strike or style.underline
                                          or style.underline2 or style.overline or style.frame or style.encircle)


def _value(v) -> str:
    import numpy as np

    if v is None:
        return ""
    if isinstance(v, (list, tuple, np.ndarray)):
        arr = np.asarray(v, dtype=np.float64).reshape(-1)
        return number(arr[0], ".2f") + ("…" if arr.size > 1 else "")
    return number(v, ".2f")


def _percent(p: float) -> str:
    """A probability as a whole percentage: 0.41 -> "41"."""
    return number(100 * float(p), ".0f")


@dataclass(frozen=True)
class Cells:
    """Every cell of the strip for one trace, as text, by row then step."""

    tokens: list[str]
    targets: list[str]
    predictions: list[list[str]]  # k rows
    correct: list[bool | None]  # top-1 equals the target (None: unscored)
    widths: list[int]  # per step, in terminal cells, gap included


def target_hint(cells: Cells, start: int, stop: int) -> str:
    """"→ t=41: 3" when no step in the window [start, stop) has a target and one lies beyond it
    (the nearest after, else before): a sparse task's target stays on screen; "" otherwise."""
    if any(cells.targets[t].strip() for t in range(start, stop)):
        return ""
    after = next((t for t in range(stop, len(cells.targets)) if cells.targets[t].strip()), None)
    if after is not None:
        return f"→ t={after}: {cells.targets[after].strip()}"
    before = next((t for t in range(start - 1, -1, -1) if cells.targets[t].strip()), None)
    return "" if before is None else f"← t={before}: {cells.targets[before].strip()}"


def strip_cells(trace: Trace, k: int) -> Cells:
    import numpy as np

    T = trace.T
    rows = trace.outputs.shape[0]
    # output row r belongs to step r (step head) or to the last step (pooled head)
    step_of_row = list(range(T)) if rows == T else [T - 1] * rows
    targets = [""] * T
    preds = [[""] * T for _ in range(k)]
    correct: list[bool | None] = [None] * T
    probs = trace.probs
    vocab = trace.vocab
    for r, t in enumerate(step_of_row):
        target = trace.targets[r] if r < len(trace.targets) else None
        if probs is not None:
            if target is not None:
                targets[t] = label(vocab[target]) if vocab is not None and target < len(vocab) else str(target)
            if not np.isfinite(probs[r]).all():
                # a diverged output (NaN or inf logits): no ranking exists, say so in the top row
                preds[0][t] = _value(np.nan if np.isnan(trace.outputs[r]).any() else np.inf)
                correct[t] = None if target is None else False
                continue
            order = np.argsort(-probs[r], kind="stable")[:k]
            for rank, cls in enumerate(order):
                name = label(vocab[cls]) if vocab is not None and cls < len(vocab) else str(cls)
                preds[rank][t] = f"{name} {_percent(probs[r, cls])}"
            if target is not None:
                correct[t] = int(order[0]) == int(target)
        else:
            preds[0][t] = _value(trace.outputs[r])
            targets[t] = _value(target)
    tokens = [trace.tokens[t] if t < len(trace.tokens) else "" for t in range(T)]
    widths = []
    for t in range(T):
        w = max([cell_len(tokens[t]), cell_len(targets[t])] + [cell_len(p[t]) for p in preds])
        widths.append(min(max(w, 1), MAX_COLUMN) + 1)
    return Cells(tokens, targets, preds, correct, widths)


def window(widths: list[int], current: int, room: int) -> tuple[int, int]:
    """[start, stop) of the columns that fit in `room` cells, the current one near the middle."""
    T = len(widths)
    if T == 0:
        return 0, 0
    start = stop = current
    used = widths[current]
    stop = current + 1
    left = True
    while True:
        grew = False
        for side in ((0, 1) if left else (1, 0)):
            if side == 0 and start > 0 and used + widths[start - 1] <= room:
                start -= 1
                used += widths[start]
                grew = True
            elif side == 1 and stop < T and used + widths[stop] <= room:
                used += widths[stop]
                stop += 1
                grew = True
        left = not left
        if not grew:
            return start, stop


class TokenStrip(LinesView):
    """The strip of steps; a click on a column goes to that step."""

    COMPONENT_CLASSES = {
        "token-strip--label",
        "token-strip--current",
        "token-strip--right",
        "token-strip--wrong",
        "token-strip--dim",
    }

    DEFAULT_CSS = """
    TokenStrip { height: 5; overflow: hidden hidden; }
    """

    view: reactive[View | None] = reactive(None, repaint=False)
    busy: reactive[str] = reactive("", repaint=False)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._cells: tuple[Trace, int, Cells] | None = None
        self._fitted: tuple[Cells, list[list[str]]] | None = None
        self._columns: list[tuple[int, int, int]] = []  # (x0, x1, step) of the drawn columns
        self._styles: dict[str, Style] = {}

    def cells(self, trace: Trace, k: int) -> Cells:
        if self._cells is None or self._cells[0] is not trace or self._cells[1] != k:
            self._cells = (trace, k, strip_cells(trace, k))
            self._fitted = None
        return self._cells[2]

    def fitted(self, cells: Cells) -> list[list[str]]:
        """Every cell's text cut or padded to its column, row by row (once per trace: a step
        only moves the window and the highlight)."""
        if self._fitted is None or self._fitted[0] is not cells:
            rows = [cells.tokens, cells.targets, *cells.predictions]
            self._fitted = (cells, [[_fit(row[t], w - 1) for t, w in enumerate(cells.widths)] for row in rows])
        return self._fitted[1]

    def style(self, name: str) -> Style:
        if name not in self._styles:
            self._styles[name] = self.get_component_rich_style(f"token-strip--{name}", partial=True)
        return self._styles[name]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # a theme switch updates the styles before the app's theme class (which the monochrome
        # rules select on) has changed: read them again once both are done
        self._styles.clear()
        self.call_after_refresh(self._restyle)

    def _restyle(self) -> None:
        self._styles.clear()
        self._update()

    def build(self) -> list[Line]:
        view = self.view
        if view is None:
            return [((self.busy, "dim"),)]
        height = self.size.height
        k = max(1, min(3, height - 2))
        cells = self.cells(view.trace, k)
        room = max(self.size.width - LABEL_WIDTH, 1)
        start, stop = window(cells.widths, view.step, room)
        hint = target_hint(cells, start, stop)  # a target off screen (recall's at the end) is named
        if hint:
            start, stop = window(cells.widths, view.step, max(room - cell_len(hint), 1))
            hint = target_hint(cells, start, stop)
        label, current = self.style("label"), self.style("current")
        right, wrong, dim = self.style("right"), self.style("wrong"), self.style("dim")
        plain = Style()
        # styles in which a space looks like a plain one (no background, no line through or under
        # it): a cell's gap can take the cell's style, and runs of one style become one segment
        bare = {id(st) for st in (plain, label, current, right, wrong, dim) if blank_safe(st)}
        texts = self.fitted(cells)
        rows = [("x", texts[0]), ("y*", texts[1])]
        rows += [(f"ŷ{r + 1}" if k > 1 else "ŷ", texts[2 + r]) for r in range(k)]
        self._columns = []
        x = LABEL_WIDTH
        for t in range(start, stop):
            self._columns.append((x, x + cells.widths[t], t))
            x += cells.widths[t]
        lines: list[Line] = []
        for r, (name, row) in enumerate(rows[: max(height, 1)]):
            pieces = [(name.ljust(LABEL_WIDTH), label)]
            for t in range(start, stop):
                if t == view.step:
                    style = current
                elif r == 2 and cells.correct[t] is not None:
                    style = right if cells.correct[t] else wrong
                elif r >= 2:
                    style = dim
                else:
                    style = plain
                if id(style) in bare:  # the gap after a cell looks the same in its style: one piece
                    pieces.append((row[t] + " ", style))
                else:
                    pieces.append((row[t], style))
                    pieces.append((" ", plain))
            if r == 1 and hint:
                pieces.append((hint, label))
            lines.append(tuple(pieces))
        return lines

    def _update(self) -> None:
        if self.is_mounted:
            self.set_lines(self.build())

    def watch_view(self) -> None:
        self._update()

    def watch_busy(self) -> None:
        self._update()

    def on_resize(self) -> None:
        self._update()

    def on_click(self, event: events.Click) -> None:
        for x0, x1, t in self._columns:
            if x0 <= event.x < x1:
                self.post_message(MoveTo(step=t))
                return
