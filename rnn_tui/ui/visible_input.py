"""An input box's text as drawn: control and bidi characters shown, never obeyed.

Textual draws an Input's value as it is, so text that arrives in one (`rnn-tui --input`, a pasted
line, a path) could carry ESC sequences to the terminal. `VisibleControls`, given as the
Input's highlighter, swaps each such character for one visible one of the same length
(`rnn_tui.safe_text.one_cell`: ␛ for ESC, � for a bidi control), so the cursor still lines up;
the value itself is left as typed.
"""

from __future__ import annotations

from rich.highlighter import Highlighter
from rich.text import Text
from textual import events
from textual.widgets import Input

from rnn_tui.safe_text import one_cell


class VisibleControls(Highlighter):
    def highlight(self, text: Text) -> None:
        shown = one_cell(text.plain)
        if shown != text.plain:
            text.plain = shown


class OrderedInput(Input):
    """An Input that handles every key in the order typed.

    Textual's Input types a printable key at once, while any other key (Backspace, Enter, the
    arrows) bubbles up through the widget tree to the app before its binding runs: keys that
    arrive together, as a fast typist's or a terminal multiplexer's do, came out of order
    (`Backspace Backspace Backspace 3 2 Enter` typed "32", then erased it, then entered an empty
    field). Here a key that is not typed runs its binding (the box's own, or its pane's, the
    screen's, the app's) before the next key is read.
    """

    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            if await self.app._check_bindings(event.key):
                event.stop()
                event.prevent_default()
                return
        await super()._on_key(event)


def box_number(widget, box_id: str, kind, lo: float, hi: float, name: str):
    """The number typed in the box `#box_id` under `widget` (None when it is empty); ValueError
    with a line for the person when it is not a number of `kind` from lo to hi."""
    text = widget.query_one(f"#{box_id}", Input).value.strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not (lo <= value <= hi):  # NaN and inf fail it too: the bounds are finite
        raise ValueError(f"{name} must be from {lo:g} to {hi:g}, got {text}")
    return value
