"""The explorer app. Hand it a trace source; it draws before the source imports torch.

    from rnn_tui.ui.app import run_explorer
    from rnn_tui.ui.source import EngineSource, TraceRequest
    run_explorer(EngineSource(), TraceRequest(cell="gru", hidden=16), theme="dark")
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys

from textual import on
from textual.app import App
from textual.screen import Screen

from rnn_tui.ui.messages import OpenLesson
from rnn_tui.ui.screens.main import MainScreen
from rnn_tui.ui.source import TraceRequest, TraceSource
from rnn_tui.ui.themes import THEMES, theme_name
from rnn_tui.ui.work import computing


def explorer_commands():
    """The palette's commands (imported when the palette first opens, not before the first frame)."""
    from rnn_tui.ui.commands import ExplorerCommands

    return ExplorerCommands


class ExplorerApp(App):
    """rnn-tui's explorer. `source` builds traces (see `rnn_tui.ui.source.TraceSource`)."""

    CSS_PATH = "app.tcss"
    TITLE = "rnn-tui"
    COMMANDS = App.COMMANDS | {explorer_commands}

    def __init__(
        self,
        source: TraceSource,
        request: TraceRequest | None = None,
        *,
        theme: str = "dark",
        screenshot_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.request = request or TraceRequest()
        self.screenshot_dir = screenshot_dir
        self.heap_frozen = False  # see freeze_heap
        for t in THEMES.values():
            self.register_theme(t)
        # NO_COLOR (which Textual reads, and removes from the environment, in App.__init__) means
        # monochrome: the heatmaps switch to the glyph ramp
        self.theme = theme_name("mono" if self.no_color else theme)

    def freeze_heap(self) -> None:
        """Called with every trace that arrives; the first one built by the engine means torch is
        loaded, and the heap is frozen then, once.

        gc.freeze() moves every object alive now (torch's hundreds of thousands among them) out of
        the garbage collector's sight. A full collection otherwise walks them all, stopping every
        thread for 200-400 ms on this machine, and training allocates fast enough to trigger one
        every few seconds: the explorer froze visibly while it trained. A source that never
        imported torch (a test's numpy traces) has nothing worth freezing.
        """
        if self.heap_frozen or "torch" not in sys.modules:
            return
        gc.freeze()
        self.heap_frozen = True

    def action_command_palette(self) -> None:
        """Ctrl+P: the palette with paging that cannot fail on a short terminal (ExplorerPalette)."""
        from rnn_tui.ui.commands import ExplorerPalette  # not before the first frame

        if self.use_command_palette and not ExplorerPalette.is_open(self):
            self.push_screen(ExplorerPalette(id="--command-palette"))

    def get_default_screen(self) -> Screen:
        return MainScreen(self.source, self.request, screenshot_dir=self.screenshot_dir)

    @on(OpenLesson)
    def open_lesson(self, message: OpenLesson) -> None:
        """A lesson on a screen of its own, beside the explorer, with the real engine behind it
        (a test's fake source has no lessons); Esc there comes back."""
        from rnn_tui.ui.screens.lesson_screen import LessonScreen
        from rnn_tui.ui.screens.lesson_source import LessonSource
        from rnn_tui.ui.source import EngineSource

        message.stop()
        self.push_screen(LessonScreen(LessonSource(EngineSource(dtype="float64"), message.name),
                                      screenshot_dir=self.screenshot_dir))


def run_explorer(
    source: TraceSource,
    request: TraceRequest | None = None,
    *,
    theme: str = "dark",
    screenshot_dir: str | None = None,
) -> int:
    """Run the explorer in this terminal until the person quits; returns the exit code.

    source: builds traces (`EngineSource()` for the real engine).
    request: the model and input to open on (`TraceRequest.from_config(config, text=...)`).
    theme: "dark" | "high-contrast" | "colorblind" | "mono" (ValueError for anything else).
    screenshot_dir: where `s` saves SVG screenshots (default: the current directory).
    """
    theme_name(theme)  # fail before the terminal is taken over
    app = ExplorerApp(source, request, theme=theme, screenshot_dir=screenshot_dir)
    run_frozen(app)
    return app.return_code or 0


GC_YOUNG = 10_000  # allocations between collections of the youngest generation (Python's default: 700)


def run_frozen(app: App, *, headless: bool = False, auto_pilot=None) -> None:
    """Run the app as this process's program, with the garbage collector set for it.

    What has been imported so far (Textual, numpy: long-lived) goes out of the collector's sight:
    without it a full collection walks it all while the first frame is built (~30 ms of its
    ~0.6 s); `ExplorerApp.freeze_heap` does the same for torch. And the youngest generation is
    collected less often: a step allocates thousands of short-lived containers (Textual's strips
    and their caches) that reference counting frees; at Python's default a collection ran about
    three times a step, ~2.5 ms of it, and now and then a full one stalled a step for 20-40 ms.

    When the person quits while a thread is inside an engine call that cannot stop halfway (a
    40-second analysis of a long trace, a model build), the process exits once the terminal is
    restored rather than waiting for it: the app runs on a loop of its own, so nothing joins the
    worker threads before this function decides (`asyncio.run` would wait for them).

    auto_pilot: Textual's, a coroutine given a Pilot once the app is ready (`rnn-tui serve`
    lowers a visitor's CPU priority once its first frame is out).
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)
    loop = asyncio.new_event_loop()
    app.run(loop=loop, headless=headless, auto_pilot=auto_pilot)
    if computing():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(app.return_code or 0)
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
