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
