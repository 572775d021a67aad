"""minGRU (Feng et al., 2024, "Were RNNs All We Needed?"): a GRU whose gates do not read h_{t-1}.

    z_t = σ(W_iz x_t + b_iz)
    n_t = W_in x_t + b_in                              (no tanh, no reset gate)
    h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ n_t

weight_ih_l{k} (2H, I) and bias_ih_l{k} (2H) hold the rows z, n; there is no weight_hh. Every z_t
and n_t is known from the inputs alone, so the recurrence is linear, h_t = a_t ⊙ h_{t-1} + b_t with
a_t = 1 - z_t and b_t = z_t ⊙ n_t, and runs as a parallel scan (`rnn_tui.engine.scan`) or as the
plain loop (`--scan sequential|parallel`): the same numbers, to rounding.

The derivatives (`LinearRecurrence`, shared with minLSTM):

    J_t = dh_t/dh_{t-1} = diag(1 - z_t)                the whole step Jacobian: diagonal, no weights
    ∂h_t/∂a_z = (n_t - h_{t-1}) σ'(a_z),   ∂h_t/∂a_n = z_t

so BPTT is the same scan run backwards: dL/dh_{t-1} = direct_{t-1} + (1 - z_t) ⊙ dL/dh_t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnn_tui.engine.cells.base import (
    Cell, Equation, Factor, LayerForward, LayerGrads, Steps, Term, Weight, affine, input_part, keep, previous,
    sigmoid, unit_row, value, σ,
)  # fmt: skip

INPUT_ONLY = (
    Weight("W_ih", "weight_ih", ("GH", "I")),
    Weight("b_ih", "bias_ih", ("GH",), bias=True),
)


def mingru_cell(x, h, W_ih, b_ih=None, edit=keep):
    """One minGRU step: (h_t, {"z": (a_z, z_t), "n": (n_t, n_t)}); `edit` as for every cell."""
    a_z, a_n = affine(x, W_ih, b_ih).chunk(2, dim=-1)
    z = edit("z", σ(a_z))
    n = edit("n", a_n)
    h_t = edit("h", (1 - z) * h + z * n)
    return h_t, {"z": (a_z, z), "n": (a_n, n)}


@dataclass(frozen=True)
class LinearSteps(Steps):
    K: Any  # (T, G, H) ∂h_t/∂a for each gate block, torch's row order
    a: Any  # (T, H) ∂h_t/∂h_{t-1}: the recurrence's factor a_t


@dataclass(frozen=True)
class LinearRecurrence(Cell):
    """A cell whose gates read only x_t, so that h_t = a_t ⊙ h_{t-1} + b_t: minGRU and minLSTM.
    A subclass gives its gates (`gates_of`), a_t and b_t (`recurrence_of`) and ∂h_t/∂a (`K_of`)."""

    def gates_of(self, A):
        """Each gate's activation from the pre-activations A (T, G*H): {name: (T, H)}."""
        raise NotImplementedError

    def recurrence_of(self, act: dict):
        """(a, b), each (T, H): h_t = a_t ⊙ h_{t-1} + b_t."""
        raise NotImplementedError

    def K_of(self, act: dict, H_prev):
        """(T, G, H): ∂h_t/∂a for each gate block."""
        raise NotImplementedError

    def torch_ab(self, A):
        """(a, b) from the pre-activations A (..., G*H), in torch: what training scans."""
        raise NotImplementedError

    def torch_layer(self, x, h0, w, parallel: bool):
        """One layer and direction for training, in torch: x (B, T, I), h0 (B, H) -> h (B, T, H).
        Every gate in one product with the inputs, then the loop or the chunked scan."""
        from rnn_tui.engine.scan import torch_scan

        a, b = self.torch_ab(affine(x, w.W_ih, w.b_ih))
        return torch_scan(a, b, h0, parallel=parallel)

    def forward(self, w, X, h0, c0=None, activation="tanh", *, layer=0, reverse=False,
                scan="sequential") -> LayerForward:  # fmt: skip
        """Every gate from one product with the inputs, then h by the loop or the chunked scan."""
        from rnn_tui.engine.scan import scan as run_scan

        A = input_part(w, X)  # (T, G*H)
        act = self.gates_of(A)
        a, b = self.recurrence_of(act)
        Hs = run_scan(a, b, h0, parallel=scan == "parallel")
        H = Hs.shape[1]
        pre = {n: A[:, k * H : (k + 1) * H] for k, n in enumerate(self.gates)}
        return self.record(w, X, Hs, None, pre, act, h0, None, activation, layer, reverse, scan)

    def coefficients(self, fw: LayerForward) -> LinearSteps:
        a, _ = self.recurrence_of(fw.act)
        return LinearSteps(K=self.K_of(fw.act, fw.H_prev), a=a)

    def vjp(self, k: LinearSteps, t, w, u, dA=None):
        """δa = δh_t ⊙ ∂h_t/∂a;  dL/dh_{t-1} (recurrent part) = a_t ⊙ δh_t."""
        import numpy as np

        (u_h,) = u
        G, H = k.K.shape[-2], u_h.shape[-1]
        if dA is None:
            dA = np.empty(u_h.shape[:-1] + (G * H,), u_h.dtype)
        blocks = dA.reshape(u_h.shape[:-1] + (G, H))
        np.multiply(u_h[..., None, :], k.K[t], out=blocks)
        if not np.shares_memory(blocks, dA):  # a strided dA reshapes to a copy: write it back
            dA[...] = blocks.reshape(dA.shape)
        return dA, (u_h * k.a[t],), (u_h,)

    def jvp(self, k: LinearSteps, t, w, v):
        """J_t v = a_t ⊙ v."""
        return (k.a[t] * v[0],)

    def backward(self, fw: LayerForward, direct, final: tuple = ()) -> LayerGrads:
        """dL/dh_t = direct_t + a_{t+1} ⊙ dL/dh_{t+1}: the scan run backwards (as the forward was
        run: the loop, or the chunked scan), then the deltas of every step at once."""
        import numpy as np

        from rnn_tui.engine.scan import scan_back

        k = self.coefficients(fw)
        u = np.array(direct, copy=True)
        if final and final[0] is not None:
            u[..., -1, :] += final[0]
        dH = scan_back(k.a, u, parallel=fw.scan == "parallel")
        T, G, H = k.K.shape
        dA = (dH[..., None, :] * k.K).reshape(dH.shape[:-1] + (G * H,))  # (..., T, G*H)
        return LayerGrads(dH, None, dA, k.a[0] * dH[..., 0, :], None)

    def hh_factors(self, fw, dA):
        return []


