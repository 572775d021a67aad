"""The Units tab (unit finder in the explorer): features and a selected span ranked on the trace
on screen, with the same numbers as the engine's `find_units`."""

from __future__ import annotations

from textual.widgets import OptionList

from rnn_tui.engine.unitfinder import find_units, trace_activations
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.unitfinder_pane import SPAN, UnitFinderPane
from rnn_tui.ui.widgets.unitfinder_strip import UnitStrip
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

TEXT = 'say "hi (there)" to 42 friends, (ok)'


async def test_units_tab_ranks_features_and_spans():
    app = ExplorerApp(FakeSource(), TraceRequest(cell="lstm", hidden=6, text=TEXT))
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.action_show_pane("tab-unitfinderpane")
        await settle(pilot)
        pane = screen.query_one(UnitFinderPane)
        assert pane.query_one(OptionList).has_focus
        await pilot.press("enter")  # the first feature: inside brackets
        await settle(pilot)
        expected = find_units(trace_activations(screen.view.trace), "brackets", matrices=("h", "c"))
        got = pane.result
        assert [(s.matrix, s.unit) for s in got.scores] == [(s.matrix, s.unit) for s in expected.scores]
        assert got.scores[0].r == expected.scores[0].r
        assert pane.query_one(UnitStrip).display
        drawn = app.export_screenshot().replace("&#160;", " ")
        assert f"{got.scores[0].r:+.3f}" in drawn and "ranked by |r|" in drawn

        # select steps 4..10 as the span and rank against it
        await pilot.press(*["right"] * 4, "less_than_sign", *["right"] * 6, "greater_than_sign")
        await settle(pilot)
        assert pane.span == (4, 10)
        last = pane.query_one(OptionList)
        last.highlighted = last.option_count - 1
        await pilot.press("enter")
        await settle(pilot)
        assert pane.chosen == SPAN
        expected = find_units(trace_activations(screen.view.trace), span=(4, 11), matrices=("h", "c"))
        assert pane.result.feature == "span 4..10"
        assert pane.result.scores[0].r == expected.scores[0].r

        await pilot.press("u")  # the best unit, in the heatmaps
        await settle(pilot)
        assert screen.view.unit == expected.scores[0].unit
        assert screen.view.matrix == expected.scores[0].matrix


async def test_a_constant_feature_says_so():
    app = ExplorerApp(FakeSource(), TraceRequest(cell="gru", hidden=4, text="abcabc"))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        app.screen.action_show_pane("tab-unitfinderpane")
        await settle(pilot)
        pane = app.screen.query_one(UnitFinderPane)
        pane.chosen = "digit"
        pane.rank()
        await settle(pilot)
        assert pane.result is None and "same at every token" in pane.error
