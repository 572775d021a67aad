"""The Training tab's controls with real (tiny) trainings: pause, resume, stop, undo, quitting, a new model."""

from __future__ import annotations

import time

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.messages import RequestChange
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.training_pane import TrainingPane
from tests.ui.conftest import settle
from tests.ui.test_panes_training import open_tab, wait_until

TEXT = "abcabcabcabc"


async def test_pause_resume_stop_and_undo():
    source = EngineSource()
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=8, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="100000")
        untrained = app.screen.view.trace
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "running" and pane.state.step >= 3)
        await pilot.press("p")
        await wait_until(pilot, lambda: pane.state.status == "paused")
        paused_at = pane.state.step
        assert 3 <= paused_at < 100000
        trainer = pane._job.trainer
        assert trainer.step == paused_at
        await pilot.press("r")  # resume: the same trainer goes on
        await wait_until(pilot, lambda: pane.state.status == "running" and pane.state.step > paused_at + 2)
        assert pane._job.trainer is trainer
        await pilot.press("x")
        await wait_until(pilot, lambda: pane.state.status == "stopped")
        assert pane.state.step > paused_at
        xs = pane.state.curve[0]
        assert len(pane._job.losses) == pane.state.step  # one curve over both sessions ...
        assert xs[0] <= 1 + pane.state.step / 300 and xs[-1] == pane.state.step
        assert len(xs) <= 300  # ... downsampled for the plot
        await settle(pilot)
        assert app.screen.view.trace is not untrained
        # u: back to the weights from before training, and the source forgets the trained ones
        await pilot.press("u")
        await settle(pilot)
        assert app.screen.view.trace is untrained
        assert source.weights is None
        assert pane.state.status == "idle" and pane.state.curve == ((), ())


async def test_quitting_stops_training():
    """A thread cannot be killed: the trainer must notice the cancellation and stop on its own."""
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=8, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="1000000")
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "running" and pane.state.step > 2)
        worker, trainer = pane._worker, pane._job.trainer
        await pilot.press("q")
    t0 = time.monotonic()
    while worker.is_running and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    assert not worker.is_running
    step = trainer.step
    time.sleep(0.3)
    assert trainer.step == step < 1000000  # nothing trains on after the app is gone


async def test_changing_the_model_stops_training():
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=8, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="1000000")
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "running" and pane.state.step > 2)
        app.screen.post_message(RequestChange({"hidden": 6}))
        await wait_until(pilot, lambda: not pane.state.active)
        await settle(pilot)
        assert pane._job is None
        assert app.screen.view.trace.config.hidden_size == 6
