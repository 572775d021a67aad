"""What every cell is: the facts the registry gives out, the records its maths reads and writes,
and the parts of the maths that are the same for every cell.

A cell module (`rnn.py`, `lstm.py`, ...) subclasses `Cell` and writes its own equations side by
side, as micrograd keeps an operation's forward and backward together:

- `step`        the readable forward step, in torch, with an `edit` hook for interventions;
- `forward`     the fast forward pass over a whole layer (numpy, or torch's fused kernel);
- `coefficients` the per-step factors of the derivatives (σ'(a), tanh'(c), ...), from a forward record;
- `vjp`         one step backwards: J_t^T u and the pre-activation deltas (the delta recursion of BPTT);
- `jvp`         one step forwards in the tangent: J_t v, for the Jacobian's norm without forming it;
- `hh_factors`  dL/dW_hh written as a sum of outer products over the steps;
- `equations`   one unit's equations at one step: symbols and values, for the explorer.

Nothing here imports numpy or torch at module import time: the CLI's choices, config validation
and the explorer's first frame read the registry without paying for either. The maths imports
them where it runs.

Array conventions: every per-step array is indexed by the direction's reading order (a reverse
direction reads T-1 .. 0), time on the second-to-last axis and units on the last; any leading
axes are independent gradient sources (a batch), and the equations broadcast over them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Mapping

# ---- the readable path's helpers (torch tensors; no import needed: tensor methods) ------------------
ACTIVATION: dict[str, Callable] = {
    "tanh": lambda z: z.tanh(),
    "relu": lambda z: z.relu(),
    "sigmoid": lambda z: z.sigmoid(),
    "identity": lambda z: z,
}


def σ(z):
    return z.sigmoid()


def tanh(z):
    return z.tanh()


def affine(x, W, b):
    """W x + b, for x with any leading dimensions."""
    y = x @ W.T
    return y if b is None else y + b


def keep(name: str, value):
    """The default edit: change nothing."""
    return value


# ---- the registry's facts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Weight:
    """One tensor of a layer: the name the equations give it, torch's name and its shape."""

    symbol: str  # "W_ih", as the equations write it
    prefix: str  # "weight_ih": torch's state_dict name before the layer suffix "_l0", "_l1_reverse"
    shape: tuple[str, ...]  # in units: "GH" (gate rows x hidden), "H" (hidden), "I" (the layer's input width)
    bias: bool = False  # present only when the model has biases

    def size(self, G: int, H: int, I: int) -> tuple[int, ...]:
        unit = {"GH": G * H, "H": H, "I": I}
        return tuple(unit[s] for s in self.shape)


STANDARD_WEIGHTS = (
    Weight("W_ih", "weight_ih", ("GH", "I")),
    Weight("W_hh", "weight_hh", ("GH", "H")),
    Weight("b_ih", "bias_ih", ("GH",), bias=True),
    Weight("b_hh", "bias_hh", ("GH",), bias=True),
)


# ---- records the maths reads and writes --------------------------------------------------------------
@dataclass(frozen=True)
class LayerWeights:
    """One layer and direction's tensors, by the names the equations use (None where absent)."""

    suffix: str  # "_l0", "_l1_reverse"
    tensors: Mapping[str, Any]  # symbol -> array or tensor

    def __getitem__(self, symbol: str):
        return self.tensors.get(symbol)

    def get(self, symbol: str, default=None):
        value = self.tensors.get(symbol)
        return default if value is None else value

    @property
    def W_ih(self):
        return self.tensors.get("W_ih")

    @property
    def W_hh(self):
        return self.tensors.get("W_hh")

    @property
    def b_ih(self):
        return self.tensors.get("b_ih")

    @property
    def b_hh(self):
        return self.tensors.get("b_hh")

    def astype(self, dtype) -> "LayerWeights":
        import numpy as np

        return replace(self, tensors={k: None if v is None else np.asarray(v, dtype) for k, v in self.tensors.items()})


