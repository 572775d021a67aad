"""The base of every pane: a widget bound to the main screen's View.

A new pane subclasses `Pane`, reacts in `watch_view`, and is listed once in `rnn_tui.ui.panes`.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.state import View


class Pane(Widget):
    """Bound by the main screen: `view` (what is looked at), `busy` (why there is no trace yet,
    or what is being rebuilt; "" when idle), `request` (what was asked for: model and input)."""

    # repaint=False: a pane is mostly a container; repainting it would redraw everything in it,
    # so the widgets that draw something refresh themselves (and only what changed)
    view: reactive[View | None] = reactive(None, repaint=False)
    busy: reactive[str] = reactive("", repaint=False)
    request: reactive[TraceRequest | None] = reactive(None, repaint=False)

    # a tab title and a one-line description, for panes shown as tabs
    TITLE: str = ""
    DESCRIPTION: str = ""

    def opened(self) -> None:
        """Its tab was opened: take the focus, bring what is drawn up to date.

        The main screen calls this when the tab becomes the active one, rather than leaving it to
        the Show event: Textual 8.2 does not always send Show to a tab's content (when the
        layout map was rebuilt between the switch and the next reflow, e.g. after a scroll)."""

    def on_show(self) -> None:
        if self.shown:  # a late Show for a tab already left must not pull the focus back to it
            self.opened()

    @property
    def shown(self) -> bool:
        """On screen: mounted, and its tab is the open one."""
        if not self.is_mounted:
            return False
        node = self
        while node is not None and node is not self.screen:
            if not node.display:
                return False
            node = node.parent
        return True
