"""Every gradient-flow quantity against torch autograd in float64.

The answer key here is a plain autograd loop over the cells' readable steps
(`rnn_tui.engine.cells`, and torch.nn's own cells and modules where torch has the cell), sharing
no code with the delta recursion of `trace.py` or the bookkeeping of `gradflow.py`:
- flow: d l_r / d h_k by `torch.autograd.grad` of each row's loss on the intermediate h_k;
- per-step dW_hh: every step reads its own leaf copy of W_hh, whose gradient is that step's share;
- truncated BPTT: the same loop with `h.detach()` (and `c.detach()`) every K steps.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine import cells
from rnn_tui.engine import gradflow as gf
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.model import IGNORE, build_model, compute_loss
from rnn_tui.engine.trace import run_trace

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = dict(rtol=1e-9, atol=1e-11)


# ---- problems ---------------------------------------------------------------------------------
@st.composite
def problems(draw, max_T=6, heads=("step", "last", "mean")):
    cell = draw(st.sampled_from(["rnn", "lstm", "lstm-peephole", "gru", "gru-textbook"]))
    activation = draw(st.sampled_from(["tanh", "relu", "sigmoid", "identity"])) if cell == "rnn" else "tanh"
    mode = draw(st.sampled_from(["onehot", "vectors", "embedding"]))
    vocab = draw(st.integers(2, 5))
    cfg = ModelConfig(
        cell=cell,
        activation=activation,
        input_size=vocab if mode == "onehot" else draw(st.integers(1, 4)),
        vocab_size=0 if mode == "vectors" else vocab,
        input_mode=mode,
        hidden_size=draw(st.integers(1, 4)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()),
        output_size=draw(st.integers(1, 4)),
        head=draw(st.sampled_from(heads)),
        loss=draw(st.sampled_from(["ce", "mse"])),
    )
    T = draw(st.integers(1, max_T))
    seed = draw(st.integers(0, 2**31 - 1))
    g = np.random.default_rng(seed)
    x = g.normal(size=(T, cfg.input_size)) if mode == "vectors" else g.integers(0, vocab, T)
    rows = T if cfg.head == "step" else 1
    scored = g.random(rows) < 0.7
    scored[g.integers(rows)] = True
    if cfg.loss == "ce":
        targets = [int(g.integers(cfg.output_size)) if s else None for s in scored]
    else:
        targets = [g.normal(size=cfg.output_size).tolist() if s else None for s in scored]
    model = build_model(cfg, seed=seed % 10_000).double()
    with torch.no_grad():  # larger weights than the default init, so gradients neither vanish nor tie
        for p in model.parameters():
            p.mul_(2.0)
    trace = run_trace(model, torch.as_tensor(x), targets, dtype="float64")
    return model, x, targets, trace


# ---- the answer key -----------------------------------------------------------------------------
def reference(model, x, targets, cut: int | None = None, per_step_W_hh: bool = False):
    """Autograd loop over the cell equations. Returns params (leaves), per-entry lists of h_t, c_t
    (sequence order), per-row losses, the total loss, and the per-step W_hh leaves if asked."""
    cfg = model.config
    P = {k: v.detach().clone().requires_grad_(True) for k, v in model.tensors().items()}
    xt = torch.as_tensor(x)
    if cfg.input_mode == "vectors":
        X = xt.double()
    elif cfg.input_mode == "embedding":
        X = P["embedding.weight"][xt.long()]
    else:
        X = F.one_hot(xt.long(), cfg.vocab_size).double()
    T, H, D = X.shape[0], cfg.hidden_size, cfg.num_directions
    hs_all, cs_all, W_steps = [], [], []
    layer_in = X
    for k in range(cfg.num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            W_ih, b_ih, b_hh = P[f"weight_ih{sfx}"], P.get(f"bias_ih{sfx}"), P.get(f"bias_hh{sfx}")
            Ws = P[f"weight_hh{sfx}"].detach().repeat(T, 1, 1).requires_grad_(True) if per_step_W_hh else None
            W_steps.append(Ws)
            h = torch.zeros(H, dtype=torch.float64)
            c = torch.zeros(H, dtype=torch.float64)
            hs, cs = [None] * T, [None] * T
            for t in reversed(range(T)) if d else range(T):
                boundary = (t + 1) if d else t  # the later of the two positions this step joins
                if cut is not None and 0 < boundary < T and boundary % cut == 0:
                    h, c = h.detach(), c.detach()  # truncated BPTT: cut the recurrent path
                W_hh = Ws[t] if per_step_W_hh else P[f"weight_hh{sfx}"]
                if cfg.cell == "rnn":
                    h, _ = cells.rnn_cell(layer_in[t], h, W_ih, W_hh, b_ih, b_hh, cfg.activation)
                elif cfg.cell.startswith("lstm"):
                    peep = [P.get(f"weight_c{n}{sfx}") for n in "ifo"]
                    (h, c), _ = cells.lstm_cell(layer_in[t], h, c, W_ih, W_hh, b_ih, b_hh, *peep)
                else:
                    h, _ = cells.gru_cell(layer_in[t], h, W_ih, W_hh, b_ih, b_hh, cfg.cell == "gru-textbook")
                hs[t], cs[t] = h, c
            hs_all.append(hs)
            cs_all.append(cs if cfg.has_cell_state else None)
            outs.append(torch.stack(hs))
        layer_in = torch.cat(outs, dim=-1)
    pooled = model.pool(layer_in[None])[0]
    pooled = pooled if pooled.dim() == 2 else pooled[None]
    Y = pooled @ P["head.weight"].T + P["head.bias"]
    losses = []
    for r, tg in enumerate(targets):
        if tg is None:
            losses.append(None)
        elif cfg.loss == "ce":
            losses.append(F.cross_entropy(Y[r : r + 1], torch.tensor([tg])))
        else:
            losses.append(((Y[r] - torch.tensor(tg, dtype=torch.float64)) ** 2).mean())
    scored = [l for l in losses if l is not None]
    L = torch.stack(scored).mean()
    return P, hs_all, cs_all, losses, L, W_steps, Y


def grad_of(out, inputs):
    gs = torch.autograd.grad(out, inputs, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(gs, inputs)]


# ---- tests ---------------------------------------------------------------------------------------
@SETTINGS
@given(problems())
def test_full_gradients_match_the_model_autograd(problem):
    """Every tensor's gradient, from the trace's deltas, equals autograd through the model."""
    model, x, targets, trace = problem
    cfg = model.config
    model.zero_grad()
    y = model(torch.as_tensor(x)[None])
    if cfg.head == "step":
        if cfg.loss == "ce":
            L = compute_loss(cfg, y[0], torch.tensor([IGNORE if t is None else t for t in targets]))
        else:
            tg = torch.tensor([[0.0] * cfg.output_size if t is None else t for t in targets], dtype=torch.float64)
            L = compute_loss(cfg, y[0], tg, torch.tensor([t is not None for t in targets]))
    else:
        tg = torch.tensor(targets) if cfg.loss == "ce" else torch.tensor(targets, dtype=torch.float64)
        L = compute_loss(cfg, y, tg)
    L.backward()
    grads = gf.full_gradients(trace)
    expect = {k: v.grad for k, v in model.tensors().items()}
    assert set(grads) == set(expect)
    for name, g in expect.items():
        np.testing.assert_allclose(grads[name], g.numpy(), **TOL, err_msg=name)


@SETTINGS
@given(problems(), st.sampled_from([gf.MAX_ELEMENTS, 40]))
def test_flow_matrix_matches_per_source_autograd(problem, budget):
    """flow[r, k] = ||d l_r / d h_k||, one autograd pass per source row, for every layers entry;
    a tiny `budget` splits the sources into many batches."""
    model, x, targets, trace = problem
    P, hs, cs, losses, L, _, Y = reference(model, x, targets)
    np.testing.assert_allclose(trace.outputs, Y.detach().numpy(), **TOL)
    flows = gf.flow_matrix(trace, max_elements=budget)
    vectors = gf.source_gradients(trace, [r for r, l in enumerate(losses) if l is not None])
    row = 0
    for r, l in enumerate(losses):
        for idx, (flow, flow_c) in enumerate(flows):
            if l is None:
                assert np.all(np.isnan(flow[r]))
                continue
            dh = torch.stack(grad_of(l, hs[idx])).numpy()  # (T, H)
            np.testing.assert_allclose(flow[r], np.linalg.norm(dh, axis=1), **TOL)
            np.testing.assert_allclose(vectors[idx][0][row], dh, **TOL)
            if cs[idx] is not None:
                dc = torch.stack(grad_of(l, cs[idx])).numpy()
                np.testing.assert_allclose(flow_c[r], np.linalg.norm(dc, axis=1), **TOL)
                np.testing.assert_allclose(vectors[idx][1][row], dc, **TOL)
            else:
                assert flow_c is None
        row += l is not None
    # averaged over the scored rows, the per-source vectors are the trace's dL/dh_t
    N = row
    for idx, (dh, dc) in enumerate(vectors):
        np.testing.assert_allclose(dh.sum(0) / N, trace.layers[idx].dL_dh, **TOL)
        if dc is not None:
            np.testing.assert_allclose(dc.sum(0) / N, trace.layers[idx].dL_dc, **TOL)


@SETTINGS
@given(problems())
def test_step_jacobians_match_autograd_of_one_step(problem):
    """J_t = d s_t / d s_prev vs torch.autograd.functional.jacobian of one step of torch.nn's cell
    (RNNCell, LSTMCell, GRUCell) or, for variants torch lacks, of the cell equations."""
    model, x, targets, trace = problem
    cfg = model.config
    T, H = trace.T, cfg.hidden_size
    P = {k: v.detach() for k, v in model.tensors().items()}
    norms = gf.jacobian_norms(trace, chunk=2)
    for idx, e in enumerate(trace.layers):
        sfx = f"_l{e.layer}" + ("_reverse" if e.direction == "reverse" else "")
        if e.layer == 0:
            X = torch.as_tensor(trace.inputs)
        else:
            X = torch.cat([torch.as_tensor(b.h) for b in trace.layers if b.layer == e.layer - 1], -1)
        w = {n: P.get(f"{n}{sfx}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        native = cfg.torch_native
        if native:
            kind = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}.get(cfg.cell)
            module = (
                kind(X.shape[1], H, bias=cfg.bias)
                if kind
                else torch.nn.RNNCell(X.shape[1], H, bias=cfg.bias, nonlinearity=cfg.activation)
            ).double()
            with torch.no_grad():
                for n, v in w.items():
                    if v is not None:
                        getattr(module, n).copy_(v)
        h_prev = np.asarray(e.h_prev)
        c_prev = e.c_prev
        J_all = gf.step_jacobians(trace, idx)
        for t in range(T):
            xt = X[t]

            def step(s):
                if cfg.has_cell_state:
                    h, c = s[:H], s[H:]
                    if native:
                        h2, c2 = module(xt[None], (h[None], c[None]))
                        return torch.cat([h2[0], c2[0]])
                    peep = [P[f"weight_c{n}{sfx}"] for n in "ifo"]
                    (h2, c2), _ = cells.lstm_cell(xt, h, c, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], *peep)
                    return torch.cat([h2, c2])
                if native:
                    return module(xt[None], s[None])[0]
                if cfg.cell == "rnn":
                    return cells.rnn_cell(xt, s, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], cfg.activation)[0]
                return cells.gru_cell(xt, s, w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"], True)[0]

            s_prev = h_prev[t] if c_prev is None else np.concatenate([h_prev[t], c_prev[t]])
            J = torch.autograd.functional.jacobian(step, torch.as_tensor(s_prev)).numpy()
            np.testing.assert_allclose(J_all[t], J, **TOL)
            assert norms[idx][t] == pytest.approx(np.linalg.norm(J, 2), rel=1e-9, abs=1e-12)


@SETTINGS
@given(problems())
def test_per_step_W_hh_contributions_are_each_steps_share(problem):
    """dW_hh_steps[k] = the gradient of a leaf copy of W_hh read only at step k; the sum over k is
    the full gradient; dW_hh_step_norm is each one's Frobenius norm."""
    model, x, targets, trace = problem
    _, _, _, _, L, W_steps, _ = reference(model, x, targets, per_step_W_hh=True)
    expect = grad_of(L, W_steps)
    report = gf.analyze_gradflow(trace)
    full = gf.full_gradients(trace)
    for idx, e in enumerate(trace.layers):
        steps = gf.dW_hh_steps(trace, idx)
        np.testing.assert_allclose(steps, expect[idx].numpy(), **TOL)
        sfx = f"_l{e.layer}" + ("_reverse" if e.direction == "reverse" else "")
        np.testing.assert_allclose(steps.sum(0), full[f"weight_hh{sfx}"], **TOL)
        np.testing.assert_allclose(report.layers[idx].dW_hh, full[f"weight_hh{sfx}"], **TOL)
        np.testing.assert_allclose(
            report.layers[idx].dW_hh_step_norm, np.linalg.norm(steps.reshape(trace.T, -1), axis=1), **TOL
        )


