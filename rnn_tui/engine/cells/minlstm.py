"""minLSTM (Feng et al., 2024, "Were RNNs All We Needed?"): an LSTM whose gates do not read h_{t-1}.

    f_t = σ(W_if x_t + b_if)
    i_t = σ(W_ii x_t + b_ii)
    n_t = W_in x_t + b_in
    h_t = f_t / (f_t + i_t) ⊙ h_{t-1} + i_t / (f_t + i_t) ⊙ n_t

weight_ih_l{k} (3H, I) and bias_ih_l{k} (3H) hold the rows f, i, n; there is no weight_hh and no
cell state (h_t plays both parts). The two gates are normalised to sum to 1, f'_t = f_t/(f_t+i_t)
and i'_t = 1 - f'_t, so h_t is a running weighted average and cannot grow past its inputs. The
recurrence is linear, a_t = f'_t and b_t = i'_t ⊙ n_t, and runs as the loop or the chunked scan.

The derivatives, with s_t = f_t + i_t:

    J_t = diag(f'_t)
    ∂h_t/∂a_f = (h_{t-1} - n_t) i_t σ'(a_f) / s_t²,   ∂h_t/∂a_i = -(h_{t-1} - n_t) f_t σ'(a_i) / s_t²,
    ∂h_t/∂a_n = i'_t
"""

from __future__ import annotations

from dataclasses import dataclass

from rnn_tui.engine.cells.base import Equation, Term, affine, keep, previous, sigmoid, value, σ
from rnn_tui.engine.cells.mingru import INPUT_ONLY, LinearRecurrence, input_terms


def minlstm_cell(x, h, W_ih, b_ih=None, edit=keep):
    """One minLSTM step: (h_t, {"f": (a_f, f_t), "i": (a_i, i_t), "n": (n_t, n_t)})."""
    a_f, a_i, a_n = affine(x, W_ih, b_ih).chunk(3, dim=-1)
    f, i = edit("f", σ(a_f)), edit("i", σ(a_i))
    n = edit("n", a_n)
    s = f + i
    h_t = edit("h", f / s * h + i / s * n)
    return h_t, {"f": (a_f, f), "i": (a_i, i), "n": (a_n, n)}


@dataclass(frozen=True)
class MinLSTM(LinearRecurrence):
    def step(self, x, state, w, activation="tanh", edit=keep):
        h, gates = minlstm_cell(x, state[0], w.W_ih, w.b_ih, edit)
        return (h,), gates

    def gates_of(self, A):
        H = A.shape[-1] // 3
        return {"f": sigmoid(A[..., :H].copy()), "i": sigmoid(A[..., H : 2 * H].copy()), "n": A[..., 2 * H :].copy()}

    def recurrence_of(self, act):
        f, i, n = act["f"], act["i"], act["n"]
        s = f + i
        return f / s, i / s * n

    def torch_ab(self, A):
        a_f, a_i, n = A.chunk(3, dim=-1)
        f, i = σ(a_f), σ(a_i)
        s = f + i
        return f / s, i / s * n

    def K_of(self, act, H_prev):
        import numpy as np

        f, i, n = act["f"], act["i"], act["n"]
        s = f + i
        d = (H_prev - n) / (s * s)
        return np.stack([d * i * f * (1.0 - f), -d * f * i * (1.0 - i), i / s], axis=-2)

    def equations_at(self, w, x, entry, t, j, prev, activation="tanh"):
        H = entry.h.shape[1]
        hp = f"h_{{{prev}}}"
        h_prev = previous(entry.h, entry.h0, entry.direction, t)
        eqs = []
        for k, g in enumerate(self.gates):
            eqs.append(Equation(f"{g}_t", self.gate_fn(g), tuple(input_terms(w, x, k, H, j, g)),
                                float(entry.preacts[g][t, j]), float(entry.gates[g][t, j])))  # fmt: skip
        f, i, n = (float(entry.gates[g][t, j]) for g in self.gates)
        fn, inn = f / (f + i), i / (f + i)
        eqs.append(Equation("h_t", None, (
            Term(f"f_t/(f_t+i_t) {hp}", fn * h_prev[j], (value(fn), value(h_prev[j]))),
            Term("i_t/(f_t+i_t) n_t", inn * n, (value(inn), value(n))),
        ), None, float(entry.h[t, j])))  # fmt: skip
        return ((hp, float(h_prev[j])),), tuple(eqs)


CELL = MinLSTM(
    name="minlstm",
    summary="minLSTM: gates read only x_t, f and i normalised to sum to 1; a linear scan",
    gates=("f", "i", "n"),
    gate_fns=("σ", "σ", ""),
    keep_gates=(("f", 1), ("i", -1)),  # f/(f + i) = σ(1)/(σ(1) + σ(-1)) = 0.73 at the start
    presets=(("forget", "f", 1.0), ("input", "i", 0.0)),  # f = 1 keeps 1/(1 + i) of h; i = 0 keeps all of it
    equations=(
        "f_t = σ(W_if x_t + b_if)",
        "i_t = σ(W_ii x_t + b_ii)",
        "n_t = W_in x_t + b_in",
        "h_t = f_t/(f_t + i_t) ⊙ h_{t-1} + i_t/(f_t + i_t) ⊙ n_t",
    ),
    tensors="weight_ih_l{k} (3H, I), bias_ih_l{k} (3H); rows f, i, n; no weight_hh",
    weights=INPUT_ONLY,
    recurrence="none",
    step_jacobian="diag(f_t/(f_t+i_t))",
    scans=("sequential", "parallel"),
)
