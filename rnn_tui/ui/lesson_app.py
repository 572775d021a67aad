"""The explorer opened on a lesson: `rnn-tui lesson NAME`.

    run_lesson_app(EngineSource(dtype="float64"), "bptt")

The app is the explorer's own (its styles, themes and palette) with a `LessonScreen` as its
first screen; from inside the explorer the Lessons tab opens the same screen over the main one.
"""

from __future__ import annotations

from textual.screen import Screen

from rnn_tui.ui.app import ExplorerApp, run_frozen
from rnn_tui.ui.screens.lesson_screen import LessonScreen
from rnn_tui.ui.screens.lesson_source import LessonSource
from rnn_tui.ui.source import TraceSource


class LessonApp(ExplorerApp):
    """The explorer opened on a lesson (`rnn-tui lesson NAME`)."""

    # app.tcss: Textual reads a relative CSS_PATH next to the module of the app class, and this
    # module sits beside app.py
    CSS_PATH = ExplorerApp.CSS_PATH

    def __init__(self, source: TraceSource, lesson: str, *, theme: str = "dark",
                 screenshot_dir: str | None = None, lesson_source: LessonSource | None = None) -> None:
        # lesson_source: one already set up (`rnn-tui serve --lesson` sets it up once for all)
        self.lesson_source = lesson_source or LessonSource(source, lesson)
        super().__init__(self.lesson_source, self.lesson_source.first_request(), theme=theme,
                         screenshot_dir=screenshot_dir)
        self.title = f"rnn-tui · lesson {lesson}"

    def get_default_screen(self) -> Screen:
        return LessonScreen(self.lesson_source, screenshot_dir=self.screenshot_dir)


def run_lesson_app(source: TraceSource, lesson: str, *, theme: str = "dark") -> int:
    app = LessonApp(source, lesson, theme=theme)
    run_frozen(app)
    return app.return_code or 0
