"""Gate saturation shares, against a plain loop count and against gates torch.nn.LSTM computes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.saturation import (
    SIGMOID_THRESHOLDS,
    TANH_THRESHOLDS,
    layer_saturation,
    saturation,
    thresholds,
)

values = arrays(
    np.float64,
    st.tuples(st.integers(1, 12), st.integers(1, 6)),
    elements=st.one_of(st.floats(-1.5, 1.5), st.just(float("nan"))),
)


@settings(max_examples=60, deadline=None)
@given(values, st.sampled_from([SIGMOID_THRESHOLDS, TANH_THRESHOLDS, (0.0, 0.5)]))
def test_shares_equal_a_loop_count(v, bounds):
    lo, hi = bounds
    s = saturation(v, lo, hi, gate="f")
    T, H = v.shape
    for j in range(H):
        below = sum(1 for t in range(T) if v[t, j] < lo)  # NaN < lo is False
        above = sum(1 for t in range(T) if v[t, j] > hi)
        assert s.low[j] == pytest.approx(below / T)
        assert s.high[j] == pytest.approx(above / T)
    all_below = sum(1 for x in v.ravel() if x < lo)
    all_above = sum(1 for x in v.ravel() if x > hi)
    assert s.overall_low == pytest.approx(all_below / v.size)
    assert s.overall_high == pytest.approx(all_above / v.size)
    assert s.overall_low == pytest.approx(s.low.mean())  # every unit sees the same T steps
    assert np.all(s.saturated <= 1.0 + 1e-12)


def test_hand_example():
    v = np.array([[0.05, 0.5], [0.95, 0.91], [0.1, 0.9], [0.02, np.nan]])
    s = saturation(v, 0.1, 0.9)
    # the thresholds themselves are not saturated: strictly below / above
    np.testing.assert_allclose(s.low, [2 / 4, 0.0])
    np.testing.assert_allclose(s.high, [1 / 4, 1 / 4])
    assert s.overall_low == pytest.approx(2 / 8)
    assert s.overall_high == pytest.approx(2 / 8)
    assert s.overall_saturated == pytest.approx(4 / 8)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(T, H\)"):
        saturation(np.zeros(3), 0.1, 0.9)
    with pytest.raises(ValueError, match="below the high"):
        saturation(np.zeros((2, 2)), 0.9, 0.1)


def test_thresholds_follow_the_nonlinearity():
    lstm = ModelConfig(cell="lstm")
    assert [thresholds(lstm, g) for g in "ifgo"] == [SIGMOID_THRESHOLDS] * 2 + [TANH_THRESHOLDS, SIGMOID_THRESHOLDS]
    gru = ModelConfig(cell="gru")
    assert [thresholds(gru, g) for g in "rzn"] == [SIGMOID_THRESHOLDS] * 2 + [TANH_THRESHOLDS]
    assert thresholds(ModelConfig(cell="rnn", activation="tanh"), "a") == TANH_THRESHOLDS
    assert thresholds(ModelConfig(cell="rnn", activation="sigmoid"), "a") == SIGMOID_THRESHOLDS
    assert thresholds(ModelConfig(cell="rnn", activation="relu"), "a") is None
    assert thresholds(ModelConfig(cell="rnn", activation="identity"), "a") is None


def test_lstm_trace_gates_against_torch():
    """The shares of a traced LSTM equal those of gates recomputed from torch.nn.LSTM's weights."""
    torch = pytest.importorskip("torch")
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

    cfg = ModelConfig(cell="lstm", input_size=4, hidden_size=5, output_size=3, input_mode="vectors", vocab_size=0)
    model = build_model(cfg, seed=3).double()
    with torch.no_grad():
        for p in model.tensors().values():
            p.mul_(4.0)  # large weights: gates pushed to their ends
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    trace = run_trace(model, x, [0] * 20, dtype="float64")
    got = {s.gate: s for s in layer_saturation(cfg, trace.layers[0])}

    lstm = torch.nn.LSTM(4, 5, batch_first=True).double()
    P = model.tensors()
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(lstm, name).copy_(P[name])
        out, _ = lstm(x[None])
        h_prev = torch.cat([torch.zeros(1, 5, dtype=torch.float64), out[0, :-1]])
        a = x @ P["weight_ih_l0"].T + P["bias_ih_l0"] + h_prev @ P["weight_hh_l0"].T + P["bias_hh_l0"]  # (T, 4H)
        i, f, g, o = a.chunk(4, dim=1)
        ref = {"i": i.sigmoid(), "f": f.sigmoid(), "g": g.tanh(), "o": o.sigmoid()}
    for name, v in ref.items():
        lo, hi = thresholds(cfg, name)
        v = v.numpy()
        np.testing.assert_allclose(got[name].low, (v < lo).mean(0))
        np.testing.assert_allclose(got[name].high, (v > hi).mean(0))
    assert max(s.overall_saturated for s in got.values()) > 0.3  # the test sees saturation at all


def test_unbounded_elman_has_no_saturation():
    cfg = ModelConfig(cell="rnn", activation="relu", input_size=2, hidden_size=3, output_size=2, vocab_size=2)
    from rnn_tui.engine.records import LayerTrace

    z = np.zeros((4, 3))
    entry = LayerTrace(0, "forward", z, None, {"a": z}, {"a": z}, z, None, z, np.zeros(3), None)
    assert layer_saturation(cfg, entry) == []
