"""The Lessons tab: the guided lessons, one line each. Choosing one opens it beside the explorer
on a screen of its own (its models are set up live); Esc there comes back here."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from rnn_tui.ui.messages import OpenLesson
from rnn_tui.ui.widgets.pane import Pane

INTRO = (
    "Guided lessons on live models: each builds, trains or hand-sets its networks now (a few "
    "seconds), then walks through a few steps with things to try and questions to answer before "
    "the reveal. Enter opens one; in a lesson, n / b move between steps and Esc comes back."
)


class LessonsPane(Pane):
    TITLE = "Lessons"
    DESCRIPTION = "guided lessons on live models: memory, BPTT, exploding gradients, gates, task modes, unit finder"

    DEFAULT_CSS = """
    LessonsPane { layout: vertical; height: 1fr; padding: 0 1; }
    LessonsPane > #lessons-intro { color: $foreground-muted; margin-bottom: 1; }
    LessonsPane > OptionList { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        from rnn_tui.lessons import LESSONS  # the catalog imports nothing heavy

        yield Static(INTRO, id="lessons-intro")
        yield OptionList(
            *[Option(f"{name:<14} {line}", id=name) for name, (_, line) in LESSONS.items()],
            id="lessons-list",
        )

    def opened(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.open_lesson(event.option.id)

    def open_lesson(self, name: str) -> None:
        """Ask for a lesson: the app opens it on a screen of its own."""
        self.post_message(OpenLesson(name))
