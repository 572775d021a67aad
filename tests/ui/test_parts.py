"""The explorer's pure parts, without an app: colour scales, tokens, column layout, heatmap
geometry, the equations' numbers, parameter formulas, screenshot writing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.style import Style

from rnn_tui.engine.config import CELLS, ModelConfig, layer_names
from rnn_tui.ui.equations import num, numeric, step_equations
from rnn_tui.ui.palette import (
    GLYPH_RAMP,
    LEVELS,
    PALETTES,
    Scale,
    cell_look,
    glyph,
    matrix,
    matrix_names,
    palette_for_theme,
    scale_for,
)
from rnn_tui.ui.screens.main import save_svg
from rnn_tui.ui.work import one_line
from rnn_tui.ui.source import label, tokenize
from rnn_tui.ui.widgets.heatmap_view import HEADER_ROWS, layout
from rnn_tui.ui.widgets.model_pane import layer_formula
from rnn_tui.ui.widgets.token_strip import strip_cells, window
from tests.ui.fakes import make_trace

VARIANTS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"), ("rnn", "identity"),
            ("lstm", "tanh"), ("lstm-peephole", "tanh"), ("gru", "tanh"), ("gru-textbook", "tanh")]


# ---- colour ------------------------------------------------------------------------------------
def test_levels_cover_the_scale_and_mark_nan():
    s = Scale("diverging", -1.0, 1.0)
    levels = s.levels(np.array([-5.0, -1.0, 0.0, 1.0, 7.0, np.nan, np.inf]))
    assert levels.tolist() == [0, 0, LEVELS // 2, LEVELS - 1, LEVELS - 1, -1, -1]


def test_glyph_ramp_rises_with_the_level():
    glyphs = [glyph(k) for k in range(LEVELS)]
    assert glyphs[0] == GLYPH_RAMP[0] and glyphs[-1] == GLYPH_RAMP[-1]
    assert [GLYPH_RAMP.index(g) for g in glyphs] == sorted(GLYPH_RAMP.index(g) for g in glyphs)
    assert glyph(-1) == "?"


def test_scales_follow_the_nonlinearity():
    cfg = ModelConfig(cell="lstm")
    big = np.array([[-3.0, 2.0]])
    assert scale_for("f", cfg, big) == Scale("sequential", 0.0, 1.0)
    assert scale_for("g", cfg, big) == Scale("diverging", -1.0, 1.0)
    assert scale_for("h", cfg, big) == Scale("diverging", -1.0, 1.0)
    assert scale_for("c", cfg, big) == Scale("diverging", -3.0, 3.0)
    relu = ModelConfig(cell="rnn", activation="relu")
    assert scale_for("h", relu, np.array([[0.0, 4.5]])) == Scale("sequential", 0.0, 4.5)
    assert scale_for("h", ModelConfig(cell="rnn", activation="sigmoid"), big).kind == "sequential"


def test_every_theme_has_a_palette_and_mono_draws_glyphs():
    assert palette_for_theme("rnn-mono").glyphs
    assert palette_for_theme("rnn-colorblind") is PALETTES["colorblind"]
    assert palette_for_theme("nord") is PALETTES["dark"]  # a Textual theme: default heatmaps
    look = cell_look(PALETTES["mono"], "diverging", "colour", 2, Style())
    assert look.texts[0] == GLYPH_RAMP[0] * 2 and look.texts[LEVELS - 1] == GLYPH_RAMP[-1] * 2
    assert all(s.bgcolor is None and s.color is None for s in look.styles)
    colour = cell_look(PALETTES["dark"], "sequential", "colour", 2, Style())
    assert len({s.bgcolor for s in colour.styles}) == LEVELS + 1  # every level its own colour, and NaN


def test_matrix_names_per_cell():
    assert matrix_names(ModelConfig(cell="lstm")) == ["h", "c", "i", "f", "g", "o"]
    assert matrix_names(ModelConfig(cell="gru")) == ["h", "r", "z", "n"]
    assert matrix_names(ModelConfig(cell="rnn")) == ["h", "a"]


# ---- tokens --------------------------------------------------------------------------------------
def test_word_tokens_split_cjk_and_full_width_punctuation():
    assert tokenize("The dog's 猫が好き。 Hello, world！", "word") == [
        "The", "dog's", "猫", "が", "好", "き", "。", "Hello", ",", "world", "！"]
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]


def test_labels_make_whitespace_visible():
    assert [label(t) for t in [" ", "\n", "\t", "\x00", "a", ""]] == ["␣", "⏎", "⇥", "\\x00", "a", "∅"]


def test_strip_columns_align_wide_characters():
    trace = make_trace(tokens=list("猫が好きcat"), hidden=4)
    cells = strip_cells(trace, 3)
    for t in range(trace.T):
        for row in [cells.tokens, cells.targets] + cells.predictions:
            assert cell_len(row[t]) <= cells.widths[t] - 1
    assert cells.widths[0] >= cell_len("猫") + 1


@given(st.lists(st.integers(1, 15), min_size=1, max_size=60), st.data())
@settings(max_examples=60, deadline=None)
def test_window_fits_and_holds_the_current_step(widths, data):
    current = data.draw(st.integers(0, len(widths) - 1))
    room = data.draw(st.integers(1, 200))
    start, stop = window(widths, current, room)
    assert start <= current < stop
    assert stop - start == 1 or sum(widths[start:stop]) <= room


# ---- heatmap geometry ------------------------------------------------------------------------------
@given(
    cell=st.sampled_from(CELLS), T=st.integers(1, 600), H=st.integers(1, 300),
    width=st.integers(20, 320), height=st.integers(3, 100), data=st.data(),
)
@settings(max_examples=60, deadline=None)
def test_layout_shows_the_cursor(cell, T, H, width, height, data):
    names = matrix_names(ModelConfig(cell=cell))
    focus = data.draw(st.sampled_from(names))
    step, unit = data.draw(st.integers(0, T - 1)), data.draw(st.integers(0, H - 1))
    show_all = data.draw(st.booleans())
    g = layout(names, focus, show_all, T, H, step, width, height, data.draw(st.integers(0, H)), unit)
    assert focus in g.panels
    assert g.start <= step < g.start + g.steps
    assert g.steps <= T
    if g.rows:
        assert g.top <= unit < g.top + g.rows or g.rows == 0
    # every cell maps back to its (matrix, step, unit)
    for p, name in enumerate(g.panels):
        x = g.panel_x(p) + (step - g.start) * g.cell
        if g.rows and x < width:
            assert g.locate(x, HEADER_ROWS + unit - g.top) == (name, step, unit)


def test_layout_uses_a_wide_terminal():
    names = matrix_names(ModelConfig(cell="lstm"))
    g = layout(names, "h", True, 500, 256, 250, 300, 100, 0, 0)
    assert g.panels == tuple(names) and g.cell == 2 and g.rows == 98
    narrow = layout(names, "f", True, 500, 256, 250, 80, 24, 0, 0)
    assert "f" in narrow.panels and narrow.steps >= 8


# ---- equations -------------------------------------------------------------------------------------
def check_equations(trace, tol=2e-5):
    """Every equation's terms add up to the trace's pre-activation (or value), and the numbers
    shown are the trace's own."""
    for entry in trace.layers:
        for t in range(trace.T):
            for j in range(trace.config.hidden_size):
                se = step_equations(trace, entry, t, j)
                for eq in se.equations:
                    total = sum(term.value for term in eq.terms)
                    if eq.pre is not None:
                        gate = eq.lhs[0]
                        name = "a" if trace.config.cell == "rnn" else gate
                        assert eq.pre == float(entry.preacts[name][t, j])
                        assert abs(total - eq.pre) <= tol * (1 + abs(eq.pre))
                    else:
                        assert abs(total - eq.value) <= tol * (1 + abs(eq.value))
                    if eq.lhs == "h_t":
                        assert eq.value == float(entry.h[t, j])
                    elif eq.lhs == "c_t":
                        assert eq.value == float(entry.c[t, j])
                    else:
                        assert eq.value == float(entry.gates[eq.lhs[0]][t, j])
                    assert numeric(eq).endswith(num(eq.value))


