"""The explorer does what its flags, keys and labels say: one test per thing a walk through it
found wrong (each failed before its fix)."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input, TabbedContent

from rnn_tui.cli import build_parser, given_flags, spec_from_args
from rnn_tui.engine.subject import Spec
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.launch import DEMO, with_default_demo
from rnn_tui.ui.source import EngineSource, TraceRequest
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

HAS_DEMO = (DEMO / "model.safetensors").is_file()


def spec_of(argv: list[str]) -> Spec:
    args = build_parser().parse_args(argv)
    return with_default_demo(spec_from_args(args), given_flags(args))


# ---- flags -------------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAS_DEMO, reason="the demo model is not in this checkout")
@pytest.mark.parametrize("argv", [["--hidden", "16"], ["--seed", "0"], ["--layers", "1"], ["--tokenize", "char"]])
def test_a_flag_typed_with_its_default_value_is_a_choice(argv):
    assert spec_of([]).checkpoint == str(DEMO)  # nothing typed: the trained demo
    assert spec_of(["--device", "cpu"]).checkpoint == str(DEMO)  # where to compute is no choice of model
    assert spec_of(argv).checkpoint is None


async def test_the_explorer_opens_the_model_hidden_16_asks_for():
    source = EngineSource.from_spec(spec_of(["--hidden", "16"]))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        cfg = app.screen.view.trace.config
        assert (cfg.hidden_size, cfg.cell) == (16, "lstm")
        assert source.run_directory is None  # not the demo run


# ---- --tokenize word ---------------------------------------------------------------------------------
async def test_words_separated_by_spaces_stay_words_in_the_explorer():
    text = "南开 大学 很 好 ， 我 爱 南开 大学"
    source = EngineSource.from_spec(spec_of(["--tokenize", "word", "--input", text, "--hidden", "4"]))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        trace = app.screen.view.trace
        assert trace.tokens == ["南开", "大学", "很", "好", "，", "我", "爱", "南开", "大学"]
        assert trace.config.vocab_size == 7


# ---- keys ------------------------------------------------------------------------------------------------
def app_on(**request) -> ExplorerApp:
    request.setdefault("hidden", 12)
    request.setdefault("text", "hello world, hello recurrent world")
    return ExplorerApp(FakeSource(), TraceRequest(**request))


def burst(app, *keys: str) -> None:
    """Keys as a terminal delivers a fast typist's: all queued before the first is handled
    (pilot.press waits for each key to be handled before sending the next)."""
    from textual import events

    chars = {"enter": "\r", "backspace": "\x7f", "escape": "\x1b", "tab": "\t"}
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else chars.get(key)))


async def open_tab(pilot, tab: str) -> None:
    pilot.app.screen.query_one(TabbedContent).active = tab
    await settle(pilot)


async def test_keys_typed_fast_into_a_model_field_arrive_in_order():
    app = app_on(hidden=128)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        app.screen.query_one("#hidden", Input).focus()
        await pilot.pause()
        burst(app, "backspace", "backspace", "backspace", "3", "2", "enter")
        await settle(pilot)
        assert app.focused.value == "32"
        assert app.screen.request.hidden == 32


@pytest.mark.parametrize("key", ["enter", "escape"])
async def test_leaving_the_input_box_stays_in_the_open_tab(key):
    app = app_on()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-modelpane")
        await pilot.press("i", "x", key)
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-modelpane"
        assert not isinstance(app.focused, Input)


async def test_escape_in_a_training_field_stays_in_the_training_tab():
    app = app_on()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-trainingpane")
        app.screen.query_one("#train-steps", Input).focus()
        await pilot.press("5", "escape")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-trainingpane"
        assert not isinstance(app.focused, Input)


def footer_keys(app) -> dict[str, str]:
    return {key: b.binding.description for key, b in app.screen.active_bindings.items() if b.binding.show}


async def test_ctrl_c_quits_even_while_typing_and_the_footer_says_so():
    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert footer_keys(app).get("q") == "quit" and "ctrl+c" not in footer_keys(app)
        await pilot.press("i")
        await pilot.press("end", "q")  # q is a letter in the box
        assert app.focused.value.endswith("q") and app.is_running
        assert footer_keys(app).get("ctrl+c") == "quit"
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running


async def test_ctrl_c_quits_from_the_maps():
    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running


# ---- status and labels -------------------------------------------------------------------------------------
async def test_undo_leaves_no_loss_nan_behind():
    from rnn_tui.ui.widgets.training_pane import TrainingPane, TrainingState

    app = app_on()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-trainingpane")
        pane = app.screen.query_one(TrainingPane)
        pane._untrained = (app.screen.request, app.screen.view.trace)
        pane.state = TrainingState(status="stopped", step=40, steps=100, loss=1.25, message="stopped at step 40")
        await pilot.press("u")
        await settle(pilot)
        text = str(pane.query_one("#train-status").render())
        assert "NaN" not in text and "step 40" not in text
        assert "back to the weights from before training" in text


def test_a_trace_with_nothing_scored_has_no_loss_of_zero():
    from dataclasses import replace

    from rnn_tui.ui.state import View
    from rnn_tui.ui.widgets.status_bar import status_line
    from tests.ui.fakes import make_trace

    trace = make_trace(text="hello")
    unscored = replace(trace, targets=[None] * len(trace.targets), loss=0.0, extras={})
    line = "".join(text for text, _ in status_line(View(unscored), "", "", False, 4.0))
    assert "loss 0.0000" not in line and "no targets, no loss" in line
    assert "loss " + f"{trace.loss:.4f}" in "".join(text for text, _ in status_line(View(trace), "", "", False, 4.0))


def test_the_advice_after_a_divergence_fits_the_optimizer():
    from rnn_tui.engine.train import TrainConfig, divergence_advice

    adam = divergence_advice(TrainConfig(optimizer="adam", lr=0.01))
    assert "--clip" not in adam and "--lr" in adam
    assert "--clip 1" in divergence_advice(TrainConfig(optimizer="sgd", clip=None))
    assert "smaller --clip (now 5)" in divergence_advice(TrainConfig(optimizer="sgd", clip=5.0))


async def test_the_flow_readout_names_the_value_it_shows():
    from rnn_tui.ui.widgets.matrix_view import MatrixView

    app = app_on(cell="lstm", hidden=6, text="abcabcab")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-gradientspane")
        await settle(pilot)
        mv = app.screen.query_one(MatrixView)
        r, k = mv.cursor
        line = mv._readout_line(mv.matrix, 200).text
        value = float(mv.matrix.raw[r, k])
        assert "(log10)" not in line.split("=")[0]  # the name before the number is the norm's own
        assert mv.matrix.value_format.format(value) in line and f"log10 {np.log10(value):.2f}" in line


def test_equations_above_the_first_layer_read_the_layer_below():
    from rnn_tui.ui.equations import step_equations
    from tests.ui.fakes import make_trace

    for bidirectional, below in ((False, "h⁽⁰⁾_t"), (True, "[h→;h←]⁽⁰⁾_t")):
        trace = make_trace("gru", layers=2, bidirectional=bidirectional, text="hello")
        first = [t.symbol for t in step_equations(trace, trace.layer(0), 2, 0).equations[0].terms]
        upper = [t.symbol for t in step_equations(trace, trace.layer(1), 2, 0).equations[0].terms]
        assert first[0] == "W_ir x_t"
        assert upper[0] == f"W_ir {below}" and not any("x_t" in s for s in upper)


async def test_x_says_that_it_flipped_the_sign():
    app = app_on(cell="rnn", hidden=6)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        await open_tab(pilot, "tab-interventionspane")
        await pilot.press("x")
        await pilot.pause()
        said = [n.message for n in app._notifications]
        h = float(app.screen.view.trace.layer(0).h[2, 0])
        assert any("sign flipped" in m and f"{-h:+.4g}" in m for m in said), said


async def test_t_names_the_theme_it_chose():
    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause()
        assert any(n.message.startswith("theme: high-contrast (2 of") for n in app._notifications)


async def test_a_run_that_diverged_early_is_drawn_as_dots_and_says_where():
    from textual.app import App

    from rnn_tui.ui.widgets.loss_plot import LossPlot

    class One(App):
        def compose(self):
            yield LossPlot()

    app = One()
    async with app.run_test(size=(60, 16)) as pilot:
        plot = app.query_one(LossPlot)
        plot.show(((1, 2), (0.4, 0.9)), marker_step=3)
        await pilot.pause(0.3)
        drawn = plot.plt.build()
        assert "diverged at step 3" in drawn and "●" in drawn


# ---- the palette -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("query, check", [
    ("hidden 48", lambda app: app.screen.request.hidden == 48),
    ("Layers: 2", lambda app: app.screen.request.layers == 2),
    ("Direction: bidirectional", lambda app: app.screen.request.bidirectional),
    ("Theme: colorblind", lambda app: app.theme == "rnn-colorblind"),
])
async def test_the_palette_sets_size_layers_direction_and_theme(query, check):
    app = app_on()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*query)
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert check(app)


# ---- at 80x24 ---------------------------------------------------------------------------------------------
async def test_every_tab_name_is_on_the_bar_at_80_columns_and_the_full_ones_at_200():
    from textual.widgets import Tab

    from rnn_tui.ui.panes import PANES, SHORT_TITLES

    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tabs = list(app.screen.query(Tab))
        assert [t.label_text for t in tabs] == [SHORT_TITLES.get(i.title, i.title) for i in PANES]
        assert max(t.region.right for t in tabs) <= 80 and all(t.region.width >= len(t.label_text) for t in tabs)
        await pilot.resize_terminal(200, 60)
        await settle(pilot)
        assert [t.label_text for t in app.screen.query(Tab)] == [i.title for i in PANES]


async def test_the_footer_fits_80_columns_on_every_tab_and_keeps_help_and_quit():
    from rnn_tui.ui.panes import PANES
    from rnn_tui.ui.screens.main import PALETTE_HINT

    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for info in PANES:
            await open_tab(pilot, info.tab_id)
            shown = {}
            for key, b in app.screen.active_bindings.items():
                if b.binding.show and key != "ctrl+p":
                    shown.setdefault(b.binding.action, len(app.get_key_display(b.binding)) + len(b.binding.description) + 2)
            assert sum(shown.values()) <= 80 - PALETTE_HINT, (info.title, shown)
            assert "help" in shown and "quit" in shown, info.title


# ---- heatmaps ------------------------------------------------------------------------------------------
def test_a_few_large_values_do_not_set_the_scale_and_are_marked():
    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.ui.palette import ABOVE, BELOW, LEVELS, robust_bound, scale_for

    rng = np.random.default_rng(0)
    c = rng.uniform(-3, 3, size=(40, 16))
    c[7, 3], c[9, 1] = 26.5, -20.0
    cfg = ModelConfig(cell="lstm", input_size=4, hidden_size=16, output_size=4, vocab_size=4)
    scale = scale_for("c", cfg, c)
    assert scale.hi == pytest.approx(np.percentile(np.abs(c), 98)) and scale.peak == pytest.approx(26.5)
    assert scale.label() == f"±{scale.hi:.2f} (+ to 26.5)".replace(".00 ", " ") and scale.label(brief=True).endswith("+")
    levels = scale.levels(c, mark_clipped=True)
    assert levels[7, 3] == ABOVE and levels[9, 1] == BELOW
    assert scale.levels(c)[7, 3] == LEVELS - 1  # other maps (the Present tab's) clip as before
    assert (levels[np.abs(c) <= scale.hi] < LEVELS).all()
    even = rng.uniform(-3, 3, size=(40, 16))  # no outliers: the data's own range, nothing marked
    assert robust_bound(even) == (pytest.approx(np.abs(even).max()), None)


class OutlierSource(FakeSource):
    def build(self, request):
        trace = super().build(request)
        trace.layers[0].c[3, 2] = 50.0  # one cell far beyond the rest
        return trace


async def test_the_heatmap_marks_clipped_cells_and_reads_out_their_true_value():
    from rnn_tui.ui.widgets.heatmap_legend import HeatmapLegend
    from rnn_tui.ui.widgets.heatmap_view import HeatmapView

    app = ExplorerApp(OutlierSource(), TraceRequest(cell="lstm", hidden=8, text="hello world, hello recurrent world"))
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("v", "a")  # c alone, wide
        await pilot.press("right", "right", "right", "down", "down")
        await settle(pilot)
        hm = app.screen.query_one("#explore-map", HeatmapView)
        title, axis = hm.render_line(0).text, hm.render_line(1).text
        assert "c ±" in title and "(+ to 50)" in title
        assert axis.startswith("u╲ 0")  # 8 units, a 3-column gutter: the corner keeps a space before the 0 tick
        g = hm.geometry()
        x = g.gutter + (3 - g.start) * g.cell
        for step, unit, drawn in ((5, 1, "+"), (3, 1, "▏+"), (3, 2, "▏◆")):  # plain, its step's column, the cursor
            app.screen.view = app.screen.view.moved(step=step, unit=unit)
            await pilot.pause()
            row = hm.render_line(2 + 2 - g.top).text
            assert row[x:x + g.cell].strip() == drawn, row
        app.screen.view = app.screen.view.moved(step=3, unit=2)
        await pilot.pause()
        readout = "".join(t for t, _ in app.screen.query_one(HeatmapLegend).lines[1])
        assert "= 50" in readout  # the true value, not the scale's end
        scales = "".join(t for t, _ in app.screen.query_one(HeatmapLegend).lines[0])
        hi = title.split("c ±")[1].split()[0]
        assert scales.startswith("c ") and f" {hi}+ " in scales, scales  # the legend too marks values beyond
        assert scales.count("+") == 1, scales  # and only on the clipped scale


def test_the_axis_corner_keeps_a_space_before_the_first_tick():
    from rnn_tui.ui.widgets.heatmap_view import axis_corner

    for gutter, corner in ((3, "u╲ "), (4, "u╲t "), (5, " u╲t "), (7, "unit╲t ")):
        assert axis_corner(gutter) == corner
    assert all(axis_corner(g).endswith(" ") and len(axis_corner(g)) == g for g in range(1, 12))


# ---- a new input on a model made for its input ------------------------------------------------------------
async def test_a_new_text_with_other_tokens_says_it_is_a_new_model():
    app = app_on(text="hello")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("i", "ctrl+u", *"olleh", "enter")  # the same tokens: the same model, nothing said
        await settle(pilot)
        assert not [n for n in app._notifications if "new model" in n.message]
        await pilot.press("i", "ctrl+u", *"help", "enter")
        await settle(pilot)
        said = [n.message for n in app._notifications if "new model" in n.message]
        assert len(said) == 1 and "adds p" in said[0] and "drops o" in said[0] and "(4 tokens, were 4)" in said[0]


# ---- Time-lapse -----------------------------------------------------------------------------------------
async def test_the_header_and_the_token_strip_follow_the_snapshot_on_screen():
    from rnn_tui.ui.lab import SnapshotRecord, lab_for
    from rnn_tui.ui.widgets.status_bar import StatusBar
    from rnn_tui.ui.widgets.timelapse_pane import TimelapsePane
    from rnn_tui.ui.widgets.token_strip import TokenStrip

    app = ExplorerApp(FakeSource(), TraceRequest(cell="lstm", hidden=5, text="abcdabcd"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        trace = app.screen.view.trace
        lab = lab_for(app.screen)
        for step, k in ((0, 0.25), (20, 1.0)):
            tensors = {n: (v * k).astype(v.dtype) for n, v in trace.params.items()}
            lab.add_snapshot(trace.config, SnapshotRecord(step, 1.0, None, tensors), "a test run")
        await open_tab(pilot, "tab-timelapsepane")
        await pilot.press("comma")
        await settle(pilot)
        pane = app.screen.query_one(TimelapsePane)
        first = pane.snapshot_trace()
        status = "".join(t for t, _ in app.screen.query_one(StatusBar).lines[0])
        assert f"loss {first.loss:.4f}" in status and "snapshot at step 0" in status
        strip = app.screen.query_one(TokenStrip)
        assert strip.view.trace.params["weight_hh_l0"] is first.params["weight_hh_l0"]
        await pilot.press("right")
        await settle(pilot)
        assert strip.view.step == 1 and strip.view.trace.params["weight_hh_l0"] is first.params["weight_hh_l0"]
        await open_tab(pilot, "tab-modelpane")  # another tab: the explorer's own trace again
        assert strip.view.trace is app.screen.view.trace
        assert f"loss {trace.loss:.4f}" in "".join(t for t, _ in app.screen.query_one(StatusBar).lines[0])


# ---- the memory lesson's phase portrait -------------------------------------------------------------------
async def test_the_phase_portrait_describes_the_input_typed_in_the_lesson():
    from rnn_tui.ui.lesson_app import LessonApp
    from rnn_tui.ui.widgets.braille_plot import PhasePlot, legend_line, render_phase
    from rnn_tui.ui.widgets.lessons_panel import LessonPanel
    from tests.ui.test_lessons_screen import wait_for_view

    app = LessonApp(EngineSource(dtype="float64"), "memory")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_view(pilot, key="main")
        await pilot.press("n", "n", "n")
        await wait_for_view(pilot, key="flipflop")
        await pilot.press("n")  # the phase portrait
        await settle(pilot)
        screen = app.screen
        await pilot.press("i", "ctrl+u", *"ad--", "enter")  # unit 0 up, unit 1 down: the (+, -) corner
        await settle(pilot)
        for _ in range(40):
            if screen.view is not None and screen.view.trace.tokens == list("ad--"):
                break
            await pilot.pause(0.1)
        await pilot.press("end")
        await settle(pilot)
        h = screen.view.trace.layers[0].h[-1]
        assert h[0] > 0.5 and h[1] < -0.5
        plot = screen.query_one(PhasePlot)
        text = render_phase(plot.portrait, 120, 30, step=plot.step).plain
        assert "nearest: stable (+0.96,-0.96)" in text, text.splitlines()[-2:]
        np.testing.assert_allclose(plot.portrait.path[-1], h)
        assert screen.query_one(LessonPanel).display


# ---- Present at 80x24 -------------------------------------------------------------------------------------
async def test_the_present_tab_wraps_its_narration_and_shows_the_narrated_unit():
    from rnn_tui.engine.narrate import narrate
    from rnn_tui.ui.widgets.narration_bar import NarrationBar
    from rnn_tui.ui.widgets.zoom_map import ZoomMap

    app = app_on(cell="lstm", hidden=64, text="the quick brown fox jumps over the lazy dog " * 2)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-presenterpane")
        trace = app.screen.view.trace
        step = next(t for t in range(1, trace.T) if (narrate(trace, t).main.unit or 0) > 20)
        told = narrate(trace, step)
        app.screen.view = app.screen.view.moved(step=step, unit=0)
        await settle(pilot)
        bar = app.screen.query_one(NarrationBar)
        drawn = " ".join(line.text.strip() for line in [bar.render_line(y) for y in range(bar.size.height)])
        assert told.text in " ".join(drawn.split()) or told.text.replace(" ", "") in drawn.replace(" ", "")
        assert "…" not in drawn
        zoom = app.screen.query_one(ZoomMap)
        text = zoom.draw(zoom.size.width, zoom.size.height).plain
        assert f"» {told.main.unit:>2}" in text or f"»{told.main.unit:>3}" in text, text
        assert "▶ " in text  # the selected unit stays too


class LastTargetSource(FakeSource):
    """A trace scored at its last step only, as the recall task's."""

    def build(self, request):
        from dataclasses import replace

        trace = super().build(request)
        targets = [None] * (len(trace.targets) - 1) + [trace.targets[-2]]
        return replace(trace, targets=targets)