@dataclass(frozen=True)
class LayerForward:
    """One layer and direction's forward pass, numpy arrays in its reading order.

    A reverse direction's row i is sequence position T-1-i; H_prev[i] is the state step i read
    (h0 at i = 0).
    """

    layer: int
    reverse: bool
    w: LayerWeights
    X: Any  # (T, I) the inputs the direction read
    H: Any  # (T, H) h_t
    H_prev: Any  # (T, H) h_{t-1}
    C: Any | None  # (T, H) c_t, cells with a cell state
    C_prev: Any | None
    pre: Mapping[str, Any]  # gate -> (T, H) pre-activation
    act: Mapping[str, Any]  # gate -> (T, H) activation
    h0: Any  # (H,)
    c0: Any | None
    activation: str = "tanh"  # the rnn's activation (other cells: tanh)
    scan: str = "sequential"  # how a linear recurrence was run (minGRU, minLSTM): "sequential" | "parallel"

    @property
    def T(self) -> int:
        return int(self.H.shape[0])

    def steps(self, a: int, b: int) -> "LayerForward":
        """Steps a .. b-1 (reading order) alone, as a record of its own."""
        cut = lambda v: None if v is None else v[a:b]  # noqa: E731
        return replace(
            self, X=self.X[a:b], H=self.H[a:b], H_prev=self.H_prev[a:b], C=cut(self.C), C_prev=cut(self.C_prev),
            pre={g: v[a:b] for g, v in self.pre.items()}, act={g: v[a:b] for g, v in self.act.items()},
        )  # fmt: skip


@dataclass(frozen=True)
class LayerGrads:
    """What BPTT through one layer and direction gives, in its reading order."""

    dH: Any  # (..., T, H) total derivative dL/dh_t, through every later step
    dC: Any | None  # (..., T, H) dL/dc_t, cells with a cell state
    dA: Any  # (..., T, G*H) dL/da_t for the gate pre-activations, torch's row order
    dh0: Any  # (..., H) the gradient reaching the initial state
    dc0: Any | None


@dataclass(frozen=True)
class Steps:
    """A cell's per-step derivative factors, each (T, ...) in reading order. Subclasses name them."""

    def take(self, idx) -> "Steps":
        """The factors at some steps only (an index array or a slice)."""
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self) if getattr(self, f.name) is not None})

    def astype(self, dtype) -> "Steps":
        import numpy as np

        return replace(self, **{f.name: np.asarray(getattr(self, f.name), dtype) for f in fields(self)
                                if getattr(self, f.name) is not None})  # fmt: skip


# ---- a unit's equations, for the explorer -------------------------------------------------------------
@dataclass(frozen=True)
class Factor:
    """One factor of a product term, as a student writes it: a number, 1 - z, tanh(c), or (a + b)."""

    kind: str  # "value" | "one_minus" | "tanh" | "sum"
    values: tuple[float, ...]


@dataclass(frozen=True)
class Term:
    symbol: str  # "W_if x_t"
    value: float  # its contribution to unit j's pre-activation (or to the sum)
    factors: tuple[Factor, ...] = ()  # how it is formed, when it is a product


@dataclass(frozen=True)
class Equation:
    lhs: str  # "f_t"
    fn: str | None  # the nonlinearity: "σ", "tanh", "relu", "" for identity; None for a plain sum
    terms: tuple[Term, ...]
    pre: float | None  # the trace's pre-activation
    value: float  # the trace's value of lhs


def value(v: float) -> Factor:
    return Factor("value", (float(v),))


