"""A lesson in the explorer: the panel follows the live lesson, its keys move the explorer, the
lessons menu opens a lesson and Esc comes back; presenter mode zooms, freezes and narrates."""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len

from rnn_tui.engine.narrate import narrate
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.lesson_app import LessonApp
from rnn_tui.ui.screens.lesson_screen import LessonScreen
from rnn_tui.ui.screens.lesson_source import LessonSource, parse_task
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.themes import theme_name
from rnn_tui.ui.widgets.braille_plot import PhasePlot
from rnn_tui.ui.widgets.lessons_panel import LessonPanel
from rnn_tui.ui.widgets.narration_bar import NarrationBar
from rnn_tui.ui.widgets.presenter_pane import PresenterPane
from rnn_tui.ui.widgets.unitfinder_strip import strip_lines
from rnn_tui.ui.widgets.zoom_map import ZOOMS, ZoomMap, window
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource, make_trace


async def wait_for_view(pilot, screen=None, key=None):
    for _ in range(200):
        await settle(pilot)
        s = screen or pilot.app.screen
        if s.view is not None and (key is None or s.view.trace.extras.get("lesson_key") == key):
            return s.view
        await pilot.pause(0.05)
    raise AssertionError("the trace never arrived")


def panel_text(app) -> str:
    panel = app.screen.query_one(LessonPanel)
    return "\n".join(str(s.render()) for s in panel.query("Static"))


def test_lesson_task_names():
    assert parse_task("lesson:bptt:lstm") == ("bptt", "lstm")
    assert parse_task("lesson:memory") == ("memory", "main")
    assert parse_task("recall") is None


async def test_memory_lesson_walks_the_explorer_through_its_steps():
    app = LessonApp(EngineSource(dtype="float64"), "memory")
    async with app.run_test(size=(160, 48)) as pilot:
        view = await wait_for_view(pilot, key="main")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LessonScreen)
        assert view.trace.config.cell == "rnn" and view.trace.config.hidden_size == 2
        assert screen.request.cell == "rnn" and screen.request.activation == "identity"  # shape corrected
        assert "Step 1/5" in panel_text(app) and "0.9" in panel_text(app)
        # the narration line tells step 0 of the live trace
        assert screen.query_one(NarrationBar).line() == narrate(view.trace, 0).text

        await pilot.press("n")  # step 2 points at t = 2, unit 0
        await settle(pilot)
        assert (screen.view.step, screen.view.unit) == (2, 0)
        assert "Press 1-4" in panel_text(app)
        await pilot.press("3")  # 0.25: right
        await settle(pilot)
        assert "Right!" in panel_text(app) and "0.2500" in panel_text(app)

        await pilot.press("n", "n")  # the flip-flop trace
        await wait_for_view(pilot, key="flipflop")
        await settle(pilot)
        assert screen.view.trace.config.activation == "tanh"
        assert screen.view.step == 7  # where that step points, applied once its trace arrived
        await pilot.press("n")  # the phase portrait
        await settle(pilot)
        plot = screen.query_one(PhasePlot)
        assert plot.display and plot.portrait is not None
        assert sum(fp.kind == "stable" for fp in plot.portrait.fixed_points) == 4
        assert "✓" in panel_text(app)  # the last step lists the live checks

        await pilot.press("b")
        await settle(pilot)
        assert "Step 4/5" in panel_text(app)
        await pilot.press("L")
        await settle(pilot)
        assert not screen.query_one(LessonPanel).display or screen.has_class("-lesson-hidden")
        await pilot.press("escape")  # the only screen: nothing to leave to
        await settle(pilot)
        assert app.screen is screen and app.is_running