@given(
    variant=st.sampled_from(VARIANTS), hidden=st.integers(1, 6), layers=st.integers(1, 2),
    bidirectional=st.booleans(), bias=st.booleans(), seed=st.integers(0, 10_000),
)
@settings(max_examples=40, deadline=None)
def test_equations_add_up_on_numpy_traces(variant, hidden, layers, bidirectional, bias, seed):
    cell, activation = variant
    trace = make_trace(cell, activation, hidden, layers, bidirectional, text="abcab", seed=seed, bias=bias)
    check_equations(trace)


@pytest.mark.parametrize("cell,activation", VARIANTS)
def test_equations_add_up_on_engine_traces(cell, activation):
    from rnn_tui.ui.source import EngineSource, TraceRequest

    trace = EngineSource().build(TraceRequest(cell=cell, activation=activation, hidden=5, layers=2,
                                              bidirectional=True, text="hello there"))
    check_equations(trace)


def test_equation_text_reads_like_the_notes():
    trace = make_trace("lstm", hidden=3, text="abc")
    entry = trace.layers[0]
    se = step_equations(trace, entry, 1, 2)
    f = next(eq for eq in se.equations if eq.lhs == "f_t")
    assert f.symbolic == "σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)"
    text = numeric(f)
    assert text.startswith("σ(") and f"= σ({num(f.pre)}) = {num(f.value)}" in text
    assert num(-0.00001) == "-1.000e-05" and num(-0.0) == "0.0000" and num(1.37) == "1.3700"


