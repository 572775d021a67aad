"""The Time-lapse tab: the explorer's sequence traced through each snapshot's weights."""

from __future__ import annotations

import numpy as np
from textual.widgets import Input, Static, TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.lab import SnapshotRecord, lab_for
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.step_bars import StepBars
from rnn_tui.ui.widgets.timelapse_pane import TimelapsePane, scrubber
from tests.ui.conftest import settle

TAB = "tab-timelapsepane"


async def open_tab(pilot) -> TimelapsePane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    return pilot.app.screen.query_one(TimelapsePane)


def scaled(params: dict, k: float) -> dict:
    return {name: (value * k).astype(value.dtype) for name, value in params.items()}


async def test_scrubbing_through_snapshots_traces_each_one(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=5, text="abcdabcd"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        trace = app.screen.view.trace
        lab = lab_for(app.screen)
        for step, k in ((0, 0.25), (10, 0.5), (20, 1.0)):
            lab.add_snapshot(trace.config, SnapshotRecord(step, 1.0 / (step + 1), None, scaled(trace.params, k)),
                             "a test run")
        pane = await open_tab(pilot)
        assert app.screen.focused is pane
        assert [s.step for s in pane.records] == [0, 10, 20] and pane.index == 2
        shown = pane.query_one(HeatmapView).view.trace
        assert shown is pane.snapshot_trace()
        np.testing.assert_allclose(shown.layers[0].h, trace.layers[0].h, rtol=1e-5, atol=1e-6)  # k = 1: the same
        await pilot.press("comma", "comma")
        await settle(pilot)
        assert pane.index == 0
        first = pane.query_one(HeatmapView).view.trace
        np.testing.assert_array_equal(first.params["weight_hh_l0"], trace.params["weight_hh_l0"] * np.float32(0.25))
        assert not np.allclose(first.layers[0].h, trace.layers[0].h)
        head = str(pane.query_one("#lapse-head", Static).render())
        assert "snapshot 1/3" in head and "step 0" in head and f"{first.loss:.4g}" in head
        bars = pane.query_one(StepBars)
        np.testing.assert_allclose(bars.series[0].values, first.layers[0].dL_dh_norm)
        assert bars.series[-1].name == "loss_t" and bars.series[-1].nan_blank
        # the explorer's step and unit are followed
        await pilot.press("right", "right", "down")
        await settle(pilot)
        hv = pane.query_one(HeatmapView).view
        assert (hv.step, hv.unit) == (2, 1) and bars.step == 2
        await pilot.press("full_stop")
        await settle(pilot)
        assert pane.index == 1
        # y plays through to the last snapshot and stops there
        await pilot.press("y")
        assert pane.playing
        await pilot.pause(1.6)
        await settle(pilot)
        assert pane.index == 2 and not pane.playing
        # r picks up snapshots taken since
        lab.add_snapshot(trace.config, SnapshotRecord(30, 0.01, None, scaled(trace.params, 1.5)), "a test run")
        await pilot.press("r")
        await settle(pilot)
        assert [s.step for s in pane.records] == [0, 10, 20, 30]


async def test_snapshots_of_another_model_are_explained(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=5, text="abcdabcd"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        other = app.screen.view.trace.config.replace(hidden_size=7)
        lab_for(app.screen).add_snapshot(other, SnapshotRecord(0, 1.0, None, {}), "elsewhere")
        pane = await open_tab(pilot)
        said = str(pane.query_one("#lapse-head", Static).render())
        assert "elsewhere: snapshots of another model (hidden 7, not 5)" in said
        assert pane.query_one(HeatmapView).view is None


async def test_no_snapshots_says_how_to_get_some(source):
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=4, text="abcabc"))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot)
        assert "no snapshots yet" in str(pane.query_one("#lapse-head", Static).render())
        await pilot.press("comma", "full_stop", "y")  # nothing to move through: no error
        await pilot.pause()
        assert pane.records == []


async def test_a_run_directory_opens_with_o(tmp_path):
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.train import TrainConfig, Trainer

    task = get_task("recall", distance=6)
    run = tmp_path / "run"
    Trainer(task, TrainConfig(steps=4, batch=4, snapshot_every=2, log_every=2), cell="lstm", hidden=6,
            run_dir=run).run()

    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=6, task="recall", text=""))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # the explorer's recall model has distance 30 by default: a run with distance 6 reads
        # shorter sequences but has the same tensors, so its snapshots trace the explorer's example
        pane = await open_tab(pilot)
        await pilot.press("o")
        await pilot.pause()
        box = pane.query_one("#lapse-path", Input)
        assert app.screen.focused is box
        box.value = str(run)
        await pilot.press("enter")
        await settle(pilot)
        assert [s.step for s in pane.records] == [2, 4]
        assert pane.label == str(run)
        shown = pane.query_one(HeatmapView).view.trace
        from rnn_tui.engine.checkpoint import load_tensors, snapshot_path

        tensors, _ = load_tensors(snapshot_path(run, 4))
        np.testing.assert_array_equal(shown.params["weight_ih_l0"], tensors["weight_ih_l0"].numpy())
        assert shown.tokens == app.screen.view.trace.tokens
        # a folder that is not a run: one line, the snapshots stay
        box.value = str(tmp_path / "nothing")
        box.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert any("not a run directory" in n.message for n in app._notifications)
        assert [s.step for s in pane.records] == [2, 4]


def test_scrubber_marks_the_current_snapshot():
    records = [SnapshotRecord(s, 0.0, None, {}) for s in (0, 5, 10)]
    line = scrubber(records, 1, 30).plain
    assert line.startswith("0 ") and line.endswith(" 10")
    assert line.count("◉") == 1 and line.count("●") == 1 and line.count("○") == 1
    assert line.index("●") < line.index("◉") < line.index("○")


async def test_the_run_the_explorer_opened_on_shows_its_snapshots(tmp_path):
    """`rnn-tui --checkpoint DIR`: the Time-lapse tab opens DIR's snapshots by itself."""
    from rnn_tui.engine.subject import Spec
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.train import TrainConfig, Trainer

    run = tmp_path / "run"
    Trainer(get_task("recall", distance=6), TrainConfig(steps=4, batch=4, snapshot_every=2, log_every=2),
            cell="gru", hidden=5, run_dir=run).run()
    source = EngineSource.from_spec(Spec(checkpoint=str(run)))
    assert source.run_directory == str(run)
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pane = await open_tab(pilot)
        await settle(pilot)
        assert [s.step for s in pane.records] == [2, 4] and pane.label == str(run)
        assert pane.query_one("#lapse-path", Input).value == str(run)
        shown = pane.query_one(HeatmapView).view.trace  # the last snapshot traced on the run's input
        assert shown.config == app.screen.view.trace.config and shown.tokens == app.screen.view.trace.tokens
        assert not any(n.severity == "error" for n in app._notifications)

    # a run saved without snapshots is no error: the tab says so, and training here still fills it
    bare = tmp_path / "bare"
    Trainer(get_task("recall", distance=6), TrainConfig(steps=2, batch=4, log_every=1), cell="gru", hidden=5,
            run_dir=bare).run()
    source = EngineSource.from_spec(Spec(checkpoint=str(bare)))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        pane = await open_tab(pilot)
        await settle(pilot)
        assert pane.records == [] and not any(n.severity == "error" for n in app._notifications)
        head = str(pane.query_one("#lapse-head", Static).render())
        assert "run bare saved no snapshots: train in the Training tab" in head
