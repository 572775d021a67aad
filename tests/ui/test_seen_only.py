"""A step touches only what is seen: hidden tabs are not built until opened, get no View while
hidden, catch up when opened again, and their modules (and heavy imports) load on first show."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.panes import PANES, info_of_tab, pane_classes
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.explore_pane import ExplorePane
from rnn_tui.ui.widgets.gradients_pane import GradientsPane
from rnn_tui.ui.widgets.matrix_view import MatrixView
from rnn_tui.ui.widgets.step_bars import StepBars
from rnn_tui.ui.widgets.training_pane import TrainingPane, TrainingState
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

TEXT = "hello world, hello recurrent world"


def app_for(**request) -> ExplorerApp:
    request.setdefault("hidden", 6)
    request.setdefault("text", TEXT)
    return ExplorerApp(FakeSource(), TraceRequest(**request))


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=180, check=True)
    return out.stdout


def test_the_catalog_names_each_pane_as_its_class_does():
    for info, cls in zip(PANES, pane_classes()):
        assert (cls.__name__, cls.TITLE, cls.DESCRIPTION) == (info.name, info.title, info.description)
        assert info_of_tab(info.tab_id) is info
    assert info_of_tab("tab-nothing") is None


def test_importing_the_explorer_loads_no_pane_module():
    loaded = run_python("""
        import sys
        import rnn_tui.ui.app
        from rnn_tui.ui.panes import PANES
        print(" ".join(f"rnn_tui.ui.widgets.{p.module}" for p in PANES if f"rnn_tui.ui.widgets.{p.module}" in sys.modules))
        print("plotext" in sys.modules, "torch" in sys.modules)
    """).splitlines()
    assert loaded == ["", "False False"]


def test_a_tab_and_its_imports_load_when_it_is_first_opened():
    """In a process of its own: the explorer up on the States tab has loaded no other pane and no
    plotext; opening Training loads its module and plotext (the loss plot), and no other tab's."""
    out = run_python("""
        import asyncio, sys
        from textual.widgets import TabbedContent
        from rnn_tui.ui.app import ExplorerApp
        from rnn_tui.ui.source import TraceRequest
        from tests.ui.conftest import settle
        from tests.ui.fakes import FakeSource

        def panes():
            return sorted(m.rsplit(".", 1)[1] for m in sys.modules
                          if m.startswith("rnn_tui.ui.widgets.") and m.endswith("_pane"))

        async def main():
            app = ExplorerApp(FakeSource(), TraceRequest(hidden=4, text="abcabc"))
            async with app.run_test(size=(100, 30)) as pilot:
                await settle(pilot)
                print(" ".join(panes()), "plotext" in sys.modules)
                app.screen.query_one(TabbedContent).active = "tab-trainingpane"
                await settle(pilot)
                print(" ".join(panes()), "plotext" in sys.modules)

        asyncio.run(main())
    """).splitlines()
    first = ["equations_pane", "explore_pane", "heatmap_pane", "sequence_pane"]  # the States tab's own
    assert out[0].split() == [*first, "False"], out
    assert out[1].split() == ["analysis_pane", *first, "training_pane", "True"], out


async def test_only_the_open_tab_is_built_and_given_the_view():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert [type(p).__name__ for p in screen.panes] == ["ExplorePane"]
        assert not screen.query(GradientsPane)  # not built before its tab is opened
        tabs = screen.query_one(TabbedContent)
        tabs.active = "tab-gradientspane"
        await settle(pilot)
        grads = screen.query_one(GradientsPane)
        assert grads.view is screen.view
        tabs.active = "tab-explorepane"
        await settle(pilot)
        seen_by_gradients = grads.view
        await pilot.press("right", "right", "down")
        await settle(pilot)
        assert screen.view.step == 2 and screen.view.unit == 1
        assert grads.view is seen_by_gradients  # hidden: left alone
        assert screen.query_one(ExplorePane).view is screen.view
        tabs.active = "tab-gradientspane"
        await settle(pilot)
        assert grads.view is screen.view  # opened again: caught up, and drawn at the new step
        assert grads.query_one(StepBars).step == 2 and grads.query_one(MatrixView).cursor == (2, 2)
        assert {type(p).__name__ for p in screen.panes} == {"ExplorePane", "GradientsPane"}


async def test_a_step_refreshes_nothing_hidden():
    """Every widget a step asks to repaint is on screen: a hidden tab's widgets cost nothing (and
    do not make Textual rebuild its layout map, which a refresh of a hidden widget does)."""
    app = app_for()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        tabs = app.screen.query_one(TabbedContent)
        for info in PANES[1:-1]:  # build every tab but Lessons, then come back to States
            tabs.active = info.tab_id
            await settle(pilot)
        tabs.active = PANES[0].tab_id
        await settle(pilot)
        refreshed: list[Widget] = []
        original = Widget._set_dirty  # a repaint asked for: by Widget.refresh, or ui.compositor.repaint

        def spy(self, *regions):
            refreshed.append(self)
            return original(self, *regions)

        Widget._set_dirty = spy
        try:
            for key in ("right", "right", "down", "left"):
                await pilot.press(key)
                await pilot.pause()
        finally:
            Widget._set_dirty = original
        assert refreshed
        hidden = [w for w in refreshed if any(isinstance(a, TabPane) and not a.display for a in w.ancestors)]
        assert not hidden, sorted({type(w).__name__ for w in hidden})


async def test_training_progress_in_a_hidden_tab_is_drawn_when_it_is_opened():
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tabs = app.screen.query_one(TabbedContent)
        tabs.active = "tab-trainingpane"
        await settle(pilot)
        pane = app.screen.query_one(TrainingPane)
        tabs.active = "tab-explorepane"
        await settle(pilot)
        before = str(pane.query_one("#train-status").render())
        pane.state = TrainingState(status="running", step=7, steps=50, loss=1.25)
        await pilot.pause()
        assert str(pane.query_one("#train-status").render()) == before  # hidden: not drawn
        tabs.active = "tab-trainingpane"
        await settle(pilot)
        assert "step 7/50" in str(pane.query_one("#train-status").render())
