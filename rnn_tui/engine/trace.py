"""Run one sequence through a model and record everything: states, gates, outputs, losses and
the total derivatives dL/dh_t (and dL/dc_t) of backpropagation through time.

How it is computed, cheaply and exactly:
1. States. Each layer and direction runs forward once: through torch's fused kernel where torch
   has the cell, else step by step through `cells.py`.
2. Gates. Once every h_{t-1} (and c_{t-1}) is known, all gates of all steps come from one batched
   call of the same cell function: the gates are a function of (x_t, h_{t-1}, c_{t-1}) only.
3. Gradients. The direct gradient of the loss at the top layer's output comes from autograd on
   the head alone; then, layer by layer from the top, the delta recursion of BPTT runs backwards
   in time (`backward_layer`), giving dL/dh_t, dL/dc_t and dL/da_t (the gate pre-activations),
   and dL/dx_t = (dL/da_t) W_ih, the direct gradient of the layer below.
`backward_layer` accepts any leading batch of gradient sources, so gradient-flow analyses push
many one-step losses through it at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnn_tui.engine import cells
from rnn_tui.engine.config import ModelConfig, layer_names
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.model import IGNORE, RNNModel, compute_loss
from rnn_tui.engine.records import LayerTrace, Trace

DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_STEPS = 100_000  # a trace longer than this is refused: its records would not fit in memory


class TraceError(EngineError):
    pass


# ---- layer weights --------------------------------------------------------------------------
def layer_weights(P: dict[str, Tensor], sfx: str) -> dict[str, Tensor | None]:
    """One layer and direction's tensors by their equation names (None where absent)."""
    return {
        "W_ih": P[f"weight_ih{sfx}"],
        "W_hh": P[f"weight_hh{sfx}"],
        "b_ih": P.get(f"bias_ih{sfx}"),
        "b_hh": P.get(f"bias_hh{sfx}"),
        "w_ci": P.get(f"weight_ci{sfx}"),
        "w_cf": P.get(f"weight_cf{sfx}"),
        "w_co": P.get(f"weight_co{sfx}"),
    }


# ---- 1 + 2. states, then every gate at once -------------------------------------------------
def forward_layer(cfg: ModelConfig, w: dict, X: Tensor, h0: Tensor, c0: Tensor | None):
    """Run one direction over X (T, I), given in its own reading order (flipped for reverse).

    Returns H (T, H), C (T, H) or None, and gates {name: (pre, act)} each (T, H).
    Where torch fuses the cell, its kernel gives the h's; the gates of all steps then follow from
    one batched call of the cell function on (x_t, h_{t-1}), since no gate needs more. An LSTM's
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t is then a cheap elementwise pass.
    Elsewhere the explicit path steps through the cell equations.
    """
    if cfg.torch_native:
        args = [w["W_ih"], w["W_hh"]] + ([w["b_ih"], w["b_hh"]] if cfg.bias else [])
        x, hx = X[None], h0[None, None]  # batch-first (1, T, I); state (1, 1, H)
        if cfg.cell == "lstm":
            H = torch.lstm(x, (hx, c0[None, None]), args, cfg.bias, 1, 0.0, False, False, True)[0][0]
        else:
            fn = torch.gru if cfg.cell == "gru" else {"tanh": torch.rnn_tanh, "relu": torch.rnn_relu}[cfg.activation]
            H = fn(x, hx, args, cfg.bias, 1, 0.0, False, False, True)[0][0]
        H_prev = torch.cat([h0[None], H[:-1]])
        if cfg.cell != "lstm":
            _, _, gates = cell_step(cfg, w, X, H_prev, None)
            return H, None, gates
        gates, C = lstm_gates_and_cells(cfg, w, X, H_prev, c0)
        return H, C, gates
    T = X.shape[0]
    Hs, Cs = [], []
    h, c = h0, c0
    for t in range(T):
        h, c, _ = cell_step(cfg, w, X[t], h, c)
        Hs.append(h)
        Cs.append(c)
    H = torch.stack(Hs)
    C = torch.stack(Cs) if cfg.has_cell_state else None
    H_prev = torch.cat([h0[None], H[:-1]])
    C_prev = torch.cat([c0[None], C[:-1]]) if C is not None else None
    _, _, gates = cell_step(cfg, w, X, H_prev, C_prev)  # all steps at once
    return H, C, gates


