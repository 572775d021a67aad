"""The independently recurrent network, IndRNN (Li et al., 2018): each unit reads only its own past.

    a_t = W_ih x_t + b_ih + w_hh ⊙ h_{t-1} + b_hh        w_hh a vector of H numbers
    h_t = act(a_t)                                        act in tanh | relu (IndRNN's usual) | sigmoid | identity

The recurrence is diagonal: J_t = dh_t/dh_{t-1} = diag(act'(a_t) ⊙ w_hh). Over k steps unit j's
gradient is multiplied by prod act'(a) w_hh[j], so |w_hh[j]| against 1 says, unit by unit, whether
its memory fades or grows (with relu, act' is 0 or 1: exactly |w_hh[j]|^k on its active steps).
The spectrum of diag(w_hh) is |w_hh| itself: its singular values and eigenvalue moduli. Units mix
only through W_ih of the layer above, so IndRNNs are stacked.

A fresh IndRNN starts with w_hh uniform in [0, 1], as Li et al. initialise it: every unit keeps a
share of its own state from the first step (torch's ±1/sqrt(H) would forget within a few steps,
and a relu unit with w_hh < 0 cannot hold anything).

torch has no such module: training runs this step (`model.CellStack`); the trace runs it in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnn_tui.engine.cells.base import (
    ACTIVATION, Cell, Equation, LayerForward, LayerWeights, Term, Weight, affine, input_part, keep, previous,
    unit_row, value,
)  # fmt: skip
from rnn_tui.engine.cells.rnn import RNNSteps, activate, derivative

WEIGHTS = (
    Weight("W_ih", "weight_ih", ("GH", "I")),
    Weight("w_hh", "weight_hh", ("H",)),  # one recurrent weight per unit: torch's name, a vector
    Weight("b_ih", "bias_ih", ("GH",), bias=True),
    Weight("b_hh", "bias_hh", ("GH",), bias=True),
)


def indrnn_cell(x, h, W_ih, w_hh, b_ih=None, b_hh=None, activation="tanh", edit=keep):
    """a_t = W_ih x_t + b_ih + w_hh ⊙ h_{t-1} + b_hh ;  h_t = act(a_t). Returns h_t, {"a": (a_t, h_t)}."""
    a = affine(x, W_ih, b_ih) + w_hh * h
    if b_hh is not None:
        a = a + b_hh
    h_t = edit("h", edit("a", ACTIVATION[activation](a)))
    return h_t, {"a": (a, h_t)}


@dataclass(frozen=True)
class IndRNN(Cell):
    def step(self, x, state, w: LayerWeights, activation="tanh", edit=keep):
        h, gates = indrnn_cell(x, state[0], w.W_ih, w["w_hh"], w.b_ih, w.b_hh, activation, edit)
        return (h,), gates

    def forward(self, w, X, h0, c0=None, activation="tanh", *, layer=0, reverse=False) -> LayerForward:
        """W_ih x_t + b for every step in one product, then per step one multiply-add and act."""
        import numpy as np

        A = input_part(w, X)  # (T, H)
        if w.b_hh is not None:
            A += w.b_hh
        Hs = np.empty_like(A)
        w_hh = np.asarray(w["w_hh"])
        h = np.asarray(h0)
        for t in range(A.shape[0]):
            a = A[t]
            a += w_hh * h
            h = activate(activation, a, out=Hs[t])
        return self.record(w, X, Hs, None, {"a": A}, {"a": Hs}, h0, None, activation, layer, reverse)

    def coefficients(self, fw: LayerForward) -> RNNSteps:
        return RNNSteps(fprime=derivative(fw.activation, fw.pre["a"], fw.H))

    def vjp(self, k: RNNSteps, t, w, u, dA=None):
        """δa_t = act'(a_t) ⊙ δh_t ;  dL/dh_{t-1} (recurrent part) = w_hh ⊙ δa_t."""
        import numpy as np

        (u_h,) = u
        dA = np.multiply(u_h, k.fprime[t], out=dA)
        return dA, (dA * w["w_hh"],), (u_h,)

    def jvp(self, k: RNNSteps, t, w, v):
        """J_t v = act'(a_t) ⊙ w_hh ⊙ v."""
        return (k.fprime[t] * w["w_hh"] * v[0],)

    def extra_grads(self, fw: LayerForward, dA) -> dict:
        """dL/dw_hh = Σ_t δa_t ⊙ h_{t-1} (a vector, as w_hh), dL/db_hh = Σ_t δa_t."""
        sfx, L = fw.w.suffix, dA.shape[-2]
        out = {f"weight_hh{sfx}": (dA * fw.H_prev[:L]).sum(0)}
        if fw.w.b_hh is not None:
            out[f"bias_hh{sfx}"] = dA.sum(0)
        return out

    def recurrent_step_norms(self, fw: LayerForward, dA):
        """||δa_k ⊙ h_{k-1}||: each step's share of dL/dw_hh."""
        import numpy as np

        part = dA * fw.H_prev[: dA.shape[-2]]
        return np.sqrt(np.einsum("...i,...i->...", part, part, dtype=np.float64))

    def equations_at(self, w, x, entry, t, j, prev, activation="tanh"):
        import numpy as np

        H = entry.h.shape[1]
        hp = f"h_{{{prev}}}"
        h_prev = previous(entry.h, entry.h0, entry.direction, t)
        terms = [Term("W_ih x_t", float(unit_row(w, "W_ih", 0, H, j) @ x))]
        b = unit_row(w, "b_ih", 0, H, j)
        if b is not None:
            terms.append(Term("b_ih", float(b)))
        wj = float(np.asarray(w["w_hh"], dtype=np.float64)[j])
        terms.append(Term(f"w_hh {hp}", wj * float(h_prev[j]), (value(wj), value(h_prev[j]))))
        b = unit_row(w, "b_hh", 0, H, j)
        if b is not None:
            terms.append(Term("b_hh", float(b)))
        eq = Equation("h_t", self.gate_fn("a", activation), tuple(terms), float(entry.preacts["a"][t, j]),
                      float(entry.h[t, j]))  # fmt: skip
        return ((hp, float(h_prev[j])),), (eq,)


CELL = IndRNN(
    name="indrnn",
    summary="IndRNN: each unit reads only its own past (a diagonal recurrence)",
    gates=("a",),
    gate_fns=("act",),
    equations=(
        "a_t = W_ih x_t + b_ih + w_hh ⊙ h_{t-1} + b_hh",
        "h_t = act(a_t)          act in tanh | relu | sigmoid | identity",
    ),
    tensors="weight_ih_l{k} (H, I), weight_hh_l{k} (H) a vector, bias_ih_l{k}, bias_hh_l{k} (H)",
    activations=("tanh", "relu", "sigmoid", "identity"),  # as the rnn's; relu is IndRNN's usual choice
    weights=WEIGHTS,
    recurrence="diagonal",
    init_ranges=(("weight_hh", 0.0, 1.0),),
)