async def test_a_target_at_the_end_of_a_long_sequence_is_named_on_screen():
    from rnn_tui.ui.widgets.token_strip import TokenStrip

    text = "abcdefghij" * 5
    app = ExplorerApp(LastTargetSource(), TraceRequest(cell="lstm", hidden=4, text=text))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        strip = app.screen.query_one(TokenStrip)
        rows = ["".join(t for t, _ in line) for line in strip.lines]
        target = app.screen.view.trace.targets[-1]
        want = f"→ t={len(text) - 1}: {app.screen.view.trace.vocab[target]}"
        assert rows[1].rstrip().endswith(want) and len(rows[1].rstrip()) <= 80, rows[1]
        await pilot.press("end")
        await settle(pilot)
        rows = ["".join(t for t, _ in line) for line in strip.lines]
        assert "t=" not in rows[1]  # the target's own column is on screen now


# ---- lessons at 80x24 -------------------------------------------------------------------------------------
async def test_a_lesson_at_80x24_leaves_the_maps_their_rows_and_scrolls_by_keyboard():
    from rnn_tui.ui.lesson_app import LessonApp
    from rnn_tui.ui.widgets.heatmap_view import HEADER_ROWS, HeatmapView
    from rnn_tui.ui.widgets.lessons_panel import LessonPanel
    from tests.ui.test_lessons_screen import wait_for_view

    app = LessonApp(EngineSource(dtype="float64"), "memory")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_view(pilot, key="main")
        await settle(pilot)
        hm = app.screen.query_one("#explore-map", HeatmapView)
        assert hm.size.height - HEADER_ROWS >= 8  # under the maps the panel left two rows
        panel = app.screen.query_one(LessonPanel)
        assert panel.max_scroll_y > 0 and panel.scroll_y == 0
        await pilot.press("J")
        await settle(pilot)
        assert panel.scroll_y > 0
        await pilot.press("K")
        await settle(pilot)
        assert panel.scroll_y == 0


