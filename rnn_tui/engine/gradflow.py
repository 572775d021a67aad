"""Gradient flow through time: how the error of step t reaches step k, and what that does to learning.

Everything here is computed from a `Trace` (its states, gates, deltas and parameters), so an
analysis can be rerun on a trace the UI already holds. Notation, per layer and direction, in the
direction's reading order (a reverse direction reads t = T-1 .. 0):

    s_t = h_t (or [h_t; c_t] for LSTMs)        the full recurrent state
    l_r                                        the loss of output row r alone (row = step for a
                                               per-step head; one row for a pooled head)
    L   = (1/N) sum_{r scored} l_r             the trace's loss

The quantities:

- flow[r, k] = ||d l_r / d h_k||               the gradient-flow matrix. Each source row r is one
  one-hot-in-time gradient at the top of the network, dl_r/dy_r V; all sources go through the
  delta recursion of `trace.backward_layer` together, as a leading batch dimension. Summed over
  r and divided by N the vectors give dL/dh_k.
- J_t = ds_t / ds_{t-1}                          the one-step Jacobian of the recurrent state (input
  held fixed), and its spectral norm ||J_t||_2 per step. d l_r / d s_k = J_{k+1}^T ... J_r^T
  (d l_r / d s_r): the norm shrinks or grows roughly as gamma^(r-k).
- gamma: log ||d l_r / d h_k|| = a + (r - k) log gamma, a least-squares line over every computed
  pair with k at or before r (in reading order), with its R^2.
- The spectrum of each W_hh gate block (H x H): singular values, eigenvalue moduli, spectral
  radius rho. For a linear Elman network J_t = W_hh, so rho < 1 means vanishing, > 1 exploding.
- Per-step contributions to the recurrent weight gradient: with delta_k = dL/da_k (the gate
  pre-activations at step k), dL/dW_hh = sum_k delta_k h_{k-1}^T (GRU: the n rows use r_k ⊙ delta_n
  with torch's placement, r_k ⊙ h_{k-1} with the textbook one). ||delta_k h_{k-1}^T|| per step k.
- Truncated BPTT with window K: the sequence is cut into windows [0, K), [K, 2K), ...; the recurrent
  path across each cut is detached in every layer and direction (as `h = h.detach()` every K steps
  in a training loop); the resulting gradient of every tensor, and its distance to the full one.
- A clipping preview: the global gradient norm before and after `clip_grad_norm_` (or the norm
  after `clip_grad_value_`) at a threshold.

`analyze_gradflow(trace, ...)` computes them all into a `GradFlowReport` (frozen, numpy only);
`to_json(report)` gives the `grad` keys of the trace export.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.numerics import eigenvalue_moduli, norm, singular_values
from rnn_tui.engine.records import Trace
from rnn_tui.engine.trace import backward_layer, layer_weights

DTYPES = {"float32": torch.float32, "float64": torch.float64}
FLOW_WINDOW = 512  # sources computed by default: the last FLOW_WINDOW rows of a longer sequence
MAX_ELEMENTS = 1 << 25  # working numbers per batched backward pass (128 MiB in float32)
MAX_FLOW_BYTES = 1 << 30  # the (rows, T) flow matrices kept in float64; a 100000-step trace would need 75 GB
MAX_STATE = 2048  # widest state s (H, or 2H for LSTMs) whose step Jacobians (S x S each) are analysed
JACOBIAN_BYTES = 1 << 29  # working memory of one batch of step Jacobians and their SVDs


class GradFlowError(EngineError):
    pass


# ---- records
@dataclass(frozen=True)
class DecayFit:
    """log ||d l_r / d h_k|| = intercept + lag * log(gamma), fitted by least squares."""

    gamma: float  # exp(slope): the factor the gradient norm is multiplied by per step back
    slope: float  # log(gamma)
    intercept: float
    r2: float  # the fit's coefficient of determination (nan when it cannot be fitted)
    points: int  # (r, k) pairs used: lag >= 0, norm > 0
    max_lag: int


@dataclass(frozen=True)
class Spectrum:
    """One gate block of W_hh (H x H)."""

    gate: str
    singular_values: np.ndarray  # (H,) descending; the first is the spectral norm ||W||_2
    eigenvalue_moduli: np.ndarray  # (H,) descending |lambda_i|
    spectral_radius: float  # max |lambda_i|

    @property
    def spectral_norm(self) -> float:
        return float(self.singular_values[0])


@dataclass(frozen=True)
class LayerFlow:
    """Gradient flow in one layer and direction. Arrays are in sequence order (index = step)."""

    layer: int
    direction: str  # "forward" | "reverse"
    dL_dh: np.ndarray  # (T, H) total derivative dL/dh_t (from the trace)
    dL_dc: np.ndarray | None  # (T, H) dL/dc_t, LSTMs only
    flow: np.ndarray  # (R, T) ||d l_r / d h_k||; nan for unscored or uncomputed rows r
    flow_c: np.ndarray | None  # (R, T) ||d l_r / d c_k||, LSTMs only
    jacobian_norm: np.ndarray  # (T,) ||d s_t / d s_prev||_2, s = h or [h; c]
    decay: DecayFit
    spectrum: dict[str, Spectrum]  # gate name -> spectrum of that block of W_hh
    dW_hh_step_norm: np.ndarray  # (T,) ||dL/dW_hh restricted to step k||_F
    dW_hh: np.ndarray  # (G*H, H) the full gradient, = the sum of the per-step contributions

    @property
    def name(self) -> str:
        return f"l{self.layer}" + ("_reverse" if self.direction == "reverse" else "")

    @property
    def dL_dc_norm(self) -> np.ndarray | None:
        return None if self.dL_dc is None else norm(self.dL_dc, axis=1)


@dataclass(frozen=True)
class TBPTTResult:
    """Truncated BPTT with window K next to the full gradient."""

    K: int
    grads: dict[str, np.ndarray]  # every tensor's gradient under truncation
    full_grads: dict[str, np.ndarray]  # the same without truncation
    distance: float  # ||g_K - g|| over all tensors
    relative_distance: float  # distance / ||g||
    cosine: float  # <g_K, g> / (||g_K|| ||g||)
    norm: float  # ||g_K||
    full_norm: float  # ||g||
    per_tensor: dict[str, tuple[float, float, float]]  # name -> (||g_K||, ||g||, ||g_K - g||)


@dataclass(frozen=True)
class ClipPreview:
    threshold: float
    mode: str  # "norm" (clip_grad_norm_) | "value" (clip_grad_value_)
    norm_before: float  # global 2-norm of all gradients
    norm_after: float
    scale: float  # norm mode: the factor applied (1.0 when not clipped); value mode: after/before
    clipped: bool


@dataclass(frozen=True)
class GradFlowReport:
    T: int
    rows: int  # output rows (T for a per-step head, 1 for a pooled head)
    scored: np.ndarray  # (rows,) bool
    sources: np.ndarray  # rows whose flow was computed
    layers: list[LayerFlow]  # per layer and direction, as trace.layers
    grads: dict[str, np.ndarray]  # the full gradient of every tensor, from the trace's deltas
    tbptt: TBPTTResult | None
    clip: ClipPreview | None


# ---- the trace's forward records, back in reading order as torch tensors
def _dtype(trace: Trace) -> torch.dtype:
    return DTYPES.get(trace.dtype, torch.float64)


def _params(trace: Trace) -> dict[str, Tensor]:
    dt = _dtype(trace)
    return {k: torch.as_tensor(np.asarray(v)).to(dt) for k, v in trace.params.items()}


def _records(trace: Trace, P: dict[str, Tensor]) -> list[dict]:
    """One record per layers entry, as `backward_layer` reads it (reading order)."""
    if trace.extras.get("interventions"):
        raise GradFlowError(
            "this trace holds values by hand (interventions), so its cells no longer follow their "
            "equations: trace the sequence again without them to see its gradient flow"
        )
    dt = _dtype(trace)
    t_ = lambda a: None if a is None else torch.as_tensor(np.asarray(a)).to(dt)  # noqa: E731
    recs = []
    for e in trace.layers:
        rev = e.direction == "reverse"
        order = (lambda a: None if a is None else a.flip(0)) if rev else (lambda a: a)
        if e.layer == 0:
            X = t_(trace.inputs)
        else:
            below = [b for b in trace.layers if b.layer == e.layer - 1]
            X = torch.cat([t_(b.h) for b in below], dim=-1)  # (T, D*H)
        sfx = f"_l{e.layer}" + ("_reverse" if rev else "")
        H = order(t_(e.h))
        h0 = t_(e.h0)
        C = order(t_(e.c))
        c0 = t_(e.c0)
        recs.append(
            dict(
                idx=len(recs),
                layer=e.layer,
                rev=rev,
                sfx=sfx,
                w=layer_weights(P, sfx),
                X=order(X),
                H=H,
                H_prev=torch.cat([h0[None], H[:-1]]),
                C=C,
                C_prev=None if C is None else torch.cat([c0[None], C[:-1]]),
                gates={g: (order(t_(e.preacts[g])), order(t_(e.gates[g]))) for g in e.gates},
                h0=h0,
                c0=c0,
            )
        )
    return recs


def _slice(rec: dict, a: int, b: int) -> dict:
    """Steps a..b-1 (reading order) of a record."""
    cut = lambda v: None if v is None else v[a:b]  # noqa: E731
    out = dict(rec)
    for key in ("X", "H", "H_prev", "C", "C_prev"):
        out[key] = cut(rec[key])
    out["gates"] = {g: (pre[a:b], act[a:b]) for g, (pre, act) in rec["gates"].items()}
    return out


# ---- the loss of each output row, and the gradient it sends into the top layer
def _row_errors(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(rows, O) dl_r/dy_r of each row's own loss (unscaled), and the (rows,) scored mask.

    ce:  softmax(y_r) - onehot(target_r);   mse: 2 (y_r - target_r) / O.
    """
    Y = np.asarray(trace.outputs, dtype=np.float64)
    R, O = Y.shape
    E = np.zeros_like(Y)
    scored = np.array([t is not None for t in trace.targets], dtype=bool)
    for r, target in enumerate(trace.targets):
        if target is None:
            continue
        if trace.config.loss == "ce":
            p = np.exp(Y[r] - Y[r].max())
            E[r] = p / p.sum()
            E[r, int(target)] -= 1.0
        else:
            E[r] = 2.0 * (Y[r] - np.asarray(target, dtype=np.float64)) / O
    return E, scored


