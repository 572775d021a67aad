"""The cell's equations at the current step, with the selected unit's numbers filled in."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from rnn_tui.ui.equations import num, numeric, step_equations
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.pane import Pane


def render_equations(view: View, width: int = 80) -> Text:
    """The step worked by hand: what it reads, then each equation, symbols over numbers."""
    trace = view.trace
    entry = view.entry
    se = step_equations(trace, entry, view.step, view.unit)
    out = Text()
    out.append(f"t = {se.t}", style="bold")
    out.append(f"  x_t = {se.token!r}   unit j = {se.unit}   {entry.name} ({entry.direction})\n", style="")
    reads = "   ".join(f"{name}[j] = {num(v)}" for name, v in se.reads)
    out.append(f"reads  {reads}\n", style="dim")
    for eq in se.equations:
        out.append("\n")
        out.append(eq.lhs, style="bold")
        out.append(f" = {eq.symbolic}\n", style="italic")
        pad = " " * len(eq.lhs)
        out.append(f"{pad} = ")
        out.append(numeric(eq), style="bold")
        out.append("\n")
    return out


class EquationsPane(Pane):
    TITLE = "Equations"
    DESCRIPTION = "the cell's equations for the current step, with the selected unit's numbers"

    DEFAULT_CSS = """
    EquationsPane { height: 1fr; }
    EquationsPane VerticalScroll { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="equations-text")

    def watch_view(self) -> None:
        self._update()

    def watch_busy(self) -> None:
        self._update()

    def on_mount(self) -> None:
        self._update()

    def _update(self) -> None:
        if not self.is_mounted:
            return
        text = self.query_one("#equations-text", Static)
        if self.view is None:
            text.update(Text(self.busy or "", style="dim"))
            return
        text.update(render_equations(self.view, self.size.width))
