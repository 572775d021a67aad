"""The sequence: an editable input line over the strip of tokens, targets and predictions."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input

from rnn_tui.ui.messages import RequestChange
from rnn_tui.ui.visible_input import OrderedInput, VisibleControls
from rnn_tui.ui.widgets.pane import Pane
from rnn_tui.ui.widgets.token_strip import TokenStrip


PLACEHOLDER = "type your own input, then Enter"


class SequencePane(Pane):
    DEFAULT_CSS = """
    SequencePane { height: auto; }
    SequencePane Input { height: 1; border: none; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield OrderedInput(placeholder=PLACEHOLDER, id="sequence-input", compact=True, highlighter=VisibleControls())
        yield TokenStrip().data_bind(SequencePane.view, SequencePane.busy)

    def watch_request(self) -> None:
        if self.is_mounted:
            self.call_after_refresh(self._show_request)

    def _show_request(self) -> None:
        if self.request is None:
            return
        box = self.query_one(Input)
        if not box.has_focus and box.value != self.request.text:
            box.value = self.request.text
        box.placeholder = PLACEHOLDER if self.request.text else "the model's own sequence; " + PLACEHOLDER

    def on_mount(self) -> None:
        self.call_after_refresh(self._show_request)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(RequestChange({"text": event.value}))
