"""Every action of the main screen, once: its keys, the footer, the help screen and the command
palette are all generated from this list, so the three can never disagree."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    keys: str  # Textual key names, comma separated
    action: str  # the screen action it runs
    title: str  # the command palette's name for it
    short: str  # the footer's label ("" and footer=False: not in the footer)
    help: str  # one line for the help screen and the palette
    display: str | None = None  # how the keys are written in the footer and help
    footer: bool = False


ACTIONS: tuple[Action, ...] = (
    Action("right,l", "step(1)", "Next step", "step", "move to the next step of the sequence", "→", True),
    Action("left,h", "step(-1)", "Previous step", "back", "move to the previous step", "←", False),
    Action("shift+right", "step(10)", "Ten steps forward", "", "jump ten steps forward", "⇧→"),
    Action("shift+left", "step(-10)", "Ten steps back", "", "jump ten steps back", "⇧←"),
    Action("home", "step_to(0)", "First step", "", "go to the first step", "Home"),
    Action("end", "step_to(-1)", "Last step", "", "go to the last step", "End"),
    Action("space", "toggle_play", "Play or pause", "play", "step forward on a timer; again to pause", "space", True),
    Action("plus,equals_sign", "speed(1)", "Faster", "", "play faster (steps per second)", "+"),
    Action("minus", "speed(-1)", "Slower", "", "play slower", "-"),
    Action("down,j", "unit(1)", "Next unit", "unit", "select the next hidden unit (row)", "↓↑", True),
    Action("up,k", "unit(-1)", "Previous unit", "", "select the previous hidden unit", "↑"),
    Action("pagedown", "unit(10)", "Ten units down", "", "move the unit selection ten rows down", "PgDn"),
    Action("pageup", "unit(-10)", "Ten units up", "", "move the unit selection ten rows up", "PgUp"),
    Action("right_square_bracket", "layer(1)", "Next layer", "layer", "next layer / direction", "]", True),
    Action("left_square_bracket", "layer(-1)", "Previous layer", "", "previous layer / direction", "["),
    Action("v", "matrix(1)", "Next heatmap", "map", "focus the next matrix: h, c, i, f, g, o ...", "v", True),
    Action("V", "matrix(-1)", "Previous heatmap", "", "focus the previous matrix", "V"),
    Action("a", "toggle_all_maps", "All heatmaps or one", "", "all matrices side by side, or the focused one wide", "a"),
    Action("e", "toggle_equations", "Show or hide equations", "", "the equations beside the heatmaps", "e"),
    Action("i,slash", "focus_input", "Edit the input", "", "type your own sequence, Enter to trace it", "i"),
    Action("m", "next_pane", "Next pane", "", "switch to the next tab (States, Model, ...)", "m"),
    Action("t", "next_theme", "Next theme", "", "dark, high-contrast, colorblind, mono", "t"),
    Action("s", "screenshot", "Save screenshot", "", "save an SVG screenshot of the screen", "s"),
    Action("S", "save_session", "Save session", "",
           "input, model, step, tab and holds, for --session FILE", "S"),
    Action("question_mark", "help", "Help", "help", "keys, mouse and colours", "?", True),
    Action("escape", "escape", "Leave the input", "", "leave the input box / close an overlay", "Esc"),
    Action("q", "quit", "Quit", "quit", "quit rnn-tui (Ctrl+C or Ctrl+Q also while typing in a box, where q is a letter)", "q", True),
)


KEY_NAMES = {
    "right": "→", "left": "←", "up": "↑", "down": "↓", "shift+right": "⇧→", "shift+left": "⇧←",
    "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End", "space": "Space",
    "plus": "+", "equals_sign": "=", "minus": "-", "slash": "/", "question_mark": "?",
    "left_square_bracket": "[", "right_square_bracket": "]", "escape": "Esc", "comma": ",",
    "full_stop": ".", "less_than_sign": "<", "greater_than_sign": ">",
}


def key_names(action: Action) -> str:
    """Every key of an action as a person reads them: "→ l", "+ =", "PgDn"."""
    return " ".join(KEY_NAMES.get(k, k) for k in action.keys.split(","))


def binding_keys(binding: Binding) -> str:
    """A pane's or screen's binding's keys as a person reads them (its key_display if it has one)."""
    if binding.key_display:
        return binding.key_display
    return " ".join(KEY_NAMES.get(k, k) for k in binding.key.split(","))


def own_bindings(cls: type, base: type) -> list[Binding]:
    """The bindings `cls` adds to those of `base` (its parent class up the chain): a lesson screen's
    keys on top of the main screen's. Empty when cls is base."""
    out: list[Binding] = []
    for klass in cls.__mro__:
        if klass is base:
            break
        out += [b for b in klass.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
    return out


def bindings() -> list[Binding]:
    return [
        Binding(a.keys, a.action, a.short or a.title, show=a.footer, key_display=a.display, tooltip=a.help)
        for a in ACTIONS
    ]
