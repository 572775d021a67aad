"""Gradient flow through time: how the error of step t reaches step k, and what that does to learning.

Everything here is computed from a `Trace` (its states, gates, deltas and parameters), so an
analysis can be rerun on a trace the UI already holds; every cell-specific step is its cell's own
maths (`rnn_tui.engine.cells`: `vjp`, `jvp`, `hh_factors`). Notation, per layer and direction, in
the direction's reading order (a reverse direction reads t = T-1 .. 0):

    s_t = h_t (or [h_t; c_t] for LSTMs)        the full recurrent state
    l_r                                        the loss of output row r alone (row = step for a
                                               per-step head; one row for a pooled head)
    L   = (1/N) sum_{r scored} l_r             the trace's loss

The quantities:

- flow[r, k] = ||d l_r / d h_k||               the gradient-flow matrix. Each source row r is one
  one-hot-in-time gradient at the top of the network, dl_r/dy_r V. In a unidirectional network
  with a per-step head one sweep back through time carries every source at once: at step t the
  sources r >= t are alive, and each step is one `vjp` on all of them (a matrix product). Other
  networks push the sources through the delta recursion as a leading batch dimension. Summed
  over r and divided by N the vectors give dL/dh_k.
- J_t = ds_t / ds_{t-1}                          the one-step Jacobian of the recurrent state (input
  held fixed), and its spectral norm ||J_t||_2 per step. d l_r / d s_k = J_{k+1}^T ... J_r^T
  (d l_r / d s_r): the norm shrinks or grows roughly as gamma^(r-k). The norm is the largest
  singular value, found without forming J_t: the Lanczos method on J_t^T J_t, every step at once,
  from the cell's products J v and J^T u, run until the largest Ritz value's residual bounds its
  error below `LANCZOS_RTOL`; a step that does not converge gets a full SVD.
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
`to_json(report)` gives the `grad` keys of the trace export. A long trace can be analysed a window
of rows (and steps) first and the rest later: `analyze_gradflow(trace, rows=..., steps=...)`, then
`analyze_gradflow(trace, previous=first)`, which computes only what `first` lacks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from rnn_tui.engine.cells import LayerForward
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.numerics import eigenvalue_moduli, norm, singular_values
from rnn_tui.engine.records import Trace

FLOW_WINDOW = 512  # sources computed by default: the last FLOW_WINDOW rows of a longer sequence
CONNECTIVITY_WINDOW = 128  # rows of ||dy_r/dx_k|| computed by default (each row is min(O, D*H) sources)
MAX_ELEMENTS = 1 << 25  # working numbers per batched backward pass (128 MiB in float32)
MAX_FLOW_BYTES = 1 << 30  # the (rows, T) flow matrices kept in float64; a 100000-step trace would need 75 GB
MAX_STATE = 2048  # widest state s (H, or 2H for LSTMs) whose step Jacobians are analysed
JACOBIAN_BYTES = 1 << 29  # working memory of one batch of dense step Jacobians and their SVDs
DENSE_STATE = 32  # states at most this wide get a full SVD of every step: cheaper than iterating
LANCZOS_RTOL = 1e-7  # ||J_t||_2 to this relative accuracy at least (a bound on the Ritz value's error)
LANCZOS_DIM = 64  # the largest Krylov space built before a step falls back to a full SVD
RESCALE_EVERY = 4  # steps of the flow sweep between checks that its numbers are in range
LANCZOS_CHECKS = frozenset(range(16, 33, 8)) | frozenset(range(36, 1000, 4))  # iterations after which to check


ATTENTION_NOTE = ("||J_t|| is the decoder cell's alone, its input [y_{t-1}; c_t] held; dL/dh and the flow matrix "
                  "include the path through the attention")


class GradFlowError(EngineError):
    pass


def _quiet(fn):
    """numpy's floating-point warnings off: a diverged trace's inf and nan are its numbers."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return run


# ---- records
class FlowMatrix(NamedTuple):
    """One layers entry's flow: (R, T) ||d l_r / d h_k||, and ||d l_r / d c_k|| for LSTMs."""

    h: np.ndarray
    c: np.ndarray | None


class SourceGradients(NamedTuple):
    """One layers entry's d l_r / d h_k (and d l_r / d c_k) for some rows: (S, T, H) each."""

    dh: np.ndarray
    dc: np.ndarray | None


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
    jacobian_norm: np.ndarray  # (T,) ||d s_t / d s_prev||_2, s = h or [h; c]; nan where not computed
    decay: DecayFit
    spectrum: dict[str, Spectrum]  # gate name -> spectrum of that block of W_hh ({} without W_hh)
    dW_hh_step_norm: np.ndarray | None  # (T,) ||dL/dW_hh restricted to step k||_F; None without W_hh
    dW_hh: np.ndarray | None  # (G*H, H) the full gradient (IndRNN: (H,)), = the sum of the per-step contributions

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
    steps: np.ndarray | None = None  # steps whose Jacobian norms were computed (None: every step)
    notes: tuple[str, ...] = ()  # what a number holds fixed, where that is not the obvious (one line each)

    @property
    def complete(self) -> bool:
        """True when every scored row's flow and every step's Jacobian norm is in."""
        computed = np.zeros(self.rows, dtype=bool)
        computed[self.sources] = True
        return bool(np.all(computed[self.scored])) and (self.steps is None or len(self.steps) == self.T)


# ---- the trace's forward records, back in reading order
def _records(trace: Trace) -> list[LayerForward]:
    """One forward record per layers entry, in its reading order, as the cells' maths reads it."""
    if trace.extras.get("interventions"):
        raise GradFlowError(
            "this trace holds values by hand (interventions), so its cells no longer follow their "
            "equations: trace the sequence again without them to see its gradient flow"
        )
    cfg = trace.config
    cell = cfg.cell_spec
    P = {k: np.asarray(v) for k, v in trace.params.items()}
    a_ = lambda a: None if a is None else np.asarray(a)  # noqa: E731
    recs = []
    for e in trace.layers:
        rev = e.direction == "reverse"
        order = (lambda a: None if a is None else a[::-1].copy()) if rev else (lambda a: a)
        if e.layer == 0:
            X = a_(trace.inputs)
        else:
            X = np.concatenate([a_(b.h) for b in trace.layers if b.layer == e.layer - 1], axis=-1)  # (T, D*H)
        w = cell.layer_weights(P, f"_l{e.layer}" + ("_reverse" if rev else ""))
        recs.append(cell.record(
            w, order(X), order(a_(e.h)), order(a_(e.c)), {g: order(a_(v)) for g, v in e.preacts.items()},
            {g: order(a_(v)) for g, v in e.gates.items()}, a_(e.h0), a_(e.c0), cfg.activation, e.layer, rev,
            cfg.scan,
        ))  # fmt: skip
    return recs


