"""Lesson 1, memory: how h_t carries the past. Two hand-set two-unit RNNs you can run on paper.

A linear ("identity") RNN with W_hh = diag(0.5, 0.9): unit 0 halves what it holds every step,
unit 1 keeps 90%. Then a tanh RNN with W_hh = 2 I: with nothing coming in, each unit has two stable
values (h = tanh(2h) at h = ±0.9575), so the pair is a two-bit memory; its phase portrait shows the
four attractors, the saddles between them and the state jumping from one to another.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import closest, hand_set_model, trace_tokens
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, table

LEAKY_VOCAB = ["a", "b", "-"]
LEAKY_TEXT = list("a--b---")
FLIP_VOCAB = ["a", "b", "c", "d", "-"]
FLIP_TEXT = list("a--c---b---d---")
PUSH = 3.0  # how hard an input pushes a unit
SELF = 2.0  # the tanh units' self-weight: > 1 gives two stable values per unit


def leaky_model():
    from rnn_tui.engine.config import ModelConfig

    cfg = ModelConfig(cell="rnn", activation="identity", input_size=3, hidden_size=2, output_size=3,
                      vocab_size=3, bias=False)
    return hand_set_model(cfg, {
        "weight_ih_l0": [[1, 0, 0], [0, 1, 0]],  # 'a' writes 1 into unit 0, 'b' into unit 1, '-' nothing
        "weight_hh_l0": [[0.5, 0], [0, 0.9]],  # unit 0 keeps half, unit 1 keeps 90%
        "head.weight": np.zeros((3, 2)),
        "head.bias": np.zeros(3),
    })


def flipflop_model():
    from rnn_tui.engine.config import ModelConfig

    cfg = ModelConfig(cell="rnn", activation="tanh", input_size=5, hidden_size=2, output_size=5,
                      vocab_size=5, bias=False)
    return hand_set_model(cfg, {
        # a, b push unit 0 up, down; c, d push unit 1 up, down; '-' pushes nothing
        "weight_ih_l0": [[PUSH, -PUSH, 0, 0, 0], [0, 0, PUSH, -PUSH, 0]],
        "weight_hh_l0": [[SELF, 0], [0, SELF]],
        "head.weight": np.zeros((5, 2)),
        "head.bias": np.zeros(5),
    })


def build(ctx: Context) -> None:
    from rnn_tui.engine.phase import portrait_from_trace

    r = ctx.results
    ctx.progress("tracing the linear RNN")
    leaky = trace_tokens(leaky_model(), LEAKY_TEXT, LEAKY_VOCAB)
    ctx.traces["main"] = leaky
    h = leaky.layers[0].h
    # on paper: after 'a' at step 0, unit 0 holds 0.5^k after k more steps; after 'b' at step 3,
    # unit 1 holds 0.9^k (plus unit 0's leftover halves on)
    paper = np.zeros_like(h)
    state = np.zeros(2)
    W = np.array([[0.5, 0], [0, 0.9]])
    for t, tok in enumerate(LEAKY_TEXT):
        state = W @ state + np.array([tok == "a", tok == "b"], dtype=float)
        paper[t] = state
    r["paper_error"] = float(np.abs(paper - h).max())
    r["h0_2"] = float(h[2, 0])
    r["h1_6"] = float(h[6, 1])
    r["q_halves_choices"] = (1.0, 0.5, 0.25, 0.0)
    r["q_halves"] = closest(r["q_halves_choices"], r["h0_2"])
    ctx.figures["leaky"] = table(
        [[str(t), tok, f"{h[t, 0]:.4f}", f"{paper[t, 0]:.4f}", f"{h[t, 1]:.4f}", f"{paper[t, 1]:.4f}"]
         for t, tok in enumerate(LEAKY_TEXT)],
        ["t", "x_t", "h_t[0] model", "on paper", "h_t[1] model", "on paper"],
    )

    ctx.progress("tracing the tanh flip-flop")
    flip = trace_tokens(flipflop_model(), FLIP_TEXT, FLIP_VOCAB)
    ctx.traces["flipflop"] = flip
    hf = flip.layers[0].h
    hold = len(FLIP_TEXT) - 1  # the last step reads '-': hold the input '-' fixed for the portrait
    ctx.phases["flipflop"] = p = portrait_from_trace(flip, hold)
    kinds = [fp.kind for fp in p.fixed_points]
    r["n_stable"] = kinds.count("stable")
    r["n_saddle"] = kinds.count("saddle")
    r["n_unstable"] = kinds.count("unstable")
    stable = [fp for fp in p.fixed_points if fp.kind == "stable"]
    r["attractor"] = float(abs(stable[0].h[0])) if stable else float("nan")
    r["attractor_check"] = float(np.tanh(SELF * r["attractor"]))
    r["stable_radius"] = float(stable[0].radius) if stable else float("nan")
    r["paper_radius"] = SELF * (1 - r["attractor"] ** 2)
    # where the state is after each '---' pause: one of the four corners
    pauses = [t for t in range(1, len(FLIP_TEXT)) if FLIP_TEXT[t] == "-" and (t + 1 == len(FLIP_TEXT) or FLIP_TEXT[t + 1] != "-")]
    corners = []
    for t in pauses:
        corners.append((t, "".join("+" if v > 1e-9 else "-" if v < -1e-9 else "0" for v in hf[t])))
    r["corners"] = ", ".join(f"after step {t}: ({c[0]},{c[1]})" for t, c in corners)
    r["final_h"] = f"({hf[-1, 0]:+.4f}, {hf[-1, 1]:+.4f})"
    r["after_b"] = float(hf[FLIP_TEXT.index("b"), 0])
    r["q_b_choices"] = ("stays near +0.96", "jumps towards -0.96", "goes to 0")
    r["q_b"] = 1 if hf[FLIP_TEXT.index("b") + 2, 0] < -0.5 else (0 if hf[FLIP_TEXT.index("b") + 2, 0] > 0.5 else 2)
    r["corner_signs"] = [c for _, c in corners]


STEPS = (
    Step(
        "A state that leaks",
        "A recurrent network keeps one vector, h_t, and rewrites it at every step from what it held "
        "and what it reads:  h_t = W_hh h_{{t-1}} + W_ih x_t   (a linear RNN, no bias, no squashing). "
        "Here W_ih sends 'a' into unit 0 and 'b' into unit 1, and W_hh = [[0.5, 0], [0, 0.9]]: "
        "unit 0 keeps half of what it held, unit 1 keeps 90%. The input is {text}.",
        tries=("Step with → and watch the two rows of the h heatmap fade at different speeds.",),
        trace="main",
        at={"step": 0, "unit": 0, "matrix": "h"},
    ),
    Step(
        "Predict, then check on paper",
        "At step 0 the model reads 'a': h_0 = (1, 0). Two '-' follow.",
        question=Question(
            "What does unit 0 hold at step 2?",
            ("1.00", "0.50", "0.25", "0.00"),
            "q_halves",
            "h_2[0] = 0.5 · 0.5 · 1 = {h0_2:.4f}: every step multiplies the past by W_hh.",
        ),
        trace="main",
        at={"step": 2, "unit": 0},
    ),
    Step(
        "The whole run, against the paper",
        "The model's numbers and the ones worked by hand agree to {paper_error:.1e}. "
        "Unit 1 still holds {h1_6:.4f} = 0.9^3 of 'b' three steps later; unit 0 forgot 'a' long ago. "
        "How long a memory lasts is set by W_hh: a factor of 0.5 per step forgets in a few steps.",
        figure="leaky",
        tries=("Press e to see the equations with these numbers for the selected unit.",),
        trace="main",
        at={"step": 6, "unit": 1},
    ),
    Step(
        "A memory that does not leak: two stable values",
        "Now h_t = tanh(W_hh h_{{t-1}} + W_ih x_t) with W_hh = 2 I. With nothing coming in ('-'), each unit "
        "solves h = tanh(2h): 0, or ±{attractor:.4f} (check: tanh(2 · {attractor:.4f}) = {attractor_check:.4f}). "
        "'a'/'b' push unit 0 up/down, 'c'/'d' unit 1. The input is {flip_text}.",
        question=Question(
            "Unit 0 sits near +0.96 after 'a'. The input 'b' pushes it down by 3. Two steps later it…",
            ("stays near +0.96", "jumps towards -0.96", "goes to 0"),
            "q_b",
            "tanh(2 · 0.96 - 3) = {after_b:.2f} at 'b', then the self-weight pulls it to -0.96 and it stays.",
        ),
        trace="flipflop",
        at={"step": 7, "unit": 0, "matrix": "h"},
    ),
    Step(
        "The phase portrait",
        "Hold the input '-' fixed and every state has a next state: the arrows. The map has "
        "{n_stable} stable points (●: the memories), {n_saddle} saddles (+) and {n_unstable} unstable point (○) at 0. "
        "At a stable point the Jacobian diag(1 - h²) W_hh has |λ| = 2 (1 - {attractor:.4f}²) = {paper_radius:.3f} < 1 "
        "(computed: {stable_radius:.3f}): a small push dies away, so the state stays. The path (cyan) hops "
        "between corners as the inputs arrive: {corners}.",
        phase="flipflop",
        tries=(
            "Step through the sequence: the ◉ moves along the path.",
            "Press i, type your own input from a b c d - (say a--d--b-), Enter: the same hand-set model runs it.",
        ),
        trace="flipflop",
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("the linear RNN equals the paper to 1e-9", r["paper_error"] < 1e-9),
        Check("unit 0 holds 0.25 two steps after 'a'", abs(r["h0_2"] - 0.25) < 1e-12),
        Check("the flip-flop has 4 stable points, 4 saddles, 1 unstable", (r["n_stable"], r["n_saddle"], r["n_unstable"]) == (4, 4, 1)),
        Check("a stable point solves h = tanh(2h)", abs(r["attractor"] - r["attractor_check"]) < 1e-9),
        Check("its |λ| is 2 (1 - h²) < 1", abs(r["stable_radius"] - r["paper_radius"]) < 1e-9 and r["stable_radius"] < 1),
        Check("the state goes (+,0), then to three of the corners", r["corner_signs"] == ["+0", "++", "-+", "--"]),
        Check("'b' flips unit 0 within two steps", r["q_b"] == 1),
    ]


def _build(ctx: Context) -> None:
    ctx.results["text"] = "".join(LEAKY_TEXT)
    ctx.results["flip_text"] = "".join(FLIP_TEXT)
    build(ctx)


LESSON = Lesson(
    name="memory",
    title="Memory: how h_t carries the past",
    summary="two hand-set two-unit RNNs you can check on paper, and a phase portrait of a 2-bit memory",
    build=_build,
    steps=STEPS,
    checks=checks,
)
