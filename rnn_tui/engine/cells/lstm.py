"""The LSTM (Hochreiter & Schmidhuber), with the optional diagonal peepholes of Gers & Schmidhuber
(`lstm_peephole.py` registers that variant; the maths is shared and written once, here):

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi [+ w_ci ⊙ c_{t-1}])
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf [+ w_cf ⊙ c_{t-1}])
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho [+ w_co ⊙ c_t])
    h_t = o_t ⊙ tanh(c_t)

The state is s_t = [h_t; c_t]. The derivatives, with ⊙ on a matrix scaling its rows:

    K_i = g σ'(a_i),  K_f = c_{t-1} σ'(a_f),  K_g = i tanh'(a_g)      (∂c_t / ∂a_i, a_f, a_g)
    K_o = tanh(c_t) σ'(a_o),  K_c = o tanh'(c_t) [+ K_o w_co]         (∂h_t / ∂a_o, ∂h_t / ∂c_t)
    ∂c_t/∂c_{t-1} = f_t [+ K_i w_ci + K_f w_cf]
    J_t = [[K_o ⊙ W_ho + K_c ⊙ dc/dh,  diag(K_c ∂c_t/∂c_{t-1})],
           [dc/dh,                      diag(∂c_t/∂c_{t-1})]]      dc/dh = K_i ⊙ W_hi + K_f ⊙ W_hf + K_g ⊙ W_hg
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnn_tui.engine.cells.base import (
    Cell, Equation, Factor, LayerForward, LayerGrads, Steps, Term, Weight, affine, affine_terms, fused_states,
    input_part, keep, previous, sigmoid, value, σ, tanh,
)  # fmt: skip

PEEPHOLES = (
    Weight("w_ci", "weight_ci", ("H",)),
    Weight("w_cf", "weight_cf", ("H",)),
    Weight("w_co", "weight_co", ("H",)),
)


def lstm_cell(x, h, c, W_ih, W_hh, b_ih=None, b_hh=None, w_ci=None, w_cf=None, w_co=None, edit=keep):
    """One LSTM step (peepholes when w_ci, w_cf, w_co are given): ((h_t, c_t), gates).

    gates: name -> (pre-activation, activation). `edit(name, value)` sees each gate's activation
    and each new state ("h", "c") as soon as it is computed and may replace it (an intervention).
    """
    a_i, a_f, a_g, a_o = (affine(x, W_ih, b_ih) + affine(h, W_hh, b_hh)).chunk(4, dim=-1)
    if w_ci is not None:
        a_i = a_i + w_ci * c
        a_f = a_f + w_cf * c
    i, f, g = edit("i", σ(a_i)), edit("f", σ(a_f)), edit("g", tanh(a_g))
    c_t = edit("c", f * c + i * g)
    if w_co is not None:
        a_o = a_o + w_co * c_t
    o = edit("o", σ(a_o))
    h_t = edit("h", o * tanh(c_t))
    return (h_t, c_t), {"i": (a_i, i), "f": (a_f, f), "g": (a_g, g), "o": (a_o, o)}


@dataclass(frozen=True)
class LSTMSteps(Steps):
    K_ifg: Any  # (T, 3, H) ∂c_t/∂a_i, ∂c_t/∂a_f, ∂c_t/∂a_g
    K_o: Any  # (T, H) ∂h_t/∂a_o
    K_c: Any  # (T, H) ∂h_t/∂c_t (through tanh(c_t), and o_t's peephole)
    dcdc: Any  # (T, H) ∂c_t/∂c_{t-1}


def _blocks(a, H: int):
    """The (..., 4H) array's i, f, g rows as a (..., 3, H) view (never a copy), and its o rows."""
    ifg = a[..., : 3 * H]
    ifg.shape = a.shape[:-1] + (3, H)  # raises rather than copy: the deltas are written through this view
    return ifg, a[..., 3 * H :]