# ---- parameter count --------------------------------------------------------------------------------
@pytest.mark.parametrize("cell,activation", VARIANTS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_formula_counts_the_tensors(cell, activation, bidirectional):
    trace = make_trace(cell, activation, hidden=4, layers=2, bidirectional=bidirectional, text="abcd")
    for k, _, sfx in layer_names(trace.config):
        _, value = layer_formula(trace.config, k)
        assert value == sum(v.size for n, v in trace.params.items() if n.endswith(sfx))
    elman = ModelConfig(cell="rnn", input_size=3, hidden_size=5, output_size=3, vocab_size=3)
    assert layer_formula(elman, 0) == ("(3 + 5)·5 + 2·5", (3 + 5) * 5 + 2 * 5)


# ---- odds and ends ------------------------------------------------------------------------------------
def test_save_svg_is_atomic_and_never_overwrites(tmp_path):
    first = save_svg("<svg>1</svg>", str(tmp_path), "shot.svg")
    second = save_svg("<svg>2</svg>", str(tmp_path), "shot.svg")
    assert first.read_text() == "<svg>1</svg>" and second.read_text() == "<svg>2</svg>"
    assert first != second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot-1.svg", "shot.svg"]


def test_one_line_errors():
    assert one_line(ValueError("hidden must be\nsomething")) == "hidden must be"
    assert one_line(RuntimeError("boom")) == "RuntimeError: boom"


def test_matrix_reads_the_right_arrays():
    trace = make_trace("rnn", hidden=3, text="abc")
    entry = trace.layers[0]
    assert matrix(entry, "a") is entry.preacts["a"]
    assert matrix(entry, "h") is entry.h


def test_the_status_line_keeps_where_the_cursor_is_when_narrow():
    from rich.cells import cell_len

    from rnn_tui.ui.state import View
    from rnn_tui.ui.widgets.status_bar import status_line
    from tests.ui.fakes import make_trace

    trace = make_trace("lstm", hidden=128, text="hello world, hello world")
    trace.extras["title"] = "chars, trained 2000 steps"
    view = View(trace, step=3, unit=112)
    wide = "".join(text for text, _ in status_line(view, "", "", False, 4.0, width=200))
    assert "params" in wide and "chars, trained" in wide and "4/s" in wide
    at80 = "".join(text for text, _ in status_line(view, "", "", False, 4.0, width=80))
    assert cell_len(at80) <= 80 and "t 3/23 · unit 112 · l0" in at80 and "4/s" in at80
    assert "params" not in at80 and "chars" not in at80
    at60 = "".join(text for text, _ in status_line(view, "", "", False, 4.0, width=60))
    assert at60.startswith(" rnn-tui  lstm · H 128 · loss") and "t 3/23 · unit 112 · l0" in at60
    assert "layer" not in at60 and "4/s" not in at60  # dropped too; the play mark runs off the edge
