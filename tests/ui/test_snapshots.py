"""SVG snapshots of the explorer's main screens (pytest-textual-snapshot): 80x24 and 160x50, the
default and the monochrome theme, a fixed numpy trace (seeded, no training), the cursor moved
off the origin so the marks are visible. Update with `pytest --snapshot-update` and look at
every SVG before committing it."""

from __future__ import annotations

import pytest

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

TEXT = "hello world, hello recurrent world"


def explorer(theme: str, **request) -> ExplorerApp:
    request.setdefault("hidden", 16)
    return ExplorerApp(FakeSource(), TraceRequest(text=TEXT, **request), theme=theme)


async def quiet(pilot) -> None:
    """Settle, and drop transient notifications (toasts time out on their own clock)."""
    await settle(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


async def _ready(pilot) -> None:
    await settle(pilot)
    await pilot.press("right", "right", "right", "right", "down", "down")
    await quiet(pilot)


@pytest.mark.parametrize("theme", ["dark", "mono"])
@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_main_screen(snap_compare, theme, size):
    assert snap_compare(explorer(theme), terminal_size=size, run_before=_ready)


@pytest.mark.parametrize("theme", ["dark", "mono"])
def test_gru_two_layers_bidirectional(snap_compare, theme):
    async def run_before(pilot):
        await _ready(pilot)
        await pilot.press("right_square_bracket", "v")
        await quiet(pilot)

    app = explorer(theme, cell="gru", layers=2, bidirectional=True, hidden=8)
    assert snap_compare(app, terminal_size=(160, 50), run_before=run_before)


def test_model_pane(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("m")
        await quiet(pilot)

    assert snap_compare(explorer("dark"), terminal_size=(120, 36), run_before=run_before)


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await quiet(pilot)

    assert snap_compare(explorer("dark"), terminal_size=(100, 40), run_before=run_before)


def test_too_small(snap_compare):
    assert snap_compare(explorer("dark"), terminal_size=(50, 12), run_before=quiet)
