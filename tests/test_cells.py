"""Every cell module's maths against torch autograd in float64, over many random configs.

Per cell (the registry's every entry): the fast forward pass against the readable step looped in
torch; one step's `vjp` (the delta recursion's step) against autograd through the readable step;
`jvp` and the dense step Jacobian against `torch.autograd.functional.jacobian`; the batched forms
of both against the one-step forms; and the equation terms against the trace's pre-activations.
The readable step itself is checked against torch.nn in tests/test_trace_parity.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine.cells import CELLS, REGISTRY, get_cell
from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.model import CellStack, build_model
from rnn_tui.engine.trace import run_trace

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = dict(rtol=1e-10, atol=1e-12)


@st.composite
def cells_and_weights(draw):
    """A cell, its activation, sizes, and float64 weights (numpy) with some large entries."""
    name = draw(st.sampled_from(CELLS))
    cell = REGISTRY[name]
    activation = draw(st.sampled_from(cell.activations))
    H, I = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    bias = draw(st.booleans())
    g = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([0.3, 1.0, 2.5]))
    tensors = {w.prefix + "_l0": g.normal(size=w.size(cell.G, H, I)) * scale
               for w in cell.weights if bias or not w.bias}  # fmt: skip
    return cell, activation, H, I, tensors, g


def torch_weights(cell, tensors, requires_grad=False):
    t = {k: torch.tensor(v, requires_grad=requires_grad) for k, v in tensors.items()}
    return cell.layer_weights(t, "_l0"), t


def state(cell, g, H):
    return tuple(g.normal(size=H) for _ in cell.states)


# ---- the registry ---------------------------------------------------------------------------------------
def test_the_registry_is_what_every_part_reads():
    from rnn_tui import cli
    from rnn_tui.commands import train
    from rnn_tui.engine import config, equations, weights

    assert CELLS == ("rnn", "lstm", "lstm-peephole", "gru", "gru-textbook", "indrnn", "mingru", "minlstm")
    assert cli.CELL_NAMES == CELLS == config.CELLS == train.CELL_NAMES
    assert set(equations.EQUATIONS) == set(CELLS) and set(weights.GATE_ROWS) == set(CELLS)
    for name, cell in REGISTRY.items():
        assert cell.name == name and len(cell.gate_fns) == cell.G and cell.equations
        assert config.GATES[name] == cell.gates
        cfg = ModelConfig(cell=name, hidden_size=3, input_size=2, vocab_size=2, num_layers=2, bidirectional=True)
        assert cfg.has_cell_state == ("c" in cell.states)
        model = build_model(cfg, seed=0)
        shapes = {k: tuple(v.shape) for k, v in model.tensors().items() if not k.startswith("head.")}
        expect = {}
        for k in range(2):
            for sfx in (f"_l{k}", f"_l{k}_reverse"):
                for prefix, shape in cell.tensor_shapes(3, 2 if k == 0 else 6).items():
                    expect[prefix + sfx] = shape
        assert shapes == expect, name
        assert cfg.num_parameters == model.num_parameters()
        assert cfg.torch_native == (not isinstance(model.core, CellStack))


def test_cells_refuse_an_activation_they_do_not_have():
    with pytest.raises(ConfigError, match="--activation applies to the rnn and indrnn cells only"):
        ModelConfig(cell="gru", activation="relu")
    with pytest.raises(ConfigError, match="--scan parallel applies to the mingru and minlstm cells only"):
        ModelConfig(cell="gru", scan="parallel")
    with pytest.raises(KeyError, match="unknown cell 'transformer'"):
        get_cell("transformer")


def test_the_registry_loads_neither_numpy_nor_torch():
    code = "import sys, rnn_tui.engine.cells, rnn_tui.engine.config; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]


# ---- the fast forward pass ---------------------------------------------------------------------------------
@SETTINGS
@given(cells_and_weights(), st.integers(1, 7))
def test_forward_equals_the_readable_step_looped(problem, T):
    cell, activation, H, I, tensors, g = problem
    X = g.normal(size=(T, I))
    s0 = state(cell, g, H)
    w_np = cell.layer_weights(tensors, "_l0")
    fw = cell.forward(w_np, X, s0[0], s0[1] if cell.has_cell_state else None, activation)
    w_t, _ = torch_weights(cell, tensors)
    s = tuple(torch.tensor(v) for v in s0)
    for t in range(T):
        s, gates = cell.step(torch.tensor(X[t]), s, w_t, activation)
        np.testing.assert_allclose(fw.H[t], s[0].numpy(), **TOL)
        if cell.has_cell_state:
            np.testing.assert_allclose(fw.C[t], s[1].numpy(), **TOL)
        for name, (pre, act) in gates.items():
            np.testing.assert_allclose(fw.pre[name][t], pre.numpy(), **TOL, err_msg=name)
            np.testing.assert_allclose(fw.act[name][t], act.numpy(), **TOL, err_msg=name)
    np.testing.assert_allclose(fw.H_prev[0], s0[0], **TOL)


# ---- one step back: vjp --------------------------------------------------------------------------------------
def one_step(cell, activation, tensors, x, s_prev):
    """A forward record of one step from s_prev, and its factors."""
    w = cell.layer_weights(tensors, "_l0")
    fw = cell.forward(w, x[None], s_prev[0], s_prev[1] if cell.has_cell_state else None, activation)
    return fw, cell.coefficients(fw)


@SETTINGS
@given(cells_and_weights())
def test_vjp_equals_autograd_through_the_readable_step(problem):
    """before = J_t^T u, dA = dL/d(pre-activations), at = the total dL/ds_t, for L = u_h.h_t + u_c.c_t."""
    cell, activation, H, I, tensors, g = problem
    if "bias_ih_l0" not in tensors:  # dL/da is dL/db_ih: give the step zero biases to read it from
        tensors = dict(tensors, bias_ih_l0=np.zeros(cell.G * H), bias_hh_l0=np.zeros(cell.G * H))
    x, s_prev, u = g.normal(size=I), state(cell, g, H), state(cell, g, H)
    fw, k = one_step(cell, activation, tensors, x, s_prev)
    dA, before, at = cell.vjp(k, 0, fw.w, u)

    w_t, leaves = torch_weights(cell, tensors, requires_grad=True)
    s = tuple(torch.tensor(v, requires_grad=True) for v in s_prev)
    probe = torch.zeros(H, dtype=torch.float64, requires_grad=True)  # on c_t, before h_t reads it
    new, _ = cell.step(torch.tensor(x), s, w_t, activation, edit=lambda n, v: v + probe if n == "c" else v)
    L = sum((torch.tensor(ui) * si).sum() for ui, si in zip(u, new))
    grads = torch.autograd.grad(L, list(s) + [leaves["bias_ih_l0"], probe], allow_unused=True)
    for ours, theirs in zip(before, grads[: len(s)]):
        np.testing.assert_allclose(ours, theirs.numpy(), **TOL)
    np.testing.assert_allclose(dA, grads[len(s)].numpy(), **TOL)
    np.testing.assert_allclose(at[0], u[0], **TOL)
    if cell.has_cell_state:
        np.testing.assert_allclose(at[1], grads[-1].numpy(), **TOL)


# ---- the step Jacobian: jvp and its dense form -------------------------------------------------------------------
@SETTINGS
@given(cells_and_weights())
def test_jvp_and_the_dense_jacobian_equal_autograd(problem):
    cell, activation, H, I, tensors, g = problem
    x, s_prev, v = g.normal(size=I), state(cell, g, H), state(cell, g, H)
    fw, k = one_step(cell, activation, tensors, x, s_prev)
    w_t, _ = torch_weights(cell, tensors)
    n = len(cell.states)

    def step(s):
        new, _ = cell.step(torch.tensor(x), tuple(s[i * H : (i + 1) * H] for i in range(n)), w_t, activation)
        return torch.cat(new)

    J = torch.autograd.functional.jacobian(step, torch.tensor(np.concatenate(s_prev))).numpy()
    np.testing.assert_allclose(cell.jacobians(fw, [0])[0], J, **TOL)
    np.testing.assert_allclose(np.concatenate(cell.jvp(k, 0, fw.w, v)), J @ np.concatenate(v), **TOL)
    _, before, _ = cell.vjp(k, 0, fw.w, v)
    np.testing.assert_allclose(np.concatenate(before), J.T @ np.concatenate(v), **TOL)


@SETTINGS
@given(cells_and_weights(), st.integers(2, 6))
def test_batched_steps_equal_one_step_at_a_time(problem, T):
    """jvp and vjp on factors taken at many steps (a leading batch) equal each step's own."""
    cell, activation, H, I, tensors, g = problem
    s0 = state(cell, g, H)
    fw = cell.forward(cell.layer_weights(tensors, "_l0"), g.normal(size=(T, I)), s0[0],
                      s0[1] if cell.has_cell_state else None, activation)  # fmt: skip
    k = cell.coefficients(fw)
    idx = g.integers(0, T, size=5)
    u = tuple(g.normal(size=(5, H)) for _ in cell.states)
    many_v = cell.jvp(k.take(idx), slice(None), fw.w, u)
    dA, many_b, many_at = cell.vjp(k.take(idx), slice(None), fw.w, u)
    for r, t in enumerate(idx):
        one = tuple(a[r] for a in u)
        for a, b in zip(many_v, cell.jvp(k, int(t), fw.w, one)):
            np.testing.assert_allclose(a[r], b, **TOL)
        dA1, b1, at1 = cell.vjp(k, int(t), fw.w, one)
        np.testing.assert_allclose(dA[r], dA1, **TOL)
        for a, b in zip(many_b + many_at, b1 + at1):
            np.testing.assert_allclose(a[r], b, **TOL)


