"""Every analysis tab survives resizing from below the minimum size to very large, with data in it."""

from __future__ import annotations

from textual.widgets import TabbedContent

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.lab import SnapshotRecord, lab_for
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle

TABS = ["gradientspane", "trainingpane", "comparepane", "interventionspane", "saturationpane", "timelapsepane"]
SIZES = [(40, 10), (80, 24), (300, 100), (61, 17)]


async def test_resizing_never_breaks_a_tab(source):
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=12, layers=2, bidirectional=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        trace = app.screen.view.trace
        lab_for(app.screen).add_snapshot(trace.config, SnapshotRecord(0, 1.0, None, trace.params), "here")
        moves = 0
        for tab in TABS:
            app.screen.query_one(TabbedContent).active = f"tab-{tab}"
            await settle(pilot)
            if tab == "interventionspane":
                await pilot.press("z")
            for size in SIZES:
                await pilot.resize_terminal(*size)
                await pilot.press("right", "right_square_bracket")
                moves += 1
                await settle(pilot)
                app.export_screenshot()  # every line drawn at this size
            assert app.screen.view.step == moves
