"""Lesson 3, exploding gradients and clipping.

A tanh RNN on the adding problem, its W_hh scaled to spectral radius 3 (the recurrence amplifies),
trained with plain SGD at a high learning rate: the gradient norm spikes, one update throws the
weights far away and the loss becomes NaN. The same run (same seed, same batches) with the
gradient norm clipped to 1 before each update, g <- g min(1, 1/||g||), finishes.
"""

from __future__ import annotations

import math

import numpy as np

from rnn_tui.lessons._kit import train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, sparkline, table

SEQ_LEN = 30
HIDDEN = 16
RADIUS = 3.0
LR = 0.2
STEPS = 300
CLIP = 1.0


def _model(task):
    import torch

    from rnn_tui.engine.model import build_model

    cfg = task.model_config(cell="rnn", hidden=HIDDEN, activation="tanh")
    model = build_model(cfg, seed=0)
    with torch.no_grad():
        W = model.tensors()["weight_hh_l0"]
        W.mul_(RADIUS / torch.linalg.eigvals(W).abs().max())  # spectral radius -> RADIUS
    return cfg, model


def build(ctx: Context) -> None:
    import torch

    from rnn_tui.engine.gradflow import clip_preview, full_gradients
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.trace import run_trace

    r = ctx.results
    task = get_task("adding", seq_len=SEQ_LEN)
    ex = task.example(seed=3)

    # the model before training: one sequence, its gradient, and what clipping would do to it
    cfg, model = _model(task)
    before = run_trace(model, ex.x, ex.targets, tokens=ex.tokens, dtype="float64")
    ctx.traces["main"] = before
    grads = full_gradients(before)
    prev = clip_preview(grads, CLIP)
    r["norm0"] = prev.norm_before
    r["scale0"] = prev.scale
    dh = np.linalg.norm(before.layers[0].dL_dh, axis=1)
    r["dh_first"], r["dh_last"] = float(dh[0]), float(dh[-1])
    r["wins"] = "the squashing wins" if dh[0] < dh[-1] else "the stretching wins"

    # the run without clipping
    cfg, model = _model(task)
    _, res, norms, losses = train(task, cfg, model=model, steps=STEPS, lr=LR, optimizer="sgd", momentum=0.0,
                                  clip=None, ctx=ctx, label="without clipping")
    r["plain_status"] = res.status
    r["plain_step"] = res.diverged_at if res.diverged_at is not None else -1
    finite = [n for n in norms if math.isfinite(n)]
    r["plain_max_norm"] = max(finite) if finite else float("nan")
    r["plain_message"] = res.message.split("; try")[0]  # the trainer's CLI hint is not for this page
    r["plain_spark"] = sparkline([math.log10(n) if n > 0 and math.isfinite(n) else float("nan") for n in norms])
    diverged_model = model
    ctx.traces["diverged"] = run_trace(diverged_model, ex.x, ex.targets, tokens=ex.tokens, dtype="float64")
    with torch.no_grad():
        r["diverged_W_norm"] = float(torch.linalg.matrix_norm(diverged_model.tensors()["weight_hh_l0"], ord=2))
    r["saturated"] = float((np.abs(ctx.traces["diverged"].layers[0].h) > 0.99).mean())

    # the same run, clipped
    cfg, model = _model(task)
    _, res_c, norms_c, losses_c = train(task, cfg, model=model, steps=STEPS, lr=LR, optimizer="sgd", momentum=0.0,
                                        clip=CLIP, ctx=ctx, label=f"clipped at {CLIP:g}")
    r["clip_status"] = res_c.status
    r["clip_metric"] = float(res_c.metric) if res_c.metric is not None else float("nan")
    r["clip_max_norm"] = max(norms_c) if norms_c else float("nan")
    r["clip_clipped"] = sum(1 for n in norms_c if n > CLIP)
    r["clip_first_loss"] = float(np.mean(losses_c[:10]))
    r["clip_last_loss"] = float(np.mean(losses_c[-25:]))
    r["clip_spark"] = sparkline([math.log10(n) if n > 0 else float("nan") for n in norms_c])
    r["baseline"] = 1 / 6
    r["clip_says"] = (
        f"its final MSE {r['clip_metric']:.3f} is no better than the {r['baseline']:.3f} of always answering 1"
        if r["clip_metric"] >= 0.8 * r["baseline"]
        else f"its final MSE {r['clip_metric']:.3f} beats the {r['baseline']:.3f} of always answering 1, but is far from solving the task"
    )
    ctx.traces["clipped"] = run_trace(model, ex.x, ex.targets, tokens=ex.tokens, dtype="float64")
    ctx.figures["runs"] = "\n".join(
        [
            table(
                [
                    ["no clipping", r["plain_status"], str(r["plain_step"]) if r["plain_step"] >= 0 else "-",
                     f"{r['plain_max_norm']:.3g}", "-"],
                    [f"clip {CLIP:g}", r["clip_status"], "-", f"{r['clip_max_norm']:.3g}", f"{r['clip_metric']:.3f}"],
                ],
                ["run", "status", "diverged at", "max ||g||", "final MSE"],
            ),
            "",
            "log10 ||g|| per step (before clipping)",
            f"no clipping  {r['plain_spark']}",
            f"clip {CLIP:g}      {r['clip_spark'][: len(r['plain_spark']) + 40]}",
        ]
    )
    r["q_diverge"] = 0 if r["plain_status"] == "diverged" else 1


