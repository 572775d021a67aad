"""Crashes found by trying to break the explorer, each kept from coming back."""

from __future__ import annotations

import os

import pytest
from textual.command import CommandList
from textual.widgets import Select, TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.messages import RequestChange
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle


async def test_paging_the_palette_with_no_room_is_harmless(source):
    """The case the fuzzer found: Ctrl+P on a terminal 5 rows high, then PgUp/PgDn."""
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=4, text="abcabd"))
    async with app.run_test(size=(85, 5)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press("pageup", "pagedown", "pageup")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.press("down", "pagedown")  # with room it pages as before
        await pilot.pause()
        commands = app.screen.query_one(CommandList)
        assert commands.highlighted is not None and commands.highlighted > 1


async def test_the_encoder_decoder_task_opens_and_can_be_chosen():
    """`rnn-tui --task reverse` crashed at start: the Model tab's task list lacked it."""
    from rnn_tui.engine.subject import Spec
    from rnn_tui.ui.source import EngineSource

    source = EngineSource.from_spec(Spec(task="reverse"))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.error == "" and app.screen.view is not None
        app.screen.query_one(TabbedContent).active = "tab-modelpane"
        await settle(pilot)
        assert app.screen.query_one("#task", Select).value == "reverse"
    app = ExplorerApp(EngineSource(), TraceRequest(text="hello"))
    async with app.run_test(size=(120, 40)) as pilot:  # chosen from a text model: its own example
        await settle(pilot)
        app.screen.post_message(RequestChange({"task": "reverse"}))
        await settle(pilot)
        assert app.screen.error == "" and app.screen.request.task == "reverse"


async def test_a_run_with_a_fifo_for_a_snapshot_neither_hangs_nor_blocks_quitting(tmp_path):
    """The Time-lapse loader waited forever on a FIFO, and the explorer could then not quit."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    from rnn_tui.engine.subject import Spec
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.train import TrainConfig, Trainer
    from rnn_tui.ui.source import EngineSource

    run = tmp_path / "run"
    Trainer(get_task("recall", distance=6), TrainConfig(steps=4, batch=4, snapshot_every=2, log_every=2),
            cell="gru", hidden=5, run_dir=run).run()  # fmt: skip
    snapshot = run / "snapshots" / "step_000004.safetensors"
    snapshot.unlink()
    os.mkfifo(snapshot)
    source = EngineSource.from_spec(Spec(checkpoint=str(run)))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.query_one(TabbedContent).active = "tab-timelapsepane"
        await settle(pilot)
        head = str(app.screen.query_one("#lapse-head").render())
        assert "not a regular file (a FIFO)" in head, head
        await pilot.press("q")
    assert app.return_code in (None, 0)
