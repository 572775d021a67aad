"""The Compare tab: a second cell on the same input, moved with the explorer, chosen by key."""

from __future__ import annotations

import numpy as np
import pytest
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
        assert source.requests[-1] == request.replace(cell="rnn", activation="tanh", fresh=True)
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


# ---- a trained partner, one scale, the classic picture -----------------------------------------
from rnn_tui.engine.assets import MODELS  # noqa: E402
from rnn_tui.ui.palette import matrix  # noqa: E402
from rnn_tui.ui.source import EngineSource, run_request  # noqa: E402
from rnn_tui.ui.widgets.compare_pane import first_norm  # noqa: E402
from tests.ui.test_panes_training import wait_until  # noqa: E402

RECALL = "E3107452061"  # what a fake reads for a task's own example (text "")


class RunSource(FakeSource):
    """A fake that reads a task's own example (text "") as a fixed sequence, whatever the run."""

    def build(self, request):
        trace = super().build(request if request.text else request.replace(text=RECALL))
        self.requests[-1] = request  # what was asked
        return trace


async def test_the_other_cell_is_the_shipped_demo_trained_on_the_same_task_and_o_swaps_it():
    source = RunSource()
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=6, task="recall", text=""))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        asked = source.requests[-1]
        assert asked.checkpoint == str(MODELS / "recall-rnn") and asked.cell == "rnn" and asked.hidden == 64
        assert asked.task == "recall" and asked.text == "" and asked.seed == 0  # the same input: the task's example
        title = str(pane.query_one("#compare-right-title", Static).render())
        assert "recall-rnn" in title  # a fake trace has no title: the run is named
        await pilot.press("o")
        await settle(pilot)
        assert source.requests[-1] == app.screen.request.replace(cell="rnn", activation="tanh", fresh=True)
        assert "untrained, seed 0" in str(pane.query_one("#compare-right-title", Static).render())
        await pilot.press("o")
        await settle(pilot)
        assert pane.other_trace.config.hidden_size == 64


async def test_free_text_has_no_demo_and_says_the_other_is_untrained(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=4, text="abcabc"))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        assert source.requests[-1].checkpoint is None
        assert "untrained (no shipped demo for text)" in str(pane.query_one("#compare-right-title", Static).render())
        await pilot.press("o")  # to untrained
        await pilot.press("o")  # nothing trained to go back to: it stays, and says why
        await settle(pilot)
        assert pane.partner == "untrained"


async def test_both_sides_share_one_colour_scale_and_one_gradient_scale(source):
    app = ExplorerApp(source, TraceRequest(cell="rnn", activation="tanh", hidden=5, text="abcdefgabc"))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        pane.other_cell, pane.other_activation = "rnn", "relu"
        await settle(pilot)
        left = pane.query_one("#compare-left-map", HeatmapView)
        right = pane.query_one("#compare-right-map", HeatmapView)
        a, b = left.view.trace, right.view.trace
        assert b.config.activation == "relu"
        # a (the pre-activation) takes its range from the data: the wider of the two
        bound = max(np.abs(matrix(a.layers[0], "a")).max(), np.abs(matrix(b.layers[0], "a")).max())
        sa, sb = left.scale(left.view, "a"), right.scale(right.view, "a")
        assert sa == sb and sa.hi == pytest.approx(bound) and sa.lo == pytest.approx(-bound)
        own = [abs(matrix(t.layers[0], "a")).max() for t in (a, b)]
        assert min(own) < bound  # one side alone would have drawn on a narrower scale
        # h: tanh is ±1, relu 0…max: two kinds of scale, each side keeps its own
        assert left.scale(left.view, "h").kind != right.scale(right.view, "h").kind
        lbars = pane.query_one("#compare-left-bars", StepBars)
        rbars = pane.query_one("#compare-right-bars", StepBars)
        norms = np.concatenate([a.layers[0].dL_dh_norm, b.layers[0].dL_dh_norm])
        span = (norms[norms > 0].min(), norms.max())
        assert lbars.series[0].scale() == rbars.series[0].scale()
        assert lbars.series[0].scale()[1:] == pytest.approx(span)