def _pool_adjoint(trace: Trace, G: Tensor) -> Tensor:
    """Gradient on the pooled rows (S, rows, D*H) -> gradient on the top layer's outputs (S, T, D*H).

    The adjoint of `RNNModel.pool`: step: row r lands on step r; mean: every step gets 1/T of it;
    last: the forward half lands on step T-1, the reverse half on step 0.
    """
    cfg = trace.config
    T, H = trace.T, cfg.hidden_size
    S = G.shape[0]
    if cfg.head == "step":
        return G
    out = G.new_zeros((S, T, G.shape[-1]))
    if cfg.head == "mean":
        return out + G[:, :1] / T
    out[:, T - 1, :H] = G[:, 0, :H]
    if cfg.bidirectional:
        out[:, 0, H:] = G[:, 0, H:]
    return out


def _top_sources(trace: Trace, P: dict[str, Tensor], rows: Sequence[int], E: np.ndarray, L: int | None = None) -> Tensor:
    """(S, L, D*H): for each source row r, d l_r / d(top layer output) at steps 0..L-1 (default
    L = T) — one-hot in time, at step r, for a per-step head."""
    dt = _dtype(trace)
    rows = [int(r) for r in rows]
    V = P["head.weight"]  # (O, D*H)
    Er = torch.as_tensor(E[rows]).to(dt)  # (S, O)
    if trace.config.head == "step":
        L = trace.T if L is None else L
        G = Er.new_zeros((len(rows), L, V.shape[1]))
        G[torch.arange(len(rows)), torch.as_tensor(rows, dtype=torch.long)] = Er @ V  # dl_r/dy_r V at step r
        return G
    G = (Er @ V)[:, None, :]  # (S, 1, D*H) on the single pooled row
    return _pool_adjoint(trace, G)[:, : trace.T if L is None else L]


