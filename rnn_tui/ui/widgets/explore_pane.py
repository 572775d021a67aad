"""The explorer's first tab: the heatmaps, with the equations beside them (or below, when narrow)."""

from __future__ import annotations

from textual.app import ComposeResult

from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.equations_pane import EquationsPane
from rnn_tui.ui.widgets.heatmap_pane import HeatmapPane
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.pane import Pane

ROOM_FOR_EQUATIONS = (110, 30)  # width or height from which equations show unless hidden


class ExplorePane(Pane):
    TITLE = "States"
    DESCRIPTION = "heatmaps of h, c and every gate, and the cell's equations at the current step"
    BLANK = True  # a container with no border: drawn as blank strips (see MainScreen.BLANK)

    DEFAULT_CSS = """
    ExplorePane { layout: horizontal; height: 1fr; }
    ExplorePane > HeatmapPane { width: 1fr; }
    ExplorePane > EquationsPane { width: 62; border-left: vkey $panel; padding: 0 1; }
    ExplorePane.-narrow { layout: vertical; }
    ExplorePane.-narrow > EquationsPane { width: 1fr; height: auto; max-height: 50%;
                                          border-left: none; border-top: hkey $panel; padding: 0; }
    ExplorePane.-no-equations > EquationsPane { display: none; }
    """

    def compose(self) -> ComposeResult:
        yield HeatmapPane().data_bind(ExplorePane.view, ExplorePane.busy)
        yield EquationsPane().data_bind(ExplorePane.view, ExplorePane.busy)

    def on_resize(self) -> None:
        self._arrange()

    def opened(self) -> None:
        self.claim_focus(self.query_one(HeatmapView))  # the arrow keys step at once
        self._arrange()
        self.query_one(EquationsPane).refresh_text()

    def watch_view(self, old: View | None, new: View | None) -> None:
        if old is None or new is None or old.equations != new.equations:
            self._arrange()  # a step or a unit moved leaves the arrangement as it is

    def _arrange(self) -> None:
        width, height = self.app.size
        self.set_class(width < 140, "-narrow")
        wanted = None if self.view is None else self.view.equations
        if wanted is None:
            wanted = width >= ROOM_FOR_EQUATIONS[0] or height >= ROOM_FOR_EQUATIONS[1]
        self.set_class(not wanted, "-no-equations")
