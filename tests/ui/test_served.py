"""The explorer as a browser visitor's process (`rnn-tui serve` sets RNN_TUI_SERVED): no path the
visitor chooses is read or written on the server. Runs open by name from the folder `serve --runs`
names, and none without it; screenshots go to the browser, never to the server's disk."""

from __future__ import annotations

import os
from pathlib import Path

from textual.widgets import Input, Static, TabbedContent

from rnn_tui.served import RUNS_ENV, SERVED_ENV
from rnn_tui.ui import app as app_module
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.timelapse_pane import TimelapsePane
from tests.ui.conftest import settle

TAB = "tab-timelapsepane"


def make_run(path):
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.train import TrainConfig, Trainer

    Trainer(get_task("recall", distance=6), TrainConfig(steps=4, batch=4, snapshot_every=2, log_every=2),
            cell="lstm", hidden=6, run_dir=path).run()  # fmt: skip
    return path


async def open_lapse(pilot) -> TimelapsePane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    return pilot.app.screen.query_one(TimelapsePane)


def head(pane) -> str:
    return str(pane.query_one("#lapse-head", Static).render())


async def submit(pilot, pane, text: str) -> None:
    await pilot.press("o")
    await pilot.pause()
    box = pane.query_one("#lapse-path", Input)
    box.value = text
    box.focus()
    await pilot.press("enter")
    await settle(pilot)


async def test_without_a_runs_folder_o_says_no_run_can_be_opened(monkeypatch, tmp_path):
    from rnn_tui.ui.source import EngineSource

    monkeypatch.setenv(SERVED_ENV, "1")
    monkeypatch.delenv(RUNS_ENV, raising=False)
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=6, task="recall", text=""))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_lapse(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert not pane.query_one("#lapse-path", Input).has_focus
        assert "runs open only from a folder the server names (rnn-tui serve --runs DIR)" in head(pane)


async def test_visitors_open_runs_by_name_inside_the_folder_only(monkeypatch, tmp_path):
    from rnn_tui.ui.source import EngineSource

    runs = tmp_path / "runs"
    make_run(runs / "recall")
    outside = make_run(tmp_path / "private")
    (runs / "escape").symlink_to(outside)
    monkeypatch.setenv(SERVED_ENV, "1")
    monkeypatch.setenv(RUNS_ENV, str(runs))
    reads = []
    real_open = os.open

    def watch(path, *args, **kwargs):
        reads.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=6, task="recall", text=""))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_lapse(pilot)
        monkeypatch.setattr(os, "open", watch)
        for attempt in (str(outside), "../private", "escape", "~/x", "/etc", "recall/../../private"):
            await submit(pilot, pane, attempt)
            assert pane.records == [], attempt
            assert "the served folder" in head(pane), (attempt, head(pane))
            assert "(runs: recall)" in head(pane)
        assert not any(p.startswith(str(outside)) for p in reads), "a path outside the folder was opened"
        await submit(pilot, pane, "recall")
        assert [s.step for s in pane.records] == [2, 4]


async def test_a_screenshot_in_the_browser_is_a_download_and_nothing_is_written(monkeypatch, tmp_path, source):
    """Under serve the screen goes to the browser (Textual's deliver_text); in a served process
    that is somehow not drawn in a browser, nothing is saved either."""
    monkeypatch.setenv(SERVED_ENV, "1")
    monkeypatch.chdir(tmp_path)
    delivered = []

    class BrowserApp(ExplorerApp):
        CSS_PATH = str(Path(app_module.__file__).with_name("app.tcss"))

        @property
        def is_web(self) -> bool:
            return True

        def deliver_text(self, path_or_file, **kwargs):
            delivered.append((path_or_file.read(), kwargs))
            return "key"

    app = BrowserApp(source, TraceRequest(cell="lstm", hidden=4, text="abcab"), screenshot_dir=str(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
    assert len(delivered) == 1
    svg, options = delivered[0]
    assert svg.startswith("<svg") and options["open_method"] == "download"
    assert options["mime_type"] == "image/svg+xml" and options["save_filename"].endswith(".svg")
    assert list(tmp_path.iterdir()) == []

    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=4, text="abcab"), screenshot_dir=str(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
    assert list(tmp_path.iterdir()) == []


class HeldSource:
    """A source that holds its first trace already, as `rnn-tui serve`'s preloaded one does."""

    def __init__(self, request: TraceRequest) -> None:
        from tests.ui.fakes import FakeSource

        self.fake = FakeSource()
        self.held = (request, self.fake.build(request))
        self.fake.requests.clear()

    def tasks(self):
        return self.fake.tasks()

    def ready(self, request: TraceRequest):
        return self.held[1] if request == self.held[0] else None

    def build(self, request: TraceRequest):
        return self.fake.build(request)


async def test_a_held_trace_is_drawn_in_the_first_frame_and_another_input_is_built():
    """A served visitor's first frame shows the model traced before it came (no worker, no wait);
    typing another input builds that one as always."""
    request = TraceRequest(cell="lstm", hidden=4, text="abcab")
    source = HeldSource(request)
    app = ExplorerApp(source, request)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.screen.view is not None and app.screen.view.trace is source.held[1]
        assert source.fake.requests == [] and not app.workers  # nothing was built for it
        app.screen._change(text="cab")
        await settle(pilot)
        assert [r.text for r in source.fake.requests] == ["cab"]
        assert app.screen.view.trace.T == 3
