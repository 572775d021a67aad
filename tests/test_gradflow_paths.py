"""The fast paths of the gradient-flow analysis against their plain definitions, in float64.

- ||J_t||_2 by Lanczos (states wider than gradflow.DENSE_STATE) against a full SVD of every step,
  over random cells and weights, and on Jacobians built to be hard: near-equal and equal top
  singular values, a single dominant one, rank one, zero; and the full-SVD fallback.
- the flow sweep's power-of-two rescaling: a float32 trace whose gradients fall far below
  float32's range gives the float64 trace's flow, not zeros.
- a long trace analysed a window first (rows=, steps=) and completed later (previous=) equals
  the analysis done at once.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine import gradflow as gf
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.model import build_model
from rnn_tui.engine.trace import run_trace

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def full_svd_norms(trace, index=0):
    J = gf.step_jacobians(trace, index)
    return np.linalg.svd(J, compute_uv=False)[:, 0]


@SETTINGS
@given(
    cell=st.sampled_from(["rnn", "lstm", "lstm-peephole", "gru", "gru-textbook"]),
    wide=st.integers(0, 12),
    scale=st.sampled_from([0.5, 1.0, 3.0]),
    bidirectional=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_lanczos_norms_equal_a_full_svd(cell, wide, scale, bidirectional, seed):
    H = (gf.DENSE_STATE // 2 if cell.startswith("lstm") else gf.DENSE_STATE) + 1 + wide  # past the dense path
    activation = ["tanh", "relu", "sigmoid", "identity"][seed % 4] if cell == "rnn" else "tanh"
    cfg = ModelConfig(cell=cell, activation=activation, input_size=5, vocab_size=5, hidden_size=H, output_size=5,
                      bidirectional=bidirectional)  # fmt: skip
    model = build_model(cfg, seed=seed).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    x = torch.as_tensor(np.random.default_rng(seed).integers(0, 5, 12))
    trace = run_trace(model, x, x.roll(-1).tolist(), dtype="float64")
    assert cfg.cell_spec.state_size(H) > gf.DENSE_STATE
    norms = gf.jacobian_norms(trace)
    for idx in range(len(trace.layers)):
        np.testing.assert_allclose(norms[idx], full_svd_norms(trace, idx), rtol=1e-7, atol=1e-14)


def linear_rnn(W_hh: np.ndarray, T: int = 6):
    """A linear Elman trace (identity activation, no bias): every step Jacobian is W_hh itself."""
    H = W_hh.shape[0]
    cfg = ModelConfig(cell="rnn", activation="identity", input_mode="vectors", input_size=2, vocab_size=0,
                      hidden_size=H, output_size=2, bias=False, loss="mse")  # fmt: skip
    model = build_model(cfg, seed=0).double()
    tensors = {k: v.detach().clone() for k, v in model.tensors().items()}
    tensors["weight_hh_l0"] = torch.as_tensor(W_hh)
    model.load_tensors(tensors)
    X = torch.as_tensor(np.random.default_rng(0).normal(size=(T, 2)))
    return run_trace(model, X, [[0.5, -0.5]] * T, dtype="float64")


def with_singular_values(s: np.ndarray, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    U, _ = np.linalg.qr(g.normal(size=(len(s), len(s))))
    V, _ = np.linalg.qr(g.normal(size=(len(s), len(s))))
    return U @ np.diag(s) @ V.T


H_HARD = 64
HARD = {
    "two near-equal on top": np.r_[1.0, 1.0 - 1e-7, np.linspace(0.9, 0.1, H_HARD - 2)],
    "two equal on top": np.r_[1.0, 1.0, np.linspace(0.9, 0.1, H_HARD - 2)],
    "a cluster of eight within 1e-9": np.r_[1.0 - np.arange(8) * 1e-10, np.linspace(0.95, 0.1, H_HARD - 8)],
    "near-equal, then a gap of 1e-4": np.r_[1.0, 1.0 - 1e-4, 1.0 - 2e-4, np.linspace(0.99, 0.0, H_HARD - 3)],
    "flat: every value within 2%": np.linspace(1.0, 0.98, H_HARD),
    "all equal (orthogonal)": np.ones(H_HARD),
    "one dominant": np.r_[50.0, np.linspace(1.0, 0.1, H_HARD - 1)],
    "rank one": np.r_[2.0, np.zeros(H_HARD - 1)],
    "zero": np.zeros(H_HARD),
}


@pytest.mark.parametrize("name", list(HARD))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_is_right_on_hard_spectra(name, seed):
    s = HARD[name]
    trace = linear_rnn(with_singular_values(s, seed))
    norms = gf.jacobian_norms(trace)[0]
    np.testing.assert_allclose(norms, s.max(), rtol=1e-7, atol=1e-13)
    np.testing.assert_allclose(norms, full_svd_norms(trace), rtol=1e-7, atol=1e-13)


def test_steps_that_do_not_converge_get_a_full_svd():
    trace = linear_rnn(with_singular_values(HARD["flat: every value within 2%"]))
    rec = gf._records(trace)[0]
    cell = trace.config.cell_spec
    k = cell.coefficients(rec)
    read = np.arange(trace.T)
    few = gf.top_singular_values(cell, rec, k, read, max_dim=3)  # far too few iterations for 1e-7
    np.testing.assert_allclose(few, 1.0, rtol=1e-12)


def test_a_float32_trace_far_below_float32s_range_keeps_its_flow():
    """tanh RNN with small recurrent weights: ||dl_r/dh_k|| falls ~10x per step, past 1e-38 (the
    smallest normal float32) within 40 steps; the sweep keeps every row in range by powers of two."""
    cfg = ModelConfig(cell="rnn", input_size=4, vocab_size=4, hidden_size=8, output_size=4)
    model = build_model(cfg, seed=0)
    with torch.no_grad():
        model.core.weight_hh_l0.mul_(0.25)
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 4, 120))
    targets = x.roll(-1).tolist()
    f32 = gf.flow_matrix(run_trace(model, x, targets, dtype="float32"), sources=range(120))[0].h
    f64 = gf.flow_matrix(run_trace(model.double(), x, targets, dtype="float64"), sources=range(120))[0].h
    lower = np.tril(np.ones((120, 120), dtype=bool))
    assert (f64[lower] < 1e-100).any() and (f64[lower] > 0).all()
    np.testing.assert_allclose(f32[lower], f64[lower], rtol=2e-3)
    assert np.all(f32[~lower] == 0)


def test_rescaling_is_exact_and_keeps_rows_in_range():
    g = np.random.default_rng(0)
    rows = np.array([1e-30, 1e30, 1.0, 0.0, 3e-13])[:, None] * g.normal(size=(5, 6))
    buffers = [rows.astype(np.float32), (rows * 2).astype(np.float32)]
    before = [b.astype(np.float64) for b in buffers]
    exps = np.zeros(5, dtype=np.int64)
    gf._rescale(buffers, exps)
    for b, was in zip(buffers, before):
        np.testing.assert_array_equal(np.ldexp(b.astype(np.float64), -exps[:, None]), was)  # powers of two: exact
    top = np.max([np.abs(b).max(axis=1) for b in buffers], axis=0)
    assert np.all((top[[0, 1, 4]] >= 0.5) & (top[[0, 1, 4]] < 1)) and exps[2] == 0 and exps[3] == 0


def test_a_window_first_then_the_rest_equals_the_whole_analysis():
    cfg = ModelConfig(cell="lstm", input_size=5, vocab_size=5, hidden_size=20, output_size=5, num_layers=2)
    model = build_model(cfg, seed=3).double()
    x = torch.as_tensor(np.random.default_rng(1).integers(0, 5, 60))
    targets = [None if t % 4 == 1 else int(v) for t, v in enumerate(x.roll(-1))]
    trace = run_trace(model, x, targets, dtype="float64")
    whole = gf.analyze_gradflow(trace, tbptt=7)
    first = gf.analyze_gradflow(trace, rows=range(40, 50), steps=range(35, 50), tbptt=7)
    assert not first.complete and list(first.steps) == list(range(35, 50))
    assert list(first.sources) == [r for r in range(40, 50) if r % 4 != 1]
    assert np.all(np.isnan(first.layers[0].flow[:40])) and np.all(np.isnan(first.layers[0].jacobian_norm[:35]))
    rest = gf.analyze_gradflow(trace, previous=first, window=(0, 60))
    assert rest.complete and rest.steps is None
    for a, b in zip(rest.layers, whole.layers):
        np.testing.assert_allclose(a.flow, b.flow, rtol=1e-12)  # (the sources' batches differ: rounding only)
        np.testing.assert_allclose(a.flow_c, b.flow_c, rtol=1e-12)
        np.testing.assert_allclose(a.jacobian_norm, b.jacobian_norm, rtol=1e-12)
        assert a.decay.gamma == pytest.approx(b.decay.gamma, rel=1e-12) and a.decay.points == b.decay.points
        np.testing.assert_array_equal(a.dW_hh_step_norm, b.dW_hh_step_norm)
    assert rest.tbptt.distance == whole.tbptt.distance
    with pytest.raises(gf.GradFlowError, match="another trace"):
        gf.analyze_gradflow(run_trace(model, x[:30], targets[:30], dtype="float64"), previous=first)
