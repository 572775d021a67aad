"""The cell's equations at the current step, with the selected unit's numbers filled in."""

from __future__ import annotations

import re
from functools import lru_cache

from rich.cells import cell_len
from textual.app import ComposeResult

from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.lines_view import Line, LinesView
from rnn_tui.ui.widgets.pane import Pane


# a break goes before " + ", " − " or " = " (an operator standing alone between spaces, or last)
BREAK = re.compile(r"(?<=.) (?=[+−=](?: |$))")


def wrap_at_operators(text: str, width: int, indent: int) -> list[str]:
    """Break a long equation before its operators (+, −, =), never inside a number; lines after
    the first are indented so the operators line up under the equation."""
    cuts = [m.start() for m in BREAK.finditer(text)]
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    lines = [chunks[0]]
    for chunk in chunks[1:]:
        if cell_len(lines[-1]) + cell_len(chunk) <= width:
            lines[-1] += chunk
        else:
            lines.append(" " * indent + chunk.lstrip())
    return lines


@lru_cache(maxsize=64)
def wrapped_symbolic(lhs: str, symbolic: str, width: int, indent: int) -> tuple[str, ...]:
    """An equation's symbolic side, wrapped (the same text on every step: wrapped once)."""
    return tuple(wrap_at_operators(f"{lhs} = {symbolic}", width, indent))


def render_equations(view: View, width: int = 80) -> list[Line]:
    """The step worked by hand: what it reads, then each equation, symbols over numbers."""
    from rnn_tui.ui.equations import num, numeric, step_equations  # once there is a trace to work

    trace = view.trace
    entry = view.entry
    se = step_equations(trace, entry, view.step, view.unit)
    width = max(width, 20)
    lines: list[Line] = [
        ((f"t = {se.t}", "bold"), (f"   x_t = {se.token!r}   unit j = {se.unit}   {entry.name} ({entry.direction})", "")),
        (("reads  " + "   ".join(f"{name}[j] = {num(v)}" for name, v in se.reads), "dim"),),
    ]
    for eq in se.equations:
        lines.append(())
        indent = cell_len(eq.lhs) + 1
        for k, text in enumerate(wrapped_symbolic(eq.lhs, eq.symbolic, width, indent)):
            if k == 0:
                lines.append(((eq.lhs, "bold"), (text[len(eq.lhs):], "italic")))
            else:
                lines.append(((text, "italic"),))
        for text in wrap_at_operators(" " * indent + "= " + numeric(eq), width, indent):
            lines.append(((text, "bold"),))
    return lines


class EquationsPane(Pane):
    TITLE = "Equations"
    DESCRIPTION = "the cell's equations for the current step, with the selected unit's numbers"

    DEFAULT_CSS = """
    EquationsPane { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield LinesView(id="equations-text")

    def watch_view(self) -> None:
        self.refresh_text()

    def watch_busy(self) -> None:
        self.refresh_text()

    def on_mount(self) -> None:
        self.refresh_text()

    def on_resize(self) -> None:
        self.refresh_text()

    def on_show(self) -> None:
        self.refresh_text()

    def refresh_text(self) -> None:
        if not self.is_mounted or not self.display:
            return
        text = self.query_one(LinesView)
        if self.view is None:
            text.set_lines([((self.busy or "", "dim"),)])
            return
        text.set_lines(render_equations(self.view, self.size.width - 1))
