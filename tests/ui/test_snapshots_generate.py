"""SVG snapshots of the Generate tab at 80x24 and 160x50: a fixed numpy trace, a seeded sample
from its own model (so the same picture each run), the explorer then on the generated sequence.
Update with `pytest --snapshot-update` and look at every SVG before committing it."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TabbedContent

import rnn_tui.ui.widgets.generate_pane as generate_pane
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.generate_pane import GeneratePane
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource
from tests.ui.test_panes_training import wait_until
from tests.ui.test_snapshots import TEXT, quiet


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_generate_pane(snap_compare, monkeypatch, size):
    monkeypatch.setattr(generate_pane, "PACE", 0.0)

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "tab-generatepane"
        await settle(pilot)
        pane = pilot.app.screen.query_one(GeneratePane)
        pane.query_one("#gen-length", Input).value = "40"
        pane.query_one("#gen-seed", Input).value = "7"
        await pilot.press("right_curly_bracket", "right_curly_bracket", "right_curly_bracket", "right_curly_bracket")
        await pilot.press("g")
        await wait_until(pilot, lambda: pane.state.status == "done")
        await settle(pilot)
        await pilot.press("right", "right", "right")
        await quiet(pilot)

    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT, hidden=16), theme="dark")
    assert snap_compare(app, terminal_size=size, run_before=run_before)
