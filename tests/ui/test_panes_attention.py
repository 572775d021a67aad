"""The Attention tab, the input connectivity in the Gradients tab, and what that tab shows for
the cells without W_hh (minGRU, minLSTM) or with a diagonal one (IndRNN)."""

from __future__ import annotations

import numpy as np
from textual.widgets import Static, TabbedContent

from rnn_tui.engine.gradflow import input_connectivity
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.attention_pane import NO_ATTENTION, AttentionPane
from rnn_tui.ui.widgets.gradients_pane import GradientsPane
from rnn_tui.ui.widgets.matrix_view import MatrixView
from rnn_tui.ui.widgets.spectrum_view import SpectrumView
from rnn_tui.ui.widgets.step_bars import StepBars
from rnn_tui.ui.work import Computed
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource


async def open_tab(pilot, tab: str, cls):
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = tab
    await pilot.pause()
    await settle(pilot)
    return pilot.app.screen.query_one(cls)


def attention_source():
    from rnn_tui.engine.subject import Spec

    spec = Spec(task="reverse", attention="dot", cell="gru", hidden=6, dtype="float64")
    return EngineSource.from_spec(spec), TraceRequest(cell="gru", hidden=6, task="reverse", text="")


def text_of(widget) -> str:
    return str(widget.render())


async def test_the_attention_tab_draws_the_weights_and_holds_them():
    source, request = attention_source()
    app = ExplorerApp(source, request)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, "tab-attentionpane", AttentionPane)
        trace = app.screen.view.trace
        record = trace.extras["attention"]
        mv = pane.query_one("#att-map", MatrixView)
        np.testing.assert_array_equal(mv.matrix.values, record.weights)
        assert mv.matrix.col_labels == tuple(record.encoder_tokens)
        assert mv.cursor == (0, 0)  # the decoder's current row, the picked source step
        await pilot.press("right", "right", "full_stop", "full_stop", "full_stop")
        await settle(pilot)
        assert mv.cursor == (2, 3)
        assert "t=2" in text_of(pane.query_one("#att-summary", Static))
        await pilot.press("a")  # hold α_2 on source step 3
        await settle(pilot)
        assert pane.holds == ((2, 3),)
        held = pane.held_trace
        assert held is not None and held.extras["attention"].forced == ((2, 3),)
        np.testing.assert_array_equal(mv.matrix.values[2], np.eye(len(record.encoder_tokens))[3])
        np.testing.assert_array_equal(mv.matrix.values[:2], record.weights[:2])  # before the hold: as it was
        assert "*" in mv.matrix.row_labels[2]
        assert "loss" in text_of(pane.query_one("#att-holds", Static))
        assert "predictions that moved" in text_of(pane.query_one("#att-changes", Static))
        await pilot.press("d")
        await settle(pilot)
        assert pane.holds == ()
        np.testing.assert_array_equal(mv.matrix.values, record.weights)


async def test_the_attention_tab_says_when_the_model_has_none(source):
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=4, text="abcab"))
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_tab(pilot, "tab-attentionpane", AttentionPane)
        assert pane.query_one("#att-map", MatrixView).message == NO_ATTENTION
        await pilot.press("a")
        await settle(pilot)
        assert pane.holds == ()


async def test_input_connectivity_is_computed_only_when_seen_and_is_the_engines():
    seen = []
    app = ExplorerApp(FakeSource(), TraceRequest(cell="minlstm", hidden=5, text="abcabcab"))
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        pane = await open_tab(pilot, "tab-gradientspane", GradientsPane)
        conn = [m for m in seen if isinstance(m, Computed) and m.job.name == "connectivity"]
        assert not conn and not pane.query_one("#grad-conn").display  # not on screen: not computed
        await pilot.press("i")
        await settle(pilot)
        mv = pane.query_one("#grad-conn", MatrixView)
        assert mv.display and not pane.query_one("#grad-flow").display
        trace = app.screen.view.trace
        np.testing.assert_allclose(mv.matrix.raw, input_connectivity(trace), rtol=1e-6)
        await pilot.press("i")
        await settle(pilot)
        assert pane.query_one("#grad-flow").display and not mv.display
    app = ExplorerApp(FakeSource(), TraceRequest(cell="gru", hidden=5, text="abcabcab"))
    async with app.run_test(size=(200, 50)) as pilot:  # wide: side by side, computed at once
        pane = await open_tab(pilot, "tab-gradientspane", GradientsPane)
        assert pane.query_one("#grad-flow").display and pane.query_one("#grad-conn").display
        assert pane.query_one("#grad-conn", MatrixView).matrix is not None


async def test_cells_without_w_hh_show_their_step_jacobian_and_indrnn_its_w_hh():
    for cell, want in (("mingru", "diag(1 - z_t)"), ("minlstm", "diag(f_t/(f_t+i_t))")):
        app = ExplorerApp(FakeSource(), TraceRequest(cell=cell, hidden=4, text="abcab"))
        async with app.run_test(size=(120, 40)) as pilot:
            pane = await open_tab(pilot, "tab-gradientspane", GradientsPane)
            assert want in text_of(pane.query_one("#grad-summary", Static))
            spectrum = pane.query_one(SpectrumView)
            assert spectrum.spectra == {} and want in spectrum.message
            assert [s.name for s in pane.query_one(StepBars).series] == ["‖dL/dh_t‖", "‖J_t‖"]
    app = ExplorerApp(FakeSource(), TraceRequest(cell="indrnn", activation="relu", hidden=4, text="abcab"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, "tab-gradientspane", GradientsPane)
        w = app.screen.view.trace.params["weight_hh_l0"]
        spectrum = pane.query_one(SpectrumView)
        assert spectrum.diagonal
        (spec,) = spectrum.spectra.values()
        np.testing.assert_allclose(spec.singular_values, np.sort(np.abs(w))[::-1], rtol=1e-6)
        assert "|w_hh|" in text_of(spectrum) and "max|w_hh|" in text_of(pane.query_one("#grad-summary", Static))
        assert [s.name for s in pane.query_one(StepBars).series][-1] == "‖∂L/∂w_hh‖ₖ"
