"""A lesson in the explorer: the main screen, with the lesson panel beside the tabs' content (or
under it on a narrow terminal) and the lesson's keys.

    LessonApp(EngineSource(), "bptt").run()          `rnn-tui lesson bptt` (rnn_tui.ui.lesson_app)
    app.push_screen(LessonScreen(LessonSource(...)))  from the Lessons tab (the app's OpenLesson)

The screen is the explorer's `MainScreen` (every pane and key works as usual) with its source
replaced by a `LessonSource`; the panel drives it with the explorer's own messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import ContentSwitcher, Input

from rnn_tui.ui.screens.lesson_source import LessonSource
from rnn_tui.ui.screens.main import MainScreen
from rnn_tui.ui.widgets.lessons_panel import LessonPanel

WIDE = 140  # from this width the panel sits at the right; below, under the explorer
SHORT = 30  # ... unless the terminal is also this short: then at the right, narrower


@dataclass
class LessonProgress(Message):
    """What the lesson is doing while it sets up (sent from the build worker)."""

    text: str


class LessonScreen(MainScreen):
    DEFAULT_CSS = """
    LessonScreen #lesson-panel { dock: right; width: 64; border-left: vkey $panel; }
    LessonScreen.-lesson-narrow #lesson-panel { dock: bottom; width: 1fr; height: 45%;
                                                border-left: none; border-top: hkey $panel; }
    /* narrow and short (80x24): beside the maps, not under them (under, it left two rows) */
    LessonScreen.-lesson-narrow.-lesson-short #lesson-panel { dock: right; width: 36; height: 1fr;
                                                             border-top: none; border-left: vkey $panel; }
    LessonScreen.-lesson-hidden #lesson-panel { display: none; }
    """

    KEYS_TITLE = "Lesson"
    BINDINGS = [
        Binding("n", "lesson_move(1)", "next", tooltip="the lesson's next step"),
        Binding("b", "lesson_move(-1)", "back", tooltip="the lesson's previous step"),
        Binding("1", "lesson_answer(0)", "answer 1", show=False),
        Binding("2", "lesson_answer(1)", "answer 2", show=False),
        Binding("3", "lesson_answer(2)", "answer 3", show=False),
        Binding("4", "lesson_answer(3)", "answer 4", show=False),
        Binding("r", "lesson_answer(-1)", "reveal", show=False, tooltip="reveal the answer"),
        Binding("L", "toggle_lesson", "hide lesson", show=False, tooltip="hide or show the lesson panel"),
        Binding("shift+down,J", "lesson_scroll(1)", "scroll lesson", key_display="⇧↓↑",
                tooltip="scroll the lesson panel down (shift+up or K: up)"),
        Binding("shift+up,K", "lesson_scroll(-1)", "scroll lesson up", show=False, tooltip="scroll the lesson panel up"),
    ]

    def __init__(self, source: LessonSource, *, screenshot_dir: str | None = None) -> None:
        super().__init__(source, source.first_request(), screenshot_dir=screenshot_dir)
        self.lesson_source = source

    def compose(self) -> ComposeResult:
        yield from super().compose()

    async def on_mount(self) -> None:
        # the panel goes beside (or under) the tabs' content, not the screen: the status line,
        # the input and the tab bar keep the full width, so every tab is named on the bar (at
        # 80x24 the panel beside the maps left the bar 44 columns, which cut it after Generate)
        panel = LessonPanel(self.lesson_source.name, id="lesson-panel").data_bind(
            MainScreen.view, MainScreen.busy, MainScreen.request
        )
        await self.query_one("#panes").get_child_by_type(ContentSwitcher).mount(panel)
        # progress lines come from the build worker's thread: post_message is thread-safe
        self.lesson_source.on_progress = lambda text: self.post_message(LessonProgress(text))
        super().on_mount()
        self._fit_lesson(self.size.width, self.size.height)

    def on_resize(self, event) -> None:
        super().on_resize(event)
        self._fit_lesson(event.size.width, event.size.height)

    def _fit_lesson(self, width: int, height: int | None = None) -> None:
        self.set_class(width < WIDE, "-lesson-narrow")
        self.set_class((height if height is not None else self.size.height) < SHORT, "-lesson-short")

    def on_unmount(self) -> None:
        self.lesson_source.cancel.set()  # a lesson still training stops with its screen

    @on(LessonProgress)
    def lesson_progress(self, message: LessonProgress) -> None:
        if self.view is None:
            self.busy = message.text

    @on(LessonPanel.ShowPane)
    def lesson_show_pane(self, message: LessonPanel.ShowPane) -> None:
        message.stop()
        if any(p.id == message.pane_id for p in self.query("TabPane")):
            self.action_show_pane(message.pane_id)

    # ---- keys --------------------------------------------------------------------------------
    def action_lesson_move(self, delta: int) -> None:
        self.query_one(LessonPanel).move(delta)

    def action_lesson_answer(self, choice: int) -> None:
        self.query_one(LessonPanel).answer(None if choice < 0 else choice)

    def action_lesson_scroll(self, delta: int) -> None:
        """The lesson panel by keyboard (it scrolled only with the mouse): a few lines a press."""
        panel = self.query_one(LessonPanel)
        panel.scroll_relative(y=delta * max(panel.size.height // 2, 1), animate=False)

    def action_toggle_lesson(self) -> None:
        self.toggle_class("-lesson-hidden")

    def action_escape(self) -> None:
        """Leave the input box; otherwise leave the lesson (back to the explorer it came from)."""
        if isinstance(self.focused, Input) or len(self.app.screen_stack) <= 1:
            super().action_escape()
            return
        self.app.pop_screen()
