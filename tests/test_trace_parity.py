"""Traces against torch.nn modules and an independent autograd loop, over many random configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.model import CellStack, build_model
from rnn_tui.engine.trace import run_trace
from tests.reference import reference

CELL_ACTS = [
    ("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"), ("rnn", "identity"),
    ("lstm", "tanh"), ("lstm-peephole", "tanh"), ("gru", "tanh"), ("gru-textbook", "tanh"),
]  # fmt: skip
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def configs(draw, cells=CELL_ACTS):
    cell, act = draw(st.sampled_from(cells))
    I = draw(st.integers(1, 5))
    return ModelConfig(
        cell=cell,
        activation=act,
        input_size=I,
        hidden_size=draw(st.integers(1, 6)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        output_size=draw(st.integers(1, 4)),
        input_mode="vectors",
        vocab_size=0,
        head=draw(st.sampled_from(["step", "step", "last", "mean"])),
        loss=draw(st.sampled_from(["ce", "mse"])),
    )


def random_targets(cfg: ModelConfig, rows: int, rng: np.random.Generator) -> list:
    out = []
    for _ in range(rows):
        if rng.random() < 0.2:
            out.append(None)
        elif cfg.loss == "ce":
            out.append(int(rng.integers(cfg.output_size)))
        else:
            out.append(rng.normal(size=cfg.output_size).tolist())
    return out


def setup(cfg: ModelConfig, T: int, seed: int):
    rng = np.random.default_rng(seed)
    model = build_model(cfg, seed=seed).double()
    with torch.no_grad():  # larger weights than the default init, so saturation and growth appear
        for p in model.tensors().values():
            p.mul_(2.0)
    X = torch.from_numpy(rng.normal(size=(T, cfg.input_size)))
    rows = T if cfg.head == "step" else 1
    LD = cfg.num_layers * cfg.num_directions
    h0 = torch.from_numpy(rng.normal(size=(LD, cfg.hidden_size)) * 0.5)
    c0 = torch.from_numpy(rng.normal(size=(LD, cfg.hidden_size)) * 0.5)
    return model, X, random_targets(cfg, rows, rng), h0, c0


@SETTINGS
@given(cfg=configs(), T=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_trace_equals_autograd_reference_float64(cfg, T, seed):
    model, X, targets, h0, c0 = setup(cfg, T, seed)
    has_c = cfg.has_cell_state
    tr = run_trace(model, X, targets, dtype="float64", initial_state=(h0, c0 if has_c else None))
    ref = reference(model, X, targets, h0, c0)
    tol = dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(tr.loss, ref["loss"].item(), **tol)
    np.testing.assert_allclose(tr.outputs, ref["Y"].numpy(), **tol)
    for idx, lt in enumerate(tr.layers):
        H_ref, C_ref, gate_rows = ref["states"][idx]
        np.testing.assert_allclose(lt.h, H_ref.detach().numpy(), **tol)
        np.testing.assert_allclose(lt.dL_dh, ref["dL_dh"][idx].numpy(), **tol)
        for name, values in lt.gates.items():
            np.testing.assert_allclose(values, torch.stack([g[name] for g in gate_rows]).detach().numpy(), **tol)
        if has_c:
            np.testing.assert_allclose(lt.c, C_ref.detach().numpy(), **tol)
            np.testing.assert_allclose(lt.dL_dc, ref["dL_dc"][idx].numpy(), **tol)
        else:
            assert lt.c is None and lt.dL_dc is None
    np.testing.assert_allclose(tr.extras["dL_dh0"], ref["dL_dh0"].numpy(), **tol)
    if has_c:
        np.testing.assert_allclose(tr.extras["dL_dc0"], ref["dL_dc0"].numpy(), **tol)


TORCH_CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


@SETTINGS
@given(cfg=configs(TORCH_CELLS), T=st.integers(1, 8), seed=st.integers(0, 10_000), f64=st.booleans())
def test_trace_matches_torch_nn_module(cfg, T, seed, f64):
    """States, outputs and gradients (input, initial state) against torch.nn.RNN/LSTM/GRU autograd."""
    model, X, targets, h0, c0 = setup(cfg, T, seed)
    dtype = torch.float64 if f64 else torch.float32
    module = model.core.to(dtype)
    assert type(module) in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)
    has_c = cfg.has_cell_state
    x = X.to(dtype)[None].clone().requires_grad_(True)
    h0_ = h0.to(dtype)[:, None].clone().requires_grad_(True)
    c0_ = c0.to(dtype)[:, None].clone().requires_grad_(True)
    out, final = module(x, (h0_, c0_) if has_c else h0_)
    model.head.to(dtype)
    Y = model.head(model.pool(out))[0] if cfg.head == "step" else model.head(model.pool(out))
    from rnn_tui.engine.model import compute_loss

    rows = Y.shape[0]
    scored = torch.tensor([t is not None for t in targets])
    if cfg.loss == "ce":
        tgt = torch.tensor([t if t is not None else -100 for t in targets])
        loss = compute_loss(cfg, Y, tgt) if scored.any() else Y.sum() * 0
    else:
        tgt = torch.tensor([t if t is not None else [0.0] * cfg.output_size for t in targets], dtype=dtype)
        loss = compute_loss(cfg, Y, tgt, scored) if scored.any() else Y.sum() * 0
    loss.backward()
    tr = run_trace(model, X.to(dtype), targets, dtype="float64" if f64 else "float32",
                   initial_state=(h0.to(dtype), c0.to(dtype) if has_c else None))
    tol = dict(rtol=1e-9, atol=1e-11) if f64 else dict(rtol=2e-4, atol=2e-5)
    assert tr.outputs.shape[0] == rows
    np.testing.assert_allclose(tr.loss, loss.item(), **tol)
    np.testing.assert_allclose(tr.outputs, Y.detach().numpy(), **tol)
    H = cfg.hidden_size
    top = [lt for lt in tr.layers if lt.layer == cfg.num_layers - 1]
    np.testing.assert_allclose(np.concatenate([lt.h for lt in top], axis=1), out[0].detach().numpy(), **tol)
    h_n = final[0] if has_c else final
    ends = [lt.h[-1] if lt.direction == "forward" else lt.h[0] for lt in tr.layers]
    np.testing.assert_allclose(np.stack(ends), h_n[:, 0].detach().numpy(), **tol)
    if has_c:
        c_ends = [lt.c[-1] if lt.direction == "forward" else lt.c[0] for lt in tr.layers]
        np.testing.assert_allclose(np.stack(c_ends), final[1][:, 0].detach().numpy(), **tol)
        np.testing.assert_allclose(tr.extras["dL_dc0"], c0_.grad[:, 0].numpy(), **tol)
    np.testing.assert_allclose(tr.extras["dL_dh0"], h0_.grad[:, 0].numpy(), **tol)
    # dL/dx_t = sum over layer-0 directions of W_ih^T δa_t
    W = {lt.direction: tr.params["weight_ih_l0" + ("_reverse" if lt.direction == "reverse" else "")]
         for lt in tr.layers if lt.layer == 0}  # fmt: skip
    dX = sum(lt.dL_dpre @ W[lt.direction] for lt in tr.layers if lt.layer == 0)
    np.testing.assert_allclose(dX, x.grad[0].numpy(), **tol)
    assert H == tr.layers[0].h.shape[1]


@pytest.mark.parametrize("cell,act", [c for c in CELL_ACTS if c not in TORCH_CELLS])
def test_explicit_variants_match_a_hand_built_torch_equivalent(cell, act):
    """Where a variant reduces to a torch cell (zero peepholes; textbook GRU with r=1), they agree."""
    cfg = ModelConfig(cell=cell, activation=act, input_size=3, hidden_size=4, output_size=2,
                      input_mode="vectors", vocab_size=0)
    stack = CellStack(cfg).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    if cell == "lstm-peephole":
        ref = torch.nn.LSTM(3, 4, batch_first=True).double()
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(stack, name).copy_(getattr(ref, name))
            for name in ("weight_ci_l0", "weight_cf_l0", "weight_co_l0"):
                getattr(stack, name).zero_()
        np.testing.assert_allclose(stack(x)[0].detach(), ref(x)[0].detach(), rtol=1e-12, atol=1e-14)
    elif cell == "gru-textbook":
        ref = torch.nn.GRU(3, 4, batch_first=True).double()
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(stack, name).copy_(getattr(ref, name))
            # r = σ(large) = 1 and b_hn = 0: both placements give n = tanh(W_in x + b_in + W_hn h)
            for m in (stack, ref):
                m.bias_ih_l0[:4] = 50.0
                m.weight_hh_l0[:4] = 0.0
                m.weight_ih_l0[:4] = 0.0
                m.bias_hh_l0[8:] = 0.0
        np.testing.assert_allclose(stack(x)[0].detach(), ref(x)[0].detach(), rtol=1e-12, atol=1e-14)
    else:  # sigmoid / identity rnn: h_t = act(W_ih x + b + W_hh h + b) against torch.nn.RNN's pre-activation
        ref = torch.nn.RNN(3, 4, nonlinearity="tanh", batch_first=True).double()
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(stack, name).copy_(getattr(ref, name))
        h = torch.zeros(2, 4, dtype=torch.float64)
        f = torch.sigmoid if act == "sigmoid" else (lambda a: a)
        for t in range(5):
            a = x[:, t] @ ref.weight_ih_l0.T + ref.bias_ih_l0 + h @ ref.weight_hh_l0.T + ref.bias_hh_l0
            h = f(a)
        np.testing.assert_allclose(stack(x)[0][:, -1].detach(), h.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["lstm-peephole", "gru-textbook", "rnn"])
def test_variant_gradients_match_finite_differences(cell):
    """dL/dh0 from the delta recursion against central differences of the loss (float64)."""
    act = "sigmoid" if cell == "rnn" else "tanh"
    cfg = ModelConfig(cell=cell, activation=act, input_size=3, hidden_size=3, output_size=2, num_layers=2,
                      input_mode="vectors", vocab_size=0)
    model, X, targets, h0, c0 = setup(cfg, 6, 3)
    targets = [0, 1, None, 1, 0, 1]
    c0 = c0 if cfg.has_cell_state else None
    tr = run_trace(model, X, targets, dtype="float64", initial_state=(h0, c0))
    eps = 1e-6
    for idx in range(h0.shape[0]):
        for j in range(h0.shape[1]):
            hp, hm = h0.clone(), h0.clone()
            hp[idx, j] += eps
            hm[idx, j] -= eps
            lp = run_trace(model, X, targets, dtype="float64", initial_state=(hp, c0)).loss
            lm = run_trace(model, X, targets, dtype="float64", initial_state=(hm, c0)).loss
            assert abs((lp - lm) / (2 * eps) - tr.extras["dL_dh0"][idx, j]) < 1e-7


def test_token_inputs_onehot_and_embedding_match_model_forward():
    for mode in ("onehot", "embedding"):
        cfg = ModelConfig(cell="gru", input_size=5 if mode == "onehot" else 3, vocab_size=5, hidden_size=4,
                          output_size=5, input_mode=mode)
        model = build_model(cfg, seed=1).double()
        x = torch.tensor([0, 3, 4, 1, 1, 2])
        tr = run_trace(model, x, [3, 4, 1, 1, 2, None], dtype="float64")
        np.testing.assert_allclose(tr.outputs, model(x[None])[0].detach().numpy(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(tr.inputs, model.encode(x[None])[0].detach().numpy())


def test_same_trace_in_float32_and_float64_to_float32_precision():
    cfg = ModelConfig(cell="lstm", input_size=6, vocab_size=6, hidden_size=8, output_size=6, num_layers=2)
    model = build_model(cfg, seed=2)
    x = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1])
    tg = x.roll(-1).tolist()
    a, b = run_trace(model, x, tg, dtype="float32"), run_trace(model, x, tg, dtype="float64")
    assert a.inputs.dtype == np.float32 and b.inputs.dtype == np.float64
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(la.dL_dh, lb.dL_dh, rtol=1e-3, atol=1e-6)


def test_unscored_everything_gives_zero_loss_and_gradient():
    cfg = ModelConfig(cell="lstm", input_size=3, vocab_size=3, hidden_size=2, output_size=3)
    tr = run_trace(build_model(cfg, seed=0), torch.tensor([0, 1, 2]), [None, None, None])
    assert tr.loss == 0.0 and np.isnan(tr.step_losses).all()
    assert not tr.layers[0].dL_dh.any()