# ---- batched BPTT through the stack
def _stack_backward(trace: Trace, recs: list[dict], direct_top: Tensor, visit, cuts: int | None = None) -> None:
    """Run the delta recursion for a batch of gradient sources, top layer first.

    direct_top: (..., L, D*H) gradient at the top layer's outputs for steps 0..L-1 (L <= T is
    allowed for a unidirectional stack, whose steps after L-1 cannot matter to these sources).
    visit(rec, dH, dC, dA): called per layers entry with reading-order results.
    cuts: truncated BPTT window K — the recurrence is detached between steps jK-1 and jK.
    """
    cfg = trace.config
    H, D = cfg.hidden_size, cfg.num_directions
    L = direct_top.shape[-2]
    T = trace.T
    direct = direct_top
    for k in reversed(range(cfg.num_layers)):
        dX = 0.0
        for d in range(D):
            rec = recs[k * D + d]
            g = direct[..., d * H : (d + 1) * H]
            if d:
                g = g.flip(-2)
            rec_L = rec if L == T else _slice(rec, 0, L)
            if cuts is None:
                dH, dC, dA, _, _ = backward_layer(cfg, rec["w"], rec_L, g)
            else:
                parts = []
                for a, b in _windows(L, cuts, reverse=bool(d)):
                    parts.append(backward_layer(cfg, rec["w"], _slice(rec_L, a, b), g[..., a:b, :]))
                dH = torch.cat([p[0] for p in parts], dim=-2)
                dC = None if parts[0][1] is None else torch.cat([p[1] for p in parts], dim=-2)
                dA = torch.cat([p[2] for p in parts], dim=-2)
            visit(rec, dH, dC, dA)
            if k > 0:
                dXr = dA @ rec["w"]["W_ih"]  # dL/dx_t = W_ih^T delta_t, (..., L, I)
                dX = dX + (dXr.flip(-2) if d else dXr)
        direct = dX


def _windows(T: int, K: int, reverse: bool) -> list[tuple[int, int]]:
    """Reading-order index ranges of the windows [0, K), [K, 2K), ... of sequence positions."""
    bounds = list(range(0, T, K)) + [T]
    spans = [(bounds[j], bounds[j + 1]) for j in range(len(bounds) - 1)]
    if reverse:  # reading index i is position T-1-i
        spans = [(T - b, T - a) for a, b in reversed(spans)]
    return spans


# ---- 1. the gradient-flow matrix
def default_sources(trace: Trace, window: tuple[int, int] | None = None) -> np.ndarray:
    """The scored rows whose flow is computed: all of them for a short sequence, else a window.

    window=(start, stop) picks rows start..stop-1; by default the last FLOW_WINDOW rows.
    """
    _, scored = _row_errors(trace)
    R = scored.shape[0]
    if window is None:
        window = (max(0, R - FLOW_WINDOW), R)
    a, b = max(0, int(window[0])), min(R, int(window[1]))
    if a >= b:
        raise GradFlowError(f"the flow window {window[0]}..{window[1]} holds no output row (rows 0..{R - 1})")
    return np.flatnonzero(scored[a:b]) + a