def _seq(rec: LayerForward, a: np.ndarray, axis: int = -2) -> np.ndarray:
    """A reading-order array (time on `axis`) back in sequence order."""
    return np.flip(a, axis=axis) if rec.reverse else a


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


def _dtype(trace: Trace):
    return np.float32 if trace.dtype == "float32" else np.float64


def _pool_adjoint(trace: Trace, G: np.ndarray) -> np.ndarray:
    """Gradient on the pooled rows (S, rows, D*H) -> gradient on the top layer's outputs (S, T, D*H).

    The adjoint of `RNNModel.pool`: step: row r lands on step r; mean: every step gets 1/T of it;
    last: the forward half lands on step T-1, the reverse half on step 0.
    """
    cfg = trace.config
    T, H = trace.T, cfg.hidden_size
    if cfg.head == "step":
        return G
    out = np.zeros((G.shape[0], T, G.shape[-1]), G.dtype)
    if cfg.head == "mean":
        return out + G[:, :1] / T
    out[:, T - 1, :H] = G[:, 0, :H]
    if cfg.bidirectional:
        out[:, 0, H:] = G[:, 0, H:]
    return out


def _top_sources(trace: Trace, rows: Sequence[int], E: np.ndarray, L: int | None = None) -> np.ndarray:
    """(S, L, D*H): for each source row r, d l_r / d(top layer output) at steps 0..L-1 (default
    L = T) — one-hot in time, at step r, for a per-step head."""
    rows = np.asarray(rows, dtype=np.int64)
    V = np.asarray(trace.params["head.weight"])  # (O, D*H)
    Er = (E[rows] @ V).astype(_dtype(trace))  # (S, D*H): dl_r/dy_r V
    if trace.config.head == "step":
        L = trace.T if L is None else L
        G = np.zeros((len(rows), L, V.shape[1]), Er.dtype)
        G[np.arange(len(rows)), rows] = Er  # at step r
        return G
    return _pool_adjoint(trace, Er[:, None, :])[:, : trace.T if L is None else L]


# ---- batched BPTT through the stack
def _stack_backward(trace: Trace, recs: list[LayerForward], direct_top: np.ndarray, visit, cuts: int | None = None):
    """Run the delta recursion for a batch of gradient sources, top layer first.

    direct_top: (..., L, D*H) gradient at the top layer's outputs for steps 0..L-1 (L <= T is
    allowed for a unidirectional stack, whose steps after L-1 cannot matter to these sources).
    visit(index, rec, grads): called per layers entry with reading-order results.
    cuts: truncated BPTT window K — the recurrence is detached between steps jK-1 and jK.
    """
    cfg = trace.config
    cell = cfg.cell_spec
    H, D = cfg.hidden_size, cfg.num_directions
    L, T = direct_top.shape[-2], trace.T
    att = trace.extras.get("attention")
    if att is not None:  # a decoder that attends: every layer at each step, and back through the attention
        if cuts is not None:
            raise GradFlowError("truncated BPTT is not analysed for a decoder with attention (its past enters "
                                "through the attention as well as the recurrence)")  # fmt: skip
        if L < T:
            direct_top = np.concatenate([direct_top, np.zeros(direct_top.shape[:-2] + (T - L, H), direct_top.dtype)], -2)
        grads, _, _ = _attention_backward(trace, recs, att, direct_top)
        for idx, rec in enumerate(recs):
            visit(idx, rec, grads[idx])
        return
    direct = direct_top
    for k in reversed(range(cfg.num_layers)):
        dX = 0.0
        for d in range(D):
            idx = k * D + d
            rec = recs[idx]
            g = direct[..., d * H : (d + 1) * H]
            if d:
                g = np.flip(g, axis=-2)
            rec_L = rec if L == T else rec.steps(0, L)
            if cuts is None:
                grads = cell.backward(rec_L, g)
            else:
                parts = [cell.backward(rec_L.steps(a, b), g[..., a:b, :]) for a, b in _windows(L, cuts, reverse=bool(d))]
                cat = lambda name: None if getattr(parts[0], name) is None else np.concatenate(  # noqa: E731
                    [getattr(p, name) for p in parts], axis=-2)
                grads = replace(parts[0], dH=cat("dH"), dC=cat("dC"), dA=cat("dA"))
            visit(idx, rec, grads)
            if k > 0:
                dXr = grads.dA @ rec.w.W_ih  # dL/dx_t = W_ih^T delta_t, (..., L, I)
                dX = dX + (np.flip(dXr, axis=-2) if d else dXr)
        direct = dX


def _attention_backward(trace: Trace, recs: list[LayerForward], att, direct_top: np.ndarray):
    """`engine.attention.decoder_backward` on this trace's records and attention."""
    from rnn_tui.engine.attention import decoder_backward, forward

    P = {k: np.asarray(v) for k, v in trace.params.items()}
    K = np.asarray(att.keys).astype(direct_top.dtype)
    caches = []
    held = dict(att.forced)
    top = recs[-1]
    for t in range(trace.T):  # the attention's cache of each step, from the state it read
        caches.append(("held", held[t]) if t in held else forward(att.kind, top.H_prev[t].astype(K.dtype), K, P)[3])
    return decoder_backward(trace.config, recs, K, P, att.kind, caches, att.y_width, direct_top)


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


