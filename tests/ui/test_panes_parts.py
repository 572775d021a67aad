"""The analysis tabs' pure parts: the lab's retracing and training task, downsampling, bars,
number lines and matrix windows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.engine.config import ModelConfig
from rnn_tui.ui.lab import LabError, TextTask, model_input, retrace, token_ids, training_task
from rnn_tui.ui.palette import LEVELS
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.loss_plot import downsample, log10_losses
from rnn_tui.ui.widgets.matrix_view import fit, window
from rnn_tui.ui.widgets.spectrum_view import number_line
from rnn_tui.ui.widgets.step_bars import Series
from rnn_tui.ui.widgets.training_pane import TrainSettings, settings_config
from tests.ui.fakes import make_trace


# ---- the lab ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "lstm-peephole", "gru", "gru-textbook", "indrnn", "mingru", "minlstm"])
def test_retrace_reproduces_a_fake_trace_with_the_engine(cell):
    """The fake trace is its cell's equations in numpy; the engine, given its weights and its
    recovered input, computes the same states."""
    trace = make_trace(cell, hidden=4, layers=2, bidirectional=True, text="abcab")
    again = retrace(trace)
    for a, b in zip(trace.layers, again.layers):
        np.testing.assert_allclose(b.h, a.h, rtol=1e-5, atol=1e-6)
        for g in a.gates:
            np.testing.assert_allclose(b.gates[g], a.gates[g], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.outputs, trace.outputs, rtol=1e-4, atol=1e-5)
    assert again.tokens == trace.tokens and again.targets == trace.targets


def test_token_ids_from_one_hot_and_embedding_rows():
    trace = make_trace("lstm", hidden=3, text="hello")
    ids = token_ids(trace)
    assert [trace.vocab[i] for i in ids] == list("hello")
    np.testing.assert_array_equal(model_input(trace), ids)
    source = EngineSource(dtype="float64")
    real = source.build(TraceRequest(cell="gru", hidden=3, task="recall", text=""))
    assert real.config.input_mode in ("onehot", "embedding")
    again = retrace(real)
    np.testing.assert_array_equal(again.layers[0].h, real.layers[0].h)  # the same weights and input, exactly
    assert again.dtype == "float64"


def test_token_ids_refuse_what_cannot_be_recovered():
    trace = make_trace("rnn", hidden=2, text="ab")
    broken = trace.__class__(**{**trace.__dict__, "inputs": trace.inputs * 0.5})
    assert token_ids(broken) is None
    with pytest.raises(LabError, match="cannot be recovered"):
        model_input(broken)


def test_text_task_predicts_the_next_token_of_the_input():
    torch = pytest.importorskip("torch")
    ids = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    task = TextTask(ids, ["a", "b", "c"], seq_len=4)
    batch = task.sample(16, torch.Generator().manual_seed(0))
    assert tuple(batch.x.shape) == tuple(batch.y.shape) == (16, 4)
    assert torch.equal(batch.y[:, :-1], batch.x[:, 1:])  # y_t = x_{t+1}
    assert torch.equal((batch.x + 1) % 3, batch.y)  # ... which in this text is the next letter
    ex = task.example()
    assert ex.tokens == list("abcabcab") and ex.targets[-1] is None and ex.targets[0] == 1
    with pytest.raises(Exception, match="at least two tokens"):
        TextTask(np.array([0]), ["a"])
    trace = make_trace("lstm", hidden=3, text="abcabc")
    t = training_task(TraceRequest(text="abcabc"), trace)
    assert isinstance(t, TextTask) and t.vocab == trace.vocab
    # a model that reads raw vectors (a scenario) has no tokens to predict: say what to do
    vectors = replace(trace, config=trace.config.replace(input_mode="vectors", vocab_size=0))
    with pytest.raises(LabError, match="choose a task in the Model tab"):
        training_task(TraceRequest(text=""), vectors)


def test_settings_config_layers_the_form_over_the_task_defaults():
    task = TextTask(np.arange(40) % 5, list("abcde"))
    c = settings_config(task, TrainSettings(steps=100, lr=0.5))
    assert (c.steps, c.lr, c.batch, c.clip) == (100, 0.5, task.defaults.batch, task.defaults.clip)
    assert c.snapshot_every == 5 and c.log_every <= 5
    assert settings_config(task, TrainSettings(no_clip=True)).clip is None
    assert settings_config(task, TrainSettings(optimizer="sgd")).optimizer == "sgd"


# ---- the loss curve -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.001, 100.0), min_size=0, max_size=1000), st.integers(2, 50))
def test_downsample_keeps_at_most_n_means(values, n):
    steps = list(range(1, len(values) + 1))
    xs, ys = downsample(steps, values, n)
    assert len(xs) == len(ys) <= n
    if values:
        assert xs[-1] == len(values)
        assert min(values) - 1e-9 <= min(ys) and max(ys) <= max(values) + 1e-9
    if len(values) <= n:
        assert list(ys) == values


def test_log10_losses_leave_out_what_has_no_log():
    out = log10_losses([100.0, 0.0, float("nan"), float("inf"), 0.1])
    assert out[0] == 2.0 and out[4] == pytest.approx(-1.0)
    assert all(math.isnan(v) for v in out[1:4])
    xs, ys = downsample([1, 2, 3, 4, 5], out)
    assert xs == (1.0, 5.0)


# ---- bars, number lines, windows ----------------------------------------------------------------------
def test_log_series_levels_follow_log10():
    s = Series("n", np.array([1e-4, 1e-2, 1.0, 0.0, np.nan]), log=True)
    levels = s.levels()
    assert levels[0] == 0 and levels[2] == LEVELS - 1 and levels[1] == (LEVELS - 1) // 2
    assert levels[3] == 0  # zero: the lowest bar
    assert levels[4] == -1  # NaN: shown as not a number ...
    blank = Series("n", s.values, log=True, nan_blank=True).levels()
    assert blank[4] == 0  # ... unless NaN means "no value here"
    lin = Series("j", np.array([0.5, 1.0, 2.0])).levels()
    assert lin.tolist() == [8, 16, 32]


def test_number_line_marks_values_and_one():
    line = number_line(np.array([0.0, 0.5, 0.5, 2.0]), 21, 2.0)
    assert len(line) == 21
    assert line[0] == "●" and line[5] == "2" and line[20] == "●"
    assert line[10] == "│"  # 1.0 on a 0 … 2 line


def test_window_and_fit():
    assert window(100, 50, 10) == (45, 55)
    assert window(100, 2, 10) == (0, 10)
    assert window(100, 99, 10) == (90, 100)
    assert window(5, 3, 10) == (0, 5)
    assert fit("ab", 4) == "ab  " and fit("你好吗", 4) == "你好"


def test_model_config_of_a_text_trace_is_kept():
    trace = make_trace("gru", hidden=3, text="xyzxyz")
    assert isinstance(trace.config, ModelConfig)
    assert retrace(trace).config == trace.config


async def test_the_loss_chart_redraws_at_most_max_fps_and_ends_on_the_last_curve():
    from textual.app import App

    from rnn_tui.ui.widgets import loss_plot
    from rnn_tui.ui.widgets.loss_plot import LossPlot

    class One(App):
        def compose(self):
            yield LossPlot()

    app = One()
    async with app.run_test(size=(80, 20)) as pilot:
        plot = app.query_one(LossPlot)
        draws = []
        original = plot._draw
        plot._draw = lambda: (draws.append(plot.curve), original())
        plot._drawn_at = 0.0
        for n in range(1, 21):  # twenty updates at once, as a fast trainer would send them
            plot.show(((1.0 * n,), (0.5,)))
        assert len(draws) == 1  # the first at once, the rest held back
        await pilot.pause(1.5 / loss_plot.MAX_FPS)
        assert len(draws) == 2 and draws[-1] == ((20.0,), (0.5,))  # one more, with the newest curve