@SETTINGS
@given(problems(), st.integers(1, 4))
def test_truncated_bptt_matches_autograd_with_detach_every_K_steps(problem, K):
    model, x, targets, trace = problem
    P, _, _, _, L, _, _ = reference(model, x, targets, cut=K)
    names = list(P)
    expect = dict(zip(names, grad_of(L, [P[n] for n in names])))
    res = gf.truncated_bptt(trace, K)
    assert set(res.grads) == set(expect)
    for name in names:
        np.testing.assert_allclose(res.grads[name], expect[name].numpy(), **TOL, err_msg=name)
    full = gf.full_gradients(trace)
    flat = lambda d: np.concatenate([d[n].ravel() for n in sorted(d)])  # noqa: E731
    assert res.distance == pytest.approx(np.linalg.norm(flat(res.grads) - flat(full)), rel=1e-9, abs=1e-14)
    assert res.full_norm == pytest.approx(np.linalg.norm(flat(full)), rel=1e-12)
    if K >= trace.T:  # nothing cut: the full gradient
        assert res.distance < 1e-12


def test_truncation_only_removes_long_paths():
    """A long identity-activation sequence: K=1 keeps only same-step paths, K=T loses nothing,
    and the distance to the full gradient shrinks as K grows."""
    cfg = ModelConfig(cell="rnn", activation="tanh", input_mode="vectors", input_size=2, vocab_size=0,
                      hidden_size=3, output_size=2, loss="mse")  # fmt: skip
    model = build_model(cfg, seed=3).double()
    g = np.random.default_rng(0)
    T = 12
    trace = run_trace(model, torch.as_tensor(g.normal(size=(T, 2))), [g.normal(size=2).tolist()] * T, dtype="float64")
    d = [gf.truncated_bptt(trace, K).relative_distance for K in (1, 2, 4, 12)]
    assert d[-1] < 1e-12
    assert d[0] > d[1] > d[2] > d[3]


