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

from rnn_tui.safe_text import one_cell


class VisibleControls(Highlighter):
    def highlight(self, text: Text) -> None:
        shown = one_cell(text.plain)
        if shown != text.plain:
            text.plain = shown
