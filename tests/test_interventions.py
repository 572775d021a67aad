"""Interventions: the explicit autograd path equals the fast path when nothing is held, and a held
value behaves as the equations say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.model import build_model
from rnn_tui.engine import trace as trace_module
from rnn_tui.engine.trace import Intervention, TraceError, run_trace
from tests.test_trace_parity import configs, setup


@settings(max_examples=30, deadline=None)
@given(cfg=configs(), T=st.integers(1, 6), seed=st.integers(0, 1000))
def test_holding_a_value_at_what_it_already_is_changes_nothing(cfg, T, seed):
    """A state held at its own value (edited to itself) leaves states and gradients as the fast path
    computes them, except that no gradient flows back through the held unit at that step."""
    model, X, targets, h0, c0 = setup(cfg, T, seed)
    c0 = c0 if cfg.has_cell_state else None
    fast = run_trace(model, X, targets, dtype="float64", initial_state=(h0, c0))
    # an intervention on a step past the end of the reading order for this direction still forces
    # the explicit path; holding unit 0 of layer 0 at its own value at the last step
    t = T - 1
    value = float(fast.layers[0].h[t, 0])
    slow = run_trace(model, X, targets, dtype="float64", initial_state=(h0, c0),
                     interventions=[Intervention("state", "h", value, layer=0, unit=0, start=t, stop=t + 1)])
    tol = dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(slow.outputs, fast.outputs, **tol)
    for a, b in zip(fast.layers, slow.layers):
        np.testing.assert_allclose(b.h, a.h, **tol)
        for name in a.gates:
            np.testing.assert_allclose(b.gates[name], a.gates[name], **tol)
            np.testing.assert_allclose(b.preacts[name], a.preacts[name], **tol)
    # gradients agree wherever the held unit's step is not upstream: the top layer's dL/dh and every
    # entry when the held step is the first one read (position T-1 is read last by layer 0 forward)
    top = [i for i, lt in enumerate(fast.layers) if lt.layer == cfg.num_layers - 1 and lt.layer > 0]
    for i in top:
        np.testing.assert_allclose(slow.layers[i].dL_dh, fast.layers[i].dL_dh, **tol)
        np.testing.assert_allclose(slow.layers[i].dL_dpre, fast.layers[i].dL_dpre, **tol)
    np.testing.assert_allclose(slow.layers[0].dL_dh[t], fast.layers[0].dL_dh[t], **tol)


CELL_ACTS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"), ("rnn", "identity"), ("lstm", "tanh"),
             ("lstm-peephole", "tanh"), ("gru", "tanh"), ("gru-textbook", "tanh")]  # fmt: skip


def test_the_readable_path_gives_the_fast_passs_pre_activation_gradients():
    """With nothing held, the autograd path (taken for values held by hand) gives the fast pass's
    dL/da_t at every layer and step."""
    for cell, act in CELL_ACTS:
        cfg = ModelConfig(cell=cell, activation=act, input_size=3, hidden_size=4, num_layers=2, output_size=3,
                          input_mode="onehot", vocab_size=3)  # fmt: skip
        model = build_model(cfg, seed=1).double()
        x, targets = _sequence(cfg, 6, np.random.default_rng(1))
        fast = run_trace(model, x, targets, dtype="float64")
        P = {k: v.detach().numpy() for k, v in model.tensors().items()}
        X0 = fast.inputs
        zeros = np.zeros((2, 4))
        slow = trace_module._autograd_pass(cfg, P, X0, zeros, zeros if cfg.has_cell_state else None, targets, None, [])
        for lt, g in zip(fast.layers, slow.grads):
            assert np.abs(lt.dL_dpre).max() > 0
            np.testing.assert_allclose(g.dA, lt.dL_dpre, rtol=1e-10, atol=1e-13, err_msg=cell)


def _sequence(cfg: ModelConfig, T: int, rng):
    """Token ids and a class target per step, one unscored."""
    x = rng.integers(0, cfg.vocab_size, T)
    targets = [int(v) for v in rng.integers(0, cfg.output_size, T)]
    targets[T // 2] = None
    return x, targets


@pytest.mark.parametrize("cell", ["lstm", "lstm-peephole"])
def test_forget_one_input_zero_freezes_the_cell_state(cell):
    cfg = ModelConfig(cell=cell, input_size=4, vocab_size=4, hidden_size=3, output_size=4)
    model = build_model(cfg, seed=0)
    x = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    tg = x.roll(-1).tolist()
    base = run_trace(model, x, tg, dtype="float64")
    held = run_trace(model, x, tg, dtype="float64", interventions=[
        Intervention("gate", "f", 1.0, start=3), Intervention("gate", "i", 0.0, start=3)])
    lt = held.layers[0]
    for t in range(3, 8):
        np.testing.assert_allclose(lt.c[t], base.layers[0].c[2], rtol=0, atol=1e-15)
    np.testing.assert_allclose(lt.h[:3], base.layers[0].h[:3])
    assert (lt.gates["f"][3:] == 1.0).all() and (lt.gates["i"][3:] == 0.0).all()
    assert not np.allclose(held.outputs[4:], base.outputs[4:])
    # the gradient on c_t with f = 1 passes through unchanged: dL/dc_t = dL/dc_{t+1} + direct part
    o, tc = lt.gates["o"], np.tanh(lt.c)
    for t in range(3, 7):
        direct_c = lt.dL_dh[t] * o[t] * (1 - tc[t] ** 2)
        if cell == "lstm-peephole":
            direct_c = direct_c + lt.dL_dh[t] * tc[t] * o[t] * (1 - o[t]) * held.params["weight_co_l0"]
        np.testing.assert_allclose(lt.dL_dc[t], lt.dL_dc[t + 1] + direct_c, rtol=1e-9, atol=1e-12)


def test_edit_h_at_one_step_and_zero_a_unit():
    cfg = ModelConfig(cell="gru", input_size=4, vocab_size=4, hidden_size=3, output_size=4, num_layers=2)
    model = build_model(cfg, seed=1)
    x = torch.tensor([0, 1, 2, 3, 0, 1])
    base = run_trace(model, x, x.roll(-1).tolist(), dtype="float64")
    edited = run_trace(model, x, x.roll(-1).tolist(), dtype="float64",
                       interventions=[Intervention("state", "h", 0.9, layer=0, unit=1, start=2, stop=3)])
    assert edited.layers[0].h[2, 1] == 0.9
    np.testing.assert_allclose(edited.layers[0].h[:2], base.layers[0].h[:2])
    assert not np.allclose(edited.layers[0].h[3:], base.layers[0].h[3:])
    # a held value passes no gradient back: dL/dh_1 loses unit 1's path through step 2
    zeroed = run_trace(model, x, x.roll(-1).tolist(), dtype="float64",
                       interventions=[Intervention("state", "h", 0.0, layer=1, unit=2)])
    assert (zeroed.layers[1].h[:, 2] == 0).all()


@pytest.mark.parametrize(
    "iv,message",
    [
        (Intervention("gate", "q", 1.0), "has i, f, g, o"),
        (Intervention("state", "c", 1.0, layer=3), "layer must be"),
        (Intervention("state", "h", 1.0, unit=99), "unit must be"),
        (Intervention("state", "h", 1.0, start=50), "steps must lie"),
        (Intervention("state", "h", float("nan")), "finite"),
        (Intervention("state", "h", 1.0, direction="reverse"), "direction must be forward"),
    ],
)
def test_bad_interventions_are_refused(iv, message):
    cfg = ModelConfig(cell="lstm", input_size=3, vocab_size=3, hidden_size=2, output_size=3)
    with pytest.raises(TraceError, match=message):
        run_trace(build_model(cfg, seed=0), torch.tensor([0, 1, 2]), None, interventions=[iv])
