"""The Training tab says, when a run ends, whether the model beats its task's baselines."""

from __future__ import annotations

from textual.widgets import Static

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.training_pane import TrainingState, status_text
from tests.ui.test_panes_training import TEXT, open_tab, wait_until


async def test_a_finished_run_is_set_against_its_baselines():
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=8, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="40")
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "finished")
        line = pane.state.baseline
        assert line.startswith("vs baselines: model ") and "bits/token" in line and "unigram" in line
        assert line in str(pane.query_one("#train-status", Static).render())


def test_the_baseline_line_shows_only_once_a_run_has_ended():
    line = "vs baselines: model 1.000 bits/token · unigram 2.000 bits/token: beats it"
    assert line in status_text(TrainingState(status="finished", steps=5, step=5, baseline=line)).plain
    assert line not in status_text(TrainingState(status="running", steps=5, step=2, baseline=line)).plain
