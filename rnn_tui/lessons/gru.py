"""Lesson 5, the GRU: the update gate z decides how much of h_{t-1} to keep, the reset gate r how
much of it the candidate n_t sees — and PyTorch puts r in a different place than the textbook.

One set of weights, traced twice: as torch.nn.GRU computes it (cell "gru") and as Cho et al. write
it (cell "gru-textbook"). The step-0 difference is worked by hand from the weights.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import trace_tokens
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, table

TEXT = list("abcabcab")
HIDDEN = 4
SEED = 7


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def build(ctx: Context) -> None:
    import torch

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import Intervention

    r = ctx.results
    vocab = sorted(set(TEXT))
    V = len(vocab)
    index = {c: k for k, c in enumerate(vocab)}
    targets = [index[c] for c in TEXT[1:]] + [None]
    cfg = ModelConfig(cell="gru", input_size=V, hidden_size=HIDDEN, output_size=V, vocab_size=V)
    torch_model = build_model(cfg, seed=SEED).double()
    textbook = build_model(cfg.replace(cell="gru-textbook"), seed=0).double()
    textbook.load_tensors(torch_model.tensors())  # the very same numbers, by the same names
    ctx.progress("tracing both placements")
    a = trace_tokens(torch_model, TEXT, vocab, targets)
    b = trace_tokens(textbook, TEXT, vocab, targets)
    ctx.traces["main"], ctx.traces["textbook"] = a, b
    ha, hb = a.layers[0].h, b.layers[0].h
    diff = np.abs(ha - hb).max(axis=1)  # (T,)
    r["diff0"] = float(diff[0])
    r["diff_max"] = float(diff.max())
    r["diff_step"] = int(diff.argmax())
    r["params_equal"] = all(np.array_equal(a.params[k], b.params[k]) for k in a.params)

    # step 0 by hand: h_{-1} = 0, so torch's n = tanh(W_in x + b_in + r ⊙ b_hn), the textbook's
    # n = tanh(W_in x + b_in + b_hn); z and r are the same in both
    P = a.params
    H = HIDDEN
    x = np.eye(V)[index[TEXT[0]]]
    gi = P["weight_ih_l0"] @ x + P["bias_ih_l0"]  # (3H,) r, z, n rows
    b_hr, b_hz, b_hn = np.split(P["bias_hh_l0"], 3)
    rr = _sigmoid(gi[:H] + b_hr)
    zz = _sigmoid(gi[H : 2 * H] + b_hz)
    n_torch = np.tanh(gi[2 * H :] + rr * b_hn)
    n_book = np.tanh(gi[2 * H :] + b_hn)
    h_torch = (1 - zz) * n_torch
    h_book = (1 - zz) * n_book
    r["hand_error"] = float(max(np.abs(h_torch - ha[0]).max(), np.abs(h_book - hb[0]).max()))
    j = int(np.argmax(np.abs(h_torch - h_book)))
    r["j"] = j
    r["r0"], r["z0"], r["b_hn"] = float(rr[j]), float(zz[j]), float(b_hn[j])
    r["n_torch"], r["n_book"] = float(n_torch[j]), float(n_book[j])
    r["h_torch"], r["h_book"] = float(h_torch[j]), float(h_book[j])
    r["q_same"] = 0 if r["diff0"] < 1e-12 else 1

    # the update gate: the step and unit where z most clearly picks one of h_{t-1} and n_t
    z = a.layers[0].gates["z"]
    hp = a.layers[0].h_prev
    n = a.layers[0].gates["n"]
    clear = (np.abs(z - 0.5) * np.abs(hp - n))[1:]
    t_, u_ = np.unravel_index(int(np.argmax(clear)), clear.shape)
    t_ = int(t_) + 1
    u_ = int(u_)
    r["zt"], r["zu"] = t_, u_
    r["z_hi"] = float(z[t_, u_])
    r["z_hprev"], r["z_n"], r["z_h"] = float(hp[t_, u_]), float(n[t_, u_]), float(a.layers[0].h[t_, u_])
    r["q_keep"] = 0 if abs(r["z_h"] - r["z_hprev"]) < abs(r["z_h"] - r["z_n"]) else 1

    # hold z = 1: h_t = h_{t-1} at every step, so h never leaves h_{-1} = 0
    held = trace_tokens(torch_model, TEXT, vocab, targets, interventions=[Intervention("gate", "z", 1.0)])
    ctx.traces["z-held"] = held
    r["held_max"] = float(np.abs(held.layers[0].h).max())

    ctx.figures["placements"] = table(
        [[str(t), TEXT[t], " ".join(f"{v:+.3f}" for v in ha[t]), " ".join(f"{v:+.3f}" for v in hb[t]), f"{diff[t]:.1e}"]
         for t in range(len(TEXT))],
        ["t", "x", "h_t  torch (gru)", "h_t  textbook", "max |Δ|"],
    )
    with torch.no_grad():
        r["n_params"] = int(torch_model.num_parameters())


STEPS_ = (
    Step(
        "Two gates",
        "A GRU keeps one state and mixes: h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{{t-1}}. The update gate z_t = 1 keeps the old "
        "state, z_t = 0 takes the candidate n_t. The reset gate r_t decides how much of h_{{t-1}} the candidate sees. "
        "Here: {hidden} units, seed {seed}, the input {text}, {n_params} parameters.",
        tries=("Press v to step through the heatmaps r, z, n, h.",),
        trace="main",
        at={"step": 0, "matrix": "z"},
    ),
    Step(
        "Predict: keep or replace",
        "At step {zt}, unit {zu}: h_{{t-1}} = {z_hprev:+.3f}, the candidate n_t = {z_n:+.3f}, and z_t = {z_hi:.3f}.",
        question=Question(
            "Is h_t closer to h_{{t-1}} or to n_t?",
            ("to h_{{t-1}}", "to n_t"),
            "q_keep",
            "h_t = (1 - {z_hi:.3f}) · {z_n:+.3f} + {z_hi:.3f} · {z_hprev:+.3f} = {z_h:+.3f}.",
        ),
        trace="main",
        at={"step": "zt", "unit": "zu", "matrix": "z"},
    ),
    Step(
        "Where does r go?",
        "torch.nn.GRU:  n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{{t-1}} + b_hn))\n"
        "textbook:      n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{{t-1}}) + b_hn)\n"
        "Same weights, same names. At step 0 the state before is h_{{-1}} = 0.",
        question=Question(
            "With h_{{-1}} = 0, do the two placements give the same h_0?",
            ("yes, r multiplies zero either way", "no"),
            "q_same",
            "No: torch's r also scales the bias b_hn. For unit {j}: r = {r0:.3f}, b_hn = {b_hn:.3f}, "
            "n = tanh(… + {r0:.3f}·({b_hn:.3f})) = {n_torch:+.4f} against tanh(… + ({b_hn:.3f})) = {n_book:+.4f}; "
            "with z = {z0:.3f}, h_0 = {h_torch:+.4f} against {h_book:+.4f}. (By hand = traced, to {hand_error:.0e}.)",
        ),
        trace="main",
        at={"step": 0, "unit": "j", "matrix": "n"},
    ),
    Step(
        "The two runs",
        "The states part from step 0 and the gap grows to {diff_max:.3f} at step {diff_step}. Neither is wrong: they "
        "are two different cells. Weights trained in PyTorch are only right for PyTorch's placement.",
        figure="placements",
        tries=("Switch between this trace and the next one (the textbook's) in the lesson pane.",),
        trace="textbook",
    ),
    Step(
        "Hold the update gate at 1",
        "With z_t = 1 at every step, h_t = h_{{t-1}}: the state never leaves h_{{-1}} = 0 (largest |h| here: {held_max:.1e}), "
        "whatever the input. The gradient then flows back unchanged — and nothing is learned from the input.",
        trace="z-held",
        at={"matrix": "h"},
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("both runs use identical weights", r["params_equal"]),
        Check("step 0 by hand equals both traces to 1e-12", r["hand_error"] < 1e-12),
        Check("the placements differ already at step 0", r["diff0"] > 1e-6),
        Check("holding z = 1 keeps h at 0", r["held_max"] < 1e-12),
    ]


def _build(ctx: Context) -> None:
    ctx.results.update(hidden=HIDDEN, seed=SEED, text="".join(TEXT))
    build(ctx)


LESSON = Lesson(
    name="gru",
    title="GRU: update and reset gates, and where the reset goes",
    summary="one set of GRU weights under torch's and the textbook's reset placement, worked at step 0",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
