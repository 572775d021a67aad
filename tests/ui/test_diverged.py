"""A diverged model (NaN and inf in its outputs, states and weights, as a checkpoint saved after a
blow-up reads back) is drawn as such in every tab, and nothing crashes."""

from __future__ import annotations

import warnings

import numpy as np
from textual.widgets import Input, TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.numbers import finite_trace, nonfinite, number
from rnn_tui.ui.panes import PANES
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.gradients_pane import GradientsPane
from rnn_tui.ui.widgets.status_bar import StatusBar
from rnn_tui.ui.widgets.token_strip import TokenStrip, strip_cells
from rnn_tui.ui.widgets.zoom_map import ZoomMap
from tests.ui.conftest import settle
from tests.ui.fakes import DivergedSource, diverge, make_trace

TEXT = "hello world"


def lines_text(widget) -> list[str]:
    return ["".join(text for text, _ in line) for line in widget.lines]


def test_numbers_spell_nan_and_inf_one_way():
    assert [nonfinite(v) for v in (np.nan, np.inf, -np.inf, 1.5)] == ["NaN", "inf", "-inf", None]
    assert number(np.float32("nan"), ".0f") == "NaN" and number(0.4149, ".2f") == "0.41"
    assert finite_trace(make_trace(text=TEXT)) and not finite_trace(diverge(make_trace(text=TEXT)))


def test_the_strip_writes_nan_where_there_is_no_prediction():
    trace = diverge(make_trace("lstm", hidden=6, text=TEXT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the softmax of NaN logits
        cells = strip_cells(trace, 3)
    assert cells.predictions[0][3] == "NaN" and cells.predictions[1][3] == ""
    assert cells.predictions[0][5] == "inf"  # an infinite logit: the softmax is undefined
    assert cells.correct[3] is False and cells.correct[5] is False  # a diverged step is no hit
    assert cells.targets[3] != ""  # what it should have said is still shown
    assert cells.predictions[0][6].split()[-1].isdigit()  # -inf rules one class out; the rest rank
    assert all(p.split()[-1].isdigit() for t, p in enumerate(cells.predictions[0]) if t not in (3, 5))


async def test_every_tab_shows_a_diverged_trace_without_crashing():
    app = ExplorerApp(DivergedSource(), TraceRequest(cell="lstm", hidden=6, text=TEXT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            screen = app.screen
            strip = screen.query_one(TokenStrip)
            assert "NaN" in lines_text(strip)[2] and "inf" in lines_text(strip)[2]
            assert "loss NaN" in lines_text(screen.query_one(StatusBar))[0]
            await pilot.press("right", "right", "down")  # onto the NaN row of outputs, the inf of h
            tabs = screen.query_one(TabbedContent)
            for info in PANES:
                tabs.active = info.tab_id
                await pilot.pause()
                await pilot.press("right", "v")  # each tab one step on (the NaN gates from t=5), another map
                await settle(pilot)
                app.export_screenshot()  # every line of the tab drawn
                assert app.is_running, info.name
            assert screen.view.step == min(2 + len(PANES), screen.view.trace.T - 1)
            # the gradient analysis cannot run on NaN weights: it says why
            tabs.active = "tab-gradientspane"
            await settle(pilot)
            summary = str(screen.query_one("#grad-summary").render())
            assert "diverged" in summary, summary
            # the zoomed map writes NaN in the cells that hold it
            tabs.active = "tab-presenterpane"
            await settle(pilot)
            zoom = screen.query_one(ZoomMap)

            def zoom_shows_nan() -> bool:
                return any("NaN" in zoom.render_line(y).text for y in range(zoom.size.height))

            for _ in range(50):  # a loaded machine may take a few more frames to hand the pane its view and size
                if zoom_shows_nan():
                    break
                await pilot.pause(0.05)
            lines = [zoom.render_line(y).text for y in range(min(zoom.size.height, 4))]
            presenter = zoom.parent
            assert zoom_shows_nan(), (zoom.size, zoom.view is None, zoom.view and zoom.view.matrix,
                                      presenter.frozen, presenter.view is screen.view, lines)
            assert not isinstance(app.focused, Input)
        assert app.return_code in (None, 0)
