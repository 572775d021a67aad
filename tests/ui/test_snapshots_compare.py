"""SVG snapshots of the Compare tab at 80x24 and 160x50: a fixed numpy tanh RNN beside the LSTM
the tab builds on the same input (seeded, no training), both on one colour and one gradient
scale, the cursor moved off the origin. Update with `pytest --snapshot-update` and look at every
SVG before committing it."""

from __future__ import annotations

import pytest
from textual.widgets import TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource
from tests.ui.test_snapshots import TEXT, quiet


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_compare_pane(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "tab-comparepane"
        await settle(pilot)
        await pilot.press("right", "right", "right", "right", "right", "down", "down")
        await quiet(pilot)

    app = ExplorerApp(FakeSource(), TraceRequest(cell="rnn", text=TEXT, hidden=12), theme="dark")
    assert snap_compare(app, terminal_size=size, run_before=run_before)