def test_linear_rnn_decays_at_the_rate_of_its_weights():
    """h_t = W h_{t-1} + U x_t with W = 0.5 Q (Q orthogonal): every Jacobian is 0.5 Q, so
    ||d l / d h_k|| = 0.5^(T-1-k) ||V^T e|| exactly: gamma = 0.5 with R^2 = 1; rho(W) = 0.5."""
    H, T = 4, 9
    cfg = ModelConfig(cell="rnn", activation="identity", input_mode="vectors", input_size=2, vocab_size=0,
                      hidden_size=H, output_size=3, bias=False, loss="mse")  # fmt: skip
    model = build_model(cfg, seed=0).double()
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(H, H)))
    tensors = {k: v.detach().clone() for k, v in model.tensors().items()}
    tensors["weight_hh_l0"] = torch.as_tensor(0.5 * Q)
    model.load_tensors(tensors)
    targets = [None] * (T - 1) + [[1.0, -1.0, 0.5]]
    trace = run_trace(model, torch.ones(T, 2, dtype=torch.float64), targets, dtype="float64")
    rep = gf.analyze_gradflow(trace)
    e = rep.layers[0]
    assert e.decay.gamma == pytest.approx(0.5, rel=1e-10)
    assert e.decay.r2 == pytest.approx(1.0, abs=1e-12)
    assert e.decay.points == T and e.decay.max_lag == T - 1
    np.testing.assert_allclose(e.jacobian_norm, 0.5, rtol=1e-12)
    spec = e.spectrum["a"]
    assert spec.spectral_radius == pytest.approx(0.5, rel=1e-12)
    np.testing.assert_allclose(spec.singular_values, 0.5, rtol=1e-12)
    np.testing.assert_allclose(spec.eigenvalue_moduli, 0.5, rtol=1e-12)


