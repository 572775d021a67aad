"""The Saturation tab: the shares drawn are engine.saturation's, and its keys and clicks work."""

from __future__ import annotations

import numpy as np
from textual.widgets import Static, TabbedContent

from rnn_tui.engine.saturation import layer_saturation
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.matrix_view import MatrixView
from rnn_tui.ui.widgets.saturation_pane import SaturationPane, per_unit, up_to
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource, make_trace

TAB = "tab-saturationpane"


class SaturatedSource(FakeSource):
    """Large weights, so the gates reach their ends."""

    def build(self, request):
        super().build(request)
        return make_trace(request.cell, request.activation, request.hidden, request.layers, text=request.text,
                          seed=request.seed, scale=6.0)


async def open_tab(pilot) -> SaturationPane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    return pilot.app.screen.query_one(SaturationPane)


async def test_shares_per_gate_and_unit_and_the_keys():
    app = ExplorerApp(SaturatedSource(), TraceRequest(cell="lstm", hidden=6, layers=2, text="hello there world"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        trace = app.screen.view.trace
        ref = layer_saturation(trace.config, trace.layers[0])
        assert [s.gate for s in pane.stats] == ["i", "f", "g", "o"]
        for got, want in zip(pane.stats, ref):
            np.testing.assert_allclose(got.low, want.low)
            assert got.overall_high == want.overall_high
        assert max(s.overall_saturated for s in ref) > 0.2  # there is something to see
        screen = app.export_screenshot()  # the table as drawn
        assert f"{100 * ref[1].overall_low:.1f}%" in screen and f"{100 * ref[2].overall_high:.1f}%" in screen
        mv = pane.query_one(MatrixView)
        values, labels = per_unit(ref)
        np.testing.assert_allclose(mv.matrix.values, values)
        assert mv.matrix.col_labels == labels == ("i↓", "i↑", "f↓", "f↑", "g↓", "g↑", "o↓", "o↑")
        # w: only the steps read so far
        await pilot.press("right", "right", "right", "w")
        await settle(pilot)
        assert pane.so_far
        so_far = layer_saturation(trace.config, up_to(trace.layers[0], 3))
        np.testing.assert_allclose(pane.stats[0].low, so_far[0].low)
        assert "steps 0…3" in str(pane.query_one("#sat-head", Static).render())
        await pilot.press("w")
        await settle(pilot)
        # o: the most saturated unit first; the cursor stays on the selected unit
        await pilot.press("o")
        await settle(pilot)
        order = np.argsort(-values.sum(axis=1), kind="stable")
        np.testing.assert_array_equal(pane.order, order)
        np.testing.assert_allclose(mv.matrix.values, values[order])
        assert mv.cursor == (int(np.flatnonzero(order == 0)[0]), None)
        # the layer in view is followed
        await pilot.press("right_square_bracket")
        await settle(pilot)
        ref1 = layer_saturation(trace.config, trace.layers[1])
        np.testing.assert_allclose(pane.stats[0].high, ref1[0].high)
        # a click on a row selects that unit
        row = 4
        await pilot.click("#sat-units", offset=(mv.label_width() + 1, 2 + row))
        await settle(pilot)
        assert app.screen.view.unit == int(pane.order[row])


async def test_an_unbounded_cell_says_nothing_saturates(source):
    app = ExplorerApp(source, TraceRequest(cell="rnn", activation="relu", hidden=4, text="abcabc"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        assert pane.stats == []
        assert "no bounded gate" in str(pane.query_one("#sat-head", Static).render())
        assert pane.query_one(MatrixView).matrix is None


def test_up_to_follows_the_reading_order():
    trace = make_trace("gru", hidden=3, text="abcdef", bidirectional=True)
    fwd, rev = trace.layers
    np.testing.assert_array_equal(up_to(fwd, 2).gates["z"], fwd.gates["z"][:3])
    np.testing.assert_array_equal(up_to(rev, 2).gates["z"], rev.gates["z"][2:])  # reverse reads T-1 .. 2
