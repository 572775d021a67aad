"""The Interventions tab: each key holds what it says, and the difference drawn is the traces'."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input, Select, Static, TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.interventions_pane import Hold, InterventionsPane, changes, difference
from rnn_tui.ui.widgets.matrix_view import MatrixView
from tests.ui.conftest import settle
from tests.ui.fakes import make_trace

TAB = "tab-interventionspane"


async def open_tab(pilot) -> InterventionsPane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    return pilot.app.screen.query_one(InterventionsPane)


async def test_lstm_presets_hold_what_they_say(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=5, text="hello world"))
    async with app.run_test(size=(130, 40)) as pilot:
        pane = await open_tab(pilot)
        assert "nothing held" in str(pane.query_one("#held-summary", Static).render())
        await pilot.press("right", "right", "right", "f")  # forget gate open from t=3
        await settle(pilot)
        assert pane.holds == (Hold("gate", "f", 1.0, start=3),)
        base, held = app.screen.view.trace, pane.held_trace
        assert held is not None
        f = held.layers[0].gates["f"]
        assert np.all(f[3:] == 1.0)
        np.testing.assert_allclose(f[:3], base.layers[0].gates["f"][:3], rtol=1e-5, atol=1e-6)
        # c_t = 1 * c_{t-1} + i_t g_t from t=3 on
        e = held.layers[0]
        np.testing.assert_allclose(e.c[3:], e.c[2:-1] + e.gates["i"][3:] * e.gates["g"][3:], rtol=1e-5, atol=1e-6)
        # the drawn difference is h(held) - h, units x time: nothing before the hold, something after
        mv = pane.query_one(MatrixView)
        d = mv.matrix.values
        np.testing.assert_allclose(d, (held.layers[0].h - base.layers[0].h).T)
        assert np.abs(d[:, :3]).max() < 1e-5 and np.abs(d[:, 3:]).max() > 1e-3
        assert mv.cursor == (0, 3)
        summary = str(pane.query_one("#held-summary", Static).render())
        assert f"{base.loss:.4g} → {held.loss:.4g}" in summary
        # n: the input gate shut, added after the first hold
        await pilot.press("n")
        await settle(pilot)
        assert pane.holds[-1] == Hold("gate", "i", 0.0, start=3)
        assert np.all(pane.held_trace.layers[0].gates["i"][3:] == 0.0)
        # v focuses another matrix: the difference follows it
        await pilot.press("v")  # h -> c
        await settle(pilot)
        assert app.screen.view.matrix == "c"
        assert mv.matrix.title.startswith("Δc")
        # d drops the last hold, D all of them
        await pilot.press("d")
        await settle(pilot)
        assert pane.holds == (Hold("gate", "f", 1.0, start=3),)
        await pilot.press("D")
        await settle(pilot)
        assert pane.holds == () and pane.query_one(MatrixView).matrix is None


async def test_unit_holds_zero_pin_and_edit(source):
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=4, text="abcdefgh"))
    async with app.run_test(size=(130, 40)) as pilot:
        pane = await open_tab(pilot)
        await pilot.press("right", "right", "down", "down", "z")  # zero unit 2 from t=2
        await settle(pilot)
        h = pane.held_trace.layers[0].h
        assert np.all(h[2:, 2] == 0.0) and np.any(h[2:, 1] != app.screen.view.trace.layers[0].h[2:, 1])
        await pilot.press("D", "p")  # pin unit 2 at its value at t=2
        await settle(pilot)
        value = float(app.screen.view.trace.layers[0].h[2, 2])
        assert pane.holds == (Hold("state", "h", value, unit=2, start=2),)
        assert np.allclose(pane.held_trace.layers[0].h[2:, 2], value)
        await pilot.press("D", "x")  # flip h_2 of unit 2 at this step only
        await settle(pilot)
        held = pane.held_trace.layers[0].h
        assert held[2, 2] == pytest.approx(-value)
        assert held[3, 2] != pytest.approx(-value)
        assert pane.holds[0].stop == 3
        # GRU presets: z = 1 keeps the state, r = 0 ignores it
        await pilot.press("D", "f", "n")
        await settle(pilot)
        assert [(h.name, h.value) for h in pane.holds] == [("z", 1.0), ("r", 0.0)]
        e = pane.held_trace.layers[0]
        np.testing.assert_allclose(e.h[2:], e.h[1:-1], atol=1e-6)  # z = 1: h_t = h_{t-1}
        # more holds than the list has lines: the newest shown, the rest counted
        await pilot.press("z", "p", "x")
        await settle(pilot)
        listed = str(pane.query_one("#holds").render())
        assert len(pane.holds) == 5 and "… 2 earlier holds" in listed
        assert "3. " in listed and "5. " in listed and "1. " not in listed


async def test_the_form_adds_any_hold_and_refuses_bad_ones(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=4, text="abcdefgh"))
    async with app.run_test(size=(130, 40)) as pilot:
        pane = await open_tab(pilot)
        pane.query_one("#hold-kind", Select).value = "gate"
        await pilot.pause()
        pane.query_one("#hold-name", Select).value = "o"
        for box, value in (("unit", "1"), ("value", "0.25"), ("start", "2"), ("stop", "4")):
            pane.query_one(f"#hold-{box}", Input).value = value
        pane.query_one("#hold-value", Input).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert pane.holds == (Hold("gate", "o", 0.25, unit=1, start=2, stop=5),)
        o = pane.held_trace.layers[0].gates["o"]
        assert np.all(o[2:5, 1] == 0.25) and o[5, 1] != 0.25
        assert "o = 0.25 (unit 1, t=2…4, l0)" in str(pane.query_one("#holds", Static).render())
        # bad values are a notification, not a hold
        pane.query_one("#hold-unit", Input).value = "99"
        pane.query_one("#hold-value", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert len(pane.holds) == 1
        assert any("unit must be 0..3" in n.message for n in app._notifications)
        pane.query_one("#hold-unit", Input).value = ""
        pane.query_one("#hold-value", Input).value = "lots"
        pane.query_one("#hold-value", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert len(pane.holds) == 1
        assert any("value must be a number" in n.message for n in app._notifications)


async def test_an_elman_cell_has_no_gates_to_clamp_and_a_click_moves(source):
    app = ExplorerApp(source, TraceRequest(cell="rnn", hidden=4, text="abcdefgh"))
    async with app.run_test(size=(130, 40)) as pilot:
        pane = await open_tab(pilot)
        await pilot.press("f")
        await pilot.pause()
        assert pane.holds == ()
        assert any("no gates" in n.message for n in app._notifications)
        await pilot.press("z")
        await settle(pilot)
        mv = pane.query_one(MatrixView)
        assert mv.matrix is not None
        c0, _, r0, _ = mv.geometry()
        await pilot.click("#held-diff", offset=(mv.label_width() + (5 - c0) * mv.cell_width(), 2 + 2 - r0))
        await settle(pilot)
        assert (app.screen.view.step, app.screen.view.unit) == (5, 2)


def test_changes_lists_flipped_predictions():
    base = make_trace("lstm", hidden=4, text="abcabc", seed=1)
    held = make_trace("lstm", hidden=4, text="abcabc", seed=2)
    moved = changes(base, held)
    flips = [r for r in range(base.T) if np.argmax(base.probs[r]) != np.argmax(held.probs[r])]
    assert [c.row for c in moved if c.flipped] == flips
    assert changes(base, base) == []
    d = difference(base, held, 0, "forward", "h")
    np.testing.assert_allclose(d, (held.layers[0].h - base.layers[0].h).T.astype(np.float64))