def input_terms(w, x, gate: int, H: int, j: int, name: str) -> list[Term]:
    """W_i{name} x_t + b_i{name} for unit j of gate block `gate`, as terms."""
    terms = [Term(f"W_i{name} x_t", float(unit_row(w, "W_ih", gate, H, j) @ x))]
    b = unit_row(w, "b_ih", gate, H, j)
    if b is not None:
        terms.append(Term(f"b_i{name}", float(b)))
    return terms


@dataclass(frozen=True)
class MinGRU(LinearRecurrence):
    def step(self, x, state, w, activation="tanh", edit=keep):
        h, gates = mingru_cell(x, state[0], w.W_ih, w.b_ih, edit)
        return (h,), gates

    def gates_of(self, A):
        H = A.shape[-1] // 2
        return {"z": sigmoid(A[..., :H].copy()), "n": A[..., H:].copy()}

    def recurrence_of(self, act):
        z, n = act["z"], act["n"]
        return 1.0 - z, z * n

    def torch_ab(self, A):
        a_z, n = A.chunk(2, dim=-1)
        z = σ(a_z)
        return 1 - z, z * n

    def K_of(self, act, H_prev):
        import numpy as np

        z, n = act["z"], act["n"]
        return np.stack([(n - H_prev) * z * (1.0 - z), z], axis=-2)

    def equations_at(self, w, x, entry, t, j, prev, activation="tanh"):
        H = entry.h.shape[1]
        hp = f"h_{{{prev}}}"
        h_prev = previous(entry.h, entry.h0, entry.direction, t)
        eqs = []
        for k, g in enumerate(self.gates):
            eqs.append(Equation(f"{g}_t", self.gate_fn(g), tuple(input_terms(w, x, k, H, j, g)),
                                float(entry.preacts[g][t, j]), float(entry.gates[g][t, j])))  # fmt: skip
        z, n = float(entry.gates["z"][t, j]), float(entry.gates["n"][t, j])
        eqs.append(Equation("h_t", None, (
            Term(f"(1 - z_t) {hp}", (1 - z) * h_prev[j], (Factor("one_minus", (z,)), value(h_prev[j]))),
            Term("z_t n_t", z * n, (value(z), value(n))),
        ), None, float(entry.h[t, j])))  # fmt: skip
        return ((hp, float(h_prev[j])),), tuple(eqs)


CELL = MinGRU(
    name="mingru",
    summary="minGRU: a GRU whose gates read only x_t; h_t is a linear scan",
    gates=("z", "n"),
    gate_fns=("σ", ""),
    keep_gates=(("z", -1),),
    presets=(("forget", "z", 0.0), ("input", "z", 0.0)),  # z = 0: h_t = h_{t-1}, nothing written
    equations=(
        "z_t = σ(W_iz x_t + b_iz)",
        "n_t = W_in x_t + b_in",
        "h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ n_t",
    ),
    tensors="weight_ih_l{k} (2H, I), bias_ih_l{k} (2H); rows z, n; no weight_hh",
    weights=INPUT_ONLY,
    recurrence="none",
    step_jacobian="diag(1 - z_t)",
    scans=("sequential", "parallel"),
)
