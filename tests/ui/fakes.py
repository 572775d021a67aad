"""Traces for the UI tests without torch: a small numpy forward pass of every cell.

The states, gates and pre-activations are self-consistent (each step really is the cell's
equations applied to the previous state), so the equations pane can be checked against them;
the gradient fields are seeded random numbers (the panes under test do not draw them).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from rnn_tui.engine.config import GATES, ModelConfig
from rnn_tui.engine.records import LayerTrace, Trace
from rnn_tui.ui.source import FREE_TEXT, SourceError, TraceRequest, label, tokenize


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACT = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0), "sigmoid": _sigmoid, "identity": lambda a: a}


def _step(cfg, w, x, h, c):
    """One step of the cell in float32: (h, c, {gate: (pre, act)})."""
    H = cfg.hidden_size
    gi = w["W_ih"] @ x + (w["b_ih"] if w["b_ih"] is not None else 0)
    gh = w["W_hh"] @ h + (w["b_hh"] if w["b_hh"] is not None else 0)
    if cfg.cell == "rnn":
        a = gi + gh
        h = ACT[cfg.activation](a).astype(np.float32)
        return h, None, {"a": (a, h)}
    if cfg.cell.startswith("lstm"):
        a = gi + gh
        a_i, a_f, a_g, a_o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        if cfg.cell == "lstm-peephole":
            a_i = a_i + w["w_ci"] * c
            a_f = a_f + w["w_cf"] * c
        i, f, g = _sigmoid(a_i), _sigmoid(a_f), np.tanh(a_g)
        c = (f * c + i * g).astype(np.float32)
        if cfg.cell == "lstm-peephole":
            a_o = a_o + w["w_co"] * c
        o = _sigmoid(a_o)
        h = (o * np.tanh(c)).astype(np.float32)
        return h, c, {"i": (a_i, i), "f": (a_f, f), "g": (a_g, g), "o": (a_o, o)}
    a_r = gi[:H] + gh[:H]
    a_z = gi[H:2 * H] + gh[H:2 * H]
    r, z = _sigmoid(a_r), _sigmoid(a_z)
    if cfg.cell == "gru-textbook":
        a_n = gi[2 * H:] + w["W_hh"][2 * H:] @ (r * h) + (w["b_hh"][2 * H:] if w["b_hh"] is not None else 0)
    else:
        a_n = gi[2 * H:] + r * gh[2 * H:]
    n = np.tanh(a_n)
    h = ((1 - z) * n + z * h).astype(np.float32)
    return h, None, {"r": (a_r, r), "z": (a_z, z), "n": (a_n, n)}


def make_trace(
    cell: str = "lstm",
    activation: str = "tanh",
    hidden: int = 8,
    layers: int = 1,
    bidirectional: bool = False,
    text: str = "hello world",
    tokens: list[str] | None = None,
    seed: int = 0,
    bias: bool = True,
    scale: float = 1.0,
) -> Trace:
    tokens = list(text) if tokens is None else tokens
    vocab = sorted(set(tokens))
    V, T, H = len(vocab), len(tokens), hidden
    cfg = ModelConfig(cell=cell, activation=activation, input_size=V, hidden_size=H, num_layers=layers,
                      bidirectional=bidirectional, bias=bias, output_size=V, vocab_size=V)
    rng = np.random.default_rng(seed)
    f32 = np.float32
    X = np.zeros((T, V), f32)
    X[np.arange(T), [vocab.index(t) for t in tokens]] = 1
    G = len(GATES[cell])
    params: dict[str, np.ndarray] = {}
    entries = []
    layer_in = X
    for k in range(layers):
        outs = []
        for d in range(2 if bidirectional else 1):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            I = layer_in.shape[1]
            bound = scale * 2 / np.sqrt(H)
            w = {
                "W_ih": rng.uniform(-bound, bound, (G * H, I)).astype(f32),
                "W_hh": rng.uniform(-bound, bound, (G * H, H)).astype(f32),
                "b_ih": rng.uniform(-bound, bound, G * H).astype(f32) if bias else None,
                "b_hh": rng.uniform(-bound, bound, G * H).astype(f32) if bias else None,
            }
            params[f"weight_ih{sfx}"], params[f"weight_hh{sfx}"] = w["W_ih"], w["W_hh"]
            if bias:
                params[f"bias_ih{sfx}"], params[f"bias_hh{sfx}"] = w["b_ih"], w["b_hh"]
            if cell == "lstm-peephole":
                for name in ("ci", "cf", "co"):
                    w[f"w_{name}"] = params[f"weight_{name}{sfx}"] = rng.uniform(-bound, bound, H).astype(f32)
            h = np.zeros(H, f32)
            c = np.zeros(H, f32) if cfg.has_cell_state else None
            hs = np.zeros((T, H), f32)
            cs = np.zeros((T, H), f32) if c is not None else None
            pres = {g: np.zeros((T, H), f32) for g in GATES[cell]}
            acts = {g: np.zeros((T, H), f32) for g in GATES[cell]}
            for t in (reversed(range(T)) if d else range(T)):
                h, c, gates = _step(cfg, w, layer_in[t], h, c)
                hs[t] = h
                if cs is not None:
                    cs[t] = c
                for g, (pre, act) in gates.items():
                    pres[g][t], acts[g][t] = pre, act
            entries.append(LayerTrace(
                layer=k, direction="reverse" if d else "forward", h=hs, c=cs, gates=acts, preacts=pres,
                dL_dh=rng.normal(size=(T, H)).astype(f32),
                dL_dc=rng.normal(size=(T, H)).astype(f32) if cs is not None else None,
                dL_dpre=rng.normal(size=(T, G * H)).astype(f32),
                h0=np.zeros(H, f32), c0=np.zeros(H, f32) if cs is not None else None,
            ))
            outs.append(hs)
        layer_in = np.concatenate(outs, axis=1)
    head_w = rng.normal(0, 1, (V, layer_in.shape[1])).astype(f32)
    head_b = rng.normal(0, 0.1, V).astype(f32)
    params["head.weight"], params["head.bias"] = head_w, head_b
    outputs = layer_in @ head_w.T + head_b
    targets = [vocab.index(t) for t in tokens[1:]] + [None]
    z = outputs - outputs.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    step_losses = np.array([-logp[t, y] if y is not None else np.nan for t, y in enumerate(targets)], f32)
    return Trace(
        config=cfg, dtype="float32", tokens=[label(t) for t in tokens], inputs=X, layers=entries,
        outputs=outputs.astype(f32), targets=targets, step_losses=step_losses,
        loss=float(np.nanmean(step_losses)) if T > 1 else 0.0, params=params,
        vocab=[label(v) for v in vocab],
        extras={"token_vocab": tuple(vocab), "vocab_from_input": True},
    )


class FakeSource:
    """A trace source for tests: numpy traces, no torch; records what it was asked for.

    delay: seconds each build takes (to see the loading state); fail: a message to raise with.
    """

    def __init__(self, delay: float = 0.0, fail: str | None = None) -> None:
        self.delay = delay
        self.fail = fail
        self.requests: list[TraceRequest] = []
        self.release = threading.Event()
        self.release.set()

    def tasks(self) -> list[tuple[str, str]]:
        return [(FREE_TEXT, "next-token model over the input text"), ("recall", "a fake second task")]

    def build(self, request: TraceRequest) -> Trace:
        self.requests.append(request)
        self.release.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise SourceError(self.fail)
        tokens = tokenize(request.text, request.tokenize)
        if not tokens:
            raise SourceError("the input is empty: type at least one token")
        return make_trace(request.cell, request.activation, request.hidden, request.layers,
                          request.bidirectional, tokens=tokens, seed=request.seed)


def diverge(trace: Trace) -> Trace:
    """The trace of a diverged model, as a checkpoint saved after a blow-up reads back: NaN and
    inf in its outputs, states, gates, gradients, losses and one weight."""
    from dataclasses import replace

    outputs = trace.outputs.copy()
    outputs[3] = np.nan  # a whole row: no prediction at all
    outputs[5, 0] = np.inf  # one class's logit ran off: the softmax is NaN
    outputs[6, 1] = -np.inf  # a class ruled out: the softmax still holds
    layers = []
    for e in trace.layers:
        h = e.h.copy()
        h[4:, 0] = np.nan
        h[2, 1], h[3, 2] = np.inf, -np.inf
        gates = {g: v.copy() for g, v in e.gates.items()}
        for v in gates.values():
            v[5:, :2] = np.nan
        preacts = {g: v.copy() for g, v in e.preacts.items()}
        for v in preacts.values():
            v[6, 1] = np.inf
        c = None if e.c is None else e.c.copy()
        if c is not None:
            c[3:, 1], c[7, 0] = np.inf, np.nan
        dL_dh = e.dL_dh.copy()
        dL_dh[2], dL_dh[3, 0] = np.nan, np.inf
        layers.append(replace(e, h=h, c=c, gates=gates, preacts=preacts, dL_dh=dL_dh))
    params = dict(trace.params)
    params["weight_hh_l0"] = params["weight_hh_l0"].copy()
    params["weight_hh_l0"][0, 0] = np.nan
    step_losses = trace.step_losses.copy()
    step_losses[3], step_losses[5] = np.nan, np.inf
    return replace(trace, outputs=outputs, layers=layers, step_losses=step_losses, loss=float("nan"),
                   params=params)


class DivergedSource(FakeSource):
    """Every trace it builds is `diverge`d."""

    def build(self, request: TraceRequest) -> Trace:
        return diverge(super().build(request))