def flow_matrix(
    trace: Trace, sources: Sequence[int] | None = None, max_elements: int = MAX_ELEMENTS
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """||d l_r / d h_k|| (and ||d l_r / d c_k||) for every layers entry: a list of (R, T) arrays.

    Rows not in `sources` (default: `default_sources`) are nan. Sources travel through the delta
    recursion as one batch, split only to bound memory; in a unidirectional stack with a per-step
    head, sources r < L only need the first L steps, so each batch runs over its own prefix.
    """
    P = _params(trace)
    return _flow(trace, P, _records(trace, P), sources, max_elements)


def _flow(trace: Trace, P: dict, recs: list[dict], sources, max_elements: int = MAX_ELEMENTS):
    cfg = trace.config
    T, R = trace.T, trace.outputs.shape[0]
    E, scored = _row_errors(trace)
    src = default_sources(trace) if sources is None else np.asarray(sorted(set(int(s) for s in sources)), dtype=np.int64)
    if src.size and (src.min() < 0 or src.max() >= R):
        raise GradFlowError(f"flow sources must be output rows 0..{R - 1}")
    src = src[scored[src]]  # an unscored row has no loss of its own
    check_flow_size(cfg, T, R)
    flows = [np.full((R, T), np.nan) for _ in recs]
    flows_c = [np.full((R, T), np.nan) if cfg.has_cell_state else None for _ in recs]
    causal = cfg.head == "step" and not cfg.bidirectional
    G, H, D = len(cfg.gates), cfg.hidden_size, cfg.num_directions
    per_step = (G + 3) * H * D + D * H  # numbers held per source and step (dH, dC, dA, dX)
    i = 0
    while i < len(src):  # greedy batches, prefix length set by the batch's last source
        j = i + 1
        while j < len(src):
            L = int(src[j]) + 1 if causal else T
            if (j - i + 1) * L * per_step > max_elements:
                break
            j += 1
        rows = src[i:j]
        L = int(rows[-1]) + 1 if causal else T
        top = _top_sources(trace, P, rows, E, L)  # (S, L, D*H)

        def visit(rec, dH, dC, dA, rows=rows, L=L):
            n = torch.linalg.vector_norm(dH, dim=-1)  # (S, L) in reading order
            nc = None if dC is None else torch.linalg.vector_norm(dC, dim=-1)
            if rec["rev"]:
                n = n.flip(-1)
                nc = None if nc is None else nc.flip(-1)
            flows[rec["idx"]][rows, :L] = n.double().numpy()
            if nc is not None:
                flows_c[rec["idx"]][rows, :L] = nc.double().numpy()
            if L < T:  # a causal source cannot reach later steps
                flows[rec["idx"]][rows, L:] = 0.0
                if nc is not None:
                    flows_c[rec["idx"]][rows, L:] = 0.0

        _stack_backward(trace, recs, top, visit)
        i = j
    return list(zip(flows, flows_c))


def check_state_size(cfg) -> int:
    """The width S of the recurrent state s; GradFlowError when its S x S step Jacobians are too
    big to analyse (a 4096-unit LSTM: 512 MB and a minute of SVD per step)."""
    S = cfg.hidden_size * (2 if cfg.has_cell_state else 1)
    if S > MAX_STATE:
        most = MAX_STATE // 2 if cfg.has_cell_state else MAX_STATE
        raise GradFlowError(
            f"the gradient-flow analysis of a {cfg.hidden_size}-unit {cfg.cell} takes {S} x {S} step Jacobians, "
            f"too big to analyse here: use at most {most} units to see it"
        )
    return S


def check_flow_size(cfg, T: int, R: int) -> None:
    """Refuse flow matrices (R output rows x T steps per layers entry) that would not fit in
    memory, before allocating them (or before tracing, when the caller knows T)."""
    entries = cfg.num_layers * cfg.num_directions
    per = entries * (2 if cfg.has_cell_state else 1) * 8
    need = R * T * per
    if need > MAX_FLOW_BYTES:
        most = int(math.sqrt(MAX_FLOW_BYTES / per)) if R == T else MAX_FLOW_BYTES // (per * max(R, 1))
        raise GradFlowError(
            f"the gradient-flow matrices of a {T}-step trace would take {need / 1e9:.1f} GB; "
            f"at most {MAX_FLOW_BYTES / 2**30:.0f} GB fit: trace a sequence of at most about {most} steps to see them"
        )


def source_gradients(trace: Trace, rows: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The vectors d l_r / d h_k (and d l_r / d c_k) for the given rows: per layers entry,
    arrays (S, T, H) in sequence order. Averaged over all scored rows (sum / N) they are dL/dh_k.
    """
    P = _params(trace)
    recs = _records(trace, P)
    E, _ = _row_errors(trace)
    out: list = [None] * len(recs)

    def visit(rec, dH, dC, dA):
        order = (lambda a: None if a is None else a.flip(-2)) if rec["rev"] else (lambda a: a)
        dC = order(dC)
        out[rec["idx"]] = (order(dH).double().numpy(), None if dC is None else dC.double().numpy())

    _stack_backward(trace, recs, _top_sources(trace, P, list(rows), E), visit)
    return out


# ---- 2. one-step Jacobians
def _jacobians(trace: Trace, rec: dict, steps: list[int]) -> Tensor:
    """J_t = d s_t / d s_{t-1} at the given sequence positions, (n, S, S), input x_t held fixed.

    Each is a row-scaled copy of W_hh's blocks, read off the cell equations (⊙ on a matrix scales
    its rows; f' etc. are the step's gate derivatives):

    rnn:   J = f'(a_t) ⊙ W_hh
    lstm:  dc_t/dh = K_i ⊙ W_hi + K_f ⊙ W_hf + K_g ⊙ W_hg     K_i = g σ'(a_i), K_f = c_{t-1} σ'(a_f),
                                                               K_g = i tanh'(a_g)
           dc_t/dc = diag(f_t [+ K_i w_ci + K_f w_cf])
           dh_t/dh = K_o ⊙ W_ho + K_c ⊙ dc_t/dh              K_o = tanh(c_t) σ'(a_o),
           dh_t/dc = K_c ⊙ dc_t/dc                           K_c = o_t tanh'(c_t) [+ K_o w_co]
           J = [[dh/dh, dh/dc], [dc/dh, dc/dc]]
    gru:   dh_t/dh = diag(z_t) + K_z ⊙ W_hz + K_n ⊙ da_n/dh  K_z = (h_{t-1} - n_t) σ'(a_z),
                                                               K_n = (1 - z_t) tanh'(a_n)
           torch:    da_n/dh = r_t ⊙ W_hn + ((W_hn h_{t-1} + b_hn) σ'(a_r)) ⊙ W_hr
           textbook: da_n/dh = W_hn (diag(r_t) + (h_{t-1} σ'(a_r)) ⊙ W_hr)
    """
    cfg = trace.config
    H = cfg.hidden_size
    T = trace.T
    read = torch.as_tensor([T - 1 - t if rec["rev"] else t for t in steps], dtype=torch.long)
    gate = {name: act[read] for name, (_, act) in rec["gates"].items()}  # (n, H) each
    blocks = rec["w"]["W_hh"].split(H)  # the gate blocks of W_hh, (H, H) each, torch's order
    rows = lambda k, W: k.unsqueeze(-1) * W  # noqa: E731  k ⊙ W: scale row m of W by k[m]
    H_prev = rec["H_prev"][read]
    if cfg.cell == "rnn":
        a, h = rec["gates"]["a"][0][read], gate["a"]
        fprime = {"tanh": 1 - h**2, "relu": (a > 0).to(h.dtype), "sigmoid": h * (1 - h), "identity": torch.ones_like(h)}
        return rows(fprime[cfg.activation], blocks[0])
    if cfg.has_cell_state:
        W_hi, W_hf, W_hg, W_ho = blocks
        i, f, g, o = gate["i"], gate["f"], gate["g"], gate["o"]
        C, C_prev = rec["C"][read], rec["C_prev"][read]
        tc = torch.tanh(C)
        K_i, K_f, K_g = g * i * (1 - i), C_prev * f * (1 - f), i * (1 - g**2)
        K_o = tc * o * (1 - o)
        K_c = o * (1 - tc**2)
        dcdc = f
        w = rec["w"]
        if w["w_ci"] is not None:
            dcdc = dcdc + K_i * w["w_ci"] + K_f * w["w_cf"]
            K_c = K_c + K_o * w["w_co"]
        dc_dh = rows(K_i, W_hi) + rows(K_f, W_hf) + rows(K_g, W_hg)
        dh_dh = rows(K_o, W_ho) + rows(K_c, dc_dh)
        top = torch.cat([dh_dh, torch.diag_embed(K_c * dcdc)], dim=-1)  # (n, H, 2H)
        bottom = torch.cat([dc_dh, torch.diag_embed(dcdc)], dim=-1)
        return torch.cat([top, bottom], dim=-2)  # (n, 2H, 2H)
    W_hr, W_hz, W_hn = blocks
    r, z, n = gate["r"], gate["z"], gate["n"]
    K_z = (H_prev - n) * z * (1 - z)
    K_n = (1 - z) * (1 - n**2)
    sr = r * (1 - r)  # σ'(a_r)
    if cfg.cell == "gru":
        b_hh = rec["w"]["b_hh"]
        hn = H_prev @ W_hn.T + (b_hh[2 * H :] if b_hh is not None else 0.0)  # W_hn h_{t-1} + b_hn
        dan = rows(r, W_hn) + rows(hn * sr, W_hr)
    else:
        dan = W_hn @ (torch.diag_embed(r) + rows(H_prev * sr, W_hr))
    return torch.diag_embed(z) + rows(K_z, W_hz) + rows(K_n, dan)


def step_jacobians(trace: Trace, index: int, steps: Sequence[int] | None = None) -> np.ndarray:
    """J_t = d s_t / d s_prev for layers entry `index` at the given steps (sequence positions):
    (n, S, S) with S = H, or 2H for LSTMs ([h; c] rows and columns, h first). s_prev is s_{t-1}
    for a forward direction and s_{t+1} for a reverse one.
    """
    P = _params(trace)
    rec = _records(trace, P)[index]
    steps = list(range(trace.T)) if steps is None else [int(t) for t in steps]
    return _jacobians(trace, rec, steps).double().numpy()


def jacobian_norms(trace: Trace, steps: Sequence[int] | None = None, chunk: int = 128) -> list[np.ndarray]:
    """||J_t||_2 (the largest singular value) per step, for every layers entry, in sequence order;
    nan at steps left out of `steps` (default: every step)."""
    P = _params(trace)
    return _jacobian_norms(trace, _records(trace, P), steps, chunk)


def _jacobian_norms(trace: Trace, recs: list[dict], steps=None, chunk: int = 128) -> list[np.ndarray]:
    steps = list(range(trace.T)) if steps is None else [int(t) for t in steps]
    S = check_state_size(trace.config)
    chunk = max(1, min(chunk, JACOBIAN_BYTES // (48 * S * S)))  # ~6 float64 copies of each (S, S) matrix
    out = []
    for rec in recs:
        norms = np.full(trace.T, np.nan)
        for a in range(0, len(steps), chunk):
            part = steps[a : a + chunk]
            J = _jacobians(trace, rec, part).double().numpy()
            norms[part] = singular_values(J)[:, 0]
        out.append(norms)
    return out


# ---- 3. the decay rate
def fit_decay(flow: np.ndarray, direction: str, source_steps: np.ndarray | None = None) -> DecayFit:
    """Fit log ||d l_r / d h_k|| = a + lag log(gamma), lag = r - k (forward) or k - r (reverse).

    flow: (R, T); source_steps: the step each row's loss sits at (default: row r at step r).
    Pairs with lag >= 0 and a positive finite norm enter the fit.
    """
    R, T = flow.shape
    pos = np.arange(R) if source_steps is None else np.asarray(source_steps)
    k = np.arange(T)[None, :]
    lag = (pos[:, None] - k) if direction == "forward" else (k - pos[:, None])
    ok = (lag >= 0) & np.isfinite(flow) & (flow > 0)
    x = lag[ok].astype(np.float64)
    y = np.log(flow[ok])
    n = int(x.size)
    if n < 2 or np.ptp(x) == 0:
        return DecayFit(math.nan, math.nan, math.nan, math.nan, n, int(x.max()) if n else 0)
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum(resid**2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return DecayFit(float(math.exp(slope)), float(slope), float(intercept), float(r2), n, int(x.max()))


def _source_steps(trace: Trace, direction: str) -> np.ndarray | None:
    """Where each output row's loss enters the sequence, for the decay fit (None: no single step)."""
    head = trace.config.head
    if head == "step":
        return np.arange(trace.T)
    if head == "last":
        return np.array([trace.T - 1 if direction == "forward" else 0])
    return None  # a mean-pooled loss enters at every step: no lag to fit against


# ---- 4. the spectrum of W_hh
def w_hh_spectrum(W_hh: np.ndarray, gates: Sequence[str]) -> dict[str, Spectrum]:
    """Singular values and eigenvalue moduli of each gate's H x H block of W_hh (torch's row order)."""
    W = np.asarray(W_hh, dtype=np.float64)
    if not bool(np.isfinite(W).all()):
        raise GradFlowError("W_hh holds NaN or Inf: it has no spectrum (the weights have diverged)")
    H = W.shape[1]
    out = {}
    for j, gate in enumerate(gates):
        block = W[j * H : (j + 1) * H]  # (H, H)
        sv = singular_values(block)
        mod = eigenvalue_moduli(block)
        out[gate] = Spectrum(gate, sv, mod, float(mod[0]))
    return out


# ---- 5. gradients of every tensor from the deltas, and the per-step W_hh contributions
def _hh_factors(cfg, rec: dict, dA: Tensor) -> list[tuple[slice, Tensor, Tensor]]:
    """dL/dW_hh = sum_k left_k right_k^T per block of rows: [(rows, left (..., T, h), right (T, H))].

    rnn, lstm: left = delta_k (all rows), right = h_{k-1}.
    gru (torch): r, z rows as above; n rows: left = r_k ⊙ delta_n,k, right = h_{k-1}
                 (a_n = W_in x + b_in + r ⊙ (W_hn h + b_hn)).
    gru-textbook: n rows: left = delta_n,k, right = r_k ⊙ h_{k-1}  (a_n = ... + W_hn (r ⊙ h) + b_hn).
    """
    H = cfg.hidden_size
    Hp = rec["H_prev"]
    L = dA.shape[-2]
    Hp = Hp[:L]
    if not cfg.cell.startswith("gru"):
        return [(slice(0, dA.shape[-1]), dA, Hp)]
    r = rec["gates"]["r"][1][:L]
    dn = dA[..., 2 * H :]
    if cfg.cell == "gru":
        return [(slice(0, 2 * H), dA[..., : 2 * H], Hp), (slice(2 * H, 3 * H), r * dn, Hp)]
    return [(slice(0, 2 * H), dA[..., : 2 * H], Hp), (slice(2 * H, 3 * H), dn, r * Hp)]


def _step_contributions(cfg, rec: dict, dA: Tensor) -> Tensor:
    """(T, G*H, H) dL/dW_hh restricted to each step, in reading order."""
    out = dA.new_zeros(dA.shape[:-1] + (rec["w"]["W_hh"].shape[0], cfg.hidden_size))
    for rows, left, right in _hh_factors(cfg, rec, dA):
        out[..., rows, :] = left.unsqueeze(-1) * right.unsqueeze(-2)  # outer product per step
    return out


def _step_norms(cfg, rec: dict, dA: Tensor) -> Tensor:
    """(T,) Frobenius norms of the per-step contributions: each block is an outer product, so
    ||left right^T||_F = ||left|| ||right||."""
    sq = 0.0
    for _, left, right in _hh_factors(cfg, rec, dA):
        sq = sq + (left * left).sum(-1) * (right * right).sum(-1)
    return torch.sqrt(sq)


def dW_hh_steps(trace: Trace, index: int) -> np.ndarray:
    """(T, G*H, H) the contribution of each step k (sequence order) to dL/dW_hh of layers entry
    `index`; their sum over k is the full gradient."""
    P = _params(trace)
    rec = _records(trace, P)[index]
    dA = _trace_deltas(trace, rec)
    steps = _step_contributions(trace.config, rec, dA)
    return (steps.flip(0) if rec["rev"] else steps).double().numpy()


def _trace_deltas(trace: Trace, rec: dict) -> Tensor:
    """The trace's dL/da_t (pre-activation deltas) of this entry, in reading order."""
    dA = torch.as_tensor(np.asarray(trace.layers[rec["idx"]].dL_dpre)).to(_dtype(trace))
    return dA.flip(0) if rec["rev"] else dA


def _layer_grads(cfg, rec: dict, dA: Tensor) -> dict[str, Tensor]:
    """Gradients of one layer's tensors from its deltas delta_t = dL/da_t (T, G*H), reading order."""
    sfx, w = rec["sfx"], rec["w"]
    H = cfg.hidden_size
    g = {f"weight_ih{sfx}": dA.T @ rec["X"]}  # sum_t delta_t x_t^T
    W = dA.new_zeros(w["W_hh"].shape)
    b_hh = dA.new_zeros(w["W_hh"].shape[0])
    for rows, left, right in _hh_factors(cfg, rec, dA):
        W[rows] = left.T @ right  # sum_t left_t right_t^T
        b_hh[rows] = left.sum(0)
    g[f"weight_hh{sfx}"] = W
    if w["b_ih"] is not None:
        g[f"bias_ih{sfx}"] = dA.sum(0)
        g[f"bias_hh{sfx}"] = b_hh if cfg.cell != "gru-textbook" else dA.sum(0)
    if w["w_ci"] is not None:  # peepholes: a_i, a_f see c_{t-1}; a_o sees c_t
        g[f"weight_ci{sfx}"] = (dA[:, :H] * rec["C_prev"]).sum(0)
        g[f"weight_cf{sfx}"] = (dA[:, H : 2 * H] * rec["C_prev"]).sum(0)
        g[f"weight_co{sfx}"] = (dA[:, 3 * H :] * rec["C"]).sum(0)
    return g


def _token_ids(trace: Trace, token_ids) -> np.ndarray | None:
    """Token ids of an embedding input: given, or recovered as the unique embedding row equal to
    each input vector; None when they cannot be recovered."""
    if token_ids is not None:
        return np.asarray(token_ids, dtype=np.int64)
    E = np.asarray(trace.params["embedding.weight"])
    X = np.asarray(trace.inputs)
    match = (X[:, None, :] == E[None, :, :]).all(-1)  # (T, vocab)
    if not np.all(match.sum(1) == 1):
        return None
    return match.argmax(1)


def _all_grads(trace: Trace, recs: list[dict], deltas: dict[int, Tensor], token_ids=None) -> dict[str, np.ndarray]:
    """Every tensor's gradient of L from the per-layer deltas (reading order) and the head."""
    cfg = trace.config
    dt = _dtype(trace)
    grads: dict[str, Tensor] = {}
    for rec in recs:
        grads.update(_layer_grads(cfg, rec, deltas[rec["idx"]]))
    # head: dL/dV = sum_r (dl_r/dy_r / N) pooled_r^T ;  dL/db = sum_r dl_r/dy_r / N
    E, scored = _row_errors(trace)
    Eb = torch.as_tensor(E / max(1, int(scored.sum()))).to(dt)  # (rows, O)
    top = torch.cat([torch.as_tensor(np.asarray(e.h)).to(dt) for e in trace.layers if e.layer == cfg.num_layers - 1], -1)
    pooled = _pooled(trace, top)  # (rows, D*H)
    grads["head.weight"] = Eb.T @ pooled
    if "head.bias" in trace.params:
        grads["head.bias"] = Eb.sum(0)
    if cfg.input_mode == "embedding":
        ids = _token_ids(trace, token_ids)
        if ids is not None:
            D = cfg.num_directions
            dX0 = 0.0
            for rec in recs[:D]:
                d = deltas[rec["idx"]] @ rec["w"]["W_ih"]  # (T, I) reading order
                dX0 = dX0 + (d.flip(0) if rec["rev"] else d)
            emb = torch.zeros(trace.params["embedding.weight"].shape, dtype=dt)
            emb.index_add_(0, torch.as_tensor(ids), dX0)
            grads["embedding.weight"] = emb
    return {k: v.double().numpy() for k, v in grads.items()}


def _pooled(trace: Trace, top: Tensor) -> Tensor:
    """What the head reads, (rows, D*H), from the top layer's outputs (T, D*H) — RNNModel.pool."""
    cfg = trace.config
    if cfg.head == "step":
        return top
    if cfg.head == "mean":
        return top.mean(0, keepdim=True)
    H = cfg.hidden_size
    last = top[-1, :H]
    if cfg.bidirectional:
        last = torch.cat([last, top[0, H:]])
    return last[None]


def full_gradients(trace: Trace, token_ids=None) -> dict[str, np.ndarray]:
    """dL/d(every tensor), from the trace's own deltas. Embedding rows need the token ids; they
    are recovered from the inputs when every input vector matches exactly one embedding row."""
    P = _params(trace)
    return _full(trace, _records(trace, P), token_ids)


def _full(trace: Trace, recs: list[dict], token_ids) -> dict[str, np.ndarray]:
    return _all_grads(trace, recs, {r["idx"]: _trace_deltas(trace, r) for r in recs}, token_ids)


# ---- 6. truncated BPTT
def _window_K(K) -> int:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise GradFlowError(f"the truncation window K must be a whole number of steps >= 1, got {K!r}")
    return int(K)


def truncated_bptt(trace: Trace, K: int, token_ids=None, full: dict[str, np.ndarray] | None = None) -> TBPTTResult:
    """The gradient when the recurrence is detached every K steps, and its distance to the full one."""
    K = _window_K(K)
    P = _params(trace)
    return _truncated(trace, P, _records(trace, P), int(K), token_ids, full)


def _truncated(trace: Trace, P: dict, recs: list[dict], K: int, token_ids, full) -> TBPTTResult:
    E, scored = _row_errors(trace)
    # one source: the whole loss L = (1/N) sum_r l_r, so dL/dy_r = (dl_r/dy_r) / N
    G = torch.as_tensor(E / max(1, int(scored.sum()))).to(_dtype(trace)) @ P["head.weight"]  # (rows, D*H)
    top = G if trace.config.head == "step" else _pool_adjoint(trace, G[None])[0]  # (T, D*H)
    deltas: dict[int, Tensor] = {}

    def visit(rec, dH, dC, dA):
        deltas[rec["idx"]] = dA

    _stack_backward(trace, recs, top, visit, cuts=K)
    gK = _all_grads(trace, recs, deltas, token_ids)
    g = _full(trace, recs, token_ids) if full is None else full
    names = sorted(g)
    flat = lambda d: np.concatenate([d[n].ravel() for n in names])  # noqa: E731
    a, b = flat(gK), flat(g)
    na, nb = float(norm(a)), float(norm(b))
    dist = float(norm(a - b))
    per = {
        n: (float(norm(gK[n])), float(norm(g[n])), float(norm(gK[n] - g[n])))
        for n in names
    }
    return TBPTTResult(
        K=K,
        grads=gK,
        full_grads=g,
        distance=dist,
        relative_distance=dist / nb if nb > 0 else (0.0 if dist == 0 else math.inf),
        cosine=float(a @ b / (na * nb)) if na > 0 and nb > 0 else math.nan,
        norm=na,
        full_norm=nb,
        per_tensor=per,
    )


# ---- 7. clipping preview
def clip_preview(grads: dict[str, np.ndarray], threshold: float, mode: str = "norm") -> ClipPreview:
    """What clipping at `threshold` would do to these gradients.

    norm:  g <- g * min(1, threshold / (||g|| + 1e-6))      (torch.nn.utils.clip_grad_norm_)
    value: g <- clamp(g, -threshold, threshold)             (torch.nn.utils.clip_grad_value_)
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise GradFlowError(f"the clipping threshold must be a positive number, got {threshold!r}")
    flat = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads.values()])
    before = float(norm(flat))
    if mode == "norm":
        scale = min(1.0, threshold / (before + 1e-6))
        return ClipPreview(float(threshold), mode, before, before * scale, scale, scale < 1.0)
    if mode == "value":
        clipped = np.clip(flat, -threshold, threshold)
        after = float(norm(clipped))
        return ClipPreview(
            float(threshold), mode, before, after, after / before if before > 0 else 1.0, bool(np.any(clipped != flat))
        )
    raise GradFlowError(f"unknown clipping mode {mode!r}: choose norm or value")


# ---- everything at once
def analyze_gradflow(
    trace: Trace,
    *,
    tbptt: int | None = None,
    clip: float | None = None,
    clip_mode: str = "norm",
    window: tuple[int, int] | None = None,
    token_ids=None,
) -> GradFlowReport:
    """Every gradient-flow quantity of a trace (see the module docstring).

    tbptt: window K for the truncated-BPTT comparison (None: skip). clip: threshold for the
    clipping preview of the full gradient (None: skip). window: (start, stop) output rows whose
    flow is computed (default: all scored rows of the last FLOW_WINDOW).
    """
    cfg = trace.config
    P = _params(trace)
    recs = _records(trace, P)
    _, scored = _row_errors(trace)
    if not scored.any():
        raise GradFlowError("the trace has no scored output: gradient flow needs at least one target")
    sources = default_sources(trace, window)
    flows = _flow(trace, P, recs, sources)
    jnorms = _jacobian_norms(trace, recs)
    grads = _full(trace, recs, token_ids)
    layers = []
    for rec, e, (fl, fc), jn in zip(recs, trace.layers, flows, jnorms):
        dA = _trace_deltas(trace, rec)
        norms = _step_norms(cfg, rec, dA)
        steps = _source_steps(trace, e.direction)
        decay = (
            fit_decay(fl, e.direction, steps)
            if steps is not None
            else DecayFit(math.nan, math.nan, math.nan, math.nan, 0, 0)
        )
        layers.append(
            LayerFlow(
                layer=e.layer,
                direction=e.direction,
                dL_dh=e.dL_dh,
                dL_dc=e.dL_dc,
                flow=fl,
                flow_c=fc,
                jacobian_norm=jn,
                decay=decay,
                spectrum=w_hh_spectrum(trace.params["weight_hh" + rec["sfx"]], cfg.gates),
                dW_hh_step_norm=(norms.flip(0) if rec["rev"] else norms).double().numpy(),
                dW_hh=grads["weight_hh" + rec["sfx"]],
            )
        )
    return GradFlowReport(
        T=trace.T,
        rows=int(scored.shape[0]),
        scored=scored,
        sources=sources,
        layers=layers,
        grads=grads,
        tbptt=None if tbptt is None else _truncated(trace, P, recs, _window_K(tbptt), token_ids, grads),
        clip=None if clip is None else clip_preview(grads, clip, clip_mode),
    )


# ---- JSON
def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _vec(a) -> list | None:
    return None if a is None else [_num(v) for v in np.asarray(a).ravel()]


def to_json(report: GradFlowReport) -> dict:
    """The `grad` keys of the trace export (JSON-ready: lists, floats, null for nan/inf).

    dL_dc_norm:      per layers entry, T values (null for cells without a cell state)
    flow:            per layers entry, rows x T (rows = T for a per-step head, 1 for a pooled
                     head); a row is null where that output is unscored or outside the window
    jacobian_norm:   per layers entry, T values ||d s_t / d s_prev||_2
    gamma:           per layers entry {gamma, r2, points, max_lag} (null values when not fitted)
    W_hh_spectrum:   per layers entry {gate: {singular_values, eigenvalue_moduli, spectral_radius}}
    dW_hh_step_norm: per layers entry, T values
    tbptt:           {K, distance, relative_distance, cosine, norm, full_norm, per_tensor} when asked
    clip:            {threshold, mode, norm_before, norm_after, scale, clipped} when asked
    """
    computed = np.zeros(report.rows, dtype=bool)
    computed[report.sources] = True
    out: dict = {
        "dL_dc_norm": [_vec(e.dL_dc_norm) for e in report.layers],
        "flow": [
            [_vec(row) if computed[r] and report.scored[r] else None for r, row in enumerate(e.flow)]
            for e in report.layers
        ],
        "jacobian_norm": [_vec(e.jacobian_norm) for e in report.layers],
        "gamma": [
            {"gamma": _num(e.decay.gamma), "r2": _num(e.decay.r2), "points": e.decay.points, "max_lag": e.decay.max_lag}
            for e in report.layers
        ],
        "W_hh_spectrum": [
            {
                g: {
                    "singular_values": _vec(s.singular_values),
                    "eigenvalue_moduli": _vec(s.eigenvalue_moduli),
                    "spectral_radius": _num(s.spectral_radius),
                }
                for g, s in e.spectrum.items()
            }
            for e in report.layers
        ],
        "dW_hh_step_norm": [_vec(e.dW_hh_step_norm) for e in report.layers],
    }
    if report.tbptt is not None:
        tb = report.tbptt
        out["tbptt"] = {
            "K": tb.K,
            "distance": _num(tb.distance),
            "relative_distance": _num(tb.relative_distance),
            "cosine": _num(tb.cosine),
            "norm": _num(tb.norm),
            "full_norm": _num(tb.full_norm),
            "per_tensor": {
                n: {"norm": _num(a), "full_norm": _num(b), "distance": _num(c)} for n, (a, b, c) in tb.per_tensor.items()
            },
        }
    if report.clip is not None:
        c = report.clip
        out["clip"] = {
            "threshold": c.threshold,
            "mode": c.mode,
            "norm_before": _num(c.norm_before),
            "norm_after": _num(c.norm_after),
            "scale": _num(c.scale),
            "clipped": c.clipped,
        }
    return out