def _as_sources(trace: Trace, sources) -> np.ndarray:
    """Sorted unique scored rows from a request (any iterable of row numbers)."""
    R = trace.outputs.shape[0]
    src = np.asarray(sorted(set(int(s) for s in sources)), dtype=np.int64)
    if src.size and (src.min() < 0 or src.max() >= R):
        raise GradFlowError(f"flow sources must be output rows 0..{R - 1}")
    _, scored = _row_errors(trace)
    return src[scored[src]]  # an unscored row has no loss of its own


@_quiet
def flow_matrix(trace: Trace, sources: Sequence[int] | None = None, max_elements: int = MAX_ELEMENTS) -> list[FlowMatrix]:
    """||d l_r / d h_k|| (and ||d l_r / d c_k||) for every layers entry: a list of (R, T) arrays.

    Rows not in `sources` (default: `default_sources`) are nan. `max_elements` bounds the numbers
    held at once by splitting the sources into batches.
    """
    src = default_sources(trace) if sources is None else _as_sources(trace, sources)
    return _flow(trace, _records(trace), src, max_elements)


def _flow(trace: Trace, recs: list[LayerForward], src: np.ndarray, max_elements: int = MAX_ELEMENTS) -> list[FlowMatrix]:
    cfg = trace.config
    T, R = trace.T, trace.outputs.shape[0]
    check_flow_size(cfg, T, R)
    has_c = cfg.has_cell_state
    flows = [FlowMatrix(np.full((R, T), np.nan), np.full((R, T), np.nan) if has_c else None) for _ in recs]
    if not src.size:
        return flows
    E, _ = _row_errors(trace)
    G, H, D = cfg.cell_spec.G, cfg.hidden_size, cfg.num_directions
    per_step = (G + 3) * H * D + D * H  # numbers held per source and step (dH, dC, dA, dX)
    if cfg.head == "step" and not cfg.bidirectional and "attention" not in trace.extras:  # causal: one sweep
        per_row = per_step * cfg.num_layers
        norms_per_row = T * len(cfg.cell_spec.states) * cfg.num_layers  # float64 norms a sweep holds per source
        size = max(1, min(max_elements // per_row, max_elements // norms_per_row))
        for a in range(0, len(src), size):
            _flow_sweep(trace, recs, src[a : a + size], E, flows)
        return flows
    i = 0
    while i < len(src):  # batches of sources through the whole delta recursion
        j = min(len(src), i + max(1, max_elements // (T * per_step)))
        rows = src[i:j]

        def visit(idx, rec, grads, rows=rows):
            flows[idx].h[rows] = _seq(rec, _norms(grads.dH), axis=-1)  # (S, T)
            if grads.dC is not None:
                flows[idx].c[rows] = _seq(rec, _norms(grads.dC), axis=-1)

        _stack_backward(trace, recs, _top_sources(trace, rows, E), visit)
        i = j
    return flows


def _norms(a: np.ndarray) -> np.ndarray:
    """||a||_2 over the last axis, in float64."""
    return np.sqrt(np.einsum("...i,...i->...", a, a, dtype=np.float64))


def _flow_sweep(trace: Trace, recs: list[LayerForward], src: np.ndarray, E: np.ndarray, flows) -> None:
    """The flow of sources `src` (sorted rows of a per-step head, unidirectional stack): one sweep
    from step max(src) down to 0, every layer at each step, the top layer first.

    Source r joins the sweep at step r with its direct gradient dl_r/dy_r V; at step t every
    source r >= t is alive, and one `vjp` per layer moves all of them back a step:
        dl_r/ds_{t-1} = J_t^T dl_r/ds_t     and the layer below gets W_ih^T dl_r/da_t.
    Rows are kept newest last, so the alive ones are always a prefix of the buffers.
    """
    cfg = trace.config
    cell = cfg.cell_spec
    T, H, L = trace.T, cfg.hidden_size, cfg.num_layers
    dt = _dtype(trace)
    n = len(src)
    order = src[::-1]  # row i of the buffers is source order[i]
    e = (E[order] @ np.asarray(trace.params["head.weight"])).astype(dt)  # (n, H) dl_r/dy_r V
    ks = [cell.coefficients(rec) for rec in recs]
    carry = [[np.zeros((n, H), dt) for _ in cell.states] for _ in recs]
    norms = [[np.zeros((T, n)) for _ in cell.states] for _ in recs]
    exps = np.zeros(n, dtype=np.int64)  # row i of the buffers holds its true values times 2^exps[i]
    alive = 0
    for t in range(int(order[0]), -1, -1):
        while alive < n and order[alive] == t:
            carry[L - 1][0][alive] += e[alive]  # source t's own loss enters at the top, at step t
            alive += 1
        below = None
        for k in reversed(range(L)):
            u = tuple(c[:alive] for c in carry[k])
            if below is not None:
                u = (u[0] + below,) + u[1:]
            dA, before, at = cell.vjp(ks[k], t, recs[k].w, u)
            for i, a in enumerate(at):
                norms[k][i][t, :alive] = np.ldexp(_norms(a), -exps[:alive])
            for c, b in zip(carry[k], before):
                c[:alive] = b
            if k > 0:
                below = dA @ recs[k].w.W_ih  # (alive, H) the direct gradient of layer k-1 at step t
        if t % RESCALE_EVERY == 0:
            _rescale([c[:alive] for layer in carry for c in layer], exps[:alive])
    for k in range(L):
        flows[k].h[order] = norms[k][0].T
        if flows[k].c is not None:
            flows[k].c[order] = norms[k][1].T


def _rescale(buffers: list[np.ndarray], exps: np.ndarray) -> None:
    """Keep each row of a linear recursion's buffers (one source per row) in range, in place.

    A source's gradient shrinks (or grows) by about gamma per step back: in float32 it leaves the
    normal range (1e-38) within a few hundred steps, where each operation on it is a hundred
    times slower, and soon after it would read as 0. The recursion is linear, so a row may be
    multiplied by any factor and the factor divided out of what is read from it: a power of two,
    which is exact. Rows whose largest entry is below 2^-40 or above 2^40 are brought back to
    about 1, and exps (their power of two) is moved to match.
    """
    if not exps.size:
        return
    top = np.max([np.abs(b).max(axis=1) for b in buffers], axis=0)  # (rows,)
    off = ((top < 2.0**-40) & (top > 0)) | (top > 2.0**40)
    if not off.any():
        return
    shift = np.where(off, -np.frexp(top)[1], 0)  # 2^shift brings the largest entry into [0.5, 1)
    factor = np.ldexp(1.0, shift)[:, None]
    for b in buffers:
        b *= factor.astype(b.dtype)
    exps += shift


def check_state_size(cfg) -> int:
    """The width S of the recurrent state s; GradFlowError when its S x S step Jacobians are too
    big to analyse (a 4096-unit LSTM: 512 MB and a minute of SVD per step)."""
    S = cfg.cell_spec.state_size(cfg.hidden_size)
    if S > MAX_STATE:
        most = MAX_STATE // len(cfg.cell_spec.states)
        raise GradFlowError(
            f"the gradient-flow analysis of a {cfg.hidden_size}-unit {cfg.cell} takes {S} x {S} step Jacobians, "
            f"too big to analyse here: use at most {most} units to see it"
        )
    return S


def check_flow_size(cfg, T: int, R: int) -> None:
    """Refuse flow matrices (R output rows x T steps per layers entry) that would not fit in
    memory, before allocating them (or before tracing, when the caller knows T)."""
    entries = cfg.num_layers * cfg.num_directions
    per = entries * len(cfg.cell_spec.states) * 8
    need = R * T * per
    if need > MAX_FLOW_BYTES:
        most = int(math.sqrt(MAX_FLOW_BYTES / per)) if R == T else MAX_FLOW_BYTES // (per * max(R, 1))
        raise GradFlowError(
            f"the gradient-flow matrices of a {T}-step trace would take {need / 1e9:.1f} GB; "
            f"at most {MAX_FLOW_BYTES / 2**30:.0f} GB fit: trace a sequence of at most about {most} steps to see them"
        )


@_quiet
def source_gradients(trace: Trace, rows: Sequence[int]) -> list[SourceGradients]:
    """The vectors d l_r / d h_k (and d l_r / d c_k) for the given rows: per layers entry,
    arrays (S, T, H) in sequence order. Averaged over all scored rows (sum / N) they are dL/dh_k.
    """
    recs = _records(trace)
    E, _ = _row_errors(trace)
    out: list = [None] * len(recs)

    def visit(idx, rec, grads):
        dC = None if grads.dC is None else _seq(rec, grads.dC).astype(np.float64)
        out[idx] = SourceGradients(_seq(rec, grads.dH).astype(np.float64), dC)

    _stack_backward(trace, recs, _top_sources(trace, list(rows), E), visit)
    return out


# ---- 1b. input connectivity
def default_connectivity_rows(trace: Trace, window: tuple[int, int] | None = None) -> np.ndarray:
    """The output rows whose connectivity is computed by default: every row of a short sequence,
    else the last CONNECTIVITY_WINDOW (or rows window[0] .. window[1]-1). Every row has one,
    scored or not: it is a derivative of the outputs, not of the loss."""
    R = trace.outputs.shape[0]
    if window is None:
        window = (max(0, R - CONNECTIVITY_WINDOW), R)
    a, b = max(0, int(window[0])), min(R, int(window[1]))
    return np.arange(a, b, dtype=np.int64)


@_quiet
def input_connectivity(trace: Trace, rows: Sequence[int] | None = None, max_elements: int = MAX_ELEMENTS) -> np.ndarray:
    """(R, T) C[r, k] = ||∂y_r/∂x_k||_F: how much the input at step k moves output row r (the
    connectivity of Distill's "Memorization in RNNs"). y_r is the head's output (logits), x_k the
    vector layer 0 reads at step k (one-hot, embedding row or raw vector); nan for rows not
    computed (`rows`; default `default_connectivity_rows`).

    ∂y_r/∂x_k = V ∂pooled_r/∂x_k, and with V = Q R (QR, R of m = min(O, D*H) rows)
    ||V M||_F = ||R M||_F, so each row needs m gradient sources, R's rows at the top of the
    network, pushed back through time by the cells' vjp (and the attention, for a decoder with it);
    at step k each source's W_ih^T δa_k is one row of ∂(R pooled_r)/∂x_k. A per-step head on a
    causal stack is one sweep back through time, the sources of row r joining at step r.
    """
    cfg = trace.config
    R, T = trace.outputs.shape[0], trace.T
    rows = default_connectivity_rows(trace) if rows is None else np.asarray(sorted(set(int(r) for r in rows)), np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= R):
        raise GradFlowError(f"connectivity rows must be output rows 0..{R - 1}")
    check_flow_size(cfg, T, R)
    out = np.full((R, T), np.nan)
    if not rows.size:
        return out
    recs = _records(trace)
    Vw = np.asarray(trace.params["head.weight"], dtype=np.float64)  # (O, D*H)
    Rm = np.linalg.qr(Vw, mode="r").astype(_dtype(trace))  # (m, D*H): ||V M|| = ||R M||
    m = Rm.shape[0]
    G, H, D = cfg.cell_spec.G, cfg.hidden_size, cfg.num_directions
    per_step = (G + 3) * H * D + D * H + cfg.input_size
    if cfg.head == "step" and not cfg.bidirectional and "attention" not in trace.extras:
        size = max(1, max_elements // (per_step * cfg.num_layers * m))
        out[rows] = 0.0  # a later input cannot move an earlier output
        for a in range(0, len(rows), size):
            _connectivity_sweep(trace, recs, rows[a : a + size], Rm, out)
        return out
    size = max(1, max_elements // (T * per_step * m))
    for a in range(0, len(rows), size):
        part = rows[a : a + size]
        n = len(part)
        top = np.zeros((n * m, T, Vw.shape[1]), Rm.dtype)
        for i, r in enumerate(part):  # the m sources of row r: R's rows on pooled_r, back onto the steps
            top[i * m : (i + 1) * m] = _at_step(Rm, r, T) if cfg.head == "step" else _pool_adjoint(trace, Rm[:, None, :])
        dX = np.zeros((n * m, T, cfg.input_size))

        def visit(idx, rec, grads, dX=dX):
            if rec.layer == 0:
                d = grads.dA @ rec.w.W_ih  # (S, T, I) in the direction's reading order
                dX += np.flip(d, axis=-2) if rec.reverse else d

        _stack_backward(trace, recs, top, visit)
        sq = np.einsum("stI,stI->st", dX, dX, dtype=np.float64).reshape(n, m, T).sum(1)
        out[part] = np.sqrt(sq)
    return out


def _at_step(Rm: np.ndarray, r: int, T: int) -> np.ndarray:
    """(m, T, D*H): R's rows placed at step r (a per-step head's row r reads only step r)."""
    top = np.zeros((Rm.shape[0], T, Rm.shape[1]), Rm.dtype)
    top[:, r] = Rm
    return top


def _connectivity_sweep(trace: Trace, recs: list[LayerForward], rows: np.ndarray, Rm: np.ndarray, out) -> None:
    """`input_connectivity` of a per-step head on a causal stack: one sweep from the last row's step
    down to 0, the m sources of row r joining at step r (newest last, so the alive are a prefix),
    every layer's vjp at each step, and at layer 0 the input gradients W_ih^T δa_t of every alive
    source, whose norms (over the m of each row) are C[r, t]. Rescaled by powers of two as the
    flow sweep is."""
    cfg = trace.config
    cell = cfg.cell_spec
    H, L = cfg.hidden_size, cfg.num_layers
    dt = _dtype(trace)
    m = Rm.shape[0]
    order = rows[::-1]
    n = len(order) * m
    ks = [cell.coefficients(rec) for rec in recs]
    carry = [[np.zeros((n, H), dt) for _ in cell.states] for _ in recs]
    exps = np.zeros(n, dtype=np.int64)
    alive = 0
    for t in range(int(order[0]), -1, -1):
        while alive < n and order[alive // m] == t:
            carry[L - 1][0][alive : alive + m] += Rm
            alive += m
        below = None
        for k in reversed(range(L)):
            u = tuple(c[:alive] for c in carry[k])
            if below is not None:
                u = (u[0] + below,) + u[1:]
            dA, before, _ = cell.vjp(ks[k], t, recs[k].w, u)
            for c, b in zip(carry[k], before):
                c[:alive] = b
            below = dA @ recs[k].w.W_ih  # (alive, I_k)
        sq = np.ldexp(np.einsum("ni,ni->n", below, below, dtype=np.float64), -2 * exps[:alive])
        out[order[: alive // m], t] = np.sqrt(sq.reshape(-1, m).sum(1))
        if t % RESCALE_EVERY == 0:
            _rescale([c[:alive] for layer in carry for c in layer], exps[:alive])


# ---- 2. one-step Jacobians
def _read_steps(trace: Trace, rec: LayerForward, steps: Sequence[int]) -> np.ndarray:
    """Sequence positions -> reading-order indices of this direction."""
    steps = np.asarray(steps, dtype=np.int64)
    return trace.T - 1 - steps if rec.reverse else steps


@_quiet
def step_jacobians(trace: Trace, index: int, steps: Sequence[int] | None = None) -> np.ndarray:
    """J_t = d s_t / d s_prev for layers entry `index` at the given steps (sequence positions):
    (n, S, S) float64 with S = H, or 2H for LSTMs ([h; c] rows and columns, h first). s_prev is
    s_{t-1} for a forward direction and s_{t+1} for a reverse one.
    """
    rec = _records(trace)[index]
    steps = list(range(trace.T)) if steps is None else [int(t) for t in steps]
    return trace.config.cell_spec.jacobians(rec, _read_steps(trace, rec, steps), np.float64)


@_quiet
def jacobian_norms(trace: Trace, steps: Sequence[int] | None = None, chunk: int = 256) -> list[np.ndarray]:
    """||J_t||_2 (the largest singular value) per step, for every layers entry, in sequence order;
    nan at steps left out of `steps` (default: every step). `chunk` steps are analysed at once."""
    return _jacobian_norms(trace, _records(trace), steps, chunk)


def _jacobian_norms(trace: Trace, recs: list[LayerForward], steps=None, chunk: int = 256) -> list[np.ndarray]:
    steps = np.arange(trace.T) if steps is None else np.asarray([int(t) for t in steps], dtype=np.int64)
    S = check_state_size(trace.config)
    cell = trace.config.cell_spec
    # the Lanczos vectors of a batch of steps: LANCZOS_DIM + 1 of S numbers per step
    chunk = max(1, min(chunk, JACOBIAN_BYTES // (8 * (LANCZOS_DIM + 1) * S)))
    out = []
    for rec in recs:
        norms = np.full(trace.T, np.nan)
        k = cell.coefficients(rec)
        for a in range(0, len(steps), chunk):
            part = steps[a : a + chunk]
            read = _read_steps(trace, rec, part)
            norms[part] = _svd_norms(cell, rec, k, read) if S <= DENSE_STATE else top_singular_values(cell, rec, k, read)
        out.append(norms)
    return out


def _svd_norms(cell, rec: LayerForward, k, read: np.ndarray) -> np.ndarray:
    """The largest singular value of each step's Jacobian, by a full SVD of it (float64)."""
    S = cell.state_size(rec.H.shape[1])
    out = np.empty(len(read))
    dense = max(1, JACOBIAN_BYTES // (48 * S * S))
    for a in range(0, len(read), dense):
        J = cell.jacobians(rec, read[a : a + dense], np.float64, k)
        out[a : a + dense] = singular_values(J)[:, 0]  # scaled: no overflow, no LAPACK failure
    return out


def top_singular_values(cell, rec: LayerForward, k, read: np.ndarray, rtol: float = LANCZOS_RTOL,
                        max_dim: int = LANCZOS_DIM, seed: int = 0) -> np.ndarray:  # fmt: skip
    """||J_t||_2 for the reading-order steps `read`: the Lanczos method on A_t = J_t^T J_t, every
    step at once, from the cell's products J v and J^T u (J_t is never formed; float64).

    From a random unit v_1, the three-term recurrence
        beta_j v_{j+1} = A v_j - alpha_j v_j - beta_{j-1} v_{j-1},    alpha_j = v_j . A v_j
    gives A V_j = V_j T_j + beta_j v_{j+1} e_j^T with T_j tridiagonal (alpha on the diagonal, beta
    beside it). With theta the largest eigenvalue of T_j and s its unit eigenvector, some
    eigenvalue of A lies within beta_j |s_j| of theta, and theta does not exceed ||J_t||_2^2;
    both hold in floating point without reorthogonalising the v's, to rounding (Paige, 1980). A
    step is done when beta_j |s_j| <= 2 rtol theta: then sqrt(theta) is ||J_t||_2 to rtol. A
    cluster of near-equal top values is no obstacle: theta is then within the cluster's width
    of its top at once. A step still open after max_dim iterations gets a full SVD.
    """
    H = rec.H.shape[1]
    S = cell.state_size(H)
    n = len(read)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    k = k.take(read).astype(np.float64)
    w = rec.w.astype(np.float64)
    nstate = len(cell.states)
    split = lambda x: tuple(x[:, i * H : (i + 1) * H] for i in range(nstate))  # noqa: E731

    def A(kk, x):  # J^T J x, every step at once
        y = cell.jvp(kk, slice(None), w, split(x))
        return np.concatenate(cell.vjp(kk, slice(None), w, y)[1], axis=1)

    m = min(S, max_dim)
    open_ = np.arange(n)  # the steps still iterating
    theta = np.zeros(n)  # the last check's estimates of ||J_t||_2^2, from below
    alpha, beta = np.zeros((n, m)), np.zeros((n, m))
    v = np.random.default_rng(seed).standard_normal((n, S))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v_prev = np.zeros_like(v)
    scale = np.zeros(n)  # the largest |alpha| seen: a breakdown is judged against it
    for j in range(m):
        x = A(k, v)
        alpha[:, j] = np.einsum("ns,ns->n", v, x)
        x -= alpha[:, j, None] * v
        if j:
            x -= beta[:, j - 1, None] * v_prev
        beta[:, j] = b = np.linalg.norm(x, axis=1)
        scale = np.maximum(scale, np.abs(alpha[:, j]))
        broke = b <= 1e-13 * scale  # an invariant space: T_j's values are A's
        v_prev, v = v, x / np.where(broke, np.inf, b)[:, None]
        if j + 1 not in LANCZOS_CHECKS and j + 1 < m and not broke.any():
            continue
        theta, last = _top_eigenpair(alpha[:, : j + 1], beta[:, :j], theta)
        with np.errstate(invalid="ignore"):  # 0 * inf where J_t = 0: that step broke down, so is done
            done = broke | (scale == 0) | (np.abs(b * last) <= 2 * rtol * theta)
        out[open_[done]] = np.sqrt(np.maximum(theta[done], 0.0))
        if done.all():
            return out
        if done.any():
            keep_ = ~done
            open_ = open_[keep_]
            k = k.take(np.flatnonzero(keep_))
            v, v_prev, alpha, beta = v[keep_], v_prev[keep_], alpha[keep_], beta[keep_]
            scale, theta = scale[keep_], theta[keep_]
    if open_.size:  # not converged within max_dim iterations: the full SVD of those steps
        out[open_] = _svd_norms(cell, rec, cell.coefficients(rec), read[open_])
    return out


def _top_eigenpair(a: np.ndarray, b: np.ndarray, floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The largest eigenvalue theta of each symmetric tridiagonal T (diagonal a (n, k), off-diagonal
    b (n, k-1)), and the last component of its unit eigenvector. `floor`: known lower bounds.

    theta by bisection on Sturm counts (the signs of the LDL^T pivots of T - x I); the eigenvector
    by two steps of inverse iteration with the shift just above theta, where T - shift I is
    negative definite, so its LDL^T factorisation needs no pivoting.
    """
    n, kk = a.shape
    b2 = b * b
    radius = np.abs(a) + np.pad(np.abs(b), ((0, 0), (0, 1))) + np.pad(np.abs(b), ((0, 0), (1, 0)))
    hi = radius.max(axis=1)  # Gershgorin: no eigenvalue above
    lo = a.max(axis=1)  # a diagonal entry is a Rayleigh quotient: the top eigenvalue is not below
    if floor is not None:  # (the top Ritz value only grows as the Krylov space does)
        lo = np.minimum(np.maximum(lo, floor), hi)
    tiny = 1e-300
    frac = np.arange(1, 16) / 16.0  # 15 trial points per round: each round narrows the bracket 16-fold
    rows = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero pivot makes the next one -inf: still negative
        for _ in range(14):  # 16^-14 = 1.4e-17 of the first bracket
            if np.all(hi - lo <= 1e-12 * np.abs(hi) + tiny):
                break
            x = lo[:, None] + (hi - lo)[:, None] * frac  # (n, 15)
            ax = a[:, :, None] - x[:, None, :]  # (n, k, 15)
            d = ax[:, 0]
            below = d < 0
            for i in range(1, kk):  # all kk pivots negative <=> every eigenvalue below x
                d = ax[:, i] - b2[:, i - 1, None] / d
                below &= d < 0
            first = np.argmax(below, axis=1)  # the smallest trial point above every eigenvalue
            some = below.any(axis=1)
            hi = np.where(some, x[rows, first], hi)
            lo = np.where(some, np.where(first > 0, x[rows, first - 1], lo), x[:, -1])
    shift = hi + 1e-15 * np.abs(hi) + tiny
    y = np.random.default_rng(1).standard_normal((n, kk))
    with np.errstate(all="ignore"):  # a zero T (J_t = 0) gives nan here; its step is done by then
        for _ in range(2):  # (T - shift I) y_new = y: LDL^T, forward, then back
            d = np.empty((n, kk))
            l = np.empty((n, max(kk - 1, 0)))
            d[:, 0] = a[:, 0] - shift
            for i in range(1, kk):
                l[:, i - 1] = b[:, i - 1] / d[:, i - 1]
                d[:, i] = a[:, i] - shift - l[:, i - 1] * b[:, i - 1]
            z = y.copy()
            for i in range(1, kk):
                z[:, i] -= l[:, i - 1] * z[:, i - 1]
            z /= d
            for i in range(kk - 2, -1, -1):
                z[:, i] -= l[:, i] * z[:, i + 1]
            y = z / np.linalg.norm(z, axis=1, keepdims=True)
    y = np.where(np.isfinite(y), y, np.inf)  # never a convergence it did not show
    return lo, y[:, -1]


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
    with np.errstate(invalid="ignore"):
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


def _decay(trace: Trace, flow: np.ndarray, direction: str) -> DecayFit:
    steps = _source_steps(trace, direction)
    if steps is None:
        return DecayFit(math.nan, math.nan, math.nan, math.nan, 0, 0)
    return fit_decay(flow, direction, steps)


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


def recurrent_spectrum(cfg, params: dict, suffix: str) -> dict[str, Spectrum]:
    """The spectrum of one layers entry's recurrent weight, as its cell has it (`Cell.recurrence`):
    each gate block of W_hh; for a diagonal recurrence w_hh ⊙ h (IndRNN) diag(w_hh), whose singular
    values and eigenvalue moduli are both |w_hh| sorted, one unit each; nothing for a cell with no
    recurrent weight (minGRU, minLSTM: J_t = diag(a_t) is all there is, in ||J_t||)."""
    cell = cfg.cell_spec
    if cell.recurrence == "none":
        return {}
    W = params["weight_hh" + suffix]
    if cell.recurrence == "diagonal":
        w = np.asarray(W, dtype=np.float64)
        if not bool(np.isfinite(w).all()):
            raise GradFlowError("w_hh holds NaN or Inf: it has no spectrum (the weights have diverged)")
        mags = np.sort(np.abs(w))[::-1]
        return {cfg.gates[0]: Spectrum(cfg.gates[0], mags, mags.copy(), float(mags[0]))}
    return w_hh_spectrum(W, cfg.gates)


# ---- 5. gradients of every tensor from the deltas, and the per-step W_hh contributions
def _step_contributions(cell, rec: LayerForward, dA: np.ndarray) -> np.ndarray:
    """(T, G*H, H) dL/dW_hh restricted to each step, in reading order."""
    out = np.zeros(dA.shape[:-1] + (np.shape(rec.w.W_hh)[0], rec.H.shape[1]), np.float64)
    for rows, left, right in cell.hh_factors(rec, dA):
        out[..., rows, :] = left[..., :, None] * right[..., None, :]  # outer product per step
    return out


def _step_norms(cell, rec: LayerForward, dA: np.ndarray) -> np.ndarray | None:
    """(T,) the norm of each step's share of dL/dW_hh (`Cell.recurrent_step_norms`); None for a
    cell without a recurrent weight."""
    return cell.recurrent_step_norms(rec, dA)


@_quiet
def dW_hh_steps(trace: Trace, index: int) -> np.ndarray:
    """(T, G*H, H) the contribution of each step k (sequence order) to dL/dW_hh of layers entry
    `index`; their sum over k is the full gradient."""
    rec = _records(trace)[index]
    steps = _step_contributions(trace.config.cell_spec, rec, _trace_deltas(trace, index, rec))
    return steps[::-1].copy() if rec.reverse else steps


def _trace_deltas(trace: Trace, index: int, rec: LayerForward) -> np.ndarray:
    """The trace's dL/da_t (pre-activation deltas) of this entry, in reading order."""
    dA = np.asarray(trace.layers[index].dL_dpre)
    return dA[::-1].copy() if rec.reverse else dA


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


def _all_grads(trace: Trace, recs: list[LayerForward], deltas: list[np.ndarray], token_ids=None) -> dict[str, np.ndarray]:
    """Every tensor's gradient of L from the per-layer deltas (reading order) and the head."""
    cfg = trace.config
    cell = cfg.cell_spec
    dt = _dtype(trace)
    grads: dict[str, np.ndarray] = {}
    for rec, dA in zip(recs, deltas):
        grads.update(cell.param_grads(rec, dA))
    # head: dL/dV = sum_r (dl_r/dy_r / N) pooled_r^T ;  dL/db = sum_r dl_r/dy_r / N
    E, scored = _row_errors(trace)
    Eb = (E / max(1, int(scored.sum()))).astype(dt)  # (rows, O)
    top = np.concatenate([np.asarray(e.h) for e in trace.layers if e.layer == cfg.num_layers - 1], -1)
    pooled = _pooled(trace, top)  # (rows, D*H)
    grads["head.weight"] = Eb.T @ pooled
    if "head.bias" in trace.params:
        grads["head.bias"] = Eb.sum(0)
    if cfg.input_mode == "embedding":
        ids = _token_ids(trace, token_ids)
        if ids is not None:
            D = cfg.num_directions
            dX0 = 0.0
            for rec, dA in list(zip(recs, deltas))[:D]:
                d = dA @ rec.w.W_ih  # (T, I) reading order
                dX0 = dX0 + (d[::-1] if rec.reverse else d)
            emb = np.zeros(np.shape(trace.params["embedding.weight"]), dtype=dt)
            np.add.at(emb, ids, dX0)
            grads["embedding.weight"] = emb
    return {k: np.asarray(v, dtype=np.float64) for k, v in grads.items()}


def _pooled(trace: Trace, top: np.ndarray) -> np.ndarray:
    """What the head reads, (rows, D*H), from the top layer's outputs (T, D*H) — RNNModel.pool."""
    cfg = trace.config
    if cfg.head == "step":
        return top
    if cfg.head == "mean":
        return top.mean(0, keepdims=True)
    H = cfg.hidden_size
    last = top[-1, :H]
    if cfg.bidirectional:
        last = np.concatenate([last, top[0, H:]])
    return last[None]


@_quiet
def full_gradients(trace: Trace, token_ids=None) -> dict[str, np.ndarray]:
    """dL/d(every tensor), from the trace's own deltas. Embedding rows need the token ids; they
    are recovered from the inputs when every input vector matches exactly one embedding row."""
    return _full(trace, _records(trace), token_ids)


def _full(trace: Trace, recs: list[LayerForward], token_ids) -> dict[str, np.ndarray]:
    grads = _all_grads(trace, recs, [_trace_deltas(trace, i, r) for i, r in enumerate(recs)], token_ids)
    att = trace.extras.get("attention")
    if att is not None:  # the score's own tensors, from the trace's backward pass
        grads.update({k: np.asarray(v, dtype=np.float64) for k, v in att.param_grads.items()})
    return grads


# ---- 6. truncated BPTT
def _window_K(K) -> int:
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise GradFlowError(f"the truncation window K must be a whole number of steps >= 1, got {K!r}")
    return int(K)


@_quiet
def truncated_bptt(trace: Trace, K: int, token_ids=None, full: dict[str, np.ndarray] | None = None) -> TBPTTResult:
    """The gradient when the recurrence is detached every K steps, and its distance to the full one."""
    K = _window_K(K)
    return _truncated(trace, _records(trace), K, token_ids, full)


def _truncated(trace: Trace, recs: list[LayerForward], K: int, token_ids, full) -> TBPTTResult:
    E, scored = _row_errors(trace)
    # one source: the whole loss L = (1/N) sum_r l_r, so dL/dy_r = (dl_r/dy_r) / N
    G = ((E / max(1, int(scored.sum()))) @ np.asarray(trace.params["head.weight"])).astype(_dtype(trace))
    top = G if trace.config.head == "step" else _pool_adjoint(trace, G[None])[0]  # (T, D*H)
    deltas: list = [None] * len(recs)

    def visit(idx, rec, grads):
        deltas[idx] = grads.dA

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
@_quiet
def analyze_gradflow(
    trace: Trace,
    *,
    tbptt: int | None = None,
    clip: float | None = None,
    clip_mode: str = "norm",
    window: tuple[int, int] | None = None,
    rows: Sequence[int] | None = None,
    steps: Sequence[int] | None = None,
    previous: GradFlowReport | None = None,
    token_ids=None,
) -> GradFlowReport:
    """Every gradient-flow quantity of a trace (see the module docstring).

    tbptt: window K for the truncated-BPTT comparison (None: skip). clip: threshold for the
    clipping preview of the full gradient (None: skip). Which rows of the flow matrix: `rows`
    (any output rows; unscored ones have no flow), else `window` = (start, stop), else every
    scored row of the last FLOW_WINDOW. `steps`: the steps whose Jacobian norms are computed
    (default every step).

    previous: a report of the same trace; what it holds (its rows, its steps, the gradients) is
    taken as it is, and only the rest is computed, so a long trace can be analysed the rows on
    screen first (`rows=`, `steps=`) and completed later with `previous=` that first report.
    """
    cfg = trace.config
    cell = cfg.cell_spec
    recs = _records(trace)
    _, scored = _row_errors(trace)
    if not scored.any():
        raise GradFlowError("the trace has no scored output: gradient flow needs at least one target")
    sources = _as_sources(trace, rows) if rows is not None else default_sources(trace, window)
    steps = np.arange(trace.T) if steps is None else np.asarray(sorted(set(int(t) for t in steps)), dtype=np.int64)
    if steps.size and (steps.min() < 0 or steps.max() >= trace.T):
        raise GradFlowError(f"Jacobian steps must be sequence positions 0..{trace.T - 1}")
    todo_rows, todo_steps = sources, steps
    if previous is not None:
        if previous.T != trace.T or len(previous.layers) != len(recs):
            raise GradFlowError("the previous report is of another trace")
        sources = np.union1d(sources, previous.sources)
        todo_rows = np.setdiff1d(todo_rows, previous.sources)
        done = np.arange(trace.T) if previous.steps is None else previous.steps
        todo_steps = np.setdiff1d(todo_steps, done)
        steps = np.union1d(steps, done)
    flows = _flow(trace, recs, todo_rows)
    jnorms = _jacobian_norms(trace, recs, todo_steps)
    grads = previous.grads if previous is not None else _full(trace, recs, token_ids)
    layers = []
    for idx, (rec, e, fl, jn) in enumerate(zip(recs, trace.layers, flows, jnorms)):
        flow, flow_c = fl.h, fl.c
        if previous is not None:
            old = previous.layers[idx]
            flow = np.where(np.isnan(flow), old.flow, flow)
            flow_c = None if flow_c is None else np.where(np.isnan(flow_c), old.flow_c, flow_c)
            jn = np.where(np.isnan(jn), old.jacobian_norm, jn)
        if previous is not None:  # what does not depend on the rows: as the previous report has it
            spectrum, step_norm = previous.layers[idx].spectrum, previous.layers[idx].dW_hh_step_norm
        else:
            spectrum = recurrent_spectrum(cfg, trace.params, rec.w.suffix)
            step_norm = _step_norms(cell, rec, _trace_deltas(trace, idx, rec))
            step_norm = None if step_norm is None else _seq(rec, step_norm, axis=0)
        decay = previous.layers[idx].decay if previous is not None and not todo_rows.size else _decay(trace, flow, e.direction)
        layers.append(
            LayerFlow(
                layer=e.layer,
                direction=e.direction,
                dL_dh=e.dL_dh,
                dL_dc=e.dL_dc,
                flow=flow,
                flow_c=flow_c,
                jacobian_norm=jn,
                decay=decay,
                spectrum=spectrum,
                dW_hh_step_norm=None if step_norm is None else np.asarray(step_norm, dtype=np.float64),
                dW_hh=grads.get("weight_hh" + rec.w.suffix),
            )
        )
    if tbptt is not None:
        tb = _truncated(trace, recs, _window_K(tbptt), token_ids, grads)
    else:
        tb = previous.tbptt if previous is not None else None
    if clip is not None:
        cp = clip_preview(grads, clip, clip_mode)
    else:
        cp = previous.clip if previous is not None else None
    notes = ()
    if "attention" in trace.extras:
        notes = (ATTENTION_NOTE,)
    return GradFlowReport(
        T=trace.T,
        notes=notes,
        rows=int(scored.shape[0]),
        scored=scored,
        sources=sources,
        layers=layers,
        grads=grads,
        tbptt=tb,
        clip=cp,
        steps=None if len(steps) == trace.T else steps,
    )


# ---- JSON
def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _vec(a) -> list | None:
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64).ravel()
    return a.tolist() if np.isfinite(a).all() else np.where(np.isfinite(a), a, None).tolist()


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
