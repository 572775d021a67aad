"""The GRU (Cho et al., 2014) in PyTorch's placement, which applies the reset gate after the
recurrent product (`gru_textbook.py` registers the textbook placement, sharing the rest):

    r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

The derivatives, with ⊙ on a matrix scaling its rows:

    K_z = (h_{t-1} - n_t) σ'(a_z),  K_n = (1 - z_t) tanh'(a_n)        (∂h_t/∂a_z, ∂h_t/∂a_n)
    K_r = (W_hn h_{t-1} + b_hn) σ'(a_r)                                (∂a_n/∂a_r)
    J_t = diag(z_t) + K_z ⊙ W_hz + K_n ⊙ (r_t ⊙ W_hn + K_r ⊙ W_hr)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnn_tui.engine.cells.base import (
    Cell, Equation, Factor, LayerForward, Steps, Term, affine, affine_terms, input_part, keep, previous, sigmoid,
    unit_row, value, σ, tanh,
)  # fmt: skip


def gru_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, textbook=False, edit=keep):
    """One GRU step: (h_t, gates). PyTorch's placement applies the reset gate after the recurrent
    product; the textbook placement (Cho et al.) resets the state before it:

        n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)
    """
    H = h.shape[-1]
    gi_r, gi_z, gi_n = affine(x, W_ih, b_ih).chunk(3, dim=-1)
    W_hr, W_hz, W_hn = W_hh[:H], W_hh[H : 2 * H], W_hh[2 * H :]
    b_hr, b_hz, b_hn = (None, None, None) if b_hh is None else b_hh.chunk(3)
    a_r = gi_r + affine(h, W_hr, b_hr)
    a_z = gi_z + affine(h, W_hz, b_hz)
    r, z = edit("r", σ(a_r)), edit("z", σ(a_z))
    if textbook:
        a_n = gi_n + affine(r * h, W_hn, b_hn)
    else:
        a_n = gi_n + r * affine(h, W_hn, b_hn)
    n = edit("n", tanh(a_n))
    h_t = edit("h", (1 - z) * n + z * h)
    return h_t, {"r": (a_r, r), "z": (a_z, z), "n": (a_n, n)}


@dataclass(frozen=True)
class GRUSteps(Steps):
    K_r: Any  # (T, H) ∂a_n/∂a_r (torch) or ∂(r ⊙ h_{t-1})/∂a_r (textbook)
    K_z: Any  # (T, H) ∂h_t/∂a_z
    K_n: Any  # (T, H) ∂h_t/∂a_n
    r: Any  # (T, H)
    z: Any  # (T, H) ∂h_t/∂h_{t-1}, directly


@dataclass(frozen=True)
class GRU(Cell):
    textbook = False  # where the reset gate acts (a class fact: `gru_textbook.GRUTextbook` says True)

    def step(self, x, state, w, activation="tanh", edit=keep):
        h, gates = gru_cell(x, state[0], w.W_ih, w.W_hh, w.b_ih, w.b_hh, self.textbook, edit)
        return (h,), gates

    def forward(self, w, X, h0, c0=None, activation="tanh", *, layer=0, reverse=False) -> LayerForward:
        """Every gate and state, step by step in numpy (on this machine faster than torch's own
        GRU kernel, whose gates would then need recomputing)."""
        import numpy as np

        T, H = X.shape[0], np.shape(w.W_hh)[1]
        A = input_part(w, X)  # (T, 3H): W_ih x_t + b_ih, then the recurrent parts below
        b_hn = None
        if w.b_hh is not None:
            A[:, : 2 * H] += w.b_hh[: 2 * H]
            b_hn = w.b_hh[2 * H :]
        G = np.empty_like(A)
        Hs = np.empty((T, H), A.dtype)
        W_hh_T = np.ascontiguousarray(w.W_hh.T)  # (H, 3H)
        h = np.asarray(h0)
        for t in range(T):
            a, g = A[t], G[t]
            gh = h @ W_hh_T  # W_hr h, W_hz h, W_hn h
            a[: 2 * H] += gh[: 2 * H]
            sigmoid(a[: 2 * H], out=g[: 2 * H])  # r, z
            hn = gh[2 * H :]
            if b_hn is not None:
                hn += b_hn
            hn *= g[:H]
            a[2 * H :] += hn  # + r_t ⊙ (W_hn h_{t-1} + b_hn)
            n = np.tanh(a[2 * H :], out=g[2 * H :])
            h = np.subtract(h, n, out=Hs[t])  # h_t = n_t + z_t ⊙ (h_{t-1} - n_t)
            h *= g[H : 2 * H]
            h += n
        return self._record(w, X, Hs, A, G, h0, activation, layer, reverse)

    def _record(self, w, X, Hs, A, G, h0, activation, layer, reverse) -> LayerForward:
        H = Hs.shape[1]
        pre = {n: A[:, k * H : (k + 1) * H] for k, n in enumerate(self.gates)}
        act = {n: G[:, k * H : (k + 1) * H] for k, n in enumerate(self.gates)}
        return self.record(w, X, Hs, None, pre, act, h0, None, activation, layer, reverse)

    def coefficients(self, fw: LayerForward) -> GRUSteps:
        r, z, n = (fw.act[g] for g in self.gates)
        return GRUSteps(
            K_r=self.reset_factor(fw) * r * (1 - r),
            K_z=(fw.H_prev - n) * z * (1 - z),
            K_n=(1 - z) * (1 - n * n),
            r=r,
            z=z,
        )

    def reset_factor(self, fw: LayerForward):
        """What σ'(a_r) multiplies in ∂a_n/∂a_r: W_hn h_{t-1} + b_hn, (T, H)."""
        H = fw.H.shape[1]
        hn = fw.H_prev @ fw.w.W_hh[2 * H :].T
        return hn if fw.w.b_hh is None else hn + fw.w.b_hh[2 * H :]

    def vjp(self, k: GRUSteps, t, w, u, dA=None):
        """δa_n = δh ⊙ K_n;  δa_z = δh ⊙ K_z;  δa_r = δa_n ⊙ K_r;
        dL/dh_{t-1} = z ⊙ δh + W_hr^T δa_r + W_hz^T δa_z + W_hn^T (r ⊙ δa_n)."""
        import numpy as np

        (u_h,) = u
        H = u_h.shape[-1]
        if dA is None:
            dA = np.empty(u_h.shape[:-1] + (3 * H,), u_h.dtype)
        δa_n = np.multiply(u_h, k.K_n[t], out=dA[..., 2 * H :])
        np.multiply(u_h, k.K_z[t], out=dA[..., H : 2 * H])
        np.multiply(δa_n, k.K_r[t], out=dA[..., :H])
        rows = dA.copy()
        rows[..., 2 * H :] *= k.r[t]  # what W_hn saw: r ⊙ δa_n
        before = rows @ w.W_hh
        before += u_h * k.z[t]
        return dA, (before,), (u_h,)

    def jvp(self, k: GRUSteps, t, w, v):
        """J_t v = z ⊙ v + K_z ⊙ (W_hz v) + K_n ⊙ (r ⊙ (W_hn v) + K_r ⊙ (W_hr v))."""
        (v_h,) = v
        H = v_h.shape[-1]
        y = v_h @ w.W_hh.T
        y_r, y_z, y_n = y[..., :H], y[..., H : 2 * H], y[..., 2 * H :]
        return (k.z[t] * v_h + k.K_z[t] * y_z + k.K_n[t] * (k.r[t] * y_n + k.K_r[t] * y_r),)

    def hh_factors(self, fw, dA):
        """r, z rows: δa_k h_{k-1}^T; n rows: (r_k ⊙ δa_n,k) h_{k-1}^T, since a_n = ... + r ⊙ (W_hn h + b_hn)."""
        H, L = fw.H.shape[1], dA.shape[-2]
        Hp, r = fw.H_prev[:L], fw.act["r"][:L]
        return [(slice(0, 2 * H), dA[..., : 2 * H], Hp), (slice(2 * H, 3 * H), r * dA[..., 2 * H :], Hp)]

    def equations_at(self, w, x, entry, t, j, prev, activation="tanh"):
        H = entry.h.shape[1]
        hp = f"h_{{{prev}}}"
        h_prev = previous(entry.h, entry.h0, entry.direction, t)

        def gate(g: str, k: int, terms) -> Equation:
            return Equation(f"{g}_t", self.gate_fn(g), tuple(terms), float(entry.preacts[g][t, j]),
                            float(entry.gates[g][t, j]))  # fmt: skip

        eqs = [gate("r", 0, affine_terms(w, x, h_prev, 0, H, j, ("ir", "hr"), hp)),
               gate("z", 1, affine_terms(w, x, h_prev, 1, H, j, ("iz", "hz"), hp))]  # fmt: skip
        terms = [Term("W_in x_t", float(unit_row(w, "W_ih", 2, H, j) @ x))]
        b_in = unit_row(w, "b_ih", 2, H, j)
        if b_in is not None:
            terms.append(Term("b_in", float(b_in)))
        terms += self.reset_terms(w, entry, t, j, h_prev, hp)
        eqs.append(gate("n", 2, terms))
        z, n = float(entry.gates["z"][t, j]), float(entry.gates["n"][t, j])
        eqs.append(Equation("h_t", None, (
            Term("(1 - z_t) n_t", (1 - z) * n, (Factor("one_minus", (z,)), value(n))),
            Term(f"z_t {hp}", z * h_prev[j], (value(z), value(h_prev[j]))),
        ), None, float(entry.h[t, j])))  # fmt: skip
        return ((hp, float(h_prev[j])),), tuple(eqs)

    def reset_terms(self, w, entry, t, j, h_prev, hp) -> list[Term]:
        """The recurrent part of a_n at unit j: r_t (W_hn h_{t-1} + b_hn)."""
        H = entry.h.shape[1]
        r = float(entry.gates["r"][t, j])
        wh = float(unit_row(w, "W_hh", 2, H, j) @ h_prev)
        b = unit_row(w, "b_hh", 2, H, j)
        if b is None:
            return [Term(f"r_t (W_hn {hp})", r * wh, (value(r), value(wh)))]
        b_hn = float(b)
        return [Term(f"r_t (W_hn {hp} + b_hn)", r * (wh + b_hn), (value(r), Factor("sum", (wh, b_hn))))]


CELL = GRU(
    name="gru",
    summary="GRU, PyTorch's placement: reset gate applied after the recurrent product",
    gates=("r", "z", "n"),
    gate_fns=("σ", "σ", "tanh"),
    keep_gates=(("z", 1),),
    presets=(("forget", "z", 1.0), ("input", "r", 0.0)),  # z = 1 keeps h_{t-1}; r = 0 ignores it in n_t
    equations=(
        "r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)",
        "z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)",
        "n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))",
        "h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}",
    ),
    tensors="weight_ih_l{k} (3H, I), weight_hh_l{k} (3H, H), biases (3H); rows r, z, n",
    fused="GRU",
)
