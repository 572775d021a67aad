"""The NumPy BPTT (double sum and swapped sum) against torch autograd, float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.engine.bptt_numpy import ElmanParams, bptt, bptt_accumulated

ATOL = 1e-10


def make_problem(seed, T, I, H, O, activation, loss, bias, scored_frac=0.7, h0=False):
    g = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    tensors = {
        "weight_ih_l0": g.uniform(-s, s, (H, I)),
        "weight_hh_l0": g.uniform(-1.5 * s, 1.5 * s, (H, H)),
        "head.weight": g.uniform(-s, s, (O, H)),
    }
    if bias:
        tensors.update(
            {"bias_ih_l0": g.uniform(-s, s, H), "bias_hh_l0": g.uniform(-s, s, H), "head.bias": g.uniform(-s, s, O)}
        )
    x = g.normal(size=(T, I))
    scored = g.random(T) < scored_frac
    scored[g.integers(T)] = True
    if loss == "ce":
        targets = [int(g.integers(O)) if s_ else None for s_ in scored]
    else:
        targets = [g.normal(size=O) if s_ else None for s_ in scored]
    start = g.normal(size=H) * 0.5 if h0 else None
    return tensors, x, targets, start


def torch_reference(tensors, x, targets, activation, loss, h0=None):
    """Autograd through torch.nn.RNN (tanh/relu) or an explicit loop (sigmoid/identity)."""
    T, I = x.shape
    H = tensors["weight_hh_l0"].shape[0]
    bias = "bias_ih_l0" in tensors
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in tensors.items()}
    xt = torch.tensor(x, dtype=torch.float64)
    h0t = torch.zeros(H, dtype=torch.float64) if h0 is None else torch.tensor(h0, dtype=torch.float64)
    h0t.requires_grad_(True)
    if activation in ("tanh", "relu"):
        rnn = torch.nn.RNN(I, H, nonlinearity=activation, bias=bias, batch_first=True).double()
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                if name in params:
                    getattr(rnn, name).copy_(params[name])
        hs, _ = rnn(xt[None], h0t[None, None])
        hs = hs[0]
        rnn_params = dict(rnn.named_parameters())
    else:
        f = torch.sigmoid if activation == "sigmoid" else (lambda z: z)
        h, out = h0t, []
        for t in range(T):
            z = params["weight_ih_l0"] @ xt[t] + params["weight_hh_l0"] @ h
            if bias:
                z = z + params["bias_ih_l0"] + params["bias_hh_l0"]
            h = f(z)
            out.append(h)
        hs = torch.stack(out)
        rnn_params = params
    y = hs @ params["head.weight"].T
    if "head.bias" in params:
        y = y + params["head.bias"]
    rows = [t for t, tg in enumerate(targets) if tg is not None]
    if loss == "ce":
        L = torch.nn.functional.cross_entropy(y[rows], torch.tensor([targets[t] for t in rows]))
    else:
        tg = torch.tensor(np.stack([targets[t] for t in rows]), dtype=torch.float64)
        L = ((y[rows] - tg) ** 2).mean(dim=1).mean()
    L.backward()
    grads = {}
    for name in tensors:
        src = rnn_params[name] if name in rnn_params and not name.startswith("head") else params[name]
        grads[name] = src.grad.numpy()
    grads["h0"] = h0t.grad.numpy()
    return float(L.detach()), grads


CONFIGS = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**31 - 1),
        "T": st.integers(1, 9),
        "I": st.integers(1, 5),
        "H": st.integers(1, 6),
        "O": st.integers(1, 5),
        "activation": st.sampled_from(["tanh", "relu", "sigmoid", "identity"]),
        "loss": st.sampled_from(["ce", "mse"]),
        "bias": st.booleans(),
        "h0": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(CONFIGS)
def test_bptt_matches_autograd(cfg):
    tensors, x, targets, h0 = make_problem(
        cfg["seed"], cfg["T"], cfg["I"], cfg["H"], cfg["O"], cfg["activation"], cfg["loss"], cfg["bias"], h0=cfg["h0"]
    )
    L, ref = torch_reference(tensors, x, targets, cfg["activation"], cfg["loss"], h0)
    for fn in (bptt, bptt_accumulated):
        res = fn(tensors, x, targets, cfg["activation"], cfg["loss"], h0)
        assert res.loss == pytest.approx(L, rel=1e-12, abs=1e-12)
        assert set(res.grads) == set(ref)
        for name, g in ref.items():
            np.testing.assert_allclose(res.grads[name], g, rtol=1e-9, atol=ATOL, err_msg=f"{fn.__name__} {name}")


@settings(max_examples=30, deadline=None)
@given(CONFIGS)
def test_delta_norms_are_per_source_gradients(cfg):
    """||delta_{t,k}|| is the norm of dl_t/dz_k (scaled by 1/N): check against one backward per source."""
    tensors, x, targets, _ = make_problem(
        cfg["seed"], cfg["T"], cfg["I"], cfg["H"], cfg["O"], cfg["activation"], cfg["loss"], cfg["bias"]
    )
    res = bptt(tensors, x, targets, cfg["activation"], cfg["loss"])
    T = x.shape[0]
    N = sum(t is not None for t in targets)
    p = {k: torch.tensor(v) for k, v in tensors.items()}
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}[cfg["activation"]]
    xt = torch.tensor(x)
    for t in range(T):
        if targets[t] is None:
            assert np.all(np.isnan(res.delta_norm[t]))
            continue
        h = torch.zeros(p["weight_hh_l0"].shape[0], dtype=torch.float64)
        zs = []
        for k in range(t + 1):
            z = p["weight_ih_l0"] @ xt[k] + p["weight_hh_l0"] @ h
            if "bias_ih_l0" in p:
                z = z + p["bias_ih_l0"] + p["bias_hh_l0"]
            if not z.requires_grad:  # z_0 is a leaf (nothing before it needs a gradient)
                z.requires_grad_(True)
            zs.append(z)
            h = act(z)
        y = p["head.weight"] @ h + (p["head.bias"] if "head.bias" in p else 0)
        if cfg["loss"] == "ce":
            l = torch.nn.functional.cross_entropy(y[None], torch.tensor([targets[t]]))
        else:
            l = ((y - torch.tensor(targets[t])) ** 2).mean()
        grads = torch.autograd.grad(l / N, zs, allow_unused=True)
        for k in range(t + 1):
            expect = 0.0 if grads[k] is None else float(grads[k].norm())
            assert res.delta_norm[t, k] == pytest.approx(expect, rel=1e-9, abs=1e-12)
        assert np.all(np.isnan(res.delta_norm[t, t + 1 :]))


def test_hand_worked_identity_example():
    """Identity activation, no bias, all weights 1, inputs [1,1],[1,1],[2,2] (a textbook exercise).

    h_0 = [2,2], h_1 = [2+4, 2+4] = [6,6], h_2 = [4+12, 4+12] = [16,16]; MSE at the last step only
    against 0: L = mean(y_2^2) with y_2 = [32,32] -> L = 1024.
    """
    ones = lambda *s: np.ones(s)  # noqa: E731
    tensors = {"weight_ih_l0": ones(2, 2), "weight_hh_l0": ones(2, 2), "head.weight": ones(2, 2)}
    x = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    targets = [None, None, np.zeros(2)]
    res = bptt(tensors, x, targets, "identity", "mse")
    assert res.loss == pytest.approx(1024.0)
    # dL/dy_2 = 2*y/2 = [32,32]; delta_{2,2} = V^T [32,32] = [64,64]; delta_{2,1} = W^T [64,64] = [128,128]
    np.testing.assert_allclose(res.delta[2], [64.0, 64.0])
    np.testing.assert_allclose(res.delta[1], [128.0, 128.0])
    np.testing.assert_allclose(res.delta[0], [256.0, 256.0])
    # dL/dW_hh = sum_k delta_k h_{k-1}^T = 256*0 + 128*[2,2] + 64*[6,6] = 640 in every entry
    np.testing.assert_allclose(res.grads["weight_hh_l0"], np.full((2, 2), 640.0))


def test_bad_inputs_say_what_is_wrong():
    tensors, x, targets, _ = make_problem(0, 4, 2, 3, 2, "tanh", "ce", True)
    with pytest.raises(ValueError, match="targets for 4 steps"):
        bptt(tensors, x, targets[:3])
    with pytest.raises(ValueError, match="no scored step"):
        bptt(tensors, x, [None] * 4)
    with pytest.raises(ValueError, match="unknown activation"):
        bptt(tensors, x, targets, activation="softplus")
    with pytest.raises(KeyError, match="weight_hh_l0"):
        ElmanParams.from_tensors({"weight_ih_l0": np.zeros((3, 2))})