def test_fit_decay_recovers_an_exact_geometric_law_and_reports_misfit():
    R = T = 10
    lag = np.arange(R)[:, None] - np.arange(T)[None, :]
    flow = np.where(lag >= 0, 3.0 * 1.3**lag, 0.0)
    fit = gf.fit_decay(flow, "forward")
    assert fit.gamma == pytest.approx(1.3, rel=1e-12) and fit.r2 == pytest.approx(1.0)
    assert fit.intercept == pytest.approx(math.log(3.0))
    fit_rev = gf.fit_decay(flow.T, "reverse")  # a reverse direction looks forward in time
    assert fit_rev.gamma == pytest.approx(1.3, rel=1e-12)
    noisy = flow * np.exp(np.random.default_rng(0).normal(scale=0.5, size=flow.shape))
    assert gf.fit_decay(noisy, "forward").r2 < 0.99
    assert math.isnan(gf.fit_decay(np.full((1, 1), 2.0), "forward").gamma)  # one point: no line


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.sampled_from([1, 3, 4]), st.integers(0, 10_000))
def test_spectrum_matches_numpy_linalg(H, G, seed):
    W = np.random.default_rng(seed).normal(size=(G * H, H))
    names = [f"g{j}" for j in range(G)]
    spec = gf.w_hh_spectrum(W, names)
    assert list(spec) == names
    for j, n in enumerate(names):
        block = W[j * H : (j + 1) * H]
        np.testing.assert_allclose(spec[n].singular_values, np.linalg.svd(block, compute_uv=False), rtol=1e-12)
        mods = np.sort(np.abs(np.linalg.eigvals(block)))[::-1]
        np.testing.assert_allclose(spec[n].eigenvalue_moduli, mods, rtol=1e-12)
        assert spec[n].spectral_radius == pytest.approx(max(abs(np.linalg.eigvals(block))))
        assert spec[n].spectral_norm == pytest.approx(np.linalg.norm(block, 2))


