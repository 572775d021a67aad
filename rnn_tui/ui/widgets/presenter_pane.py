"""Presenter mode, for a projector: the focused heatmap zoomed (few, large cells with their values),
the one-line narration of the step, a freeze key, the high-contrast theme on one key. Stepping,
autoplay (space) and its speed (+/-) are the explorer's own keys.

Freeze holds the picture (and stops autoplay) while the teacher talks; training or stepping may
go on underneath, and unfreezing catches up.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.ui.themes import short_name, theme_name
from rnn_tui.ui.widgets.narration_bar import NarrationBar
from rnn_tui.ui.widgets.pane import Pane
from rnn_tui.ui.widgets.zoom_map import ZOOMS, ZoomMap

HINT = "z/x zoom · f freeze · c contrast · space play · +/- speed · ←/→ step · ↑/↓ unit · v map"


class PresenterPane(Pane):
    TITLE = "Present"
    DESCRIPTION = "for a projector: zoomed heatmap with values, narration of each step, freeze, high contrast"

    DEFAULT_CSS = """
    PresenterPane { layout: vertical; height: 1fr; }
    PresenterPane > NarrationBar { height: auto; max-height: 3; text-style: bold; }
    PresenterPane > #presenter-hint { height: 1; color: $foreground-muted; }
    """

    BINDINGS = [
        Binding("z", "zoom(1)", "zoom in", tooltip="fewer, larger cells"),
        Binding("x", "zoom(-1)", "zoom out", tooltip="more, smaller cells"),
        Binding("f", "freeze", "freeze", tooltip="hold the picture (and stop autoplay); again to catch up"),
        Binding("c", "contrast", "contrast", tooltip="the high-contrast theme, and back"),
    ]

    frozen: reactive[bool] = reactive(False, init=False)  # no watcher at mount: nothing was unfrozen

    def __init__(self) -> None:
        super().__init__()
        self._theme_before: str | None = None

    def compose(self) -> ComposeResult:
        yield NarrationBar(wrap=True)  # a projected line is never cut: it wraps
        yield ZoomMap()
        yield Static(HINT, id="presenter-hint")

    def opened(self) -> None:
        self.query_one(ZoomMap).focus()

    def watch_view(self) -> None:
        if not self.frozen:
            self._pass_down()

    def _pass_down(self) -> None:
        if not self.is_mounted:
            return
        bar, zoom = self.query_one(NarrationBar), self.query_one(ZoomMap)
        bar.view = self.view
        zoom.narrated = bar.unit()  # the unit the line names is on the map too
        zoom.view = self.view

    def on_mount(self) -> None:
        self._pass_down()

    # ---- keys --------------------------------------------------------------------------------
    def action_zoom(self, delta: int) -> None:
        zm = self.query_one(ZoomMap)
        zm.zoom = min(max(zm.zoom + delta, 0), len(ZOOMS) - 1)

    def action_freeze(self) -> None:
        self.frozen = not self.frozen

    async def watch_frozen(self, frozen: bool) -> None:
        if not self.is_mounted:
            return
        self.query_one(NarrationBar).frozen = frozen
        if frozen:
            if getattr(self.screen, "playing", False):
                await self.screen.run_action("toggle_play")  # the screen's own action: pause autoplay
        else:
            self._pass_down()
        self.notify("frozen: the picture holds" if frozen else "unfrozen", timeout=2)

    def action_contrast(self) -> None:
        current = short_name(self.app.theme)
        if current != "high-contrast":
            self._theme_before = current
            self.app.theme = theme_name("high-contrast")
        else:
            self.app.theme = theme_name(self._theme_before or "dark")
