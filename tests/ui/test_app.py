"""Pilot tests: every interaction of the explorer, on precomputed numpy traces (no training)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, Select, TabbedContent

from rnn_tui.ui.app import ExplorerApp, run_explorer
from rnn_tui.ui.equations import num, step_equations
from rnn_tui.ui.messages import MoveTo, RequestChange, TraceFailed, TraceReady
from rnn_tui.ui.palette import matrix_names
from rnn_tui.ui.screens.help import HelpScreen
from rnn_tui.ui.screens.main import MIN_SIZE, SPEEDS, MainScreen
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.equations_pane import EquationsPane
from rnn_tui.ui.widgets.explore_pane import ExplorePane
from rnn_tui.ui.widgets.heatmap_legend import HeatmapLegend, exact
from rnn_tui.ui.widgets.heatmap_view import HEADER_ROWS, HeatmapView
from rnn_tui.ui.widgets.model_pane import ModelPane
from rnn_tui.ui.widgets.sequence_pane import SequencePane
from rnn_tui.ui.widgets.token_strip import TokenStrip
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

TEXT = "hello world, hello recurrent world"


def app_for(source=None, theme="dark", **request) -> ExplorerApp:
    request.setdefault("hidden", 12)
    request.setdefault("text", TEXT)
    return ExplorerApp(source or FakeSource(), TraceRequest(**request), theme=theme)


def screen_of(app) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


def lines_text(widget) -> list[str]:
    return ["".join(text for text, _ in line) for line in widget.lines]


async def resize(pilot, width: int, height: int) -> None:
    """Resize, and wait until the screen itself has taken the new size: the app passes a resize on
    to its screens from a timer, so one pause is not always enough on a loaded machine."""
    await pilot.resize_terminal(width, height)
    t0 = time.monotonic()
    while (tuple(pilot.app.screen.size) != (width, height) or pilot.app._resize_timer is not None) \
            and time.monotonic() - t0 < 5:
        await pilot.pause(0.02)
    await pilot.pause()


def shown_text(app) -> str:
    """The screen as drawn (the SVG's text, spaces restored)."""
    return app.export_screenshot().replace("&#160;", " ")


# ---- loading ---------------------------------------------------------------------------------
async def test_draws_a_loading_state_before_the_trace_arrives():
    source = FakeSource()
    source.release.clear()  # the build blocks until released, as torch's import would
    app = app_for(source)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = screen_of(app)
        assert screen.view is None and "loading" in screen.busy
        assert app.screen.query_one("#explore-map", HeatmapView).busy == screen.busy
        source.release.set()
        await settle(pilot)
        assert screen.view is not None and screen.busy == ""
        assert screen.view.trace.tokens == list(TEXT.replace(" ", "␣"))


async def test_a_failed_build_is_shown_not_raised():
    app = app_for(FakeSource(fail="hidden size too large for this demo"))
    seen = []
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        assert screen.view is None
        assert "hidden size too large" in screen.busy and "hidden size too large" in screen.error
        assert any(isinstance(m, TraceFailed) for m in seen)


# ---- stepping ----------------------------------------------------------------------------------
async def test_step_keys_move_and_clamp():
    app = app_for()
    seen = []
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        T = screen.view.trace.T
        assert any(isinstance(m, TraceReady) for m in seen)
        await pilot.press("right", "right", "l")
        assert screen.view.step == 3
        await pilot.press("left", "h")
        assert screen.view.step == 1
        await pilot.press("shift+right")
        assert screen.view.step == 11
        await pilot.press("shift+left", "shift+left")
        assert screen.view.step == 0
        await pilot.press("left")
        assert screen.view.step == 0  # clamped
        await pilot.press("end")
        assert screen.view.step == T - 1
        await pilot.press("right")
        assert screen.view.step == T - 1
        await pilot.press("home")
        assert screen.view.step == 0


async def test_unit_keys_select_rows_and_scroll_them_into_view():
    app = app_for(hidden=64)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("down", "down", "j")
        assert screen.view.unit == 3
        await pilot.press("up", "k")
        assert screen.view.unit == 1
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown")
        assert screen.view.unit == 41
        view = app.screen.query_one("#explore-map", HeatmapView)
        g = view.geometry()
        assert g.top <= 41 < g.top + g.rows  # scrolled to the selection
        await pilot.press("pageup")
        assert screen.view.unit == 31
        for _ in range(10):
            await pilot.press("pagedown")
        assert screen.view.unit == 63  # clamped to H-1


async def test_play_pause_and_speed():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        start_speed = screen.speed
        await pilot.press("plus")
        assert screen.speed == SPEEDS[SPEEDS.index(start_speed) + 1]
        await pilot.press("minus", "minus")
        assert screen.speed == SPEEDS[SPEEDS.index(start_speed) - 1]
        for _ in range(len(SPEEDS)):
            await pilot.press("plus")
        assert screen.speed == SPEEDS[-1]
        await pilot.press("minus", "minus")  # 8 steps a second: 34 steps take 4 s
        await pilot.press("space")
        assert screen.playing
        await pilot.pause(0.5)
        moved = screen.view.step
        assert moved >= 2
        await pilot.press("space")
        assert not screen.playing
        await pilot.pause(0.3)
        assert screen.view.step == moved  # paused: no more steps
        await pilot.press("plus", "plus", "end")
        screen.action_toggle_play()  # at the end, play starts over ...
        assert screen.playing and screen.view.step == 0
        for _ in range(60):  # ... and stops at the end
            await pilot.pause(0.1)
            if not screen.playing:
                break
        assert not screen.playing and screen.view.step == screen.view.trace.T - 1


async def test_layers_and_directions_cycle():
    app = app_for(layers=2, bidirectional=True, hidden=6)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        seen = [(screen.view.layer, screen.view.direction)]
        for _ in range(4):
            await pilot.press("right_square_bracket")
            seen.append((screen.view.layer, screen.view.direction))
        assert seen == [(0, "forward"), (0, "reverse"), (1, "forward"), (1, "reverse"), (0, "forward")]
        await pilot.press("left_square_bracket")
        assert (screen.view.layer, screen.view.direction) == (1, "reverse")
        # the equations follow the layer: a reverse direction reads h_{t+1}
        eq = app.screen.query_one(ExplorePane).query_one(EquationsPane).query_one("#equations-text")
        assert any("h_{t+1}" in line for line in lines_text(eq))


async def test_matrix_focus_and_layout_toggles():
    app = app_for(cell="gru")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        names = matrix_names(screen.view.trace.config)
        assert names == ["h", "r", "z", "n"]
        order = [screen.view.matrix]
        for _ in range(4):
            await pilot.press("v")
            order.append(screen.view.matrix)
        assert order == ["h", "r", "z", "n", "h"]
        await pilot.press("V")
        assert screen.view.matrix == "n"
        view = app.screen.query_one("#explore-map", HeatmapView)
        assert view.geometry().panels == tuple(names)
        await pilot.press("a")
        await pilot.pause()
        assert not screen.view.all_maps and view.geometry().panels == ("n",)
        await pilot.press("a")
        assert screen.view.all_maps
        explore = app.screen.query_one(ExplorePane)
        assert not explore.has_class("-no-equations")
        await pilot.press("e")
        await pilot.pause()
        assert explore.has_class("-no-equations")
        await pilot.press("e")
        await pilot.pause()
        assert not explore.has_class("-no-equations")


# ---- what is drawn ------------------------------------------------------------------------------
async def test_equations_show_the_trace_numbers_for_the_cursor():
    app = app_for(cell="lstm")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("right", "right", "right", "down", "down")
        await pilot.pause()
        entry = screen.view.entry
        text = "\n".join(lines_text(app.screen.query_one(ExplorePane).query_one(EquationsPane).query_one("#equations-text")))
        for gate in "ifgo":
            assert f"= {num(entry.gates[gate][3, 2])}" in text
            assert f"({num(entry.preacts[gate][3, 2])})" in text
        assert f"= {num(entry.c[3, 2])}" in text and f"= {num(entry.h[3, 2])}" in text
        se = step_equations(screen.view.trace, entry, 3, 2)
        assert text.startswith("t = 3") and se.unit == 2


async def test_legend_reads_out_the_exact_value_under_cursor_and_mouse():
    app = app_for()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("right", "down")
        await pilot.pause()
        legend = app.screen.query_one(ExplorePane).query_one(HeatmapLegend)
        readout = lines_text(legend)[1]
        assert exact(screen.view.entry.h[1, 1], "float32") in readout and "cursor" in readout
        view = app.screen.query_one("#explore-map", HeatmapView)
        g = view.geometry()
        x = g.panel_x(2) + (5 - g.start) * g.cell  # third matrix (i), step 5
        await pilot.hover("#explore-map", offset=(x, HEADER_ROWS + 4 - g.top))
        await pilot.pause()
        readout = lines_text(legend)[1]
        assert readout.startswith("i[t=5") and "unit 4" in readout and "mouse" in readout
        assert exact(screen.view.entry.gates["i"][5, 4], "float32") in readout


async def test_clicks_on_cells_and_tokens_move_the_cursor():
    app = app_for()
    seen = []
    async with app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        view = app.screen.query_one("#explore-map", HeatmapView)
        g = view.geometry()
        x = g.panel_x(1) + (6 - g.start) * g.cell
        await pilot.click("#explore-map", offset=(x, HEADER_ROWS + 3))
        await pilot.pause()
        assert (screen.view.step, screen.view.unit, screen.view.matrix) == (6, 3 + g.top, g.panels[1])
        strip = app.screen.query_one(SequencePane).query_one(TokenStrip)
        x0, _, t = strip._columns[2]
        await pilot.click(TokenStrip, offset=(x0, 0))
        await pilot.pause()
        assert screen.view.step == t
        assert any(isinstance(m, MoveTo) and m.step == t for m in seen)


async def test_wide_characters_line_up_in_the_strip():
    app = app_for(text="猫が好き cat", tokenize="char")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        from rich.cells import cell_len

        strip = app.screen.query_one(SequencePane).query_one(TokenStrip)
        rows = lines_text(strip)
        assert rows[0].startswith("x")
        # every row is cut into the same columns, measured in terminal cells
        for x0, x1, t in strip._columns:
            for row in rows:
                cells_before = 0
                for ch in row:
                    if cells_before >= x0:
                        break
                    cells_before += cell_len(ch)
                assert cells_before == x0


async def test_word_tokens_and_editing_the_input():
    source = FakeSource()
    app = app_for(source)
    seen = []
    async with app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("i")
        box = app.screen.query_one("#sequence-input", Input)
        assert box.has_focus
        box.value = ""
        await pilot.press(*"the cat sat")
        await pilot.press("enter")
        await settle(pilot)
        assert source.requests[-1].text == "the cat sat"
        assert not box.has_focus  # Enter hands the keys back to stepping
        assert screen.view.trace.tokens == list("the␣cat␣sat")
        assert any(isinstance(m, RequestChange) for m in seen)
        screen._change(tokenize="word")
        await settle(pilot)
        assert screen.view.trace.tokens == ["the", "cat", "sat"]
        await pilot.press("i", "escape")
        assert not box.has_focus
        await pilot.press("right")
        assert screen.view.step == 1


# ---- the model pane -----------------------------------------------------------------------------
async def test_model_pane_rebuilds_and_counts_parameters():
    source = FakeSource()
    app = app_for(source)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("m")
        await pilot.pause()
        assert app.screen.query_one(TabbedContent).active == "tab-modelpane"
        pane = app.screen.query_one(ModelPane)
        pane.query_one("#cell", Select).focus()
        pane.query_one("#cell", Select).value = "gru"
        await settle(pilot)
        assert source.requests[-1].cell == "gru"
        assert screen.view.trace.config.cell == "gru"
        hidden = pane.query_one("#hidden", Input)
        hidden.focus()
        hidden.value = "7"
        await pilot.press("enter")
        await settle(pilot)
        assert screen.view.trace.config.hidden_size == 7
        total = sum(v.size for v in screen.view.trace.params.values())
        summary = str(pane.query_one("#param-summary").render())
        assert f"{total:,} parameters" in summary
        hidden.value = "0"
        await pilot.press("enter")
        await pilot.pause()
        assert "hidden must be from 1" in str(pane.query_one("#model-error").render())
        assert screen.view.trace.config.hidden_size == 7  # nothing rebuilt
        pane.query_one("#cell", Select).focus()
        pane.query_one("#cell", Select).value = "rnn"
        await settle(pilot)
        assert not pane.query_one("#activation", Select).disabled
        pane.query_one("#activation", Select).focus()
        pane.query_one("#activation", Select).value = "relu"
        await settle(pilot)
        assert source.requests[-1].activation == "relu"
        assert screen.view.trace.config.activation == "relu"


# ---- overlays, palette, screenshots, quitting -------------------------------------------------------
async def test_help_opens_and_escape_closes_it():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("question_mark", "question_mark")
        assert isinstance(app.screen, MainScreen)


async def test_command_palette_runs_every_action_by_name():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Next step")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen) and screen.view.step == 1
        await pilot.press("ctrl+p")
        await pilot.press(*"Theme: mono")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "rnn-mono"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_every_action_has_a_palette_command():
    from rnn_tui.ui.actions import ACTIONS
    from rnn_tui.ui.commands import ExplorerCommands

    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        provider = ExplorerCommands(app.screen)
        titles = [title for title, _, _ in provider.commands()]
        assert all(action.title in titles for action in ACTIONS)
        assert "Show pane: Model" in titles and "Cell: gru" in titles
        # every key of every pane too, named after its tab
        from rnn_tui.ui.panes import pane_classes

        for cls in pane_classes():
            for binding in cls.BINDINGS:
                assert f"{cls.TITLE}: {binding.description}" in titles
        assert len(titles) == len(set(titles))  # no two commands read the same


async def test_the_palette_runs_a_panes_key_in_its_tab():
    from rnn_tui.ui.widgets.zoom_map import ZoomMap

    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert not app.screen.query(ZoomMap)  # the Present tab is built when it is first opened
        zoom = ZoomMap().zoom  # the zoom it starts at
        await pilot.press("ctrl+p")
        await pilot.press(*"Present: zoom in")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert app.screen.query_one(TabbedContent).active == "tab-presenterpane"
        assert app.screen.query_one(ZoomMap).zoom == zoom + 1
        await pilot.press("z")  # the tab's own keys work from there on
        assert app.screen.query_one(ZoomMap).zoom == zoom + 2


def help_shown(screen) -> str:
    """The help screen's table as plain text."""
    from rich.console import Console

    from rnn_tui.ui.screens.help import help_text

    assert isinstance(screen, HelpScreen)
    console = Console(width=160, record=True, file=open(os.devnull, "w"))
    console.print(help_text(screen.sections))
    return console.export_text()


async def test_help_lists_the_keys_of_the_open_tab():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        states = help_shown(app.screen)
        assert "Keys in the" not in states and "Next step" in states  # States has no keys of its own
        await pilot.press("escape")
        app.screen.query_one(TabbedContent).active = "tab-presenterpane"
        await settle(pilot)
        await pilot.press("question_mark")
        present = help_shown(app.screen)
        assert "Keys in the Present tab" in present
        for words in ("zoom in", "zoom out", "freeze", "contrast", "Next step"):
            assert words in present
        assert present.index("zoom in") < present.index("Next step")  # the tab's keys come first


def test_a_lesson_screens_own_keys_are_found():
    from rnn_tui.ui.actions import own_bindings
    from rnn_tui.ui.screens.lesson_screen import LessonScreen

    assert own_bindings(MainScreen, MainScreen) == []
    assert [b.description for b in own_bindings(LessonScreen, MainScreen)][:2] == ["next", "back"]


async def test_screenshot_is_saved(tmp_path):
    app = ExplorerApp(FakeSource(), TraceRequest(hidden=8), screenshot_dir=str(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await pilot.pause()
        shots = list(tmp_path.glob("*.svg"))
        assert len(shots) == 1 and shots[0].read_text().startswith("<svg")
        assert "rnn-tui-lstm-t0" in shots[0].name


@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_quit_keys(key):
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await pilot.pause()
        assert not app.is_running


async def test_tab_moves_focus_between_panes():
    app = app_for()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert isinstance(app.focused, HeatmapView)
        seen = set()
        for _ in range(6):
            await pilot.press("tab")
            seen.add(type(app.focused).__name__)
        assert len(seen) >= 2 and "HeatmapView" in seen | {type(app.focused).__name__}


# ---- terminals, themes ----------------------------------------------------------------------------
async def test_resizing_through_small_and_large_sizes_never_breaks():
    app = app_for(hidden=40, layers=2, bidirectional=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        for size in [(20, 5), (59, 15), (60, 16), (300, 100), (1, 1), (161, 49), (40, 60), (80, 24)]:
            await resize(pilot, *size)
            await pilot.press("right", "down", "v")
            await pilot.pause()
            small = size[0] < MIN_SIZE[0] or size[1] < MIN_SIZE[1]
            assert screen.has_class("-too-small") == small
            if small:
                message = str(app.screen.query_one("#too-small").render())
                assert f"{size[0]}×{size[1]}" in message
        assert screen.view.step > 0


async def test_theme_cycle_and_monochrome_glyphs():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "rnn-dark"
        names = []
        for _ in range(4):
            await pilot.press("t")
            names.append(app.theme)
        assert names == ["rnn-high-contrast", "rnn-colorblind", "rnn-mono", "rnn-dark"]
        app.theme = "rnn-mono"
        await pilot.pause()
        view = app.screen.query_one("#explore-map", HeatmapView)
        line = view.render_line(HEADER_ROWS)
        assert any(ch in "▁▂▃▄▅▆▇█" for ch in line.text)
        # the glyph carries the value: no cell has a colour of its own
        backgrounds = {seg.style.bgcolor for seg in line if seg.style is not None}
        foregrounds = {seg.style.color for seg in list(line)[1:] if seg.style is not None}
        assert len(backgrounds) == 1 and len(foregrounds) == 1


async def test_no_color_means_monochrome(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "rnn-mono"
        from rnn_tui.ui.palette import palette_for_theme
        from rnn_tui.ui.widgets.heatmap_view import render_mode

        assert render_mode(app, palette_for_theme(app.theme)) == "glyph"


@pytest.mark.parametrize("term,mode", [("xterm", "glyph+colour"), ("xterm-256color", "colour")])
async def test_16_and_256_colour_terminals(monkeypatch, term, mode):
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.setenv("TERM", term)
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        from rnn_tui.ui.palette import palette_for_theme
        from rnn_tui.ui.widgets.heatmap_view import render_mode

        assert render_mode(app, palette_for_theme(app.theme)) == mode
        text = app.screen.query_one("#explore-map", HeatmapView).render_line(HEADER_ROWS + 1).text
        assert any(ch in "▁▂▃▄▅▆▇█" for ch in text) == (mode != "colour")


def test_run_explorer_rejects_an_unknown_theme():
    with pytest.raises(ValueError, match="unknown theme 'neon'"):
        run_explorer(FakeSource(), theme="neon")


def test_importing_the_ui_loads_no_torch():
    code = ("import sys, rnn_tui.ui.app, rnn_tui.ui.source, rnn_tui.ui.panes, rnn_tui.ui.commands\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "False"


async def test_the_heap_is_frozen_once_when_the_engine_is_loaded(monkeypatch):
    """gc.freeze() happens in one place: the app, when a trace arrives and torch is loaded."""
    import gc
    import types

    frozen = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        if "torch" not in sys.modules:  # numpy traces: nothing of torch's to freeze
            assert frozen == [] and not app.heap_frozen
            monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
            screen = screen_of(app)
            screen._change(text="a new input")  # the next trace arrives with "torch" loaded
            await settle(pilot)
        assert frozen == [1] and app.heap_frozen
        screen_of(app)._change(text="and another")
        await settle(pilot)
        assert frozen == [1]  # once only
    from rnn_tui.ui import lab
    from rnn_tui.ui.widgets import training_pane

    assert not hasattr(lab, "freeze_heap") and "freeze_heap" not in vars(training_pane)


async def test_too_small_after_typing_and_changing_the_cell():
    """Type input, change the cell through the palette, then shrink (with an overlay open or not):
    the screen says it is too small, and grows back into the full layout."""
    app = app_for()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        await pilot.press("i", *"abc abc", "enter")
        await settle(pilot)
        await pilot.press("i", *"dd")  # typed, not entered: the box keeps focus
        await pilot.press("ctrl+p")
        await pilot.press(*"Cell: gru")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.request.cell == "gru" and screen.view.trace.config.cell == "gru"

        def too_small(size) -> None:
            assert app.screen is screen and screen.has_class("-too-small")
            text = shown_text(app)
            assert f"The terminal is {size[0]}×{size[1]}" in text and "needs at least" in text
            assert "States" not in text and "· l0" not in text  # nothing of the layout drawn

        def full() -> None:
            assert not screen.has_class("-too-small")
            text = shown_text(app)
            assert "needs at least" not in text and "States" in text and "· l0" in text

        for overlay in ("none", "ctrl+p", "question_mark"):
            if overlay != "none":
                await pilot.press(overlay)
            for size in [(70, 20), (50, 12)] if overlay != "question_mark" else [(59, 15)]:
                await resize(pilot, *size)
            if overlay != "none":
                await pilot.press("escape")  # the overlay closes over a screen resized underneath it
                await settle(pilot)
            too_small(size)
            await resize(pilot, 80, 24)
            full()


async def test_every_tab_opened_with_m_takes_the_focus_and_draws():
    """Walk the tabs with m at 80x24. Each tab is told it was opened (not left to the Show event,
    which Textual drops when the layout map was rebuilt in between, as after the Saturation tab's
    scroll): its keys work at once and it draws."""
    from rnn_tui.ui.panes import PANES, pane_of_tab
    from rnn_tui.ui.widgets.analysis_pane import AnalysisPane

    app = app_for(hidden=128)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        tabs = screen.query_one(TabbedContent)
        for _ in PANES[1:]:
            await pilot.press("m")
            await settle(pilot)
            cls = pane_of_tab(tabs.active)
            pane = screen.query_one(cls)
            if issubclass(cls, AnalysisPane) or cls.BINDINGS:
                assert app.focused is not None and pane in (app.focused, *app.focused.ancestors), cls.__name__
            if cls.TITLE == "Time-lapse":
                assert "no snapshots yet" in str(pane.query_one("#lapse-head").render())
        assert tabs.active == PANES[-1].tab_id


async def test_a_pane_focused_as_it_opened_does_not_pull_its_tab_back():
    """The focus a pane takes as its tab opens reaches the tabs later than a quick next key: the
    tab the person moved on to stays open (it went back one tab under load)."""
    from rnn_tui.ui.panes import PANES
    from rnn_tui.ui.widgets.lessons_pane import LessonsPane

    app = app_for(hidden=16)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        tabs = screen.query_one(TabbedContent)
        ids = [info.tab_id for info in PANES]
        lessons = next(i for i in ids if "lessons" in i)
        tabs.active = lessons
        await settle(pilot)
        pane = screen.query_one(LessonsPane)
        screen.action_focus_input()  # the focus outside the tabs, so that opening the pane moves it
        await settle(pilot)
        screen._open(pane)  # the pane takes the focus ...
        screen.action_next_pane()  # ... and the next key comes before the tabs hear of it
        await settle(pilot)
        assert tabs.active == ids[(ids.index(lessons) + 1) % len(ids)]
        await pilot.press("m")  # and the tabs still go on from there
        await settle(pilot)
        assert tabs.active == ids[(ids.index(lessons) + 2) % len(ids)]


async def test_the_focus_left_in_a_closed_tab_does_not_open_it_again():
    """Under load m went back one tab, or stayed: the Unit finder's list, hidden as its tab
    closed, passed the focus (Textual's blur on hide) to a sibling in that closed tab, and the
    message of that focus, arriving after the next tab's own, opened the closed tab again. The
    focus goes to no widget of a closed tab, and a tab's focus message that arrives after the
    focus moved on is not followed."""
    from textual.widgets import OptionList, TabPane

    from rnn_tui.ui.panes import PANES
    from rnn_tui.ui.widgets.unitfinder_pane import UnitFinderPane

    app = app_for(hidden=16)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = screen_of(app)
        tabs = screen.query_one(TabbedContent)
        finder = next(i.tab_id for i in PANES if i.name == "UnitFinderPane")
        tabs.active = finder
        await settle(pilot)
        listed = screen.query_one(UnitFinderPane).query_one(OptionList)
        assert app.focused is listed
        tabs.active = next(i.tab_id for i in PANES if i.name == "AttentionPane")  # a pane that takes no focus
        await settle(pilot)
        listed.blur()  # as its Hide does, whichever comes first
        await settle(pilot)
        closed = screen.query_one(f"#{finder}", TabPane)
        assert app.focused is None or closed not in app.focused.ancestors
        assert "attention" in tabs.active
        # a late focus message from the closed tab, the focus being elsewhere by then
        closed.post_message(TabPane.Focused(closed))
        await settle(pilot)
        assert "attention" in tabs.active


async def test_every_palette_help_line_shows_its_keys():
    """The palette reads help as markup: "[r]" or "[PgDn]" would vanish as a style tag."""
    from textual.content import Content

    from rnn_tui.ui.commands import ExplorerCommands

    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        for title, help_text, _ in ExplorerCommands(app.screen).commands():
            if " · key " in help_text:
                assert Content.from_markup(help_text).plain == help_text, title
        helps = dict((t, h) for t, h, _ in ExplorerCommands(app.screen).commands())
        assert helps["Training: run/resume"].endswith("· key r") and helps["Ten units down"].endswith("· key PgDn")


async def test_the_token_strip_restyles_with_the_theme_and_strikes_wrong_guesses_in_mono():
    app = app_for()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        strip = app.screen.query_one(TokenStrip)
        for name in ("rnn-mono", "rnn-dark", "rnn-mono", "rnn-high-contrast"):
            app.theme = name
            await pilot.pause()
            drawn = {style for line in strip.lines for _, style in line}
            fresh = strip.get_component_rich_style("token-strip--wrong", partial=True)
            assert strip.style("wrong") == fresh and fresh in drawn, name  # this theme's, not the last one's
            assert bool(fresh.strike) == (name == "rnn-mono"), name  # no colour to tell right from wrong