STEPS_ = (
    Step(
        "A recurrence that amplifies",
        "A tanh RNN ({hidden} units) on the adding problem ({seq_len} steps), with W_hh scaled so its spectral radius "
        "is {radius:g}. Backwards through time each step multiplies the gradient by diag(1 - h²) W_hh: W_hh stretches, "
        "saturated units (tanh' ≈ 0) squash. For now {wins}: ||dL/dh_t|| is {dh_last:.2g} at the last step and "
        "{dh_first:.2g} at the first, and the gradient of all the weights on this sequence has norm {norm0:.3g}.",
        tries=("In the Gradients tab, read ||dL/dh_t|| step by step from the last step back.",),
        trace="main",
        pane="gradients",
    ),
    Step(
        "Predict",
        "Train it with plain SGD, learning rate {lr:g}, no clipping, for {steps} steps.",
        question=Question(
            "What happens?",
            ("the loss becomes NaN: the run diverges", "it trains, slowly"),
            "q_diverge",
            "{plain_message}.\nThe gradient norm grew step by step (each update enlarges W_hh, which stretches the next gradient more) "
            "to {plain_max_norm:.3g}: an update of lr × ||g|| then throws the weights out of range.",
        ),
        trace="main",
    ),
    Step(
        "The same run, clipped",
        "Same seed, same batches, but before each update g <- g · min(1, {clip:g}/||g||): the direction is kept, the "
        "step is bounded. {clip_clipped} of {steps} updates were clipped (the largest ||g|| was {clip_max_norm:.3g}); the run "
        "{clip_status}, its loss went from {clip_first_loss:.3f} to {clip_last_loss:.3f}. "
        "Clipping keeps training alive; it does not give the network memory: {clip_says} "
        "(the LSTM lesson shows what does).",
        figure="runs",
        trace="clipped",
        pane="gradients",
    ),
    Step(
        "Look at the wreck",
        "The unclipped model, at the last weights whose loss was finite: ||W_hh||₂ = {diverged_W_norm:.3g}. "
        "{saturated:.0%} of its h values are beyond ±0.99: the tanh is saturated, the network cannot learn from here.",
        tries=("Press v until the h map is in focus: {saturated:.0%} of its cells sit at the ends of the scale.",),
        trace="diverged",
        at={"step": 0, "matrix": "h"},
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("the unclipped run diverges", r["plain_status"] == "diverged" and r["plain_step"] > 0),
        Check("the clipped run finishes", r["clip_status"] == "finished"),
        Check("clipping was needed: ||g|| > 10 x the threshold", r["clip_max_norm"] > 10 * CLIP),
        Check("the clipped run's loss went down", r["clip_last_loss"] < r["clip_first_loss"]),
    ]


def _build(ctx: Context) -> None:
    ctx.results.update(hidden=HIDDEN, seq_len=SEQ_LEN, radius=RADIUS, lr=LR, steps=STEPS, clip=CLIP)
    build(ctx)


LESSON = Lesson(
    name="exploding",
    title="Exploding gradients and clipping",
    summary="a run that diverges, then the same run with its gradient norm clipped",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
