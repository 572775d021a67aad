"""The heatmaps pane: the maps, their scales, and the value under the mouse or cursor."""

from __future__ import annotations

from textual.app import ComposeResult

from rnn_tui.ui.widgets.heatmap_legend import HeatmapLegend
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.pane import Pane


class HeatmapPane(Pane):
    TITLE = "States"
    DESCRIPTION = "h, c and every gate as units x time heatmaps"
    BLANK = True  # a container with no border: drawn as blank strips (see MainScreen.BLANK)

    DEFAULT_CSS = """
    HeatmapPane { layout: vertical; height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield HeatmapLegend().data_bind(HeatmapPane.view)
        yield HeatmapView(id="explore-map").data_bind(HeatmapPane.view, HeatmapPane.busy)

    def on_heatmap_view_hover(self, message: HeatmapView.Hover) -> None:
        message.stop()
        legend = self.query_one(HeatmapLegend)
        legend.hover = None if message.matrix is None else (message.matrix, message.step, message.unit)
