"""Lesson: a recurrence without h_{t-1} in its gates.

minGRU (Feng et al., 2024) keeps the GRU's mix h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ n_t but computes
z_t and n_t from x_t alone. A minGRU is trained live on long-range recall (a symbol, 20
distractors, the cue), then: its gates checked against another starting state, its states found
by the step-by-step loop and by the chunked parallel scan (`engine.scan`) and set side by side,
its memory read off the gates, and its step Jacobian, diag(1 - z_t), read off the Gradients tab.
"""

from __future__ import annotations

import time

import numpy as np

from rnn_tui.lessons._kit import train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, table

DISTANCE = 20
SYMBOLS = 4
HIDDEN = 16
STEPS = 300
LONG = 4000  # steps of the random sequence the two scans run over
SEED = 0


def build(ctx: Context) -> None:
    import torch

    from rnn_tui.engine.gradflow import jacobian_norms
    from rnn_tui.engine.model import build_model, use_scan
    from rnn_tui.engine.scan import chunk_size
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.trace import run_trace

    r = ctx.results
    task = get_task("recall", distance=DISTANCE, symbols=SYMBOLS)
    cfg = task.model_config(cell="mingru", hidden=HIDDEN).replace(scan="parallel")
    start = task.build_model(cfg, seed=SEED)
    ex = task.example(seed=1)
    z_start = run_trace(start, ex.x, ex.targets, dtype="float64").layers[0].gates["z"]
    r["keep_start"] = float(np.median(np.prod(1.0 - z_start[1 : DISTANCE + 1], axis=0)))
    trainer, result, _, _ = train(task, cfg, steps=STEPS, lr=1e-2, batch=32, seed=SEED, ctx=ctx, label="minGRU",
                                  model=start)  # fmt: skip
    model = trainer.model.eval().double()
    r["acc"] = float(result.metric)
    labels = list(ex.tokens)
    tr = run_trace(model, ex.x, ex.targets, tokens=labels, vocab=task.output_labels, dtype="float64")
    ctx.traces["main"] = tr
    lt = tr.layers[0]
    r["answer"] = task.output_labels[int(tr.outputs[0].argmax())]
    r["symbol"] = labels[0]

    # 1. the gates read x_t only: another starting state leaves every z_t as it was
    h0 = torch.from_numpy(np.random.default_rng(5).normal(size=(1, HIDDEN)))
    other = run_trace(model, ex.x, ex.targets, tokens=labels, vocab=task.output_labels, dtype="float64",
                      initial_state=(h0, None))  # fmt: skip
    ctx.traces["other-start"] = other
    r["dh"] = float(np.abs(other.layers[0].h[0] - lt.h[0]).max())
    r["dz"] = float(np.abs(other.layers[0].gates["z"] - lt.gates["z"]).max())
    r["q_gates"] = 1  # no

    # 2. the loop and the chunked scan over a long random sequence of inputs (the cell's own maths)
    ctx.progress(f"the loop and the scan over {LONG} steps")
    rng = np.random.default_rng(2)
    seq_model = build_model(cfg.replace(scan="sequential", vocab_size=0, input_mode="vectors",
                                        input_size=len(task.vocab)), seed=0).double()  # fmt: skip
    seq_model.load_tensors({k: v for k, v in model.tensors().items() if k != "embedding.weight"})
    X = torch.from_numpy(rng.normal(size=(LONG, len(task.vocab))))
    times = {}
    traces = {}
    for scan in ("sequential", "parallel"):
        use_scan(seq_model, scan)
        t0 = time.perf_counter()
        traces[scan] = run_trace(seq_model, X, [None], dtype="float64")
        times[scan] = time.perf_counter() - t0
    a, b = traces["sequential"].layers[0], traces["parallel"].layers[0]
    r["long"] = LONG
    r["chunk"] = chunk_size(LONG)
    r["chunks"] = -(-LONG // chunk_size(LONG))
    r["scan_gap"] = float(np.abs(a.h - b.h).max())
    r["t_loop"], r["t_scan"] = times["sequential"], times["parallel"]
    r["q_same"] = 0 if r["scan_gap"] == 0 else 1

    # 3. the memory: the unit that carries the symbol keeps it through the distractors, a_t = 1 - z_t
    z = lt.gates["z"]  # (T, H)
    keep = np.prod(1.0 - z[1 : DISTANCE + 1], axis=0)  # what survives of h_0 through the distractors
    unit = int(np.argmax(keep * np.abs(lt.h[0])))
    r["unit"], r["keep"] = unit, float(keep[unit])
    r["z0"] = float(z[0, unit])
    r["a_mean"] = float(np.mean(1.0 - z[1 : DISTANCE + 1, unit]))
    r["q_keep"] = 0 if r["keep"] > 0.5 else 1
    r["keep_median"] = float(np.median(keep))

    # 4. the step Jacobian: diag(1 - z_t), its norm the largest a_t
    jn = jacobian_norms(tr)[0]
    r["jac_gap"] = float(np.abs(jn - (1.0 - z).max(axis=1)).max())
    r["jac_min"], r["jac_max"] = float(jn.min()), float(jn.max())
    ctx.figures["gates"] = table(
        [[str(t), labels[t], f"{z[t, unit]:.3f}", f"{1 - z[t, unit]:.3f}", f"{lt.gates['n'][t, unit]:+.3f}",
          f"{lt.h[t, unit]:+.3f}"] for t in range(len(labels))],
        ["t", "x_t", f"z_t[{unit}]", "a_t = 1 - z_t", "n_t", "h_t"],
    )  # fmt: skip


STEPS_ = (
    Step(
        "Gates that do not look back",
        "A GRU's gates read h_{{t-1}}. minGRU's do not:\n"
        "    z_t = σ(W_iz x_t + b_iz)     n_t = W_in x_t + b_in\n"
        "    h_t = (1 - z_t) ⊙ h_{{t-1}} + z_t ⊙ n_t\n"
        "This one ({hidden} units) was just trained to recall a symbol across {distance} distractors: "
        "{acc:.0%} right; here it reads {symbol} ... ? and answers {answer}.",
        question=Question(
            "Start the same sequence from another h_{{-1}}: do the gates z_t change?",
            ("yes", "no"),
            "q_gates",
            "h_0 moves by up to {dh:.3f}; z_t moves by {dz:.1e} at every step: the gates are fixed by the inputs alone.",
        ),
        trace="main",
        at={"step": 0, "matrix": "z"},
    ),
    Step(
        "A linear recurrence, so a scan",
        "With z_t and n_t known beforehand, h_t = a_t ⊙ h_{{t-1}} + b_t with a_t = 1 - z_t, b_t = z_t ⊙ n_t: one "
        "linear map per step. Two steps make one: (a_2 a_1, a_2 b_1 + b_2). So the states need not come one after "
        "another: the chunked scan cuts {long} steps into {chunks} chunks of {chunk}, runs them all at once, then "
        "joins them — about 2·{chunk} small steps instead of {long}.",
        question=Question(
            "Over {long} random inputs, do the loop and the scan give the same states?",
            ("exactly the same", "the same to rounding", "visibly different"),
            "q_same",
            "The largest difference is {scan_gap:.1e} (the sums run in another order). The whole trace took "
            "{t_loop:.3f} s with the loop, {t_scan:.3f} s with the scan.",
        ),
        trace="other-start",
    ),
    Step(
        "Memory in the gates",
        "Unit {unit} takes the symbol at step 0 (z_0 = {z0:.3f}). On each distractor it keeps the share a_t = 1 - z_t "
        "of what it holds.",
        question=Question(
            "Multiplied over the {distance} distractors, how much of h_0 does unit {unit} keep?",
            ("more than half", "almost nothing"),
            "q_keep",
            "Π a_t = {keep:.3f} (a_t = {a_mean:.3f} on average); the median unit keeps {keep_median:.2g}, where "
            "before training it kept {keep_start:.2g}. Learning put the memory into the gates: on a distractor z_t "
            "is near 0, whatever the state.",
        ),
        figure="gates",
        trace="main",
        at={"unit": "unit", "matrix": "z"},
    ),
    Step(
        "The gradient through the scan",
        "J_t = dh_t/dh_{{t-1}} = diag(1 - z_t): no W_hh and no tanh' to shrink it, so ||J_t|| is the largest a_t "
        "({jac_min:.3f} … {jac_max:.3f} here, the computed ||J_t|| within {jac_gap:.0e} of it). BPTT is the same scan run "
        "backwards: dL/dh_{{t-1}} = direct + a_t ⊙ dL/dh_t. The Gradients tab shows no W_hh spectrum: there is none.",
        tries=("rnn-tui train --task recall --cell mingru --scan parallel trains the same as --scan sequential, faster "
               "(benchmarks/scan.py at T = 512).",),  # fmt: skip
        trace="main",
        pane="gradients",
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("the minGRU learns recall across the distractors (>= 90%)", r["acc"] >= 0.9),
        Check("training made the gates keep more", r["keep_median"] > r["keep_start"]),
        Check("the gates do not depend on the state", r["dz"] == 0.0 and r["dh"] > 0.1),
        Check("the loop and the scan agree to 1e-9 over the long sequence", r["scan_gap"] < 1e-9),
        Check("||J_t|| is the largest 1 - z_t", r["jac_gap"] < 1e-6),
    ]


def _build(ctx: Context) -> None:
    ctx.results.update(distance=DISTANCE, hidden=HIDDEN)
    build(ctx)


LESSON = Lesson(
    name="scan",
    title="A recurrence without h_{t-1} in its gates",
    summary="a minGRU trained live on recall: gates from x_t alone, the loop against the parallel scan, diag(1 - z_t)",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
