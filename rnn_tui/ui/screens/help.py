"""The help overlay (`?`): the keys of the tab that is open (and of a lesson, in one), every key of
the explorer, what the mouse does, and what the colours mean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
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


def _table(rows: Sequence[tuple[str, str]]) -> Table:
    """Two columns, the first (keys) as narrow as its widest entry, the second wrapping."""
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for left, right in rows:
        table.add_row(left, right)
    return table


def help_text(sections: Sequence[tuple[str, Sequence[Binding]]] = ()) -> Group:
    """The help: each section a heading over its own table (so one long entry does not widen
    every other section's first column). sections: (heading, bindings) shown first: the open
    tab's keys, a lesson's keys."""
    parts: list = []

    def section(heading: str, body) -> None:
        if parts:
            parts.append(Text(""))
        parts.append(Text(heading, style="bold underline"))
        parts.append(body)

    for heading, keys in sections:
        if keys:
            rows = [(binding_keys(b), f"{b.description}: {b.tooltip}" if b.tooltip else b.description) for b in keys]
            section(heading, _table(rows))
    rows = [(key_names(action), f"{action.title}: {action.help}") for action in ACTIONS]
    rows += [("Tab", "Focus the next pane or control"), ("Ctrl+P", "Command palette: every action by name"),
             ("Ctrl+Q", "Quit")]
    section("Keys everywhere" if parts else "Keys", _table(rows))
    section("Mouse", _table(MOUSE))
    section("Colours", Group(*(Text(line) for line in COLOURS)))
    return Group(*parts)


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
