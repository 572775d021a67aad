"""A focused widget with `KeysUp` runs the bindings for a key at once, as the app would once the
key had come up to it, unless a container on the way would handle the key."""

from __future__ import annotations

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widget import Widget

from rnn_tui.ui.keys import KeysUp
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource


class Focusable(KeysUp, Widget, can_focus=True):
    pass


class Listening(Container):
    def __init__(self, heard: list[str]) -> None:
        super().__init__()
        self.heard = heard

    def on_key(self, event: events.Key) -> None:
        self.heard.append(event.key)
        if event.key == "y":
            event.stop()  # this container takes "y" for itself


class Keys(App):
    BINDINGS = [Binding("x", "count('x')"), Binding("y", "count('y')")]

    def __init__(self, listening: bool) -> None:
        super().__init__()
        self.listening = listening
        self.heard: list[str] = []
        self.counted: list[str] = []

    def compose(self) -> ComposeResult:
        outer = Listening(self.heard) if self.listening else Container()
        with outer:
            with Container():
                yield Focusable()

    def on_mount(self) -> None:
        self.query_one(Focusable).focus()

    def action_count(self, key: str) -> None:
        self.counted.append(key)


async def test_a_key_runs_its_binding_once_without_passing_through_the_containers():
    app = Keys(listening=False)
    keys = []
    async with app.run_test(message_hook=lambda m: keys.append(m) if isinstance(m, events.Key) else None) as pilot:
        await pilot.press("x", "x", "z")
        await pilot.pause()
        assert app.counted == ["x", "x"]
        # the app (once) and the focused widget: not its two containers and the screen as well
        assert len(keys) == 2 * 3


async def test_a_container_that_handles_keys_still_hears_them_first():
    app = Keys(listening=True)
    async with app.run_test() as pilot:
        await pilot.press("x", "y")
        await pilot.pause()
        assert app.heard == ["x", "y"]
        assert app.counted == ["x"]  # "y" was stopped by the container, as without KeysUp


async def test_the_explorers_map_steps_once_a_key_and_the_apps_own_keys_still_answer():
    from rnn_tui.ui.app import ExplorerApp
    from rnn_tui.ui.screens.help import HelpScreen
    from rnn_tui.ui.source import TraceRequest
    from rnn_tui.ui.widgets.heatmap_view import HeatmapView

    app = ExplorerApp(FakeSource(), TraceRequest(hidden=8, text="hello world"))
    keys = []
    async with app.run_test(size=(100, 30), message_hook=lambda m: keys.append(m) if isinstance(m, events.Key) else None) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, HeatmapView)
        keys.clear()
        await pilot.press("right", "right", "l", "h")
        assert app.screen.view.step == 2
        assert len(keys) == 2 * 4  # none went up through the map's containers
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
