"""The Training tab with real (tiny) trainings: a run, the curve, snapshots, divergence, bad settings."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from textual.widgets import Input, Select, Static, TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.lab import lab_for
from rnn_tui.ui.messages import TraceReady
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.loss_plot import LossPlot
from rnn_tui.ui.widgets.training_pane import TrainingPane, TrainingProgress, TrainingState, status_text
from tests.ui.conftest import settle

TAB = "tab-trainingpane"
TEXT = "abcabcabcabc"


async def open_tab(pilot, steps: str = "", lr: str = "", clip: str = "", optimizer: str | None = None):
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    pane = pilot.app.screen.query_one(TrainingPane)
    pane.query_one("#train-steps", Input).value = steps
    pane.query_one("#train-lr", Input).value = lr
    pane.query_one("#train-clip", Input).value = clip
    if optimizer:
        pane.query_one("#train-optimizer", Select).value = optimizer
    return pane


async def wait_until(pilot, condition, timeout: float = 20.0) -> None:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, "timed out"
        await pilot.pause(0.05)


async def test_a_run_trains_the_model_on_screen_and_the_trace_follows():
    seen = []
    source = EngineSource()
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=8, text=TEXT))
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        pane = await open_tab(pilot, steps="60")
        before = app.screen.view.trace
        assert app.screen.focused is pane
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "finished")
        await settle(pilot)
        state = pane.state
        assert state.step == state.steps == 60
        assert state.task == "text" and state.metric_name == "accuracy"
        after = app.screen.view.trace
        assert after is not before
        assert after.loss < 0.5 * before.loss  # it learned the repeating text
        assert after.tokens == before.tokens  # the same sequence, other weights
        # the curve: log10 of each step's loss, on a linear axis
        xs, ys = state.curve
        assert len(xs) == 60 and xs[0] == 1 and xs[-1] == 60
        assert ys[-1] < ys[0]
        plot = pane.query_one(LossPlot)
        assert plot.curve == state.curve
        # the trained weights now belong to the source: a rebuild keeps them
        assert source.weights is not None and source.tensors is None  # handed over, not poked in
        np.testing.assert_array_equal(source.weights["weight_hh_l0"], after.params["weight_hh_l0"])
        # snapshots for the time-lapse: step 0 and every 3rd step
        config, snaps, _ = lab_for(pane).current_snapshots()
        assert config == before.config
        assert [s.step for s in snaps][:3] == [0, 3, 6] and snaps[-1].step == 60
        # progress messages were rate-limited, and the traces went to the screen
        progress = [m for m in seen if isinstance(m, TrainingProgress)]
        assert 1 <= len(progress) <= 60
        assert any(isinstance(m, TraceReady) for m in seen)
        assert "finished" in str(pane.query_one("#train-status", Static).render())


async def test_a_diverged_run_is_shown_as_such_with_its_step():
    app = ExplorerApp(EngineSource(), TraceRequest(cell="rnn", activation="relu", hidden=8, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="200", lr="1e6", clip="none", optimizer="sgd")
        start = app.screen.view.trace
        await pilot.press("r")
        await wait_until(pilot, lambda: not pane.state.active)
        await settle(pilot)
        state = pane.state
        assert state.status == "diverged"
        assert state.diverged_at is not None and 1 <= state.diverged_at < 200
        assert "NaN" in state.message or "Inf" in state.message
        status = pane.query_one("#train-status", Static)
        assert f"DIVERGED at step {state.diverged_at}" in str(status.render())
        assert status.has_class("-diverged")
        assert pane.query_one(LossPlot).marker_step == state.diverged_at
        # the weights kept are the last good ones: the explorer's trace is finite
        assert math.isfinite(app.screen.view.trace.loss)
        assert app.screen.view.trace.config == start.config


async def test_bad_settings_are_one_line_not_a_crash():
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=4, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, lr="fast")
        await pilot.press("r")
        await pilot.pause()
        assert pane.state.status == "failed"
        assert pane.state.message == "lr must be a number, got 'fast'"
        pane.query_one("#train-lr", Input).value = ""
        pane.query_one("#train-steps", Input).value = "0"
        await pilot.press("r")
        await pilot.pause()
        assert pane.state.status == "failed" and "steps must be from 1" in pane.state.message


def test_progress_messages_replace_older_ones_of_the_same_run():
    a = TrainingProgress(TrainingState(step=1), worker_id=7)
    b = TrainingProgress(TrainingState(step=2), worker_id=7)
    c = TrainingProgress(TrainingState(step=3), worker_id=8)
    assert b.can_replace(a) and not c.can_replace(b)


@pytest.mark.parametrize("status", ["idle", "running", "paused", "stopped", "finished", "diverged", "failed"])
def test_status_text_is_two_lines(status):
    state = TrainingState(status=status, step=3, steps=10, loss=float("nan"), diverged_at=3, message="m")
    lines = status_text(state).plain.split("\n")
    assert len(lines) == 2
    if status == "diverged":
        assert lines[0].startswith("DIVERGED at step 3") and "loss NaN" in lines[0]
