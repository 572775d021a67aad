"""The command palette (Ctrl+P): every action of the main screen, every key of every pane (the
palette opens the pane's tab and runs it there), the screen's own keys (a lesson's), every pane,
theme and cell."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.binding import Binding
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider

from rnn_tui.engine.config import CELLS
from rnn_tui.ui.actions import ACTIONS, binding_keys, key_names
from rnn_tui.ui.panes import pane_classes, tab_id
from rnn_tui.ui.themes import THEMES


def with_keys(text: str, keys: str) -> str:
    """A command's help line and its keys. The palette reads help as markup, so keys are not
    put in square brackets ("[r]" or "[PgDn]" would be taken for a style and vanish)."""
    return f"{text}  · key {keys}"


def binding_help(binding) -> str:
    """One line for a binding: what it does and its keys."""
    return with_keys(binding.tooltip or binding.description, binding_keys(binding))


HIDDEN_SIZES = (4, 8, 16, 32, 64, 128, 256)
LAYER_COUNTS = (1, 2, 3, 4)
SHAPE_WORDS = {"hidden": "hidden", "hidden size": "hidden", "units": "hidden", "h": "hidden", "layers": "layers",
               "layer": "layers"}


def shape_command(screen, field: str, value: int) -> tuple[str, str, Callable[[], object]]:
    if field == "hidden":
        return (f"Hidden size: {value}", f"rebuild the model with {value} units per layer",
                partial(screen.run_action, f"set_shape('hidden', {value})"))
    return (f"Layers: {value}", f"rebuild the model with {value} stacked layer{'s' * (value != 1)}",
            partial(screen.run_action, f"set_shape('layers', {value})"))


def shape_commands(screen) -> list[tuple[str, str, Callable[[], object]]]:
    """Hidden size, layers and direction: the Model tab's fields, from the palette."""
    out = [shape_command(screen, "hidden", n) for n in HIDDEN_SIZES]
    out += [shape_command(screen, "layers", n) for n in LAYER_COUNTS]
    out.append(("Direction: bidirectional", "add a reverse-time direction to every layer",
                partial(screen.run_action, "set_shape('bidirectional', True)")))
    out.append(("Direction: forward only", "one direction, forward in time",
                partial(screen.run_action, "set_shape('bidirectional', False)")))
    return out


def typed_shape(query: str) -> tuple[str, int] | None:
    """("hidden", 48) for "hidden 48" or "hidden size: 48", ("layers", 3) for "layers 3"; else None."""
    import re

    m = re.fullmatch(r"\s*([a-z ]+?)\s*[:=]?\s*(\d{1,5})\s*", query.lower())
    if m is None or m.group(1) not in SHAPE_WORDS:
        return None
    field, value = SHAPE_WORDS[m.group(1)], int(m.group(2))
    limit = 4096 if field == "hidden" else 16
    return (field, value) if 1 <= value <= limit else None


class ExplorerCommands(Provider):
    """Commands of the explorer's main screen (other screens get none)."""

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        screen = self.screen
        if not hasattr(screen, "explorer_commands"):
            return []
        out = []
        for action in ACTIONS:
            out.append((action.title, with_keys(action.help, key_names(action)),
                        partial(screen.run_action, action.action)))
        prefix, own = screen.screen_bindings()
        for binding in own:
            out.append((f"{prefix}: {binding.description}", binding_help(binding),
                        partial(screen.run_action, binding.action)))
        for cls in pane_classes():  # imports every pane module: the palette is opened after the first frame
            for binding in cls.BINDINGS:
                out.append((f"{cls.TITLE}: {binding.description}", binding_help(binding),
                            partial(screen.run_pane_action, tab_id(cls), binding.action)))
        for pane_id, title, description in screen.explorer_commands():
            out.append((f"Show pane: {title}", description, partial(screen.run_action, f"show_pane('{pane_id}')")))
        for name in THEMES:
            out.append((f"Theme: {name}", f"switch to the {name} theme: colours of the app and the heatmaps",
                        partial(screen.run_action, f"set_theme('{name}')")))
        for cell in CELLS:
            out.append((f"Cell: {cell}", "rebuild the model with this cell",
                        partial(screen.run_action, f"set_cell('{cell}')")))
        out += shape_commands(screen)
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        commands = self.commands()
        typed = typed_shape(query)  # "hidden 48", "layers 3": any size, not only the listed ones
        if typed is not None and hasattr(self.screen, "explorer_commands"):
            commands = [shape_command(self.screen, *typed), *commands]
        for title, help_text, callback in commands:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class ExplorerPalette(CommandPalette):
    """Textual's command palette, with PgUp/PgDn that wait until the list has room to page in.

    On a terminal a few rows high (or in the moment after a resize) the list of commands has no
    height, and paging it then ended in a KeyError inside Textual's OptionList (its line map is
    only built once the list has a size; found by tests/ui/test_fuzz_keys.py). Here paging does
    nothing until the list has a size, as the arrow keys already do.
    """

    BINDINGS = [
        Binding("pagedown", "page('page_down')", "Next page", show=False),
        Binding("pageup", "page('page_up')", "Previous page", show=False),
    ]

    def action_page(self, action: str) -> None:
        commands = self.query_one(CommandList)
        if commands.option_count and commands.scrollable_content_region:
            getattr(commands, f"action_{action}")()