@pytest.mark.parametrize("threshold", [1e-3, 0.1, 1.0, 1e6])
@pytest.mark.parametrize("mode", ["norm", "value"])
def test_clip_preview_matches_torch_clipping(threshold, mode):
    g = np.random.default_rng(5)
    grads = {"a": g.normal(size=(3, 4)), "b": g.normal(size=5) * 0.01}
    params = [torch.nn.Parameter(torch.zeros(v.shape, dtype=torch.float64)) for v in grads.values()]
    for p, v in zip(params, grads.values()):
        p.grad = torch.as_tensor(v).clone()
    before = float(torch.linalg.vector_norm(torch.cat([p.grad.ravel() for p in params])))
    if mode == "norm":
        total = float(torch.nn.utils.clip_grad_norm_(params, threshold))
        assert total == pytest.approx(before, rel=1e-12)
    else:
        torch.nn.utils.clip_grad_value_(params, threshold)
    after = float(torch.linalg.vector_norm(torch.cat([p.grad.ravel() for p in params])))
    prev = gf.clip_preview(grads, threshold, mode)
    assert prev.norm_before == pytest.approx(before, rel=1e-12)
    assert prev.norm_after == pytest.approx(after, rel=1e-12)
    assert prev.clipped == (after < before * (1 - 1e-12))


def long_trace(T=40, cell="gru"):
    cfg = ModelConfig(cell=cell, input_size=5, vocab_size=5, hidden_size=3, output_size=5)
    model = build_model(cfg, seed=2).double()
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 5, T))
    targets = [None if t % 3 == 1 else int(v) for t, v in enumerate(x.roll(-1))]
    return run_trace(model, x, targets, dtype="float64")


def test_a_window_computes_only_its_rows_and_they_match_the_full_matrix():
    trace = long_trace()
    full = gf.flow_matrix(trace, sources=range(40))[0][0]
    rep = gf.analyze_gradflow(trace, window=(25, 40))
    part = rep.layers[0].flow
    assert list(rep.sources) == [t for t in range(25, 40) if t % 3 != 1]
    np.testing.assert_allclose(part[25:], full[25:])
    assert np.all(np.isnan(part[:25]))
    # a causal network: a source cannot reach later steps
    assert np.all(np.triu(np.nan_to_num(full), 1) == 0)
    # step Jacobians, lazily too: only the steps asked for
    some = gf.jacobian_norms(trace, steps=[3, 30])[0]
    np.testing.assert_allclose(some[[3, 30]], rep.layers[0].jacobian_norm[[3, 30]])
    assert np.isnan(some).sum() == 38
    doc = gf.to_json(rep)
    assert all(row is None for row in doc["flow"][0][:25])
    assert doc["flow"][0][25] is None and doc["flow"][0][26] is not None  # 25 % 3 == 1: unscored


