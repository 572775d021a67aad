"""The Gradients tab: the numbers drawn are the gradient-flow report's, and every key works."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Static, TabbedContent

from rnn_tui.engine.gradflow import analyze_gradflow
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.gradients_pane import GradientsPane, log_matrix
from rnn_tui.ui.widgets.matrix_view import MatrixView
from rnn_tui.ui.widgets.spectrum_view import SpectrumView
from rnn_tui.ui.widgets.step_bars import StepBars
from tests.ui.conftest import settle
from rnn_tui.ui.work import Computed
from tests.ui.fakes import FakeSource

TAB = "tab-gradientspane"


async def open_tab(pilot) -> GradientsPane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await pilot.pause()
    await settle(pilot)
    return pilot.app.screen.query_one(GradientsPane)


def analysed(seen) -> bool:
    """A gradient-flow analysis came back from its worker."""
    return any(isinstance(m, Computed) and m.job.name == "gradflow" and m.outcome.ready for m in seen)


def app_for(request: TraceRequest, source=None) -> ExplorerApp:
    return ExplorerApp(source or FakeSource(), request)


async def test_the_drawn_numbers_are_the_reports(source):
    seen = []
    app = app_for(TraceRequest(cell="lstm", hidden=6, text="abcabcab"), source)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        pane = await open_tab(pilot)
        assert app.screen.focused is pane  # its keys work as soon as the tab opens
        assert analysed(seen)  # computed in the worker, sent back
        report = pane.report
        trace = app.screen.view.trace
        assert report is not None
        ref = analyze_gradflow(trace)  # the same trace, analysed here directly
        flow = report.layers[0]
        np.testing.assert_allclose(flow.flow, ref.layers[0].flow, equal_nan=True)
        # per-step bars: ‖dL/dh_t‖, ‖dL/dc_t‖ of the trace, the step Jacobian norm, ‖∂L/∂W_hh‖ per step
        bars = pane.query_one(StepBars)
        names = [s.name for s in bars.series]
        assert names == ["‖dL/dh_t‖", "‖dL/dc_t‖", "‖J_t‖", "‖∂L/∂W_hh‖ₖ"]
        np.testing.assert_allclose(bars.series[0].values, np.linalg.norm(trace.layers[0].dL_dh, axis=1))
        assert bars.series[0].log and not bars.series[2].log
        np.testing.assert_allclose(bars.series[2].values, ref.layers[0].jacobian_norm)
        # the flow matrix: log10 of ||d l_r / d h_k||, the raw values kept for the readout
        mv = pane.query_one(MatrixView)
        assert mv.matrix.raw is flow.flow
        assert mv.matrix.shape == (trace.T, trace.T)
        r, k = 5, 2
        assert mv.matrix.values[r, k] == pytest.approx(np.log10(flow.flow[r, k]))
        # gamma and the spectrum against 1
        text = str(pane.query_one("#grad-summary", Static).render())
        assert f"{ref.layers[0].decay.gamma:.3g}" in text
        spectra = pane.query_one(SpectrumView).spectra
        np.testing.assert_allclose(spectra["f"].singular_values, ref.layers[0].spectrum["f"].singular_values)
        assert "ρ" in str(pane.query_one(SpectrumView).render())


async def test_steps_move_the_markers_and_a_click_moves_the_step(source):
    app = app_for(TraceRequest(cell="gru", hidden=5, text="hello there"), source)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        await pilot.press("right", "right", "right")
        await settle(pilot)
        assert app.screen.view.step == 3
        assert pane.query_one(StepBars).step == 3
        assert pane.query_one(MatrixView).cursor == (3, 3)
        # a click on the flow matrix goes to that column's step
        mv = pane.query_one(MatrixView)
        c0, _, r0, _ = mv.geometry()
        x = mv.label_width() + (7 - c0) * mv.cell_width()
        await pilot.click("#grad-flow", offset=(x, 2 + (1 - r0)))
        await settle(pilot)
        assert app.screen.view.step == 7
        # c: a GRU has no cell state to show
        await pilot.press("c")
        await pilot.pause()
        assert not pane.cell_flow
        assert any("cell state" in n.message for n in app._notifications)


async def test_c_switches_the_matrix_to_the_cell_state(source):
    app = app_for(TraceRequest(cell="lstm", hidden=4, text="abcdabcd"), source)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        mv = pane.query_one(MatrixView)
        assert "d h_k" in mv.matrix.title
        await pilot.press("c")
        await settle(pilot)
        assert pane.cell_flow
        assert "d c_k" in mv.matrix.title
        assert mv.matrix.raw is pane.report.layers[0].flow_c
        await pilot.press("c")
        await settle(pilot)
        assert "d h_k" in pane.query_one(MatrixView).matrix.title


async def test_layers_are_followed_and_g_recomputes(source):
    app = app_for(TraceRequest(cell="rnn", hidden=4, layers=2, text="abcdabcd"), source)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        assert "l0" in str(pane.query_one("#grad-summary", Static).render())
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.screen.view.layer == 1
        assert "l1" in str(pane.query_one("#grad-summary", Static).render())
        np.testing.assert_allclose(pane.query_one(MatrixView).matrix.raw, pane.report.layers[1].flow, equal_nan=True)
        first = pane.report
        await pilot.press("g")
        await settle(pilot)
        assert pane.report is not None and pane.report is not first


async def test_a_trace_without_targets_is_explained_not_raised(source):
    app = app_for(TraceRequest(cell="lstm", hidden=4, text="a"), source)  # one token: nothing to predict
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        assert pane.report is None
        text = str(pane.query_one("#grad-summary", Static).render())
        assert "no gradient flow" in text and "scored" in text


async def test_analysis_waits_for_the_tab(source):
    """Nothing is computed while the tab is closed; opening it starts the analysis."""
    seen = []
    app = app_for(TraceRequest(cell="lstm", hidden=4, text="abcabc"), source)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await settle(pilot)
        await pilot.press("right")
        await settle(pilot)
        assert not analysed(seen)
        await open_tab(pilot)
        assert analysed(seen)


def test_log_matrix_places_zero_flow_at_the_bottom():
    flow = np.array([[1.0, 0.0], [1e-3, 10.0], [np.nan, np.nan]])
    values, scale = log_matrix(flow)
    assert (scale.lo, scale.hi) == (-3.0, 1.0)
    assert values[0, 0] == 0.0 and values[1, 1] == 1.0
    assert values[0, 1] == -3.0 and values[2, 0] == -3.0  # zero and not computed: the lowest level
    inf = log_matrix(np.array([[1.0, np.inf]]))[0]
    assert np.isnan(inf[0, 1])  # an infinite gradient is shown as not a number, never as small


async def test_w_swaps_flow_and_spectrum_when_narrow_and_hides_the_spectrum_when_wide(source):
    app = app_for(TraceRequest(cell="lstm", hidden=4, text="abcdabcd"), source)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_tab(pilot)
        flow, spectrum = pane.query_one("#grad-flow"), pane.query_one("#grad-spectrum")
        assert pane.has_class("-narrow")
        assert flow.display and not spectrum.display  # only one fits: the flow matrix first
        await pilot.press("w")
        await pilot.pause()
        assert spectrum.display and not flow.display
        await pilot.resize_terminal(140, 40)
        await pilot.pause()
        assert not pane.has_class("-narrow") and flow.display and spectrum.display
        await pilot.press("w")
        await pilot.pause()
        assert flow.display and not spectrum.display


async def test_a_long_trace_shows_the_steps_in_view_first_then_the_whole(source):
    """T > WHOLE_AT_ONCE: the rows and step Jacobians around the cursor are computed first (and
    drawn), then the whole analysis; rows the whole analysis leaves out are computed when the
    cursor comes near them. Every number is the engine's."""
    from rnn_tui.ui.widgets.gradients_pane import ROW_BLOCK, WHOLE_AT_ONCE

    text = ("the quick brown fox jumps over the lazy dog " * 20)[:WHOLE_AT_ONCE + 100]
    seen = []
    app = app_for(TraceRequest(cell="lstm", hidden=4, text=text), source)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        pane = await open_tab(pilot)
        jobs = [m.job.name for m in seen if isinstance(m, Computed)]
        assert jobs[0] == "gradflow-window" and "gradflow" in jobs  # in view first, then the whole
        trace = app.screen.view.trace
        ref = analyze_gradflow(trace)
        shown = pane.shown_flow
        assert shown.complete and pane.report is not None
        first = analyze_gradflow(trace, window=(0, ROW_BLOCK)).layers[0].flow  # the window around t = 0
        np.testing.assert_allclose(shown.flow[0][:ROW_BLOCK], first[:ROW_BLOCK], rtol=1e-6, equal_nan=True)
        late = ref.sources
        np.testing.assert_allclose(shown.flow[0][late], ref.layers[0].flow[late], rtol=1e-6)
        np.testing.assert_allclose(shown.jacobian_norm[0], ref.layers[0].jacobian_norm, rtol=1e-6)
        assert not shown.rows_done[ROW_BLOCK:late.min()].any()  # the middle rows: nobody looked there yet
        assert "rows" in pane.query_one(MatrixView).matrix.title  # and the title says what is computed
        # to step 100: its rows are computed (and nothing else recomputed)
        seen.clear()
        app.screen.view = app.screen.view.moved(step=100)
        await settle(pilot)
        assert [m.job.name for m in seen if isinstance(m, Computed)] == ["gradflow-window"]
        assert pane.shown_flow.rows_done[100 - 40:100 + 40].all()
        mid = analyze_gradflow(trace, window=(ROW_BLOCK, 3 * ROW_BLOCK)).layers[0].flow
        np.testing.assert_allclose(pane.shown_flow.flow[0][100], mid[100], rtol=1e-6)
        assert pane.query_one(MatrixView).cursor == (100, 100)


def test_the_flow_title_names_the_rows_computed():
    from rnn_tui.ui.widgets.gradients_pane import computed_rows

    scored = np.array([True] * 9 + [False])  # the last step has no target
    done = np.zeros(10, bool)
    assert computed_rows(done, scored) == "no rows yet"
    done[2:5] = True
    assert computed_rows(done, scored) == "rows 2…4"
    done[7] = True
    assert computed_rows(done, scored) == "4 of 9 rows"
    done[:] = True
    assert computed_rows(done, scored) == ""  # all of them: nothing to say
