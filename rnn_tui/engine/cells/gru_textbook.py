"""The GRU in the textbook placement (Cho et al., 2014): the reset gate acts on h_{t-1} before
the recurrent product, not after it as in PyTorch.

    n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)

r_t, z_t and h_t are the GRU's (`gru.py`), and so are the tensors: the same weights run under
both placements. What changes, with ⊙ on a matrix scaling its rows:

    K_r = h_{t-1} σ'(a_r)                                   (∂(r ⊙ h_{t-1})/∂a_r)
    J_t = diag(z_t) + K_z ⊙ W_hz + K_n ⊙ W_hn (diag(r_t) + K_r ⊙ W_hr)

torch has no such module, so every step runs through these equations.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnn_tui.engine.cells.base import LayerForward, Term, input_part, sigmoid, unit_row
from rnn_tui.engine.cells.gru import GRU, GRUSteps


@dataclass(frozen=True)
class GRUTextbook(GRU):
    textbook = True

    def forward(self, w, X, h0, c0=None, activation="tanh", *, layer=0, reverse=False) -> LayerForward:
        import numpy as np

        T, H = X.shape[0], np.shape(w.W_hh)[1]
        A = input_part(w, X)  # (T, 3H)
        if w.b_hh is not None:
            A += w.b_hh  # every bias sits outside the reset gate here
        G = np.empty_like(A)
        Hs = np.empty((T, H), A.dtype)
        W_rz_T = np.ascontiguousarray(w.W_hh[: 2 * H].T)  # (H, 2H)
        W_hn_T = np.ascontiguousarray(w.W_hh[2 * H :].T)  # (H, H)
        h = np.asarray(h0)
        for t in range(T):
            a, g = A[t], G[t]
            a[: 2 * H] += h @ W_rz_T
            sigmoid(a[: 2 * H], out=g[: 2 * H])  # r, z
            a[2 * H :] += (g[:H] * h) @ W_hn_T  # + W_hn (r_t ⊙ h_{t-1})
            n = np.tanh(a[2 * H :], out=g[2 * H :])
            h = np.subtract(h, n, out=Hs[t])  # h_t = n_t + z_t ⊙ (h_{t-1} - n_t)
            h *= g[H : 2 * H]
            h += n
        return self._record(w, X, Hs, A, G, h0, activation, layer, reverse)

    def reset_factor(self, fw: LayerForward):
        """What σ'(a_r) multiplies: h_{t-1}, since r_t scales the state itself."""
        return fw.H_prev

    def vjp(self, k: GRUSteps, t, w, u, dA=None):
        """δa_n = δh ⊙ K_n;  δa_z = δh ⊙ K_z;  δ(r ⊙ h) = W_hn^T δa_n;  δa_r = δ(r ⊙ h) ⊙ K_r;
        dL/dh_{t-1} = z ⊙ δh + r ⊙ δ(r ⊙ h) + W_hr^T δa_r + W_hz^T δa_z."""
        import numpy as np

        (u_h,) = u
        H = u_h.shape[-1]
        if dA is None:
            dA = np.empty(u_h.shape[:-1] + (3 * H,), u_h.dtype)
        δa_n = np.multiply(u_h, k.K_n[t], out=dA[..., 2 * H :])
        np.multiply(u_h, k.K_z[t], out=dA[..., H : 2 * H])
        δrh = δa_n @ w.W_hh[2 * H :]  # dL/d(r ⊙ h_{t-1})
        np.multiply(δrh, k.K_r[t], out=dA[..., :H])
        before = dA[..., : 2 * H] @ w.W_hh[: 2 * H]
        before += u_h * k.z[t]
        before += δrh * k.r[t]
        return dA, (before,), (u_h,)

    def jvp(self, k: GRUSteps, t, w, v):
        """J_t v = z ⊙ v + K_z ⊙ (W_hz v) + K_n ⊙ W_hn (r ⊙ v + K_r ⊙ (W_hr v))."""
        (v_h,) = v
        H = v_h.shape[-1]
        y = v_h @ w.W_hh[: 2 * H].T
        inner = k.r[t] * v_h + k.K_r[t] * y[..., :H]
        return (k.z[t] * v_h + k.K_z[t] * y[..., H:] + k.K_n[t] * (inner @ w.W_hh[2 * H :].T),)

    def hh_factors(self, fw, dA):
        """r, z rows: δa_k h_{k-1}^T; n rows: δa_n,k (r_k ⊙ h_{k-1})^T, since a_n = ... + W_hn (r ⊙ h)."""
        H, L = fw.H.shape[1], dA.shape[-2]
        Hp, r = fw.H_prev[:L], fw.act["r"][:L]
        return [(slice(0, 2 * H), dA[..., : 2 * H], Hp), (slice(2 * H, 3 * H), dA[..., 2 * H :], r * Hp)]

    def reset_terms(self, w, entry, t, j, h_prev, hp) -> list[Term]:
        """The recurrent part of a_n at unit j: W_hn (r_t ⊙ h_{t-1}) + b_hn."""
        import numpy as np

        H = entry.h.shape[1]
        r_vec = np.asarray(entry.gates["r"][t], dtype=np.float64)  # (H,)
        terms = [Term(f"W_hn (r_t ⊙ {hp})", float(unit_row(w, "W_hh", 2, H, j) @ (r_vec * h_prev)))]
        b = unit_row(w, "b_hh", 2, H, j)
        if b is not None:
            terms.append(Term("b_hn", float(b)))
        return terms


CELL = GRUTextbook(
    name="gru-textbook",
    summary="GRU, textbook placement: reset gate applied to h_{t-1} before the product",
    gates=("r", "z", "n"),
    gate_fns=("σ", "σ", "tanh"),
    keep_gates=(("z", 1),),
    presets=(("forget", "z", 1.0), ("input", "r", 0.0)),  # z = 1 keeps h_{t-1}; r = 0 ignores it in n_t
    equations=(
        "r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)",
        "z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)",
        "n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)",
        "h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}",
    ),
    tensors="as gru (same tensors, so the same weights run under both placements)",
)