def test_to_json_has_exactly_the_export_keys_and_is_strict_json():
    trace = long_trace(T=7, cell="lstm")
    rep = gf.analyze_gradflow(trace)
    doc = gf.to_json(rep)
    assert set(doc) == {"dL_dc_norm", "flow", "jacobian_norm", "gamma", "W_hh_spectrum", "dW_hh_step_norm"}
    json.dumps(doc, allow_nan=False)
    assert len(doc["flow"]) == 1 and len(doc["flow"][0]) == 7 and len(doc["flow"][0][0]) == 7
    assert doc["flow"][0][1] is None  # unscored step
    assert len(doc["jacobian_norm"][0]) == 7 and len(doc["dW_hh_step_norm"][0]) == 7
    np.testing.assert_allclose(doc["dL_dc_norm"][0], np.linalg.norm(trace.layers[0].dL_dc, axis=1))
    assert set(doc["W_hh_spectrum"][0]) == {"i", "f", "g", "o"}
    assert set(doc["gamma"][0]) == {"gamma", "r2", "points", "max_lag"}
    doc = gf.to_json(gf.analyze_gradflow(trace, tbptt=3, clip=0.5))
    assert set(doc) >= {"tbptt", "clip"}
    json.dumps(doc, allow_nan=False)
    assert doc["tbptt"]["K"] == 3 and set(doc["tbptt"]["per_tensor"]) == set(trace.params)
    gru = gf.to_json(gf.analyze_gradflow(long_trace(T=5)))
    assert gru["dL_dc_norm"] == [None]


def test_bad_requests_say_what_is_wrong():
    trace = long_trace(T=6)
    with pytest.raises(gf.GradFlowError, match="truncation window K"):
        gf.truncated_bptt(trace, 0)
    with pytest.raises(gf.GradFlowError, match="truncation window K"):
        gf.analyze_gradflow(trace, tbptt=2.5)
    with pytest.raises(gf.GradFlowError, match="clipping threshold"):
        gf.analyze_gradflow(trace, clip=-1.0)
    with pytest.raises(gf.GradFlowError, match="flow window"):
        gf.analyze_gradflow(trace, window=(10, 20))
    with pytest.raises(gf.GradFlowError, match="output rows 0..5"):
        gf.flow_matrix(trace, sources=[7])
    cfg = trace.config
    model = build_model(cfg, seed=0).double()
    unscored = run_trace(model, torch.zeros(4, dtype=torch.long), [None] * 4, dtype="float64")
    with pytest.raises(gf.GradFlowError, match="no scored output"):
        gf.analyze_gradflow(unscored)


def test_a_trace_with_held_values_is_refused():
    from rnn_tui.engine.trace import Intervention

    cfg = ModelConfig(cell="lstm", input_size=3, vocab_size=3, hidden_size=2, output_size=3)
    model = build_model(cfg, seed=0)
    trace = run_trace(model, torch.tensor([0, 1, 2]), [1, 2, 0], interventions=[Intervention("gate", "f", 1.0)])
    with pytest.raises(gf.GradFlowError, match="interventions"):
        gf.analyze_gradflow(trace)


def test_float32_traces_are_analysed_in_float32_close_to_float64():
    trace64 = long_trace(T=12, cell="lstm")
    cfg = trace64.config
    model = build_model(cfg, seed=2)
    x = torch.as_tensor(np.random.default_rng(0).integers(0, 5, 12))
    targets = [None if t % 3 == 1 else int(v) for t, v in enumerate(x.roll(-1))]
    rep32 = gf.analyze_gradflow(run_trace(model, x, targets, dtype="float32"), tbptt=4)
    rep64 = gf.analyze_gradflow(trace64, tbptt=4)
    np.testing.assert_allclose(
        np.nan_to_num(rep32.layers[0].flow), np.nan_to_num(rep64.layers[0].flow), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(rep32.layers[0].jacobian_norm, rep64.layers[0].jacobian_norm, rtol=1e-4)
    assert rep32.tbptt.relative_distance == pytest.approx(rep64.tbptt.relative_distance, rel=1e-3)