@pytest.mark.parametrize("size", [(80, 24), (140, 40)])
async def test_a_lesson_names_every_tab_on_the_bar(size):
    from textual.widgets import Tab

    from rnn_tui.ui.lesson_app import LessonApp
    from rnn_tui.ui.panes import PANES, tab_titles
    from rnn_tui.ui.widgets.lessons_panel import LessonPanel
    from tests.ui.test_lessons_screen import wait_for_view

    app = LessonApp(EngineSource(dtype="float64"), "memory")
    async with app.run_test(size=size) as pilot:
        await wait_for_view(pilot, key="main")
        await settle(pilot)
        bar = app.screen.query_one("#panes").query_one("ContentTabs")
        tabs = list(bar.query(Tab))
        assert [t.label_text for t in tabs] == tab_titles(size[0]) and len(tabs) == len(PANES)
        for tab in tabs:  # each one whole on the bar, on screen
            assert tab.region.width >= len(tab.label_text) and tab.region.right <= min(bar.region.right, size[0]), tab
        panel = app.screen.query_one(LessonPanel)
        assert panel.region.y > bar.region.y and panel.region.width >= 36  # the panel is beside the maps, under the bar


async def test_tab_from_the_model_tab_reaches_its_first_field_at_once():
    app = ExplorerApp(FakeSource(), TraceRequest(cell="lstm", hidden=6, text="hello there"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("m")  # States -> Model
        await settle(pilot)
        tabs = app.screen.query_one(TabbedContent)
        assert tabs.active == "tab-modelpane"
        await pilot.press("tab")
        await settle(pilot)
        assert app.screen.focused is not None and app.screen.focused.id == "cell"  # not the input line, nor the tab bar
        await pilot.press("tab")
        await settle(pilot)
        assert app.screen.focused.id == "hidden"  # (an LSTM has no activation to pick: that field is off)
