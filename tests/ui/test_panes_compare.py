"""The Compare tab: a second cell on the same input, moved with the explorer, chosen by key."""

from __future__ import annotations

import numpy as np
from textual.widgets import Static, TabbedContent

from rnn_tui.engine.config import CELLS
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import SourceError, TraceRequest
from rnn_tui.ui.widgets.compare_pane import ComparePane, default_other, reach
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.step_bars import StepBars
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource, make_trace

TAB = "tab-comparepane"


async def open_tab(pilot) -> ComparePane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    return pilot.app.screen.query_one(ComparePane)


async def test_the_other_cell_is_built_on_the_same_input_and_follows_the_explorer(source):
    request = TraceRequest(cell="lstm", hidden=6, text="hello world")
    app = ExplorerApp(source, request)
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        assert source.requests[-1] == request.replace(cell="rnn", activation="tanh")
        left = pane.query_one("#compare-left-map", HeatmapView)
        right = pane.query_one("#compare-right-map", HeatmapView)
        assert left.view is app.screen.view
        assert right.view.trace is pane.other_trace
        assert right.view.trace.config.cell == "rnn"
        assert right.view.trace.tokens == left.view.trace.tokens
        await pilot.press("right", "right", "down")
        await settle(pilot)
        assert right.view.step == left.view.step == 2
        assert right.view.unit == left.view.unit == 1
        # both sides show the gradient norms of their own trace
        lbars = pane.query_one("#compare-left-bars", StepBars)
        rbars = pane.query_one("#compare-right-bars", StepBars)
        np.testing.assert_allclose(lbars.series[0].values, app.screen.view.entry.dL_dh_norm)
        np.testing.assert_allclose(rbars.series[0].values, right.view.entry.dL_dh_norm)
        assert [s.name for s in lbars.series] == ["‖dL/dh_t‖", "‖dL/dc_t‖"]  # the LSTM also has c
        assert [s.name for s in rbars.series] == ["‖dL/dh_t‖"]
        assert lbars.step == rbars.step == 2
        assert "rnn-tanh" in str(pane.query_one("#compare-right-title", Static).render())
        # the focused map follows too; a cell without it falls back to h
        await pilot.press("v")  # h -> c
        await settle(pilot)
        assert app.screen.view.matrix == "c" and right.view.matrix == "h"


async def test_keys_choose_the_other_cell_and_activation(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=4, text="abcabc"))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert pane.other_cell == CELLS[(CELLS.index("rnn") + 1) % len(CELLS)]
        assert pane.query_one("#compare-right-map", HeatmapView).view.trace.config.cell == pane.other_cell
        await pilot.press("C", "C")
        await settle(pilot)
        assert pane.other_cell == CELLS[(CELLS.index("rnn") - 1) % len(CELLS)]
        await pilot.press("n")
        await settle(pilot)
        assert pane.other_cell == "rnn" and pane.other_activation == "relu"
        assert source.requests[-1].activation == "relu"
        assert pane.other_trace.config.activation == "relu"


async def test_a_click_on_the_other_side_moves_both(source):
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=4, text="abcdefghij"))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        right = pane.query_one("#compare-right-map", HeatmapView)
        g = right.geometry()
        x = g.panel_x(0) + (6 - g.start) * g.cell
        await pilot.click("#compare-right-map", offset=(x, 2 + 3))
        await settle(pilot)
        assert (app.screen.view.step, app.screen.view.unit) == (6, 3)
        assert (right.view.step, right.view.unit) == (6, 3)


class PickySource(FakeSource):
    """Builds everything but the Elman cell."""

    def build(self, request):
        if request.cell == "rnn":
            raise SourceError("no Elman cells today")
        return super().build(request)


async def test_a_failed_build_is_shown_and_the_explorer_stays():
    app = ExplorerApp(PickySource(), TraceRequest(cell="lstm", hidden=4, text="abcabc"))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        text = str(pane.query_one("#compare-right-title", Static).render())
        assert "could not build rnn: no Elman cells today" in text
        assert pane.query_one("#compare-right-map", HeatmapView).view is None
        assert app.screen.view is not None
        await pilot.press("c")  # another cell builds fine
        await settle(pilot)
        assert pane.other_trace is not None


def test_default_partners_and_reach():
    assert default_other("rnn") == "lstm" and default_other("gru") == "rnn"
    trace = make_trace("rnn", hidden=3, text="abcdef")
    entry = trace.layers[0]
    norms = np.linalg.norm(entry.dL_dh, axis=1)
    assert reach(entry) == norms[0] / norms.max()
