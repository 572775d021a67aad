"""A key fuzzer: random keys (every key any screen or tab binds, typing, paging, Ctrl+P and its
list) on every tab, with resizes in between from 20x3 to 200x60. The explorer must never crash,
and must still draw afterwards. It found Textual's OptionList paging a list with no height
(KeyError in `_move_page`), which `ExplorerPalette` now guards.

Bounded for CI (8 bursts of keys a tab, ~30 s in all); RNN_TUI_FUZZ=N presses N times as many keys, and
RNN_TUI_FUZZ_SEED picks another sequence (see docs/robustness.md):

    RNN_TUI_FUZZ=20 .venv/bin/python -m pytest tests/ui/test_fuzz_keys.py
"""

from __future__ import annotations

import os
import random

from textual.widgets import TabbedContent

from rnn_tui.ui.actions import ACTIONS
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.panes import PANES, pane_classes, tab_id
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle

FUZZ = max(1, int(os.environ.get("RNN_TUI_FUZZ", "1")))
SEED = int(os.environ.get("RNN_TUI_FUZZ_SEED", "0"))
QUIT = {"q", "ctrl+q", "ctrl+c"}


def key_pool() -> list[str]:
    keys = {k for a in ACTIONS for k in a.keys.split(",")}
    for cls in pane_classes():
        for b in cls.BINDINGS:
            keys.update(b.key.split(","))
    keys.update(["tab", "shift+tab", "enter", "escape", "backspace", "ctrl+p", "pagedown", "pageup", "home", "end",
                 "ctrl+home", "ctrl+end", "up", "down", "left", "right", "a", "x", "1", "space"])  # fmt: skip
    return sorted(keys - QUIT)


SIZES = [(20, 3), (40, 10), (59, 15), (60, 16), (80, 24), (120, 40), (200, 60), (33, 7)]


async def test_random_keys_and_resizes_never_crash_any_tab(source, tmp_path):
    """One explorer, every tab in turn (in a random order), random keys and resizes on each."""
    rng = random.Random(SEED)
    pool = key_pool()
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=4, text="abcabd"), screenshot_dir=str(tmp_path))
    pressed: list = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for pane in rng.sample(PANES, len(PANES)):
            pressed.append(pane.name)
            app.screen.query_one(TabbedContent).active = tab_id(pane)
            await pilot.pause()
            for _ in range(8 * FUZZ):
                if rng.random() < 0.15:
                    size = rng.choice(SIZES)
                    pressed.append(size)
                    await pilot.resize_terminal(*size)
                else:
                    keys = [rng.choice(pool) for _ in range(rng.randint(1, 3))]
                    pressed.extend(keys)
                    await pilot.press(*keys)
                assert app.is_running, f"the explorer stopped after {pressed}"
            while len(app.screen_stack) > 1:  # a help screen or the palette: back to the tabs
                await pilot.press("escape")
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert "<svg" in app.export_screenshot()  # it still draws