@dataclass(frozen=True)
class LSTM(Cell):
    def step(self, x, state, w, activation="tanh", edit=keep):
        (h, c), gates = lstm_cell(x, state[0], state[1], w.W_ih, w.W_hh, w.b_ih, w.b_hh,
                                  w["w_ci"], w["w_cf"], w["w_co"], edit)  # fmt: skip
        return (h, c), gates

    def forward(self, w, X, h0, c0=None, activation="tanh", *, layer=0, reverse=False) -> LayerForward:
        """Every gate and state. Without peepholes, torch's fused kernel gives the h's; the gates of
        every step then come from one product, since they read only (x_t, h_{t-1}), and
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t is an elementwise pass. With peepholes, a numpy loop."""
        import numpy as np

        T, H = X.shape[0], np.shape(w.W_hh)[1]
        A = input_part(w, X)  # (T, 4H) pre-activations, filled in below
        if w.b_hh is not None:
            A += w.b_hh
        G = np.empty_like(A)  # (T, 4H) activations
        Gi, Go = _blocks(G, H)
        C = np.empty((T, H), A.dtype)
        if self.torch_native(activation) and w["w_ci"] is None:
            Hs = fused_states("LSTM", w, X, h0, c0)
            A += np.concatenate([np.asarray(h0)[None], Hs[:-1]]) @ w.W_hh.T
            sigmoid(A[:, : 2 * H], out=G[:, : 2 * H])
            np.tanh(A[:, 2 * H : 3 * H], out=G[:, 2 * H : 3 * H])
            sigmoid(A[:, 3 * H :], out=Go)
            ig = Gi[:, 0] * Gi[:, 2]
            f = Gi[:, 1]
            c = np.asarray(c0)
            for t in range(T):
                c = np.multiply(f[t], c, out=C[t])
                c += ig[t]
        else:
            Hs = np.empty((T, H), A.dtype)
            W_hh_T = np.ascontiguousarray(w.W_hh.T)  # (H, 4H): h @ W_hh^T reads it row by row
            w_ci, w_cf, w_co = w["w_ci"], w["w_cf"], w["w_co"]
            h, c = np.asarray(h0), np.asarray(c0)
            tc = np.empty(H, A.dtype)
            for t in range(T):
                a, g = A[t], G[t]
                a += h @ W_hh_T
                if w_ci is not None:
                    a[:H] += w_ci * c
                    a[H : 2 * H] += w_cf * c
                sigmoid(a[: 2 * H], out=g[: 2 * H])
                np.tanh(a[2 * H : 3 * H], out=g[2 * H : 3 * H])
                c = np.multiply(g[H : 2 * H], c, out=C[t])
                c += g[:H] * g[2 * H : 3 * H]
                if w_co is not None:
                    a[3 * H :] += w_co * c
                sigmoid(a[3 * H :], out=g[3 * H :])
                h = np.multiply(g[3 * H :], np.tanh(c, out=tc), out=Hs[t])
        pre = {n: A[:, k * H : (k + 1) * H] for k, n in enumerate(self.gates)}
        act = {n: G[:, k * H : (k + 1) * H] for k, n in enumerate(self.gates)}
        return self.record(w, X, Hs, C, pre, act, h0, c0, activation, layer, reverse)

    def coefficients(self, fw: LayerForward) -> LSTMSteps:
        import numpy as np

        i, f, g, o = (fw.act[n] for n in self.gates)
        tc = np.tanh(fw.C)
        K_o = tc * o * (1 - o)
        K_c = o * (1 - tc * tc)
        T, H = i.shape
        K_ifg = np.empty((T, 3, H), i.dtype)
        np.multiply(g * i, 1 - i, out=K_ifg[:, 0])
        np.multiply(fw.C_prev * f, 1 - f, out=K_ifg[:, 1])
        np.multiply(i, 1 - g * g, out=K_ifg[:, 2])
        dcdc = f
        w_ci, w_cf, w_co = fw.w["w_ci"], fw.w["w_cf"], fw.w["w_co"]
        if w_ci is not None:  # i_t and f_t also see c_{t-1}; o_t sees c_t
            dcdc = f + K_ifg[:, 0] * w_ci + K_ifg[:, 1] * w_cf
            K_c = K_c + K_o * w_co
        return LSTMSteps(K_ifg=K_ifg, K_o=K_o, K_c=K_c, dcdc=dcdc)

    def vjp(self, k: LSTMSteps, t, w, u, dA=None):
        """δc_t = δh_t ⊙ K_c + dL/dc_t (later);  δa_{i,f,g} = δc_t ⊙ K_{i,f,g};  δa_o = δh_t ⊙ K_o;
        dL/dh_{t-1} = W_hh^T δa_t;  dL/dc_{t-1} = δc_t ⊙ ∂c_t/∂c_{t-1}."""
        import numpy as np

        u_h, u_c = u
        H = u_h.shape[-1]
        if dA is None:
            dA = np.empty(u_h.shape[:-1] + (4 * H,), u_h.dtype)
        dA_ifg, dA_o = _blocks(dA, H)
        δc = u_h * k.K_c[t]
        δc += u_c  # all paths into c_t: via h_t (and o_t), and via c_{t+1}
        np.multiply(δc[..., None, :], k.K_ifg[t], out=dA_ifg)
        np.multiply(u_h, k.K_o[t], out=dA_o)
        return dA, (dA @ w.W_hh, δc * k.dcdc[t]), (u_h, δc)

    def backward(self, fw: LayerForward, direct, final: tuple = ()) -> LayerGrads:
        """`Cell.backward` (a `vjp` per step), written out: the trace's LSTMs spend most of their
        time here, and per step the arithmetic is a few vectors of H, so every view is made once
        and every result written in place (a quarter faster). tests/test_cells.py holds the two equal."""
        import numpy as np

        k = self.coefficients(fw)
        T, H = fw.H.shape
        lead, dt = direct.shape[:-2], direct.dtype
        dH, dC = np.empty_like(direct), np.empty_like(direct)
        dA = np.empty(lead + (T, 4 * H), dt)
        final = tuple(final) + (None,) * (2 - len(final))
        carry_h, carry_c = (np.zeros(lead + (H,), dt) if g is None else np.array(g, dt) for g in final)
        per_step = lambda a: list(np.moveaxis(a, -2, 0))  # noqa: E731  views a[..., t, :]
        d_, h_, c_, a_ = per_step(direct), per_step(dH), per_step(dC), per_step(dA)
        ifg_, o_ = zip(*(_blocks(a, H) for a in a_))
        K_c, K_ifg, K_o, dcdc = list(k.K_c), list(k.K_ifg), list(k.K_o), list(k.dcdc)
        W_hh = fw.w.W_hh
        for t in reversed(range(T)):
            δh = np.add(d_[t], carry_h, out=h_[t])
            δc = np.multiply(δh, K_c[t], out=c_[t])
            δc += carry_c
            np.multiply(δc[..., None, :], K_ifg[t], out=ifg_[t])
            np.multiply(δh, K_o[t], out=o_[t])
            carry_h = a_[t] @ W_hh
            carry_c = np.multiply(δc, dcdc[t], out=carry_c)
        return LayerGrads(dH, dC, dA, carry_h, carry_c)

    def jvp(self, k: LSTMSteps, t, w, v):
        """dc = K_i (W_hi v_h) + K_f (W_hf v_h) + K_g (W_hg v_h) + ∂c/∂c_{t-1} v_c;  dh = K_o (W_ho v_h) + K_c dc."""
        v_h, v_c = v
        H = v_h.shape[-1]
        y = v_h @ w.W_hh.T  # (..., 4H)
        y_ifg, y_o = _blocks(y, H)
        dc = (k.K_ifg[t] * y_ifg).sum(-2) + k.dcdc[t] * v_c
        return (k.K_o[t] * y_o + k.K_c[t] * dc, dc)

    def extra_grads(self, fw, dA):
        if fw.w["w_ci"] is None:
            return {}
        H = fw.H.shape[1]
        sfx, L = fw.w.suffix, dA.shape[-2]
        return {  # a_i, a_f see c_{t-1}; a_o sees c_t
            f"weight_ci{sfx}": (dA[:, :H] * fw.C_prev[:L]).sum(0),
            f"weight_cf{sfx}": (dA[:, H : 2 * H] * fw.C_prev[:L]).sum(0),
            f"weight_co{sfx}": (dA[:, 3 * H :] * fw.C[:L]).sum(0),
        }

    def equations_at(self, w, x, entry, t, j, prev, activation="tanh"):
        import numpy as np

        H = entry.h.shape[1]
        hp, cp = f"h_{{{prev}}}", f"c_{{{prev}}}"
        h_prev = previous(entry.h, entry.h0, entry.direction, t)
        c_prev = previous(entry.c, entry.c0, entry.direction, t)
        c_t = float(entry.c[t, j])
        eqs = []
        for k, g in enumerate(self.gates):
            terms = affine_terms(w, x, h_prev, k, H, j, (f"i{g}", f"h{g}"), hp)
            peep = w["w_c" + g]
            if peep is not None:
                wv = float(np.asarray(peep, dtype=np.float64)[j])
                seen, label = (c_t, "c_t") if g == "o" else (c_prev[j], cp)
                terms.append(Term(f"w_c{g} {label}", wv * seen, (value(wv), value(seen))))
            eqs.append(Equation(f"{g}_t", self.gate_fn(g), tuple(terms), float(entry.preacts[g][t, j]),
                                float(entry.gates[g][t, j])))  # fmt: skip
        i, f, g_, o = (float(entry.gates[n][t, j]) for n in self.gates)
        eqs.append(Equation("c_t", None, (
            Term(f"f_t {cp}", f * c_prev[j], (value(f), value(c_prev[j]))),
            Term("i_t g_t", i * g_, (value(i), value(g_))),
        ), None, c_t))  # fmt: skip
        eqs.append(Equation("h_t", None, (Term("o_t tanh(c_t)", o * np.tanh(c_t), (value(o), Factor("tanh", (c_t,)))),),
                            None, float(entry.h[t, j])))  # fmt: skip
        return ((hp, float(h_prev[j])), (cp, float(c_prev[j]))), tuple(eqs)


CELL = LSTM(
    name="lstm",
    summary="LSTM: input, forget and output gates around an additive cell state c_t",
    gates=("i", "f", "g", "o"),
    gate_fns=("σ", "σ", "tanh", "σ"),
    states=("h", "c"),
    keep_gates=(("f", 1),),
    presets=(("forget", "f", 1.0), ("input", "i", 0.0)),
    equations=(
        "i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)",
        "f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)",
        "g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)",
        "o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)",
        "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t",
        "h_t = o_t ⊙ tanh(c_t)",
    ),
    tensors="weight_ih_l{k} (4H, I), weight_hh_l{k} (4H, H), biases (4H); rows i, f, g, o",
    fused="LSTM",
)
