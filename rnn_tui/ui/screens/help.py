"""The help overlay (`?`): the keys of the tab that is open (and of a lesson, in one), every key of
the explorer, what the mouse does, and what the colours mean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from rnn_tui.ui.actions import ACTIONS, binding_keys, key_names

MOUSE = (
    ("click a token", "go to that step"),
    ("click a heatmap cell", "go to its step and unit, and focus its matrix"),
    ("hover a heatmap cell", "its exact value, under the maps"),
    ("scroll on the heatmaps", "scroll the unit rows"),
    ("click a tab", "switch panes"),
)

COLOURS = (
    "h, g, n (tanh): diverging, -1 … +1; zero is the background colour",
    "i, f, o, r, z (sigmoid gates): sequential, 0 (closed) … 1 (open)",
    "c and pre-activations: diverging, symmetric about zero, scaled to the largest |value|",
    "▼ marks the current step, ▶ the selected unit; ◆ is the cell under both",
    "monochrome: the bar height ▁▂▃▄▅▆▇█ is the value's place on its scale",
    "magenta (red in colorblind, ? in monochrome): NaN or inf, the model has diverged",
)


def help_text(sections: Sequence[tuple[str, Sequence[Binding]]] = ()) -> Table:
    """The help as one table. sections: (heading, bindings) shown first: the open tab's keys,
    a lesson's keys."""
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for heading, keys in sections:
        if not keys:
            continue
        table.add_row(Text(heading, style="bold underline"), "")
        for binding in keys:
            what = binding.description
            table.add_row(binding_keys(binding), f"{what}: {binding.tooltip}" if binding.tooltip else what)
        table.add_row("", "")
    table.add_row(Text("Keys everywhere" if sections else "Keys", style="bold underline"), "")
    for action in ACTIONS:
        table.add_row(key_names(action), f"{action.title}: {action.help}")
    table.add_row("Tab", "Focus the next pane or control")
    table.add_row("Ctrl+P", "Command palette: every action by name")
    table.add_row("Ctrl+Q", "Quit")
    table.add_row("", "")
    table.add_row(Text("Mouse", style="bold underline"), "")
    for what, does in MOUSE:
        table.add_row(what, does)
    table.add_row("", "")
    table.add_row(Text("Colours", style="bold underline"), "")
    for line in COLOURS:
        table.add_row("", line)
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", key_display="Esc"),
    ]

    def __init__(self, sections: Sequence[tuple[str, Sequence[Binding]]] = ()) -> None:
        super().__init__()
        self.sections = [(heading, list(keys)) for heading, keys in sections if keys]

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "rnn-tui help"
            scroll.border_subtitle = "Esc closes"
            yield Static(help_text(self.sections))
