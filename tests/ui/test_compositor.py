"""The explorer's compositor leaves the terminal as Textual's own does, frame after frame, while
it draws only the widgets that meet the changed regions and writes only what lies in them (a
step's heatmap columns, not its whole rows)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from textual._compositor import Compositor
from textual.geometry import Region

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.compositor import ChangedOnlyCompositor, SparseStrip, line_spans
from rnn_tui.ui.panes import PANES
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource
from tests.ui.terminal import screen_grid

TEXT = "the quick brown fox jumps over the lazy dog " * 3


async def test_partial_updates_leave_the_terminal_as_textuals_compositor_leaves_it():
    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        compositor = app.screen._compositor
        assert isinstance(compositor, ChangedOnlyCompositor)
        ours_grid, theirs_grid = screen_grid(app), screen_grid(app)
        frames: list[tuple[int, int]] = []  # bytes written: ours, Textual's
        drawn: list[int] = []
        sparse: list[int] = []
        ours = compositor.render_partial_update

        def both():
            changed = set(compositor._dirty_regions)
            theirs = Compositor.render_partial_update(compositor)  # Textual's, every widget drawn whole
            compositor._dirty_regions.update(changed)
            seen: list = []
            get_renders = compositor._get_renders

            def counting(crop=None):
                for render in get_renders(crop):
                    seen.append(render)
                    sparse.append(sum(isinstance(strip, SparseStrip) for strip in render[2]))
                    yield render

            compositor._get_renders = counting
            try:
                update = ours()
            finally:
                del compositor._get_renders
            drawn.append(len(seen))
            if update is not None:
                a, b = update.render_segments(app.console), theirs.render_segments(app.console)
                ours_grid.feed(a)
                theirs_grid.feed(b)
                assert ours_grid == theirs_grid, f"frame {len(frames)}: lines {ours_grid.differences(theirs_grid)}"
                frames.append((len(a), len(b)))
            return update

        compositor.render_partial_update = both
        for keys in (["right"] * 4, ["down"] * 3, ["m"], ["right"] * 2, ["left"], ["e"], ["right"], ["m"] * (len(PANES) - 1),
                     ["right"] * 3, ["a"], ["right"] * 30):
            await pilot.press(*keys)
            await pilot.pause()
        assert len(frames) >= 5
        assert "explore" in app.screen.query_one("#panes").active  # back on the maps for the last steps
        assert ours_grid == screen_grid(app)  # and what the terminal shows is the screen now
        assert min(drawn) < len(compositor.visible_widgets)  # some widgets were left undrawn
        assert any(sparse)  # steps wrote the heatmap's changed columns only ...
        assert min(a / b for a, b in frames) < 0.5  # ... far less than Textual writes


async def test_whole_frames_are_cut_as_textual_cuts_them():
    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for keys in ([], ["right"] * 3, ["m"], ["tab"], ["e"]):
            await pilot.press(*keys)
            await pilot.pause()
            compositor = app.screen._compositor
            crop = compositor.size.region
            ours = compositor._render_chops(crop, lambda y: True)
            theirs = Compositor._render_chops(compositor, crop, lambda y: True)
            assert [{x: list(s) for x, s in line.items()} for line in ours] == \
                   [{x: list(s) for x, s in line.items()} for line in theirs]



async def test_a_step_leaves_the_footer_the_tabs_the_input_and_the_containers_undrawn():
    """Their clips (their containers' areas) meet the changed lines; what they show does not. The
    containers of the changed widgets (the equations' bordered pane, the sequence pane, the
    screen) are not drawn either: the widgets in front take every changed piece."""
    from textual.widgets import Footer, Input
    from textual.widgets._tabbed_content import ContentTabs

    from rnn_tui.ui.screens.main import MainScreen
    from rnn_tui.ui.widgets.equations_pane import EquationsPane
    from rnn_tui.ui.widgets.heatmap_view import HeatmapView
    from rnn_tui.ui.widgets.lines_view import LinesView
    from rnn_tui.ui.widgets.sequence_pane import SequencePane
    from rnn_tui.ui.widgets.status_bar import StatusBar
    from rnn_tui.ui.widgets.token_strip import TokenStrip

    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        compositor = app.screen._compositor
        drawn: list = []
        get_renders = compositor._get_renders

        def counting(crop=None):
            for region, clip, strips in get_renders(crop):
                drawn.extend(w for w, at in compositor.visible_widgets.items() if at == (region, clip))
                yield region, clip, strips

        compositor._get_renders = counting
        try:
            await pilot.press("right")
            await pilot.pause()
        finally:
            del compositor._get_renders
        kinds = {type(w) for w in drawn}
        assert {StatusBar, TokenStrip, HeatmapView, LinesView} <= kinds
        assert not any(isinstance(w, (Footer, ContentTabs, Input, EquationsPane, SequencePane, MainScreen))
                       for w in drawn), sorted(k.__name__ for k in kinds)


async def test_a_step_under_a_notification_draws_the_cut_lines_whole():
    """A toast over the maps cuts their lines: where it does, the heatmap's changed-columns-only
    line is drawn whole for Textual to cut, and the terminal still shows the screen."""
    from rnn_tui.ui.widgets.heatmap_view import HeatmapView
    from tests.ui.terminal import watch_terminal

    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT, hidden=40))
    async with app.run_test(size=(90, 40), notifications=True) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#explore-map", HeatmapView)
        whole: list[int] = []
        row_line = view._row_line
        view._row_line = lambda *args: whole.append(1) or row_line(*args)
        await pilot.press("e")  # the maps alone, down to the footer
        app.notify("a note that stays over the maps " * 2, timeout=60)
        await pilot.pause(0.3)
        await settle(pilot)
        toast = next(w for w in app.screen._compositor.visible_widgets if type(w).__name__ == "Toast")
        assert app.screen._compositor.visible_widgets[toast][0].overlaps(view.region)
        terminal = watch_terminal(app)
        sparse_before = len(whole)
        for _ in range(4):
            await pilot.press("right")
            await pilot.pause()
        now = screen_grid(app)
        assert terminal == now, f"terminal lines {terminal.differences(now)} differ"
        assert "a note that stays" in "".join(now.text(y) for y in range(now.height))
        assert len(whole) > sparse_before  # lines under the toast were drawn whole


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12), st.integers(0, 8), st.integers(0, 6)), max_size=24))
def test_the_spans_of_changed_regions_are_textuals(boxes):
    """One step's regions are mostly columns that span the same lines: merged once for all of
    them, yet the spans of each line are the ones Textual computes."""
    regions = [Region(*box) for box in boxes]
    theirs = [span for span in Compositor._regions_to_spans(regions) if span[2] > span[1]]
    ours = [(y, x1, x2) for y, spans in line_spans(regions).items() for x1, x2 in spans]
    assert ours == theirs
