"""The heatmaps hand Textual their lines themselves (`HeatmapView.render_lines`), joined from
pieces whose terminal text is rendered once, and on a step only the changed columns
(`render_changed`). What reaches the terminal must be what Textual's own path would draw: the
same segments, a rendered text equal to rendering those segments afresh, and a terminal fed
every update showing the screen drawn whole, after steps, window jumps, unit moves, a matrix
switch and a theme change."""

from __future__ import annotations

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource
from tests.ui.terminal import Grid, screen_grid, watch_terminal

TEXT = "the quick brown fox jumps over the lazy dog, and the dog sleeps on. " * 3


def app_for(theme: str = "dark", **request) -> ExplorerApp:
    request.setdefault("hidden", 40)
    return ExplorerApp(FakeSource(), TraceRequest(text=TEXT, **request), theme=theme)


def assert_drawn_as_textual_draws(view: HeatmapView, terminal: Grid) -> None:
    """The lines the heatmap draws now (from its caches) equal those Textual's styling pass
    makes of `render_line`, and those drawn from nothing (every cache dropped, as a style change
    drops them); their rendered text (joined from the pieces' texts) equals rendering their
    segments afresh; and the terminal, fed every update since the start (a step's writes only
    the changed columns), shows what the screen drawn whole shows."""
    console = view.app.console
    width, height = view.size
    crop = Region(0, 0, width, height)
    now = screen_grid(view.app)
    assert terminal == now, f"terminal lines {terminal.differences(now)} differ"
    drawn = view.render_lines(crop)
    view._styles_cache.clear()
    theirs = Widget.render_lines(view, crop)
    view.notify_style_update()  # drops the rows, pieces and lines kept for the window
    fresh = type(view).render_lines(view, crop)
    assert len(drawn) == len(theirs) == len(fresh) == height
    for y, (a, b, c) in enumerate(zip(drawn, theirs, fresh)):
        assert list(a) == list(b) == list(c), f"line {y} differs"
        assert a.cell_length == width
        assert a.render(console) == Strip(list(a), width).render(console), f"line {y}: rendered text differs"


async def test_lines_match_textuals_own_drawing_while_stepping():
    app = app_for()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#explore-map", HeatmapView)
        terminal = watch_terminal(app)
        view.refresh()
        await pilot.pause()
        assert_drawn_as_textual_draws(view, terminal)
        starts = set()
        for keys in (["right"] * 3, ["right"] * 40, ["down"] * 3, ["left"] * 25, ["end"], ["home"],
                     ["v"], ["a"], ["right"] * 5, ["a"], ["pagedown"] * 4, ["right"] * 7):
            await pilot.press(*keys)
            await pilot.pause()
            starts.add(view.geometry().start)
            assert_drawn_as_textual_draws(view, terminal)
        assert len(starts) > 2  # the window jumped on the way


async def test_the_next_window_is_built_ahead_and_drawn_as_textual_draws():
    """Nearing the edge of the time window, the rows of the window the jump will show are built
    after the frame; the step that jumps takes them (no row built in that frame) and draws what
    Textual would. Built ahead for a look that changed before the jump, they are not used."""
    app = app_for()
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#explore-map", HeatmapView)
        terminal = watch_terminal(app)
        for theme_change in (False, True):
            g = view.geometry()
            edge = g.start + g.steps - g.steps // 8  # the first step that jumps the window right
            while view.view.step < edge - 1:
                await pilot.press("right")
                await pilot.pause()
            await pilot.pause(0.2)
            ahead = view._ahead
            assert ahead is not None and view._ahead_target is None  # built to the end
            assert len(ahead[3]) == min(g.rows, view.view.trace.config.hidden_size - g.top)
            built = []
            runs = view._runs
            view._runs = lambda *args: built.append(1) or runs(*args)
            if theme_change:
                app.theme = "rnn-high-contrast"
                await pilot.pause()
            await pilot.press("right")
            await pilot.pause()
            view._runs = runs
            assert view.geometry().start != g.start  # it jumped
            assert (view._rows is ahead[3]) is not theme_change
            assert bool(built) is theme_change  # rows built in the jump's frame only for the new look
            assert_drawn_as_textual_draws(view, terminal)


async def test_lines_match_in_the_glyph_and_high_contrast_looks_and_one_cell_steps():
    app = app_for(cell="gru")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#explore-map", HeatmapView)
        terminal = watch_terminal(app)
        assert view.geometry().cell == 1  # narrow: one cell per step
        for theme in ("rnn-mono", "rnn-high-contrast", "rnn-dark"):
            app.theme = theme
            await pilot.pause()
            await pilot.press("right", "right", "down")
            await pilot.pause()
            assert_drawn_as_textual_draws(view, terminal)


async def test_a_padded_heatmap_is_drawn_through_textuals_styling_pass():
    """The shortcut holds only while the maps have no border, padding, tint or opacity: with
    padding, Textual's own pass draws it (and pads it)."""
    app = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        view = app.screen.query_one("#explore-map", HeatmapView)
        view.styles.padding = (0, 2)
        await pilot.pause()
        await pilot.press("right")
        await pilot.pause()
        width, height = view.outer_size
        lines = view.render_lines(Region(0, 0, width, height))
        assert all(line.text.startswith("  ") and line.text.endswith("  ") for line in lines)
