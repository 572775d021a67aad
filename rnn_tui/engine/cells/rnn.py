"""The Elman RNN, as the lecture notes write it:

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    h_t = act(a_t)                                   act in tanh | relu | sigmoid | identity

Its step Jacobian is J_t = dh_t/dh_{t-1} = diag(act'(a_t)) W_hh: for a linear network J_t = W_hh,
so the spectral radius of W_hh decides whether gradients vanish or explode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnn_tui.engine.cells.base import (
    ACTIVATION, Cell, Equation, LayerForward, LayerWeights, Steps, affine, affine_terms, fused_states, input_part,
    keep, previous,
)  # fmt: skip


def rnn_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, activation="tanh", edit=keep):
    """Elman:  a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh ;  h_t = act(a_t).

    Returns h_t and the gates {"a": (a_t, h_t)}; `edit(name, value)` may replace a value as soon
    as it is computed (an intervention), and everything downstream uses the replaced value.
    """
    a = affine(x, W_ih, b_ih) + affine(h, W_hh, b_hh)
    h_t = edit("h", edit("a", ACTIVATION[activation](a)))
    return h_t, {"a": (a, h_t)}


# ---- numpy: act(a) and act'(a) -----------------------------------------------------------------------
def activate(name: str, a, out=None):
    """h = act(a), elementwise (numpy), into `out` when given."""
    import numpy as np

    from rnn_tui.engine.cells.base import sigmoid

    if name == "tanh":
        return np.tanh(a, out=out)
    if name == "relu":
        return np.maximum(a, 0.0, out=out)
    if name == "sigmoid":
        return sigmoid(a, out=out)
    if name == "identity":
        if out is None:
            return a.copy()
        out[...] = a
        return out
    raise ValueError(f"unknown activation {name!r}: choose tanh, relu, sigmoid or identity")


def derivative(name: str, a, h):
    """act'(a), given a and h = act(a):  tanh 1 - h^2,  relu [a > 0],  sigmoid h (1 - h),  identity 1."""
    import numpy as np

    if name == "tanh":
        return 1.0 - h * h
    if name == "relu":
        return (a > 0).astype(a.dtype)
    if name == "sigmoid":
        return h * (1.0 - h)
    if name == "identity":
        return np.ones_like(a)
    raise ValueError(f"unknown activation {name!r}: choose tanh, relu, sigmoid or identity")


@dataclass(frozen=True)
class RNNSteps(Steps):
    fprime: Any  # (T, H) act'(a_t)


@dataclass(frozen=True)
class RNN(Cell):
    def step(self, x, state, w: LayerWeights, activation="tanh", edit=keep):
        h, gates = rnn_cell(x, state[0], w.W_ih, w.W_hh, w.b_ih, w.b_hh, activation, edit)
        return (h,), gates

    def forward(self, w, X, h0, c0=None, activation="tanh", *, layer=0, reverse=False) -> LayerForward:
        """Every a_t and h_t. torch's fused kernel gives the h's where it has the activation; then
        every a_t is one product, since a_t reads only (x_t, h_{t-1}). Elsewhere, a numpy loop."""
        import numpy as np

        gi = input_part(w, X)  # (T, H)
        if w.b_hh is not None:
            gi += w.b_hh
        if self.torch_native(activation):
            H = fused_states("RNN", w, X, h0, activation=activation)
            H_prev = np.concatenate([np.asarray(h0)[None], H[:-1]])
            A = gi + H_prev @ w.W_hh.T
        else:
            T = X.shape[0]
            A, H = gi, np.empty_like(gi)
            W_hh_T = np.ascontiguousarray(w.W_hh.T)
            h = np.asarray(h0)
            for t in range(T):
                a = A[t]
                a += h @ W_hh_T
                h = activate(activation, a, out=H[t])
        return self.record(w, X, H, None, {"a": A}, {"a": H}, h0, None, activation, layer, reverse)

    def coefficients(self, fw: LayerForward) -> RNNSteps:
        return RNNSteps(fprime=derivative(fw.activation, fw.pre["a"], fw.H))

    def vjp(self, k: RNNSteps, t, w, u, dA=None):
        """δa_t = act'(a_t) ⊙ δh_t ;  dL/dh_{t-1} (recurrent part) = W_hh^T δa_t."""
        import numpy as np

        (u_h,) = u
        dA = np.multiply(u_h, k.fprime[t], out=dA)
        return dA, (dA @ w.W_hh,), (u_h,)

    def jvp(self, k: RNNSteps, t, w, v):
        """J_t v = act'(a_t) ⊙ (W_hh v)."""
        return (k.fprime[t] * (v[0] @ w.W_hh.T),)

    def equations_at(self, w, x, entry, t, j, prev, activation="tanh"):
        H = entry.h.shape[1]
        hp = f"h_{{{prev}}}"
        h_prev = previous(entry.h, entry.h0, entry.direction, t)
        terms = affine_terms(w, x, h_prev, 0, H, j, ("ih", "hh"), hp)
        eq = Equation("h_t", self.gate_fn("a", activation), tuple(terms), float(entry.preacts["a"][t, j]),
                      float(entry.h[t, j]))  # fmt: skip
        return ((hp, float(h_prev[j])),), (eq,)


CELL = RNN(
    name="rnn",
    summary="Elman RNN: one affine map of x_t and h_{t-1}, through an activation",
    gates=("a",),  # a single "gate": the activation itself
    gate_fns=("act",),
    equations=(
        "a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh",
        "h_t = act(a_t)          act in tanh | relu | sigmoid | identity",
    ),
    tensors="weight_ih_l{k} (H, I), weight_hh_l{k} (H, H), bias_ih_l{k}, bias_hh_l{k} (H)",
    activations=("tanh", "relu", "sigmoid", "identity"),
    fused="RNN",
    fused_activations=("tanh", "relu"),
)