async def test_g_opens_the_classic_picture_from_the_palette_too():
    source = RunSource()
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=4, text="abcabc"))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        app.screen.run_pane_action(TAB, "classic")  # what the palette's "Compare: classic picture" runs
        await settle(pilot)
        pane = app.screen.query_one(ComparePane)
        assert app.screen.query_one(TabbedContent).active == TAB
        assert app.screen.request.checkpoint == str(MODELS / "recall-rnn")
        assert app.screen.view.trace.config.cell == "rnn"
        assert source.requests[-1].checkpoint == str(MODELS / "recall-lstm")
        assert pane.other_trace.config.cell == "lstm"
        for side in ("left", "right"):
            assert "‖dL/dh_0‖" in str(pane.query_one(f"#compare-{side}-title", Static).render())


async def test_the_classic_picture_on_the_real_demos_shows_the_vanishing_gradient():
    """The engine's traces of the shipped recall-rnn and recall-lstm: ‖dL/dh_0‖ of the tanh RNN is
    about 1e-8, the LSTM's about 1e-3 (assets/models/README.md)."""
    app = ExplorerApp(EngineSource(), run_request(str(MODELS / "recall-rnn")))
    async with app.run_test(size=(160, 50)) as pilot:
        pane = await open_tab(pilot)
        await wait_until(pilot, lambda: pane.other_trace is not None, timeout=60)
        await settle(pilot)
        rnn, lstm = app.screen.view.trace, pane.other_trace
        assert (rnn.config.cell, lstm.config.cell) == ("rnn", "lstm")
        assert rnn.tokens == lstm.tokens  # the same example of the same task
        assert first_norm(rnn.layers[0]) < 1e-6 < 1e-4 < first_norm(lstm.layers[0])
        lbars = pane.query_one("#compare-left-bars", StepBars)
        rbars = pane.query_one("#compare-right-bars", StepBars)
        assert lbars.series[0].scale() == rbars.series[0].scale()  # one log scale
        np.testing.assert_array_equal(lbars.series[0].values, rnn.layers[0].dL_dh_norm)
        np.testing.assert_array_equal(rbars.series[0].values, lstm.layers[0].dL_dh_norm)
        text = str(pane.query_one("#compare-left-title", Static).render())
        assert f"‖dL/dh_0‖ {first_norm(rnn.layers[0]):.2g}" in text


async def test_r_trains_the_other_model_here_and_compares_the_trained_one():
    app = ExplorerApp(EngineSource(), TraceRequest(cell="gru", hidden=6, text="abcabcabcabcabc"))
    async with app.run_test(size=(140, 40)) as pilot:
        pane = await open_tab(pilot)
        await wait_until(pilot, lambda: pane.other_trace is not None, timeout=60)
        untrained = pane.other_trace
        assert untrained.config.cell == "rnn" and pane.partner == "demo"  # no demo for free text: a fresh one
        await pilot.press("r")
        await settle(pilot)
        right = pane.query_one("#compare-right-map", HeatmapView)
        await wait_until(pilot, lambda: right.view is not None and right.view.trace is not untrained, timeout=120)
        trained = right.view.trace
        assert pane.partner == "trained" and trained.config == untrained.config
        assert trained.tokens == untrained.tokens == app.screen.view.trace.tokens
        assert trained.loss < 0.5 * untrained.loss  # it learned the repeating text
        assert "trained here: 300 steps" in str(pane.query_one("#compare-right-title", Static).render())
        rbars = pane.query_one("#compare-right-bars", StepBars)
        np.testing.assert_array_equal(rbars.series[0].values, trained.layers[0].dL_dh_norm)
        assert pane.session_state()["partner"] == "untrained"  # trained weights are in no file
        await pilot.press("o")  # back to the untrained one
        await settle(pilot)
        assert right.view.trace is untrained
