"""The line views (status bar, token strip, legend, equations) hand Textual their lines
themselves (`LinesView.render_lines`) while Textual's styling pass would change nothing. What
reaches the terminal must be what Textual's own path draws: the same segments, line by line,
after steps, unit moves, a matrix switch and theme changes; with padding or a scrollbar shown,
Textual's own path draws them."""

from __future__ import annotations

from textual.geometry import Region
from textual.widget import Widget

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.equations_pane import EquationsPane
from rnn_tui.ui.widgets.heatmap_legend import HeatmapLegend
from rnn_tui.ui.widgets.lines_view import LinesView, plain_box
from rnn_tui.ui.widgets.status_bar import StatusBar
from rnn_tui.ui.widgets.token_strip import TokenStrip
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

TEXT = "the quick brown fox jumps over the lazy dog, and the dog sleeps on. " * 3


def views(app) -> list[LinesView]:
    screen = app.screen
    return [screen.query_one(StatusBar), screen.query_one(TokenStrip), screen.query_one(HeatmapLegend),
            screen.query_one(EquationsPane).query_one(LinesView)]


def assert_drawn_as_textual_draws(view: LinesView) -> None:
    width, height = view.outer_size
    crop = Region(0, 0, width, height)
    ours = view.render_lines(crop)
    view._styles_cache.clear()
    theirs = Widget.render_lines(view, crop)
    assert len(ours) == len(theirs) == height
    for y, (a, b) in enumerate(zip(ours, theirs)):
        assert list(a) == list(b), f"{type(view).__name__} line {y} differs"
        assert a.cell_length == width
    half = Region(2, 0, max(width - 5, 1), height)  # a crop, as a widget in front leaves one
    assert [list(s) for s in view.render_lines(half)] == [list(s) for s in Widget.render_lines(view, half)]


async def test_line_views_draw_as_textual_draws_them():
    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT, hidden=40))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        for keys in ([], ["right"] * 3, ["down"] * 2, ["v"], ["a"], ["right"] * 30, ["a"], ["end"]):
            await pilot.press(*keys)
            await pilot.pause()
            for view in views(app):
                assert view.size.height > 0
                assert plain_box(view) and not view.scrollbar_gutter.width  # the shortcut is taken
                assert_drawn_as_textual_draws(view)
        for theme in ("rnn-mono", "rnn-high-contrast", "rnn-dark"):
            app.theme = theme
            await pilot.pause()
            await pilot.press("right")
            await pilot.pause()
            for view in views(app):
                assert_drawn_as_textual_draws(view)


async def test_padding_or_a_scrollbar_goes_through_textuals_styling_pass():
    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT, hidden=40))
    async with app.run_test(size=(160, 24)) as pilot:
        await settle(pilot)
        strip = app.screen.query_one(TokenStrip)
        strip.styles.padding = (0, 2)
        equations = app.screen.query_one(EquationsPane).query_one(LinesView)
        await pilot.press("right")
        await pilot.pause()
        width, height = strip.outer_size
        lines = strip.render_lines(Region(0, 0, width, height))
        assert all(line.text.startswith("  ") and line.text.endswith("  ") for line in lines)
        assert len(equations.lines) > equations.size.height  # the equations scroll at this height
        assert equations.show_vertical_scrollbar
        assert_drawn_as_textual_draws(equations)