async def test_lessons_menu_opens_a_lesson_and_escape_comes_back():
    app = ExplorerApp(FakeSource(), TraceRequest(hidden=6, text="hello"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_view(pilot)
        main = app.screen
        main.action_show_pane("tab-lessonspane")
        await settle(pilot)
        await pilot.press("down", "down", "down", "down", "enter")  # the fifth lesson: gru
        await settle(pilot)
        assert isinstance(app.screen, LessonScreen)
        assert app.screen.lesson_source.name == "gru"
        view = await wait_for_view(pilot, key="main")
        assert view.trace.config.cell == "gru"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is main


async def test_presenter_pane_zooms_freezes_and_narrates():
    source = FakeSource()
    app = ExplorerApp(source, TraceRequest(cell="lstm", hidden=6, text="hello world"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_view(pilot)
        screen = app.screen
        screen.action_show_pane("tab-presenterpane")
        await settle(pilot)
        pane = screen.query_one(PresenterPane)
        zoom = pane.query_one(ZoomMap)
        assert zoom.has_focus
        said = lambda: [n.message for n in app._notifications]  # noqa: E731
        assert not any("frozen" in m for m in said())  # opening the tab unfroze nothing
        start = zoom.zoom
        await pilot.press("z")
        assert zoom.zoom == start + 1
        await pilot.press("x", "x", "x", "x")
        assert zoom.zoom == 0
        await pilot.press("right", "right")
        await settle(pilot)
        assert zoom.view.step == 2
        bar = pane.query_one(NarrationBar)
        assert bar.line() == narrate(screen.view.trace, 2).text
        await pilot.press("f")  # freeze: the picture holds while the cursor moves on
        await pilot.press("right")
        await settle(pilot)
        assert screen.view.step == 3 and zoom.view.step == 2
        assert "frozen" in str(bar.render())
        assert said()[-1].startswith("frozen")
        await pilot.press("f")
        await settle(pilot)
        assert zoom.view.step == 3 and said()[-1] == "unfrozen"
        await pilot.press("space")  # autoplay, then freeze pauses it
        await settle(pilot)
        assert screen.playing
        await pilot.press("f")
        await settle(pilot)
        assert not screen.playing
        await pilot.press("f")
        await pilot.press("c")
        assert app.theme == theme_name("high-contrast")
        await pilot.press("c")
        assert app.theme == theme_name("dark")


def test_zoom_map_draws_values_in_large_cells():
    trace = make_trace(cell="gru", hidden=5, text="abcdefgh")
    from rnn_tui.ui.state import View

    class Host:  # the map reads the app's theme and colour system only
        theme = theme_name("dark")
        no_color = False
        console = type("Console", (), {"color_system": "truecolor"})()

    zm = ZoomMap()
    zm.zoom = 2
    view = View(trace, step=3, unit=1, matrix="z")
    zm.view = view
    # draw needs self.app; give it the bare minimum through the private attribute Textual reads
    text = _draw_detached(zm, Host(), 60, 20)
    lines = text.plain.split("\n")
    assert all(cell_len(line) <= 60 for line in lines)
    z = trace.layers[0].gates["z"]
    assert f"{z[3, 1]:+.3f}" in text.plain  # the cursor cell's value, written in it
    assert lines[0].lstrip().startswith("z")
    # 16 colours: the glyph ramp carries the value, coloured; the number is still written in
    Host.console.color_system = "standard"
    zm.zoom = 1
    sixteen = _draw_detached(zm, Host(), 60, 20)
    assert any(ch in sixteen.plain for ch in "▁▂▃▄▅▆▇█") and f"{z[3, 1]:+.2f}"[:4] in sixteen.plain
    # ... in the terminal's own colour (a value near zero takes the background's colour), the
    # glyph beside it in the value's colour
    numbers = [s for s in sixteen.spans if any(c in "0123456789" for c in sixteen.plain[s.start:s.end])]
    glyphs = [s for s in sixteen.spans if sixteen.plain[s.start:s.end].strip() in tuple("▁▂▃▄▅▆▇█")]
    assert numbers and all(s.style.color is None for s in numbers[1:])  # (the first: the header line)
    assert glyphs and all(s.style.color is not None for s in glyphs)
    for zoom in (2, 3):  # larger cells: the number on its own line, plain too
        zm.zoom = zoom
        big = _draw_detached(zm, Host(), 60, 20)
        written = [s for s in big.spans if f"{z[3, 1]:+.3f}" in big.plain[s.start:s.end]]
        assert written and all(s.style.color is None for s in written)
    assert window(0, 5, 3) == (0, 3) and window(9, 4, 10) == (6, 10) and window(5, 4, 10) == (3, 7)
    assert len(ZOOMS) >= 3


def _draw_detached(widget, host, width, height):
    from unittest import mock

    with mock.patch.object(type(widget), "app", new=property(lambda self: host)):
        return widget.draw(width, height)


def test_unit_strip_colours_and_wraps():
    from rnn_tui.ui.palette import PALETTES

    tokens = list("ab (cd) ef " * 5)
    values = np.linspace(-1, 1, len(tokens))
    lines = strip_lines(tokens, values, 12, PALETTES["dark"])
    assert all(cell_len(line.plain) <= 12 for line in lines)
    assert "".join(line.plain for line in lines).replace("␣", " ") == "".join(tokens)
    styles = {span.style.bgcolor for line in lines for span in line.spans}
    assert len(styles) > 5  # many colours along the ramp
    mono = strip_lines(tokens, values, 12, PALETTES["mono"])
    assert len(mono) == 2 * len(lines) and "█" in "".join(line.plain for line in mono)
    sixteen = strip_lines(tokens, values, 12, PALETTES["dark"], mode="glyph+colour")
    assert len(sixteen) == 2 * len(lines)
    assert any(span.style.color is not None for line in sixteen[1::2] for span in line.spans)


async def test_lesson_source_builds_once_and_passes_other_requests_on():
    inner = FakeSource()
    src = LessonSource(inner, "gru")
    first = src.build(src.first_request())
    run = first.extras["lesson"]
    again = src.build(TraceRequest(task="lesson:gru:textbook", text=""))
    assert again.extras["lesson"] is run and again.config.cell == "gru-textbook"
    plain = src.build(TraceRequest(cell="rnn", hidden=3, text="abc"))
    assert "lesson" not in plain.extras and plain.config.hidden_size == 3
    assert ("lesson:gru:textbook", "lesson gru: the 'textbook' model") in src.tasks()
    # typed input runs through the lesson's own model (its weights, read back from the trace)
    own = src.build(TraceRequest(task="lesson:gru:main", text="cab"))
    assert own.tokens == ["c", "a", "b"] and own.extras["lesson"] is run
    for name, value in run.traces["main"].params.items():
        np.testing.assert_array_equal(own.params[name], value)
    np.testing.assert_allclose(own.layers[0].h[1:], src.build(TraceRequest(task="lesson:gru:main", text="cab")).layers[0].h[1:])
    from rnn_tui.ui.source import SourceError

    import pytest

    with pytest.raises(SourceError, match="not a token"):
        src.build(TraceRequest(task="lesson:gru:main", text="xyz"))
