"""The base of every pane: a widget that shows the main screen's View while it is on screen.

A new pane subclasses `Pane`, reacts in `watch_view`, and is listed once in `rnn_tui.ui.panes`.

The main screen hands `view` (it changes on every step) to the open tab's pane only; a hidden
pane keeps the View it last saw and is given the current one when its tab is opened again, just
before `opened()`. `busy` and `request` change seldom and reach every pane, shown or not, so
work a pane runs in the background (training) can follow the model it belongs to.
"""

from __future__ import annotations

from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input

from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.state import View
from rnn_tui.ui.work import Computed


class Pane(Widget):
    """Given by the main screen: `view` (what is looked at; while the pane is shown), `busy` (why
    there is no trace yet, or what is being rebuilt; "" when idle), `request` (what was asked
    for: model and input)."""

    # repaint=False: a pane is mostly a container; repainting it would redraw everything in it,
    # so the widgets that draw something refresh themselves (and only what changed)
    view: reactive[View | None] = reactive(None, repaint=False)
    busy: reactive[str] = reactive("", repaint=False)
    request: reactive[TraceRequest | None] = reactive(None, repaint=False)

    # a tab title and a one-line description, for panes shown as tabs
    TITLE: str = ""
    DESCRIPTION: str = ""

    def opened(self) -> None:
        """Its tab was opened (and `view` brought up to date): take the focus, draw what is new.

        The main screen calls this when the tab becomes the active one, rather than leaving it to
        the Show event: Textual 8.2 does not always send Show to a tab's content (when the
        layout map was rebuilt between the switch and the next reflow, e.g. after a scroll)."""

    def claim_focus(self, target: Widget | None = None) -> None:
        """Focus `target` (default: the pane) unless the focus is inside the pane already, or the
        person is typing in a box on screen outside it."""
        focused = self.screen.focused
        if focused is not None and self in (focused, *focused.ancestors):
            return
        if isinstance(focused, Input) and self.screen.is_active and visible(focused):
            return  # the person is typing elsewhere
        (target or self).focus()

    def computed(self, job, key) -> None:
        """A result of one of the pane's jobs (`rnn_tui.ui.work.Job`) arrived. A pane on screen
        draws it; a hidden one has it kept for when it is opened."""

    def on_computed(self, message: Computed) -> None:
        if message.job.owner is not self:
            return  # a child's own job: let it bubble on
        message.stop()
        if message.job.arrived(message.key, message.outcome):
            self.computed(message.job, message.key)

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


def visible(widget: Widget) -> bool:
    """Displayed, and every container up to its screen displayed."""
    node = widget
    while node is not None and node is not widget.screen:
        if not node.display:
            return False
        node = node.parent
    return True
