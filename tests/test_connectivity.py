"""Input connectivity ||∂y_r/∂x_k||_F against torch.autograd.functional.jacobian in float64, over
random configs (every cell, layers, directions, heads); for a decoder with attention against a
plain loop with a probe on every input; in batches small or large, and a window of rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine.cells import CELLS, REGISTRY
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.gradflow import GradFlowError, input_connectivity
from rnn_tui.engine.model import build_model
from rnn_tui.engine.trace import run_trace

TOL = dict(rtol=1e-9, atol=1e-12)


@st.composite
def configs(draw):
    cell = draw(st.sampled_from(CELLS))
    return ModelConfig(
        cell=cell, activation=draw(st.sampled_from(REGISTRY[cell].activations)), input_size=draw(st.integers(1, 4)),
        hidden_size=draw(st.integers(1, 5)), num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        output_size=draw(st.integers(1, 7)), input_mode="vectors", vocab_size=0,
        head=draw(st.sampled_from(["step", "step", "last", "mean"])),
    )  # fmt: skip


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs(), T=st.integers(1, 8), seed=st.integers(0, 10_000), small=st.booleans())
def test_connectivity_equals_the_jacobian_of_the_outputs(cfg, T, seed, small):
    model = build_model(cfg, seed=seed).double()
    with torch.no_grad():
        for p in model.tensors().values():
            p.mul_(1.5)
    X = torch.from_numpy(np.random.default_rng(seed).normal(size=(T, cfg.input_size)))
    rows = T if cfg.head == "step" else 1
    tr = run_trace(model, X, [None] * rows, dtype="float64")  # nothing scored: outputs have derivatives all the same
    C = input_connectivity(tr, max_elements=200 if small else 1 << 25)
    J = torch.autograd.functional.jacobian(lambda x: model(x[None]).reshape(rows, -1), X)  # (rows, O, T, I)
    np.testing.assert_allclose(C, J.pow(2).sum((1, 3)).sqrt().numpy(), **TOL)


def test_a_window_of_rows_is_computed_and_the_rest_left_out():
    cfg = ModelConfig(cell="gru", input_size=4, vocab_size=4, hidden_size=3, output_size=4)
    tr = run_trace(build_model(cfg, seed=0).double(), torch.tensor([0, 1, 2, 3, 2, 1]), [None] * 6, dtype="float64")
    full = input_connectivity(tr)
    part = input_connectivity(tr, rows=[4, 2])
    np.testing.assert_allclose(part[[2, 4]], full[[2, 4]], **TOL)
    assert np.isnan(part[[0, 1, 3, 5]]).all()
    assert (full[np.triu_indices(6, 1)] == 0).all()  # a later input never moves an earlier output
    with pytest.raises(GradFlowError, match="output rows 0..5"):
        input_connectivity(tr, rows=[6])


def test_a_decoder_with_attention_is_differentiated_through_its_attention():
    """∂y_r/∂x_k where x_k = [y_{k-1}; c_k] is read at step k: a probe added to x_k in a plain loop."""
    from tests.test_attention import build, plain_cell

    task, model = build("lstm", "additive", 1, 4, seq_len=5)
    both = task.trace(model, dtype="float64", decoder_inputs="teacher")
    dec, rec = both.decoder, both.attention
    C = input_connectivity(dec)
    keys = torch.from_numpy(rec.keys)
    P = {k: v.detach().double() for k, v in model.tensors().items()}
    D = {k[8:]: v for k, v in P.items() if k.startswith("decoder.")}
    X = torch.from_numpy(np.asarray(dec.inputs))
    T = X.shape[0]

    def outputs(probe):
        h = torch.from_numpy(dec.layers[0].h0)
        c = torch.from_numpy(dec.layers[0].c0)
        out = []
        for t in range(T):
            e = torch.tanh(h @ P["attention.W"].T + keys @ P["attention.U"].T) @ P["attention.v"]
            ctx = torch.softmax(e, 0) @ keys
            x = torch.cat([X[t, : rec.y_width], ctx]) + probe[t]
            h, c = plain_cell("lstm", D, "_l0", x, (h, c))
            out.append(D["head.weight"] @ h + D["head.bias"])
        return torch.stack(out)

    J = torch.autograd.functional.jacobian(outputs, torch.zeros_like(X))  # (T, O, T, I)
    np.testing.assert_allclose(C, J.pow(2).sum((1, 3)).sqrt().numpy(), **TOL)
