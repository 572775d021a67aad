"""Lesson 4, LSTM gates on a memory task: the forget gate holding while the model remembers.

An LSTM is trained live on the recall task (a symbol, N distractor digits, then "?": name the
symbol). Before training its forget gates sit near 0.5; after, they stay near 1 through the
distractors, and the cell state carries the symbol to the cue. Closing the forget gates for one
step (an intervention: f = 0) erases the memory and the answer changes.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, sparkline, table

DISTANCE = 12
SYMBOLS = 4
HIDDEN = 16
STEPS = 300
PROBES = 24  # examples used to find the memory unit


def build(ctx: Context) -> None:
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.trace import Intervention, run_trace

    r = ctx.results
    task = get_task("recall", distance=DISTANCE, symbols=SYMBOLS)
    cfg = task.model_config(cell="lstm", hidden=HIDDEN)
    ex = task.example(seed=1)
    tokens = ex.tokens
    labels = task.output_labels

    def trace(model, interventions=()):
        return run_trace(model, ex.x, ex.targets, tokens=tokens, vocab=labels, dtype="float64",
                         interventions=interventions)

    from rnn_tui.engine.model import build_model

    # torch's own initialisation (forget gates near σ(0) = 0.5), so training has to open them
    before = trace(build_model(cfg, seed=0))
    trainer, res, _, _ = train(task, cfg, model=build_model(cfg, seed=0), steps=STEPS, lr=1e-2, ctx=ctx,
                               label=f"an LSTM ({HIDDEN} units) on recall")
    after = trace(trainer.model)
    ctx.traces["untrained"] = before
    ctx.traces["main"] = after
    r["accuracy"] = float(res.metric)
    r["train_time"] = res.elapsed
    inner = slice(1, len(tokens) - 1)  # the distractor steps
    r["f_before"] = float(before.layers[0].gates["f"][inner].mean())
    r["f_after"] = float(after.layers[0].gates["f"][inner].mean())

    # the memory unit: its c at the cue differs most between symbols, over many examples
    C, ys = [], []
    for s in range(PROBES):
        e = task.example(seed=100 + s)
        t = run_trace(trainer.model, e.x, e.targets, tokens=e.tokens, vocab=labels, dtype="float64")
        C.append(t.layers[0].c[-2])
        ys.append(int(e.x[0]))
    C, ys = np.array(C), np.array(ys)
    means = np.array([C[ys == k].mean(0) if (ys == k).any() else np.zeros(HIDDEN) for k in range(SYMBOLS)])
    spread = means.std(0) / (C.std(0) + 1e-9)
    j = int(np.argmax(spread * after.layers[0].gates["f"][inner].mean(0)))
    r["unit"] = j
    L = after.layers[0]
    f_j = L.gates["f"][inner, j]
    r["f_unit_min"] = float(f_j.min())
    r["f_unit_mean"] = float(f_j.mean())
    r["c_start"] = float(L.c[0, j])
    r["c_cue"] = float(L.c[-2, j])
    r["c_symbol_table"] = ", ".join(f"{labels[k]}: {means[k, j]:+.2f}" for k in range(SYMBOLS))
    r["symbol"] = tokens[0]
    probs = after.probs[0]
    r["answer"] = labels[int(np.argmax(probs))]
    r["answer_p"] = float(probs.max())
    r["f_spark"] = sparkline(list(f_j), lo=0.0, hi=1.0)
    r["f_spark_before"] = sparkline(list(before.layers[0].gates["f"][inner, j]), lo=0.0, hi=1.0)
    nxt = 6
    r["q_step"] = nxt - 1
    r["q_f_next"] = float(L.gates["f"][nxt, j])
    r["q_hold"] = 0 if r["q_f_next"] > 0.5 else 1

    # interventions: close every forget gate at one step in the middle, then from there on
    cut = len(tokens) // 3
    target = int(ex.targets[0])
    once = trace(trainer.model, [Intervention("gate", "f", 0.0, start=cut, stop=cut + 1)])
    held = trace(trainer.model, [Intervention("gate", "f", 0.0, start=cut)])
    ctx.traces["erased"] = held
    r["cut"] = cut
    r["true_p"] = float(probs[target])
    r["once_p_true"] = float(once.probs[0][target])
    r["held_p_true"] = float(held.probs[0][target])
    r["held_answer"] = labels[int(np.argmax(held.probs[0]))]
    r["held_p"] = float(held.probs[0].max())
    r["c_after_cut"] = float(held.layers[0].c[cut, j])
    r["c_end_held"] = float(held.layers[0].c[-2, j])
    r["once_says"] = (
        "one step is not enough: h_{t-1} still knows the symbol and writes it back through i ⊙ g"
        if r["once_p_true"] > 0.8 * r["true_p"]
        else "one step already hurts: the symbol was mostly in c"
    )
    r["held_says"] = (
        f"the model now answers {r['held_answer']!r} ({r['held_p']:.2f})"
        if r["held_answer"] != tokens[0]
        else f"it still leans to {tokens[0]!r}, at {r['held_p']:.2f}: what is left is in h alone"
    )
    ctx.figures["gates"] = "\n".join(
        [
            f"unit {j}: forget gate f over the {DISTANCE} distractors (▁ = 0, █ = 1)",
            f"  untrained  {r['f_spark_before']}   mean f (all units) {r['f_before']:.2f}",
            f"  trained    {r['f_spark']}   mean f (all units) {r['f_after']:.2f}",
            "",
            table([[labels[k], f"{means[k, j]:+.2f}"] for k in range(SYMBOLS)], ["symbol", f"c[{j}] at the cue (mean)"]),
        ]
    )


STEPS_ = (
    Step(
        "The task",
        "Each sequence is a symbol, {distance} random digits, then '?': the model must name the symbol. "
        "An LSTM with {hidden} units trained for {steps} steps, live, just now ({train_time:.1f} s): accuracy {accuracy:.0%}. "
        "Here the symbol is {symbol!r}; at the cue the model answers {answer!r} ({answer_p:.2f}).",
        tries=("The f heatmap is in focus: step through the distractors with → and watch which rows stay bright.",),
        trace="main",
        at={"step": 0, "matrix": "f"},
    ),
    Step(
        "The forget gate holds",
        "c_t = f_t ⊙ c_{{t-1}} + i_t ⊙ g_t. Unit {unit} carries the symbol: its c is {c_start:+.2f} after the symbol and "
        "{c_cue:+.2f} at the cue; its forget gate stays between {f_unit_min:.2f} and 1 (mean {f_unit_mean:.2f}), so what c "
        "holds survives every step. Its value at the cue tells the symbols apart: {c_symbol_table}.",
        figure="gates",
        trace="main",
        at={"unit": "unit", "matrix": "c", "step": 1},
    ),
    Step(
        "Predict",
        "You are at step {q_step}, in the middle of the distractors.",
        question=Question(
            "At the next step, will unit {unit}'s forget gate stay open (f > 0.5)?",
            ("yes, it keeps holding", "no, it closes"),
            "q_hold",
            "f = {q_f_next:.3f}. Training opened the forget gates: over the distractors their mean went from "
            "{f_before:.2f} (torch's initialisation, σ(≈0)) to {f_after:.2f}.",
        ),
        trace="main",
        at={"unit": "unit", "matrix": "f", "step": "q_step"},
    ),
    Step(
        "Close it",
        "Hold every forget gate at 0 for one step (step {cut}): the right answer {symbol!r} goes from {true_p:.2f} "
        "to {once_p_true:.2f} — {once_says}. "
        "Hold f at 0 from step {cut} to the end: c can keep nothing from one step to the next (c[{unit}] ends at "
        "{c_end_held:+.2f}), and {symbol!r} falls to {held_p_true:.2f}; {held_says}.",
        tries=(
            "Compare with the untouched trace: nothing differs before step {cut}.",
            "Press i and type a sequence of your own for the trained model, e.g. C0123012301?, then Enter.",
        ),
        trace="erased",
        at={"unit": "unit", "matrix": "c", "step": "cut"},
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("the LSTM learned the task (accuracy >= 90%)", r["accuracy"] >= 0.9),
        Check("training opened the forget gates (mean f up by 0.2)", r["f_after"] > r["f_before"] + 0.2),
        Check("the memory unit's forget gate stays above 0.8", r["f_unit_min"] > 0.8),
        Check("holding the forget gates shut costs the answer at least 0.3 of probability", r["held_p_true"] < r["true_p"] - 0.3),
    ]


def _build(ctx: Context) -> None:
    ctx.results.update(distance=DISTANCE, hidden=HIDDEN, steps=STEPS)
    build(ctx)


LESSON = Lesson(
    name="lstm-gates",
    title="LSTM gates on a memory task",
    summary="train an LSTM on recall live; watch its forget gate hold the symbol, then cut it",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