def lstm_gates_and_cells(cfg: ModelConfig, w: dict, X: Tensor, H_prev: Tensor, c0: Tensor):
    """A torch-fused LSTM's gates at every step, and its cell states, once the h's are known.

    i, f, g, o read only (x_t, h_{t-1}): one batched call of the cell. Then
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t is an elementwise pass over the steps.
    """
    _, _, gates = cell_step(cfg, w, X, H_prev, torch.zeros_like(H_prev))  # the c it returns is unused
    f, ig = gates["f"][1].numpy(), (gates["i"][1] * gates["g"][1]).numpy()
    C = np.empty_like(f)
    c = c0.numpy()
    for t in range(C.shape[0]):
        c = C[t] = f[t] * c + ig[t]
    return gates, torch.from_numpy(C)


def cell_step(cfg: ModelConfig, w: dict, x, h, c, edit=cells.keep):
    """One step of the configured cell: (h_t, c_t or None, gates {name: (pre, act)})."""
    if cfg.cell == "rnn":
        h, gates = cells.rnn_cell(x, h, w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"], cfg.activation, edit)
        return h, None, gates
    if cfg.has_cell_state:
        (h, c), gates = cells.lstm_cell(
            x, h, c, w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"], w["w_ci"], w["w_cf"], w["w_co"], edit
        )
        return h, c, gates
    h, gates = cells.gru_cell(x, h, w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"], cfg.cell == "gru-textbook", edit)
    return h, None, gates


# ---- 3. the delta recursion -----------------------------------------------------------------
def steps(a: np.ndarray) -> list[np.ndarray]:
    """Views of a (..., T, X) array, one per step t: a[..., t, :]."""
    return list(np.moveaxis(a, -2, 0))


def backward_layer(cfg: ModelConfig, w: dict, rec: dict, direct: Tensor, dh_final=None, dc_final=None):
    """BPTT through one layer and direction, in its reading order.

    rec: the forward record in reading order: "X" (T, I), "H", "H_prev", and "C", "C_prev" for
         LSTMs, and "gates" {name: (pre, act)} each (T, H).
    direct: (..., T, H) gradient of the loss reaching h_t from outside the recurrence (the head,
         or the layer above); any leading dims are independent gradient sources.
    dh_final, dc_final: (..., H) gradient arriving on the final state from outside (or None).

    The recursion, for t = T-1 .. 0 (δh_t = dL/dh_t, total):
        δh_t = direct_t + (∂h_{t+1}/∂h_t)^T δh_{t+1}
    written per cell below as in the notes. Returns torch tensors: dL/dh (..., T, H), dL/dc
    (..., T, H) or None, dL/da (..., T, G*H) for the gate pre-activations in torch's row order,
    and the gradients reaching the initial state (h, and c for LSTMs).

    The time loop runs in numpy on zero-copy views: per step it is a few vector operations on
    H numbers, where numpy's per-call cost is a third of torch's.
    """
    n = lambda t: None if t is None else t.detach().numpy()  # noqa: E731  zero-copy on CPU
    gates = {k: n(v[1]) for k, v in rec["gates"].items()}
    pre = {k: n(v[0]) for k, v in rec["gates"].items()}
    direct = n(direct)
    T, Hn = rec["H"].shape
    lead = direct.shape[:-2]
    W_hh = n(w["W_hh"])
    dH = np.empty_like(direct)
    dA = np.empty(lead + (T, W_hh.shape[0]), dtype=direct.dtype)
    carry_h = np.zeros(lead + (Hn,), direct.dtype) if dh_final is None else n(dh_final).copy()
    out = lambda *arrays: tuple(None if a is None else torch.from_numpy(a) for a in arrays)  # noqa: E731
    cell = cfg.cell

    if cell == "rnn":
        a, h = pre["a"], gates["a"]
        act_prime = {  # f'(a_t), (T, H)
            "tanh": lambda: 1 - h**2,
            "relu": lambda: (a > 0).astype(h.dtype),
            "sigmoid": lambda: h * (1 - h),
            "identity": lambda: np.ones_like(a),
        }[cfg.activation]()
        for t in reversed(range(T)):
            δh = dH[..., t, :]
            np.add(direct[..., t, :], carry_h, out=δh)
            δa = dA[..., t, :]
            np.multiply(δh, act_prime[t], out=δa)  # δa_t = f'(a_t) ⊙ δh_t
            carry_h = δa @ W_hh  # W_hh^T δa_t, as a row vector
        return out(dH, None, dA, carry_h, None)

    if cfg.has_cell_state:
        i, f, g, o = gates["i"], gates["f"], gates["g"], gates["o"]
        C, C_prev = n(rec["C"]), n(rec["C_prev"])
        tc = np.tanh(C)
        K_o = tc * o * (1 - o)  # ∂h/∂a_o
        K_c = o * (1 - tc**2)  # ∂h/∂c (direct)
        w_ci, w_cf, w_co = n(w["w_ci"]), n(w["w_cf"]), n(w["w_co"])
        if w_co is not None:
            K_c = K_c + K_o * w_co  # c_t also reaches h_t through o_t's peephole
        K_i = g * i * (1 - i)  # ∂c/∂a_i
        K_f = C_prev * f * (1 - f)  # ∂c/∂a_f
        K_g = i * (1 - g**2)  # ∂c/∂a_g
        K_ifg = np.stack([K_i, K_f, K_g], axis=-2)  # (T, 3, H)
        dC = np.empty_like(direct)
        carry_c = np.zeros(lead + (Hn,), direct.dtype) if dc_final is None else n(dc_final).copy()
        W_hh_T = np.ascontiguousarray(W_hh.T)  # (H, 4H): carry_h = δa @ W_hh reads it row by row
        # per-step views, made once: indexing inside the loop costs as much as the arithmetic
        d_, δh_, δc_, δa_ = steps(direct), steps(dH), steps(dC), steps(dA)
        δa_ifg_ = [a[..., : 3 * Hn].reshape(lead + (3, Hn)) for a in δa_]
        δa_o_ = [a[..., 3 * Hn :] for a in δa_]
        for t in reversed(range(T)):
            δh, δc, δa, δa_ifg = δh_[t], δc_[t], δa_[t], δa_ifg_[t]
            np.add(d_[t], carry_h, out=δh)
            np.multiply(δh, K_c[t], out=δc)
            δc += carry_c  # all paths into c_t: via h_t, o_t, and c_{t+1}
            np.multiply(δc[..., None, :], K_ifg[t], out=δa_ifg)  # δa_i, δa_f, δa_g
            np.multiply(δh, K_o[t], out=δa_o_[t])  # δa_o
            carry_h = np.matmul(δa, W_hh_T.T)  # W_hh^T δa_t
            carry_c = δc * f[t]  # ∂c_t/∂c_{t-1} = f_t
            if w_ci is not None:  # i_t and f_t also see c_{t-1}
                carry_c += δa_ifg[..., 0, :] * w_ci + δa_ifg[..., 1, :] * w_cf
        return out(dH, dC, dA, carry_h, carry_c)

    # GRU
    r, z, n_ = gates["r"], gates["z"], gates["n"]
    H_prev = n(rec["H_prev"])
    W_hr, W_hz, W_hn = W_hh[:Hn], W_hh[Hn : 2 * Hn], W_hh[2 * Hn :]
    K_n = (1 - z) * (1 - n_**2)  # ∂h/∂a_n
    K_z = (H_prev - n_) * z * (1 - z)  # ∂h/∂a_z
    textbook = cell == "gru-textbook"
    if textbook:
        K_r = H_prev * r * (1 - r)  # ∂(r ⊙ h_{t-1})/∂a_r, times W_hn^T δa_n below
    else:
        b_hh = n(w["b_hh"])
        hn = H_prev @ W_hn.T + (b_hh[2 * Hn :] if b_hh is not None else 0.0)  # W_hn h_{t-1} + b_hn
        K_r = hn * r * (1 - r)  # ∂a_n/∂a_r
    W_rz = W_hh[: 2 * Hn]
    for t in reversed(range(T)):
        δh, δa = dH[..., t, :], dA[..., t, :]
        np.add(direct[..., t, :], carry_h, out=δh)
        δa_n = δa[..., 2 * Hn :]
        np.multiply(δh, K_n[t], out=δa_n)
        np.multiply(δh, K_z[t], out=δa[..., Hn : 2 * Hn])  # δa_z
        if textbook:
            δrh = δa_n @ W_hn  # dL/d(r ⊙ h_{t-1})
            np.multiply(δrh, K_r[t], out=δa[..., :Hn])  # δa_r
            carry_h = δh * z[t] + δrh * r[t] + δa[..., : 2 * Hn] @ W_rz
        else:
            np.multiply(δa_n, K_r[t], out=δa[..., :Hn])  # δa_r
            carry_h = δh * z[t] + δa[..., : 2 * Hn] @ W_rz + (δa_n * r[t]) @ W_hn
    return out(dH, None, dA, carry_h, None)


# ---- the whole trace ------------------------------------------------------------------------
def _as_targets(cfg: ModelConfig, targets, rows: int, dtype) -> tuple[Tensor, Tensor, list]:
    """Targets list (one per output row, None = unscored) -> (tensor, scored mask, clean list)."""
    if targets is None:
        targets = [None] * rows
    targets = list(targets)
    if len(targets) != rows:
        raise TraceError(f"got {len(targets)} targets for {rows} output rows")
    scored = torch.tensor([t is not None for t in targets], dtype=torch.bool)
    if cfg.loss == "ce":
        ids = []
        for t in targets:
            if t is None:
                ids.append(IGNORE)
                continue
            if not (isinstance(t, (int, np.integer)) and 0 <= int(t) < cfg.output_size):
                raise TraceError(f"target {t!r} is not a class index in 0..{cfg.output_size - 1}")
            ids.append(int(t))
        return torch.tensor(ids, dtype=torch.long), scored, [None if t is None else int(t) for t in targets]
    vecs = []
    for t in targets:
        if t is None:
            vecs.append([0.0] * cfg.output_size)
            continue
        v = np.asarray(t, dtype=np.float64).reshape(-1)
        if v.shape[0] != cfg.output_size:
            raise TraceError(f"a target vector has {v.shape[0]} values, the model outputs {cfg.output_size}")
        vecs.append(v.tolist())
    clean = [None if t is None else np.asarray(t, dtype=np.float64).reshape(-1).tolist() for t in targets]
    return torch.tensor(vecs, dtype=dtype), scored, clean


def _encode(model: RNNModel, x, P: dict[str, Tensor], dtype) -> Tensor:
    """The vectors fed to layer 0, (T, I)."""
    cfg = model.config
    x = torch.as_tensor(x)
    if cfg.input_mode == "vectors":
        if x.dim() != 2 or x.shape[1] != cfg.input_size:
            raise TraceError(f"input vectors must be T x {cfg.input_size}, got shape {tuple(x.shape)}")
        return x.to(dtype)
    if x.dim() != 1:
        raise TraceError(f"token input must be a 1-D list of ids, got shape {tuple(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= cfg.vocab_size):
        raise TraceError(f"token ids must lie in 0..{cfg.vocab_size - 1}")
    x = x.long()
    if cfg.input_mode == "embedding":
        return P["embedding.weight"][x]
    return torch.nn.functional.one_hot(x, cfg.vocab_size).to(dtype)


@dataclass(frozen=True)
class Intervention:
    """Hold part of the network at a value over a span of steps, then trace what follows.

    kind "gate":  gate `name` (i f g o / r z n, or a for the Elman RNN) is set to `value`;
    kind "state": state `name` ("h", or "c" for LSTMs) is set to `value` — pin or zero a unit,
                  or, with stop = start + 1, edit h_t at one step.
    unit None means every unit; steps are sequence positions start <= t < stop (stop None: to
    the end). Gradients treat a held value as a constant: nothing flows back through it.
    """

    kind: str
    name: str
    value: float
    layer: int = 0
    direction: str = "forward"
    unit: int | None = None
    start: int = 0
    stop: int | None = None

    def check(self, cfg: ModelConfig, T: int) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise TraceError(f"intervention {self.kind} {self.name}: {message}")

        need(self.kind in ("gate", "state"), "kind must be 'gate' or 'state'")
        names = cfg.gates if self.kind == "gate" else (("h", "c") if cfg.has_cell_state else ("h",))
        need(self.name in names, f"this {cfg.cell} model has {', '.join(names)}")
        need(0 <= self.layer < cfg.num_layers, f"layer must be 0..{cfg.num_layers - 1}")
        need(self.direction == "forward" or (cfg.bidirectional and self.direction == "reverse"),
             "direction must be forward" + (" or reverse" if cfg.bidirectional else ""))  # fmt: skip
        need(self.unit is None or 0 <= self.unit < cfg.hidden_size, f"unit must be 0..{cfg.hidden_size - 1}")
        need(0 <= self.start < T and (self.stop is None or self.start < self.stop), f"steps must lie in 0..{T - 1}")
        need(math.isfinite(self.value), "value must be a finite number")


def _forward_fast(cfg, P, X0, h0_all, c0_all):
    """Layer by layer; records kept in each direction's reading order."""
    D = cfg.num_directions
    recs, layer_in = [], X0
    for k in range(cfg.num_layers):
        outs = []
        for d in range(D):
            idx = k * D + d
            w = layer_weights(P, f"_l{k}" + ("_reverse" if d else ""))
            Xr = layer_in.flip(0) if d else layer_in
            h0 = h0_all[idx]
            c0 = c0_all[idx] if c0_all is not None else None
            Hs, Cs, gates = forward_layer(cfg, w, Xr, h0, c0)
            H_prev = torch.cat([h0[None], Hs[:-1]])
            C_prev = torch.cat([c0[None], Cs[:-1]]) if Cs is not None else None
            recs.append(dict(k=k, d=d, w=w, X=Xr, H=Hs, H_prev=H_prev, C=Cs, C_prev=C_prev, gates=gates, h0=h0, c0=c0))
            outs.append(Hs.flip(0) if d else Hs)
        layer_in = torch.cat(outs, dim=-1)  # (T, D*H)
    return recs, layer_in


def _head_and_loss(model, cfg, P, top, targets, dt):
    """Outputs and losses from the top layer's output (T, D*H); top may require grad."""
    pooled = model.pool(top[None])[0] if cfg.head != "step" else top
    if pooled.dim() == 1:
        pooled = pooled[None]  # (rows, D*H)
    Y = pooled @ P["head.weight"].T  # (rows, O)
    if "head.bias" in P:  # a head without bias (head_bias=False) has no head.bias
        Y = Y + P["head.bias"]
    y_t, scored, clean_targets = _as_targets(cfg, targets, Y.shape[0], dt)
    if cfg.loss == "ce":
        per_row = torch.nn.functional.cross_entropy(Y, y_t.clamp_min(0), reduction="none")
    else:
        per_row = ((Y - y_t) ** 2).mean(dim=-1)
    n_scored = int(scored.sum())
    loss = (per_row * scored).sum() / n_scored if n_scored else per_row.sum() * 0.0
    step_losses = torch.where(scored, per_row.detach(), torch.full_like(per_row, float("nan")))
    return Y, loss, step_losses, clean_targets


def _backward_fast(cfg, recs, g_top, final_state_grad, dt):
    """The delta recursion, top layer first. Returns per-entry (dH, dC, dA) and dL/d(h0, c0)."""
    H, D = cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    grads: dict[int, tuple] = {}
    dh0 = torch.zeros(LD, H, dtype=dt)
    dc0 = torch.zeros(LD, H, dtype=dt) if cfg.has_cell_state else None
    direct = g_top  # (T, D*H) gradient reaching this layer's output from above
    for k in reversed(range(cfg.num_layers)):
        dX = 0.0
        for d in range(D):
            idx = k * D + d
            rec = recs[idx]
            g = direct[:, d * H : (d + 1) * H]
            g = g.flip(0) if d else g
            dh_fin = dc_fin = None
            if final_state_grad is not None:
                dh_fin = final_state_grad[0].to(dt).reshape(LD, H)[idx]
                if cfg.has_cell_state and final_state_grad[1] is not None:
                    dc_fin = final_state_grad[1].to(dt).reshape(LD, H)[idx]
            dH_, dC_, dA_, dh_init, dc_init = backward_layer(cfg, rec["w"], rec, g, dh_fin, dc_fin)
            grads[idx] = (dH_, dC_, dA_)
            dh0[idx] = dh_init
            if dc0 is not None:
                dc0[idx] = dc_init
            if k > 0:  # the layer below reads this layer's input: dL/dx_t = W_ih^T δa_t  (T, I)
                dXr = dA_ @ rec["w"]["W_ih"]
                dX = dX + (dXr.flip(0) if d else dXr)
        direct = dX
    return grads, dh0, dc0


def _intervention_edit(cfg, interventions, k, d, t, dt):
    """The `edit` hook for layer k, direction d, sequence position t (None when nothing applies)."""
    direction = "reverse" if d else "forward"
    active = [
        iv for iv in interventions
        if iv.layer == k and iv.direction == direction and iv.start <= t and (iv.stop is None or t < iv.stop)
    ]  # fmt: skip
    if not active:
        return cells.keep

    def edit(name: str, value: Tensor) -> Tensor:
        for iv in active:
            if iv.name == name:
                held = torch.full_like(value, iv.value)
                if iv.unit is None:
                    value = held
                else:
                    mask = torch.zeros(value.shape[-1], dtype=torch.bool)
                    mask[iv.unit] = True
                    value = torch.where(mask, held, value)
        return value

    return edit


def _autograd_path(model, cfg, P, X0, h0_all, c0_all, targets, final_state_grad, interventions, dt):
    """The explicit path: step through the cell equations with autograd, interventions applied.

    A zero probe is added to every h_t (and c_t); the gradient of the loss with respect to it is
    the total derivative dL/dh_t. Slower than the fast path, and used where the fast path cannot
    go: a network whose values are held by hand.
    """
    T, H, D = X0.shape[0], cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    h0_all = h0_all.clone().requires_grad_(True)
    c0_all = c0_all.clone().requires_grad_(True) if c0_all is not None else None
    probe_h = torch.zeros(LD, T, H, dtype=dt, requires_grad=True)
    probe_c = torch.zeros(LD, T, H, dtype=dt, requires_grad=True) if cfg.has_cell_state else None
    recs, layer_in, pre_all = [], X0, []
    with torch.enable_grad():
        for k in range(cfg.num_layers):
            outs = []
            for d in range(D):
                idx = k * D + d
                w = layer_weights(P, f"_l{k}" + ("_reverse" if d else ""))
                h = h0_all[idx]
                c = c0_all[idx] if c0_all is not None else None
                Hs, Cs, steps, pres = [], [], [], []
                order = list(reversed(range(T))) if d else list(range(T))
                for t in order:
                    held = _intervention_edit(cfg, interventions, k, d, t, dt)
                    probes = {"h": probe_h[idx, t]}
                    if probe_c is not None:
                        probes["c"] = probe_c[idx, t]

                    def edit(name, value, held=held, probes=probes):
                        value = held(name, value)  # the probe sits after the held value, before any reader
                        return value + probes[name] if name in probes else value

                    h, c, gates = cell_step(cfg, w, layer_in[t], h, c, edit)
                    if c is not None:
                        Cs.append(c)
                    Hs.append(h)
                    pre = torch.cat([gates[name][0] for name in cfg.gates])  # (G*H,) torch's row order
                    pre.retain_grad()
                    pres.append(pre)
                    steps.append(gates)
                Hr = torch.stack(Hs)  # reading order
                recs.append(dict(
                    k=k, d=d, w=w, H=Hr, C=torch.stack(Cs) if Cs else None,
                    gates={name: (torch.stack([g[name][0] for g in steps]), torch.stack([g[name][1] for g in steps]))
                           for name in cfg.gates},
                    h0=h0_all[idx], c0=c0_all[idx] if c0_all is not None else None,
                ))  # fmt: skip
                pre_all.append(pres)
                outs.append(Hr.flip(0) if d else Hr)
            layer_in = torch.cat(outs, dim=-1)
        Y, loss, step_losses, clean_targets = _head_and_loss(model, cfg, P, layer_in, targets, dt)
        total = loss
        if final_state_grad is not None:  # a gradient arriving on the final state from outside
            ends = torch.stack([r["H"][-1] for r in recs])
            total = total + (ends * final_state_grad[0].to(dt).reshape(LD, H)).sum()
            if cfg.has_cell_state and final_state_grad[1] is not None:
                c_ends = torch.stack([r["C"][-1] for r in recs])
                total = total + (c_ends * final_state_grad[1].to(dt).reshape(LD, H)).sum()
        total.backward()
    grad_of = lambda t: t.grad if t.grad is not None else torch.zeros_like(t)  # noqa: E731  unused: zero
    grads = {}
    for idx, rec in enumerate(recs):
        in_reading_order = (lambda t: t.flip(0)) if rec["d"] else (lambda t: t)  # probes are by position
        dH_ = in_reading_order(grad_of(probe_h)[idx])
        dC_ = in_reading_order(grad_of(probe_c)[idx]) if probe_c is not None else None
        dA_ = torch.stack([grad_of(p) for p in pre_all[idx]])
        grads[idx] = (dH_, dC_, dA_)
        rec["H"] = rec["H"].detach()
        rec["C"] = rec["C"].detach() if rec["C"] is not None else None
        rec["gates"] = {n: (a.detach(), b.detach()) for n, (a, b) in rec["gates"].items()}
        rec["h0"] = rec["h0"].detach()
        rec["c0"] = rec["c0"].detach() if rec["c0"] is not None else None
    dc0 = grad_of(c0_all) if c0_all is not None else None
    return recs, Y.detach(), loss.detach(), step_losses, clean_targets, grads, grad_of(h0_all), dc0


def _fused_path(model, cfg, P, X0, h0_all, c0_all, targets, final_state_grad, dt):
    """The fastest exact path, for the cells torch fuses whose recurrence enters only through
    W_hh h_{t-1} (LSTM, tanh/relu RNN): torch's own kernels run forward and backward.

    Each layer reads [x_t ; u_t] with weights [W_ih | W_hh] and u_t = 0, so nothing changes
    forward, while backward dL/du_t = W_hh^T δa_t: the recurrent part of dL/dh_{t-1}. With the
    direct part (what reaches the layer's output from the head or the layer above):
        δh_t = direct_t + dL/du_{t+1}
    and for an LSTM δc_t = δh_t ∂h_t/∂c_t + f_{t+1} δc_{t+1}, then every δa_t at once.
    """
    T, H, D = X0.shape[0], cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    lstm = cfg.cell == "lstm"
    h0_all = h0_all.clone().requires_grad_(True)
    c0_all = c0_all.clone().requires_grad_(True) if lstm else None
    zeros_u = torch.zeros(T, H, dtype=dt)
    recs, layer_in, extra = [], X0, []
    with torch.enable_grad():
        for k in range(cfg.num_layers):
            outs = []
            for d in range(D):
                idx = k * D + d
                w = layer_weights(P, f"_l{k}" + ("_reverse" if d else ""))
                Xr = layer_in.flip(0) if d else layer_in
                u = zeros_u.clone().requires_grad_(True)
                Wa = torch.cat([w["W_ih"], w["W_hh"]], dim=1)  # (G*H, I + H)
                args = [Wa, w["W_hh"]] + ([w["b_ih"], w["b_hh"]] if cfg.bias else [])
                xa = torch.cat([Xr, u], dim=1)[None]  # (1, T, I + H)
                if lstm:
                    Hs, h_n, c_n = torch.lstm(xa, (h0_all[idx][None, None], c0_all[idx][None, None]), args,
                                              cfg.bias, 1, 0.0, False, False, True)  # fmt: skip
                else:
                    fn = {"tanh": torch.rnn_tanh, "relu": torch.rnn_relu}[cfg.activation]
                    Hs, h_n = fn(xa, h0_all[idx][None, None], args, cfg.bias, 1, 0.0, False, False, True)
                    c_n = None
                Hs = Hs[0]  # (T, H), reading order
                Hs.retain_grad()
                recs.append(dict(k=k, d=d, w=w, X=Xr.detach(), H=Hs, u=u, c_n=c_n,
                                 h0=h0_all[idx].detach(), c0=c0_all[idx].detach() if lstm else None))  # fmt: skip
                outs.append(Hs.flip(0) if d else Hs)
            layer_in = torch.cat(outs, dim=-1)
        Y, loss, step_losses, clean_targets = _head_and_loss(model, cfg, P, layer_in, targets, dt)
        total = loss
        if final_state_grad is not None:  # a gradient arriving on the final state from outside
            g_h = final_state_grad[0].to(dt).reshape(LD, H)
            total = total + sum((r["H"][-1] * g_h[i]).sum() for i, r in enumerate(recs))
            if lstm and final_state_grad[1] is not None:
                g_c = final_state_grad[1].to(dt).reshape(LD, H)
                extra = [g_c[i] for i in range(LD)]
                total = total + sum((r["c_n"].reshape(H) * g_c[i]).sum() for i, r in enumerate(recs))
        total.backward()

    grads = {}
    for idx, rec in enumerate(recs):
        w, Hs = rec["w"], rec["H"].detach()
        direct = rec["H"].grad if rec["H"].grad is not None else torch.zeros_like(Hs)
        dH = direct.clone()
        dH[:-1] += rec["u"].grad[1:]  # δh_t = direct_t + W_hh^T δa_{t+1}
        H_prev = torch.cat([rec["h0"][None], Hs[:-1]])
        if lstm:
            gates, C_t = lstm_gates_and_cells(cfg, w, rec["X"], H_prev, rec["c0"])
            i, f, g, o = (gates[n][1].numpy() for n in ("i", "f", "g", "o"))
            C = C_t.numpy()
            C_prev = np.concatenate([rec["c0"].numpy()[None], C[:-1]])
            tc = np.tanh(C)
            dh = dH.numpy()
            K_c = o * (1 - tc**2)  # ∂h_t/∂c_t
            dC = np.empty_like(dh)
            carry = extra[idx].numpy() if extra else np.zeros(H, dh.dtype)
            for t in reversed(range(T)):  # δc_t = δh_t ∂h_t/∂c_t + f_{t+1} δc_{t+1}
                dC[t] = dh[t] * K_c[t] + carry
                carry = dC[t] * f[t]
            dA = np.concatenate([dC * g * i * (1 - i), dC * C_prev * f * (1 - f), dC * i * (1 - g**2),
                                 dh * tc * o * (1 - o)], axis=1)  # fmt: skip
            rec.update(C=C_t, C_prev=torch.from_numpy(C_prev))
            grads[idx] = (dH, torch.from_numpy(dC), torch.from_numpy(dA))
        else:
            _, _, gates = cell_step(cfg, w, rec["X"], H_prev, None)
            a = gates["a"][0]
            act_prime = 1 - Hs**2 if cfg.activation == "tanh" else (a > 0).to(dt)
            grads[idx] = (dH, None, dH * act_prime)
            rec.update(C=None)
        rec.update(H=Hs, gates={n: (pre.detach(), act.detach()) for n, (pre, act) in gates.items()})
    dh0 = h0_all.grad if h0_all.grad is not None else torch.zeros_like(h0_all)
    dc0 = None
    if lstm:
        dc0 = c0_all.grad if c0_all.grad is not None else torch.zeros_like(c0_all)
    return recs, Y.detach(), loss.detach(), step_losses, clean_targets, grads, dh0.detach(), dc0


@torch.no_grad()
def run_trace(
    model: RNNModel,
    x,
    targets: Sequence | None = None,
    *,
    tokens: Sequence[str] | None = None,
    vocab: Sequence[str] | None = None,
    dtype: str = "float32",
    initial_state: tuple[Tensor, Tensor | None] | None = None,
    final_state_grad: tuple[Tensor, Tensor | None] | None = None,
    interventions: Sequence[Intervention] = (),
) -> Trace:
    """Trace one sequence.

    x: token ids (T,) or vectors (T, I). targets: one per output row (T rows for head="step",
    one for a pooled head), None where unscored. initial_state: (h0, c0) in torch's (L*D, H)
    layout; final_state_grad: gradient arriving on the final state (h_n, c_n) from outside (an
    encoder feeding a decoder). The gradient on the initial state is in extras["dL_dh0"] (and
    extras["dL_dc0"]), in the same layout. interventions: values held by hand (see
    `Intervention`); the trace then shows the network as changed.
    """
    cfg = model.config
    if dtype not in DTYPES:
        raise TraceError(f"unknown dtype {dtype!r}: choose float32 or float64")
    dt = DTYPES[dtype]
    P = {k: v.detach().to(dt) for k, v in model.tensors().items()}
    X0 = _encode(model, x, P, dt)
    T = X0.shape[0]
    if T == 0:
        raise TraceError("the sequence is empty: give at least one token or vector")
    if T > MAX_STEPS:
        raise TraceError(f"the sequence has {T} steps; at most {MAX_STEPS} can be traced")
    labels = list(tokens) if tokens is not None else [str(i) for i in range(T)]
    if len(labels) != T:
        raise TraceError(f"got {len(labels)} token labels for {T} steps")
    for iv in interventions:
        iv.check(cfg, T)
    H, D = cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    h0_all = torch.zeros(LD, H, dtype=dt) if initial_state is None else initial_state[0].to(dt).reshape(LD, H)
    c0_all = None
    if cfg.has_cell_state:
        given = initial_state is not None and initial_state[1] is not None
        c0_all = initial_state[1].to(dt).reshape(LD, H) if given else torch.zeros(LD, H, dtype=dt)

    if interventions:
        recs, Y, loss, step_losses, clean_targets, grads, dh0, dc0 = _autograd_path(
            model, cfg, P, X0, h0_all, c0_all, targets, final_state_grad, list(interventions), dt
        )
    elif cfg.torch_native and cfg.cell in ("lstm", "rnn"):
        recs, Y, loss, step_losses, clean_targets, grads, dh0, dc0 = _fused_path(
            model, cfg, P, X0, h0_all, c0_all, targets, final_state_grad, dt
        )
    else:
        recs, top = _forward_fast(cfg, P, X0, h0_all, c0_all)
        top = top.clone().requires_grad_(True)
        with torch.enable_grad():  # autograd on the head alone: the direct gradient at the top
            Y, loss, step_losses, clean_targets = _head_and_loss(model, cfg, P, top, targets, dt)
            (g_top,) = torch.autograd.grad(loss, top)
        Y, loss = Y.detach(), loss.detach()
        grads, dh0, dc0 = _backward_fast(cfg, recs, g_top, final_state_grad, dt)

    np_ = lambda t: None if t is None else t.detach().cpu().numpy()  # noqa: E731
    layers = []
    for idx, rec in enumerate(recs):
        flip = (lambda t: None if t is None else t.flip(0)) if rec["d"] else (lambda t: t)  # back to sequence order
        dH_, dC_, dA_ = grads[idx]
        layers.append(
            LayerTrace(
                layer=rec["k"],
                direction="reverse" if rec["d"] else "forward",
                h=np_(flip(rec["H"])),
                c=np_(flip(rec["C"])),
                gates={name: np_(flip(act)) for name, (_, act) in rec["gates"].items()},
                preacts={name: np_(flip(pre)) for name, (pre, _) in rec["gates"].items()},
                dL_dh=np_(flip(dH_)),
                dL_dc=np_(flip(dC_)),
                dL_dpre=np_(flip(dA_)),
                h0=np_(rec["h0"]).copy(),
                c0=None if rec["c0"] is None else np_(rec["c0"]).copy(),
            )
        )
    return Trace(
        config=cfg,
        dtype=dtype,
        tokens=labels,
        inputs=np_(X0).copy(),
        layers=layers,
        outputs=np_(Y),
        targets=clean_targets,
        step_losses=np_(step_losses),
        loss=float(loss),
        params={k: np_(v).copy() for k, v in P.items()},
        vocab=list(vocab) if vocab is not None else None,
        extras={"dL_dh0": np_(dh0), "dL_dc0": np_(dc0), "interventions": list(interventions)},
    )