# ---- a cell ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """A recurrent cell: the facts every part of rnn-tui reads, and (in subclasses) its maths."""

    name: str  # "lstm": the --cell choice and ModelConfig.cell
    summary: str  # one line for `rnn-tui cells`
    gates: tuple[str, ...]  # gate names, in the order torch stacks their rows in weight_ih / weight_hh
    gate_fns: tuple[str, ...]  # each gate's nonlinearity: "σ", "tanh", or "act" (the rnn's activation)
    equations: tuple[str, ...]  # the equations, as text
    tensors: str  # the tensors of layer k, in words
    states: tuple[str, ...] = ("h",)  # the recurrent state: h, or h and c
    activations: tuple[str, ...] = ("tanh",)  # --activation choices; the first is the default
    fused: str | None = None  # the torch.nn module that computes exactly this cell, if any
    fused_activations: tuple[str, ...] = ("tanh",)  # activations that module offers
    weights: tuple[Weight, ...] = STANDARD_WEIGHTS
    # how h_{t-1} enters: "matrix" (W_hh h_{t-1}, spectrum of W_hh), "diagonal" (w_hh ⊙ h_{t-1}: its
    # spectrum is |w_hh|), "none" (no recurrent weight: h_{t-1} enters only through a gated sum)
    recurrence: str = "matrix"
    scans: tuple[str, ...] = ()  # --scan choices, for cells whose recurrence is linear in h (first: default)
    step_jacobian: str = ""  # J_t in a few symbols, for a cell without a recurrent weight to show it instead
    # tensors a fresh model starts uniform in [lo, hi] rather than torch's ±1/sqrt(H): (prefix, lo, hi)
    init_ranges: tuple[tuple[str, float, float], ...] = ()
    # the holds the explorer offers by name: (preset, gate, value); "forget" keeps the state
    # (nothing forgotten), "input" shuts out what the step would write
    presets: tuple[tuple[str, str, float], ...] = ()
    # the gates whose biases a task may start away from 0 so the state is kept (LSTM f, GRU z), each
    # with the sign that keeps it (+1: a larger gate keeps more; -1: minGRU's z, minLSTM's i)
    keep_gates: tuple[tuple[str, int], ...] = ()

    # ---- facts derived from the above
    @property
    def G(self) -> int:
        """Gate blocks stacked in weight_ih / weight_hh."""
        return len(self.gates)

    @property
    def has_cell_state(self) -> bool:
        return "c" in self.states

    def torch_native(self, activation: str = "tanh") -> bool:
        """True when a fused torch.nn module computes exactly this cell."""
        return self.fused is not None and activation in self.fused_activations

    def gate_fn(self, gate: str, activation: str = "tanh") -> str:
        """The nonlinearity of one gate, as the equations write it: σ, tanh, relu, or "" (identity)."""
        fn = self.gate_fns[self.gates.index(gate)]
        if fn != "act":
            return fn
        return {"tanh": "tanh", "relu": "relu", "sigmoid": "σ", "identity": ""}[activation]

    def state_size(self, H: int) -> int:
        """S, the width of the full recurrent state s_t (h, or [h; c])."""
        return len(self.states) * H

    def tensor_shapes(self, H: int, I: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
        """One layer and direction's tensors, by torch's name without the layer suffix, and their shapes."""
        return {w.prefix: w.size(self.G, H, I) for w in self.weights if bias or not w.bias}

    def layer_weights(self, tensors: Mapping[str, Any], suffix: str) -> LayerWeights:
        """One layer and direction's tensors (by torch's full names in `tensors`), by symbol."""
        return LayerWeights(suffix, {w.symbol: tensors.get(w.prefix + suffix) for w in self.weights})

    # ---- the maths each cell writes (see the module docstring)
    def step(self, x, state: tuple, w: LayerWeights, activation: str = "tanh", edit=keep):
        """(new state tuple, gates {name: (pre, act)}): the readable torch path."""
        raise NotImplementedError

    def forward(self, w: LayerWeights, X, h0, c0=None, activation: str = "tanh", *, layer: int = 0,
                reverse: bool = False) -> LayerForward:  # fmt: skip
        raise NotImplementedError

    def coefficients(self, fw: LayerForward) -> Steps:
        raise NotImplementedError

    def vjp(self, k: Steps, t, w: LayerWeights, u: tuple, dA=None):
        """Back through step t: u = (dL/dh_t total, dL/dc_t through later steps only).

        Returns (dA, before, at): the pre-activation deltas (..., G*H), the gradient reaching the
        previous state (a tuple like u), and the total gradient at this step's state (dL/dh_t,
        and dL/dc_t counting its path through h_t). `t` indexes the factors in `k`: a step, or a
        slice over factors taken at many steps with `k.take`.
        """
        raise NotImplementedError

    def jvp(self, k: Steps, t, w: LayerWeights, v: tuple) -> tuple:
        """J_t v: the change of s_t for a change v of s_{t-1} (a tuple like the state)."""
        raise NotImplementedError

    def hh_factors(self, fw: LayerForward, dA) -> list:
        """dL/dW_hh = sum_k left_k right_k^T per block of rows: [(rows, left (..., T, h), right (T, H))].

        The default reads W_hh h_{t-1} straight into every pre-activation."""
        return [(slice(0, dA.shape[-1]), dA, fw.H_prev[: dA.shape[-2]])]

    def extra_grads(self, fw: LayerForward, dA) -> dict:
        """Gradients of the tensors beyond W_ih, W_hh and the biases (peepholes), by torch name."""
        return {}

    def recurrent_step_norms(self, fw: LayerForward, dA):
        """(T,) the size of each step's share of dL/dW_hh, ||dL/dW_hh at step k||_F, from the deltas
        (reading order); None for a cell with no recurrent weight. Each block of rows is an outer
        product, so ||left right^T||_F = ||left|| ||right||."""
        import numpy as np

        if self.recurrence == "none":
            return None
        sq = 0.0
        for _, left, right in self.hh_factors(fw, dA):
            sq = sq + np.einsum("...i,...i->...", left, left, dtype=np.float64) * np.einsum(
                "...i,...i->...", right, right, dtype=np.float64)
        return np.sqrt(sq)

    def equations_at(self, w: LayerWeights, x, entry, t: int, j: int, prev: str, activation: str = "tanh"):
        """(reads, equations) of unit j at sequence position t of a LayerTrace `entry`.

        w holds the trace's numpy weights; x the layer's input at t (float64); prev "t-1" or "t+1".
        """
        raise NotImplementedError

    # ---- the same for every cell
    def backward(self, fw: LayerForward, direct, final: tuple = ()) -> LayerGrads:
        """BPTT through one layer and direction, in its reading order.

        direct: (..., T, H) the gradient reaching h_t from outside the recurrence (the head, or
        the layer above); leading axes are independent gradient sources. final: gradients
        arriving on the final state from outside (h, then c), or nothing.

        For t = T-1 .. 0:  dL/dh_t = direct_t + (J_{t+1}^T dL/ds_{t+1})_h, and the rest of the
        state likewise, one `vjp` per step. The loop runs in numpy: per step it is a few vector
        operations on H numbers, where numpy's cost per call is a third of torch's.
        """
        import numpy as np

        k = self.coefficients(fw)
        T, H = fw.H.shape
        lead, dt = direct.shape[:-2], direct.dtype
        dH = np.empty_like(direct)
        dC = np.empty_like(direct) if self.has_cell_state else None
        dA = np.empty(lead + (T, self.G * H), dt)
        final = tuple(final) + (None,) * (len(self.states) - len(final))
        carry = tuple(np.zeros(lead + (H,), dt) if g is None else np.array(g, dt) for g in final)
        for t in reversed(range(T)):
            u_h = np.add(direct[..., t, :], carry[0], out=dH[..., t, :])
            _, carry, at = self.vjp(k, t, fw.w, (u_h,) + carry[1:], dA[..., t, :])
            if dC is not None:
                dC[..., t, :] = at[1]
        return LayerGrads(dH, dC, dA, carry[0], carry[1] if dC is not None else None)

    def jacobians(self, fw: LayerForward, steps, dtype=None, k: Steps | None = None) -> Any:
        """J_t = ds_t/ds_{t-1} at the given reading-order steps, (n, S, S), formed from `jvp`
        applied to every basis vector (s = [h; c] for cells with a cell state, h first).

        dtype: compute in this dtype (default the record's); k: the factors, when already made."""
        import numpy as np

        idx = np.asarray(steps, dtype=np.int64)
        dtype = fw.H.dtype if dtype is None else np.dtype(dtype)
        H = fw.H.shape[1]
        S = self.state_size(H)
        n = idx.shape[0]
        k = (self.coefficients(fw) if k is None else k).take(np.repeat(idx, S)).astype(dtype)  # a copy per basis vector
        basis = np.tile(np.eye(S, dtype=dtype), (n, 1))  # (n*S, S)
        v = tuple(basis[:, i * H : (i + 1) * H] for i in range(len(self.states)))
        out = np.concatenate(self.jvp(k, slice(None), fw.w.astype(dtype), v), axis=-1)  # row m is J e_m
        return out.reshape(n, S, S).transpose(0, 2, 1)

    def param_grads(self, fw: LayerForward, dA) -> dict:
        """Every tensor's gradient of one layer and direction, by torch name, from the deltas
        dA = dL/da_t (T, G*H) in reading order."""
        import numpy as np

        sfx, w = fw.w.suffix, fw.w
        g = {f"weight_ih{sfx}": dA.T @ fw.X}  # sum_t delta_t x_t^T
        if w.W_hh is not None:
            W = np.zeros(np.shape(w.W_hh), dA.dtype)
            b_hh = np.zeros(np.shape(w.W_hh)[0], dA.dtype)
            for rows, left, right in self.hh_factors(fw, dA):
                W[rows] = left.T @ right  # sum_t left_t right_t^T
                b_hh[rows] = left.sum(0)
            g[f"weight_hh{sfx}"] = W
            if w.b_hh is not None:
                g[f"bias_hh{sfx}"] = b_hh
        if w.b_ih is not None:
            g[f"bias_ih{sfx}"] = dA.sum(0)
        g.update(self.extra_grads(fw, dA))
        return g

    def record(self, w, X, H, C, pre, act, h0, c0, activation, layer, reverse, scan="sequential") -> LayerForward:
        """A forward record, with the previous states filled in from h0 (and c0)."""
        import numpy as np

        H_prev = np.concatenate([np.asarray(h0)[None], H[:-1]])
        C_prev = None if C is None else np.concatenate([np.asarray(c0)[None], C[:-1]])
        return LayerForward(layer, reverse, w, X, H, H_prev, C, C_prev, pre, act, h0, c0, activation, scan)


# ---- small numpy kernels the cell modules share -------------------------------------------------------
def sigmoid(a, out=None):
    """σ(a) = 1 / (1 + exp(-a)) elementwise, written into `out` (which may be `a`)."""
    import numpy as np

    out = np.multiply(a, -1.0, out=out)  # not np.negative: numpy 2.4 gets it wrong on some strided (n, 1) views
    with np.errstate(over="ignore"):  # exp(800) = inf, and 1 / inf = 0 is right
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def unit_row(w: LayerWeights, symbol: str, gate: int, H: int, j: int):
    """Row gate*H + j of a weight matrix or bias, in float64 (None when the tensor is absent)."""
    import numpy as np

    m = w[symbol]
    return None if m is None else np.asarray(m[gate * H + j], dtype=np.float64)


def affine_terms(w: LayerWeights, x, h_prev, gate: int, H: int, j: int, names: tuple[str, str], hp: str) -> list[Term]:
    """W_i{g} x_t + b_i{g} + W_h{g} h_prev + b_h{g} for unit j of gate block `gate`, as terms."""
    ig, hg = names
    terms = [Term(f"W_{ig} x_t", float(unit_row(w, "W_ih", gate, H, j) @ x))]
    b = unit_row(w, "b_ih", gate, H, j)
    if b is not None:
        terms.append(Term(f"b_{ig}", float(b)))
    terms.append(Term(f"W_{hg} {hp}", float(unit_row(w, "W_hh", gate, H, j) @ h_prev)))
    b = unit_row(w, "b_hh", gate, H, j)
    if b is not None:
        terms.append(Term(f"b_{hg}", float(b)))
    return terms


def previous(states, initial, direction: str, t: int):
    """The state step t reads, in float64: h_{t-1} going forward, h_{t+1} in reverse (the
    initial state at the first step read) — one row of LayerTrace.h_prev, without building it."""
    import numpy as np

    if direction == "forward":
        row = initial if t == 0 else states[t - 1]
    else:
        row = initial if t == len(states) - 1 else states[t + 1]
    return np.asarray(row, dtype=np.float64)


def fused_states(kind: str, w: LayerWeights, X, h0, c0=None, activation: str = "tanh"):
    """h_t at every step, (T, H) numpy, from torch's fused kernel for one layer and direction
    (torch.lstm / torch.gru / torch.rnn_tanh, rnn_relu), without autograd."""
    import numpy as np
    import torch

    def t_(a):  # zero-copy where it can
        a = np.asarray(a)
        if not a.flags.c_contiguous or min(a.strides, default=0) < 0:  # a 1-row array can be both
            a = a.copy()
        return torch.from_numpy(a)

    bias = w.b_ih is not None
    args = [t_(w.W_ih), t_(w.W_hh)] + ([t_(w.b_ih), t_(w.b_hh)] if bias else [])
    x, hx = t_(X)[None], t_(h0)[None, None]  # batch-first (1, T, I); state (1, 1, H)
    with torch.no_grad():
        if kind == "LSTM":
            out = torch.lstm(x, (hx, t_(c0)[None, None]), args, bias, 1, 0.0, False, False, True)[0]
        else:
            fn = torch.gru if kind == "GRU" else {"tanh": torch.rnn_tanh, "relu": torch.rnn_relu}[activation]
            out = fn(x, hx, args, bias, 1, 0.0, False, False, True)[0]
    return out[0].numpy()


def input_part(w: LayerWeights, X):
    """W_ih x_t + b_ih for every step at once, (T, G*H)."""
    gi = X @ w.W_ih.T
    if w.b_ih is not None:
        gi += w.b_ih
    return gi