@SETTINGS
@given(cells_and_weights(), st.integers(1, 6), st.sampled_from([(), (3,), (2, 2)]), st.booleans())
def test_a_cells_own_backward_loop_equals_one_vjp_per_step(problem, T, lead, final):
    """Cell.backward loops vjp; a cell may write the loop out for speed (the LSTM does)."""
    from rnn_tui.engine.cells import Cell

    cell, activation, H, I, tensors, g = problem
    s0 = state(cell, g, H)
    fw = cell.forward(cell.layer_weights(tensors, "_l0"), g.normal(size=(T, I)), s0[0],
                      s0[1] if cell.has_cell_state else None, activation)  # fmt: skip
    direct = g.normal(size=lead + (T, H))
    ends = tuple(g.normal(size=lead + (H,)) for _ in cell.states) if final else ()
    ours, plain = cell.backward(fw, direct, ends), Cell.backward(cell, fw, direct, ends)
    for name in ("dH", "dC", "dA", "dh0", "dc0"):
        a, b = getattr(ours, name), getattr(plain, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, **TOL, err_msg=name)


# ---- the equations' terms -------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.sampled_from(CELLS), st.booleans(), st.booleans(), st.integers(0, 10_000))
def test_equation_terms_add_up_to_the_traces_numbers(name, bias, bidirectional, seed):
    cell = REGISTRY[name]
    activation = cell.activations[seed % len(cell.activations)]
    cfg = ModelConfig(cell=name, activation=activation, input_size=4, vocab_size=4, hidden_size=3, output_size=4,
                      num_layers=2, bidirectional=bidirectional, bias=bias)  # fmt: skip
    x = torch.as_tensor(np.random.default_rng(seed).integers(0, 4, 5))
    trace = run_trace(build_model(cfg, seed=seed).double(), x, x.roll(-1).tolist(), dtype="float64")
    for entry in trace.layers:
        w = cell.layer_weights(trace.params, "_" + entry.name)
        X = trace.inputs if entry.layer == 0 else np.concatenate([e.h for e in trace.layers if e.layer == entry.layer - 1], 1)
        prev = "t-1" if entry.direction == "forward" else "t+1"
        for t in range(trace.T):
            for j in range(3):
                reads, eqs = cell.equations_at(w, X[t], entry, t, j, prev, activation)
                assert reads[0][1] == entry.h_prev[t, j]
                for eq in eqs:
                    total = sum(term.value for term in eq.terms)
                    if eq.pre is not None:  # a gate: its terms are its pre-activation
                        gate = "a" if name in ("rnn", "indrnn") else eq.lhs[0]
                        assert eq.pre == entry.preacts[gate][t, j]
                        assert total == pytest.approx(eq.pre, rel=1e-12, abs=1e-12)
                    else:  # c_t or h_t as a sum of products
                        assert total == pytest.approx(eq.value, rel=1e-12, abs=1e-12)
                    for term in eq.terms:
                        if term.factors and all(f.kind == "value" for f in term.factors):
                            assert term.value == pytest.approx(np.prod([f.values[0] for f in term.factors]), rel=1e-12)
