"""IndRNN, minGRU and minLSTM against a plain autograd loop written here, in float64, over many
random configs (sizes, layers, directions, bias on and off, heads, losses, both scans).

The loop below shares no code with rnn_tui: each cell's equations are written out again, every
h_t gets a zero probe whose gradient is the total dL/dh_t, and torch autograd gives every other
gradient. Checked against it: the trace (states, gates, outputs, loss, dL/dh_t, dL/dh0, the deltas
read back as dL/dx), every tensor's gradient from the trace's deltas (`gradflow.full_gradients`),
and the training path (`model.CellStack`, the loop and the scan) with its autograd gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.gradflow import analyze_gradflow, full_gradients
from rnn_tui.engine.model import build_model
from rnn_tui.engine.trace import run_trace

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = dict(rtol=1e-9, atol=1e-11)
NEW = [("indrnn", "tanh"), ("indrnn", "relu"), ("indrnn", "sigmoid"), ("indrnn", "identity"),
       ("mingru", "tanh"), ("minlstm", "tanh")]  # fmt: skip


def plain_step(cell: str, act: str, P: dict, sfx: str, x, h):
    """One step of the cell, written from its equations; returns h_t and its gates {name: value}."""
    W = P[f"weight_ih{sfx}"]
    a = x @ W.T
    if f"bias_ih{sfx}" in P:
        a = a + P[f"bias_ih{sfx}"]
    if cell == "indrnn":
        a = a + P[f"weight_hh{sfx}"] * h
        if f"bias_hh{sfx}" in P:
            a = a + P[f"bias_hh{sfx}"]
        f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda v: v}[act]
        h_t = f(a)
        return h_t, {"a": h_t}
    H = h.shape[-1]
    if cell == "mingru":
        z, n = torch.sigmoid(a[:H]), a[H:]
        return (1 - z) * h + z * n, {"z": z, "n": n}
    fg, ig, n = torch.sigmoid(a[:H]), torch.sigmoid(a[H : 2 * H]), a[2 * H :]
    return fg / (fg + ig) * h + ig / (fg + ig) * n, {"f": fg, "i": ig, "n": n}


def plain_trace(model, X, targets, h0):
    cfg = model.config
    P = {k: v.detach().double().clone().requires_grad_(True) for k, v in model.tensors().items()}
    T, H, D = X.shape[0], cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    h0 = h0.double().clone().requires_grad_(True)
    X = X.double().clone().requires_grad_(True)
    probes = torch.zeros(LD, T, H, dtype=torch.float64, requires_grad=True)
    layer_in, states = X, {}
    for k in range(cfg.num_layers):
        outs = []
        for d in range(D):
            idx, sfx = k * D + d, f"_l{k}" + ("_reverse" if d else "")
            h, hs, gates = h0[idx], [None] * T, [None] * T
            for t in reversed(range(T)) if d else range(T):
                h, gates[t] = plain_step(cfg.cell, cfg.activation, P, sfx, layer_in[t], h)
                h = h + probes[idx, t]
                hs[t] = h
            states[idx] = (torch.stack(hs), gates)
            outs.append(torch.stack(hs))
        layer_in = torch.cat(outs, dim=-1)
    if cfg.head == "step":
        pooled = layer_in
    elif cfg.head == "mean":
        pooled = layer_in.mean(0, keepdim=True)
    else:
        last = layer_in[-1, :H]
        pooled = (torch.cat([last, layer_in[0, H:]]) if cfg.bidirectional else last)[None]
    Y = pooled @ P["head.weight"].T + (P["head.bias"] if "head.bias" in P else 0)
    scored = [t is not None for t in targets]
    if cfg.loss == "ce":
        tgt = torch.tensor([t if t is not None else -100 for t in targets])
        loss = torch.nn.functional.cross_entropy(Y, tgt, ignore_index=-100) if any(scored) else Y.sum() * 0
    else:
        tgt = torch.tensor([t if t is not None else [0.0] * cfg.output_size for t in targets], dtype=torch.float64)
        loss = ((Y - tgt) ** 2).mean(-1)[torch.tensor(scored)].mean() if any(scored) else Y.sum() * 0
    loss.backward()
    grads = {k: v.grad for k, v in P.items()}
    return dict(loss=loss.item(), Y=Y.detach(), states=states, dL_dh=probes.grad, dL_dh0=h0.grad, dL_dX=X.grad,
                grads=grads)


@st.composite
def configs(draw):
    cell, act = draw(st.sampled_from(NEW))
    return ModelConfig(
        cell=cell, activation=act, input_size=draw(st.integers(1, 5)), hidden_size=draw(st.integers(1, 6)),
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()), bias=draw(st.booleans()),
        output_size=draw(st.integers(1, 4)), input_mode="vectors", vocab_size=0,
        head=draw(st.sampled_from(["step", "step", "last", "mean"])), loss=draw(st.sampled_from(["ce", "mse"])),
        scan="parallel" if cell != "indrnn" and draw(st.booleans()) else "sequential",
    )  # fmt: skip


def setup(cfg, T, seed):
    rng = np.random.default_rng(seed)
    model = build_model(cfg, seed=seed).double()
    with torch.no_grad():
        for p in model.tensors().values():
            p.mul_(2.0)
    X = torch.from_numpy(rng.normal(size=(T, cfg.input_size)))
    rows = T if cfg.head == "step" else 1
    targets = []
    for _ in range(rows):
        if rng.random() < 0.2:
            targets.append(None)
        elif cfg.loss == "ce":
            targets.append(int(rng.integers(cfg.output_size)))
        else:
            targets.append(rng.normal(size=cfg.output_size).tolist())
    h0 = torch.from_numpy(rng.normal(size=(cfg.num_layers * cfg.num_directions, cfg.hidden_size)))
    return model, X, targets, h0


@SETTINGS
@given(cfg=configs(), T=st.integers(1, 9), seed=st.integers(0, 10_000))
def test_trace_and_every_gradient_equal_a_plain_autograd_loop(cfg, T, seed):
    model, X, targets, h0 = setup(cfg, T, seed)
    tr = run_trace(model, X, targets, dtype="float64", initial_state=(h0, None))
    ref = plain_trace(model, X, targets, h0)
    np.testing.assert_allclose(tr.loss, ref["loss"], **TOL)
    np.testing.assert_allclose(tr.outputs, ref["Y"].numpy(), **TOL)
    for idx, lt in enumerate(tr.layers):
        H_ref, gates = ref["states"][idx]
        np.testing.assert_allclose(lt.h, H_ref.detach().numpy(), **TOL)
        np.testing.assert_allclose(lt.dL_dh, ref["dL_dh"][idx].numpy(), **TOL)
        assert lt.c is None and set(lt.gates) == set(gates[0])
        for name, values in lt.gates.items():
            np.testing.assert_allclose(values, torch.stack([g[name] for g in gates]).detach().numpy(), **TOL)
    np.testing.assert_allclose(tr.extras["dL_dh0"], ref["dL_dh0"].numpy(), **TOL)
    dX = sum(lt.dL_dpre @ tr.params["weight_ih_" + lt.name] for lt in tr.layers if lt.layer == 0)
    np.testing.assert_allclose(dX, ref["dL_dX"].numpy(), **TOL)
    if any(t is not None for t in targets):
        ours = full_gradients(tr)
        assert set(ours) == set(ref["grads"])
        for name, g in ref["grads"].items():
            np.testing.assert_allclose(ours[name], g.numpy(), **TOL, err_msg=name)


@SETTINGS
@given(cfg=configs(), T=st.integers(1, 9), seed=st.integers(0, 10_000))
def test_the_training_path_equals_the_plain_loop_with_its_gradients(cfg, T, seed):
    """model.CellStack (a whole layer at once, by the loop or the chunked scan) in a batch of 2."""
    model, X, targets, h0 = setup(cfg, T, seed)
    Xb = torch.stack([X, X.flip(0)]).requires_grad_(True)  # (2, T, I)
    out, h_n = model.core(Xb, h0[:, None].expand(-1, 2, -1).contiguous())
    w = torch.from_numpy(np.random.default_rng(seed).normal(size=out.shape))
    (out * w).sum().backward()
    ours = {k: v.grad.clone() for k, v in model.core.named_parameters()}
    for b in range(2):
        xb = X if b == 0 else X.flip(0)
        P = {k: v.detach().clone().requires_grad_(True) for k, v in model.core.named_parameters()}
        H, D = cfg.hidden_size, cfg.num_directions
        layer_in = xb
        for k in range(cfg.num_layers):
            outs = []
            for d in range(D):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                h, hs = h0[k * D + d], [None] * T
                for t in reversed(range(T)) if d else range(T):
                    h, _ = plain_step(cfg.cell, cfg.activation, P, sfx, layer_in[t], h)
                    hs[t] = h
                outs.append(torch.stack(hs))
            layer_in = torch.cat(outs, -1)
        np.testing.assert_allclose(out[b].detach(), layer_in.detach(), **TOL)
        (layer_in * w[b]).sum().backward()
        for name, p in P.items():
            ours[name] -= p.grad
    for name, rest in ours.items():
        np.testing.assert_allclose(rest, np.zeros(rest.shape), atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_parallel_scan_equals_the_loop_over_thousands_of_steps(cell, bidirectional):
    """T = 4000, gates driven near 0 (products that underflow), from a non-zero state: the two
    scans' states and every gradient agree to 1e-9."""
    cfg = ModelConfig(cell=cell, input_size=3, hidden_size=4, output_size=2, num_layers=2, input_mode="vectors",
                      vocab_size=0, bidirectional=bidirectional)  # fmt: skip
    model = build_model(cfg, seed=1).double()
    with torch.no_grad():  # a_t = 1 - z or f/(f+i) near 0 on some units, near 1 on others
        bias = model.tensors()["bias_ih_l0"]
        bias[: cfg.hidden_size] = torch.tensor([12.0, -12.0, 3.0, 0.0]) * (1 if cell == "mingru" else -1)
    T = 4000
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.normal(size=(T, 3)))
    targets = rng.integers(0, 2, T).tolist()
    h0 = torch.from_numpy(rng.normal(size=(2 * cfg.num_directions, 4)) * 3)
    runs = {}
    for scan in ("sequential", "parallel"):
        m = build_model(cfg.replace(scan=scan), seed=1).double()
        m.load_tensors(model.tensors())
        runs[scan] = run_trace(m, X, targets, dtype="float64", initial_state=(h0, None))
    a, b = runs["sequential"], runs["parallel"]
    assert b.config.scan == "parallel"
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_allclose(lb.h, la.h, rtol=0, atol=1e-9)
        np.testing.assert_allclose(lb.dL_dh, la.dL_dh, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.extras["dL_dh0"], a.extras["dL_dh0"], rtol=1e-9, atol=1e-12)
    ga, gb = full_gradients(a), full_gradients(b)
    for name in ga:
        np.testing.assert_allclose(gb[name], ga[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_an_edited_state_is_scanned_as_the_loop_reads_it(cell):
    """An edited h_t (an intervention) starts the rest of the recurrence from the edit: the trace
    that holds it equals the parallel scan restarted from the edited state."""
    from rnn_tui.engine.trace import Intervention

    cfg = ModelConfig(cell=cell, input_size=2, hidden_size=3, output_size=2, input_mode="vectors", vocab_size=0,
                      scan="parallel")  # fmt: skip
    model = build_model(cfg, seed=3).double()
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.normal(size=(300, 2)))
    held = run_trace(model, X, [0] * 300, dtype="float64",
                     interventions=[Intervention("state", "h", 2.5, unit=1, start=120, stop=121)])
    edited = held.layers[0].h[120].copy()
    assert edited[1] == 2.5
    rest = run_trace(model, X[121:], [0] * 179, dtype="float64", initial_state=(torch.from_numpy(edited[None]), None))
    np.testing.assert_allclose(held.layers[0].h[121:], rest.layers[0].h, rtol=0, atol=1e-9)


def test_indrnn_spectrum_is_each_w_hh_against_one_and_min_cells_have_none():
    cfg = ModelConfig(cell="indrnn", activation="relu", input_size=3, vocab_size=3, hidden_size=4, output_size=3)
    model = build_model(cfg, seed=0).double()
    with torch.no_grad():
        model.tensors()["weight_hh_l0"].copy_(torch.tensor([0.5, -1.2, 0.99, 0.1]))
    tr = run_trace(model, torch.tensor([0, 1, 2, 1]), [1, 2, 1, 0], dtype="float64")
    rep = analyze_gradflow(tr)
    (spec,) = rep.layers[0].spectrum.values()
    np.testing.assert_allclose(spec.singular_values, [1.2, 0.99, 0.5, 0.1])
    np.testing.assert_allclose(spec.eigenvalue_moduli, [1.2, 0.99, 0.5, 0.1])
    assert spec.spectral_radius == pytest.approx(1.2)
    assert rep.layers[0].dW_hh.shape == (4,)
    for name in ("mingru", "minlstm"):
        cfg = ModelConfig(cell=name, input_size=3, vocab_size=3, hidden_size=4, output_size=3)
        tr = run_trace(build_model(cfg, seed=0).double(), torch.tensor([0, 1, 2, 1]), [1, 2, 1, 0], dtype="float64")
        lf = analyze_gradflow(tr).layers[0]
        assert lf.spectrum == {} and lf.dW_hh is None and lf.dW_hh_step_norm is None
        # the step Jacobian is diag(a_t): its norm is the largest a_t
        z = tr.layers[0].gates["z" if name == "mingru" else "f"]
        a = 1 - z if name == "mingru" else z / (z + tr.layers[0].gates["i"])
        np.testing.assert_allclose(lf.jacobian_norm, a.max(axis=1), rtol=1e-9)


# ---- import from a state_dict with these names ----------------------------------------------------------
@pytest.mark.parametrize("cell,act", [("indrnn", "relu"), ("mingru", "tanh"), ("minlstm", "tanh")])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True)])
def test_a_plain_state_dict_of_the_new_cells_reads_whole(tmp_path, cell, act, layers, bidirectional):
    """A torch module's state_dict under its own prefix (embedding, layers, head) is read by shape:
    IndRNN by its vector weight_hh, minGRU and minLSTM by weight_ih's rows and the head's width;
    the logits equal the plain loop's."""
    from rnn_tui.engine.weights import build_with_weights, load_user_weights

    H, I, V, O = 5, 3, 7, 7
    g = torch.Generator().manual_seed(0)
    D = 2 if bidirectional else 1
    G = {"indrnn": 1, "mingru": 2, "minlstm": 3}[cell]
    sd = {"embedding.weight": torch.randn(V, I, generator=g, dtype=torch.float64)}
    for k in range(layers):
        for sfx in [f"_l{k}"] + ([f"_l{k}_reverse"] if bidirectional else []):
            sd[f"rnn.weight_ih{sfx}"] = torch.randn(G * H, I if k == 0 else D * H, generator=g, dtype=torch.float64)
            sd[f"rnn.bias_ih{sfx}"] = torch.randn(G * H, generator=g, dtype=torch.float64)
            if cell == "indrnn":
                sd[f"rnn.weight_hh{sfx}"] = torch.rand(H, generator=g, dtype=torch.float64)
                sd[f"rnn.bias_hh{sfx}"] = torch.randn(H, generator=g, dtype=torch.float64)
    sd["head.weight"] = torch.randn(O, D * H, generator=g, dtype=torch.float64)
    sd["head.bias"] = torch.randn(O, generator=g, dtype=torch.float64)
    path = tmp_path / "m.pt"
    torch.save(sd, path)
    shape, tensors = load_user_weights(path, activation=act if cell == "indrnn" else None)
    assert (shape.cell, shape.hidden_size, shape.num_layers, shape.bidirectional) == (cell, H, layers, bidirectional)
    model = build_with_weights(shape, tensors, shape.model_config(input_mode="onehot"), dtype="float64")
    ids = torch.tensor([0, 3, 6, 2, 2, 5])
    tr = run_trace(model, ids, ids.roll(-1).tolist(), dtype="float64")
    P = {k.removeprefix("rnn."): v for k, v in sd.items()}
    layer_in = P["embedding.weight"][ids]
    for k in range(layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            h, hs = torch.zeros(H, dtype=torch.float64), [None] * len(ids)
            for t in reversed(range(len(ids))) if d else range(len(ids)):
                h, _ = plain_step(cell, act, P, sfx, layer_in[t], h)
                hs[t] = h
            outs.append(torch.stack(hs))
        layer_in = torch.cat(outs, -1)
    np.testing.assert_allclose(tr.outputs, (layer_in @ P["head.weight"].T + P["head.bias"]).numpy(), **TOL)


def test_without_weight_hh_or_a_head_the_cell_is_asked_for(tmp_path):
    from rnn_tui.engine.weights import WeightsError, load_user_weights

    path = tmp_path / "m.pt"
    torch.save({"weight_ih_l0": torch.zeros(6, 2), "bias_ih_l0": torch.zeros(6)}, path)  # 2 x 3 or 3 x 2
    with pytest.raises(WeightsError, match=r"a mingru \(2H rows\) or a minlstm \(3H rows\); say which with --cell"):
        load_user_weights(path)
    assert load_user_weights(path, cell="minlstm")[0].hidden_size == 2
    with pytest.raises(WeightsError, match="missing tensor weight_hh_l0 \\(a gru has one"):
        load_user_weights(path, cell="gru")
    torch.save({"weight_ih_l0": torch.zeros(4, 2), "weight_hh_l0": torch.zeros(4)}, path)
    with pytest.raises(WeightsError, match="a vector: that is an indrnn, not a rnn"):
        load_user_weights(path, cell="rnn")


# ---- training on every task ------------------------------------------------------------------------------
@pytest.mark.parametrize("task_name", ["chars", "recall", "adding", "brackets", "agreement", "sentiment", "tagging",
                                       "sine", "reverse"])  # fmt: skip
@pytest.mark.parametrize("cell,act,scan", [("indrnn", "relu", "sequential"), ("mingru", "tanh", "parallel"),
                                           ("minlstm", "tanh", "sequential")])  # fmt: skip
def test_every_task_trains_each_new_cell(task_name, cell, act, scan):
    """Two optimizer steps move the weights and the loss stays finite, on every task (the
    encoder-decoder's two halves included)."""
    from rnn_tui.engine.tasks import TASKS, get_task
    from rnn_tui.engine.train import TrainConfig, Trainer

    assert task_name in TASKS
    task = get_task(task_name)
    cfg = task.model_config(cell=cell, activation=act, hidden=8).replace(scan=scan)
    trainer = Trainer(task, TrainConfig.from_defaults(task.defaults, steps=2, batch=4, log_every=1, eval_batches=1),
                      model_config=cfg)  # fmt: skip
    before = {k: v.detach().clone() for k, v in trainer.model.tensors().items()}
    result = trainer.run()
    assert result.history and all(np.isfinite(r["loss"]) for r in result.history)
    assert trainer.model.config.cell == cell and trainer.model.config.scan == scan
    moved = [k for k, v in trainer.model.tensors().items() if not torch.equal(v, before[k])]
    assert any("weight_ih" in k for k in moved)
