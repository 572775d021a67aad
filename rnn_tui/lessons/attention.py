"""Lesson: the bottleneck and attention.

Two GRU encoder-decoders learn to reverse 12 symbols, trained live for the same steps from the
same kind of start: one whose decoder has only the encoder's last state to go on (the lecture
notes' single context C), one whose decoder attends to every encoder state at every step
(Luong's dot score, c_t = Σ_k α_t,k h_k). The attention model's weights are read off its trace,
its gradients are set against the plain model's, and its attention is held on the wrong symbol.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, sparkline, table

LENGTH = 12
SYMBOLS = 6
HIDDEN = 32
STEPS = 300
SEED = 0


def build(ctx: Context) -> None:
    from rnn_tui.engine.encdec import hold_attention
    from rnn_tui.engine.tasks import get_task

    r = ctx.results
    runs = {}
    for kind in ("none", "dot"):
        task = get_task("reverse", seq_len=LENGTH, symbols=SYMBOLS, attention=kind)
        cfg = task.model_config(cell="gru", hidden=HIDDEN)
        label = "without attention" if kind == "none" else "with attention"
        trainer, result, _, _ = train(task, cfg, steps=STEPS, lr=1e-2, batch=32, seed=SEED, ctx=ctx, label=label,
                                      model=task.build_model(cfg, seed=SEED))  # fmt: skip
        trainer.model.eval()
        runs[kind] = (task, trainer.model, result)
    r["acc_plain"], r["acc_att"] = float(runs["none"][2].metric), float(runs["dot"][2].metric)
    r["q_better"] = 0 if r["acc_att"] > r["acc_plain"] else 1

    ctx.progress("tracing both on the same sequence")
    task, model, _ = runs["dot"]
    ex = task.example(seed=3)
    both = task.trace(model, ex, dtype="float64", decoder_inputs="greedy")
    plain = runs["none"][0].trace(runs["none"][1], runs["none"][0].example(seed=3), dtype="float64",
                                  decoder_inputs="greedy")  # fmt: skip
    ctx.traces["main"] = both.decoder
    ctx.traces["plain"] = plain.decoder
    ctx.traces["encoder-plain"], ctx.traces["encoder-att"] = plain.encoder, both.encoder
    rec = both.attention
    A = np.asarray(rec.weights)
    r["source"] = " ".join(ex.tokens)
    r["written_att"] = " ".join(both.predicted[:LENGTH])
    r["written_plain"] = " ".join(plain.predicted[:LENGTH])
    r["right_att"] = sum(a == b for a, b in zip(both.predicted, [task.output_labels[t] for t in ex.targets]))
    r["right_plain"] = sum(a == b for a, b in zip(plain.predicted, [task.output_labels[t] for t in ex.targets]))
    r["rows"] = len(ex.targets)
    r["diag"] = rec.anti_diagonal_mass
    r["diag1"] = rec.diagonal_mass(1)
    r["band"] = r["diag"] + r["diag1"]
    r["peak0"] = int(A[0].argmax())
    r["peak0_mass"] = float(A[0].max())
    r["last"] = LENGTH - 1
    r["q_peak"] = 1  # the last source symbol
    r["peaks_on_diag"] = int(sum(int(A[t].argmax()) == LENGTH - 1 - t for t in range(LENGTH)))

    # where the decoder's gradient enters the encoder: its last state alone, or every state through c_t
    g_plain = np.linalg.norm(plain.encoder.layers[0].dL_dh, axis=1)
    g_att = np.linalg.norm(both.encoder.layers[0].dL_dh, axis=1)
    via_keys = float(np.linalg.norm(rec.dL_dkeys))
    via_state = float(np.linalg.norm(both.decoder.extras["dL_dh0"]))
    r["g0_plain"], r["g_last_plain"] = float(g_plain[0]), float(g_plain[-1])
    r["g0_att"], r["g_last_att"] = float(g_att[0]), float(g_att[-1])
    r["plain_peak_last"] = int(g_plain.argmax()) == LENGTH - 1
    r["q_grad"] = 0 if r["plain_peak_last"] else 1
    r["via"] = via_keys / (via_keys + via_state)
    lo, hi = float(np.log10(min(g_plain.min(), g_att.min()))), float(np.log10(max(g_plain.max(), g_att.max())))
    ctx.figures["grads"] = table(
        [["without attention", sparkline(np.log10(g_plain), lo, hi), f"{g_plain[0]:.2g} … {g_plain[-1]:.2g}"],
         ["with attention", sparkline(np.log10(g_att), lo, hi), f"{g_att[0]:.2g} … {g_att[-1]:.2g}"]],
        ["encoder ||dL/dh_k|| (log)", "k = 0 … " + str(LENGTH - 1), "first … last"],
    )  # fmt: skip

    # hold the attention of step t on the wrong source symbol: what does the decoder write?
    t = 2
    right = LENGTH - 1 - t
    wrong = next(k for k in range(LENGTH) if ex.tokens[k] != ex.tokens[right])
    held = hold_attention(both.decoder, [(t, wrong)])
    ctx.traces["held"] = held
    probs = held.probs
    r["t"], r["k_right"], r["k_wrong"] = t, right, wrong
    r["sym_right"], r["sym_wrong"] = ex.tokens[right], ex.tokens[wrong]
    r["wrote_before"] = both.predicted[t]
    r["wrote_held"] = held.vocab[int(probs[t].argmax())]
    r["q_held"] = 0 if r["wrote_held"] == r["sym_wrong"] else 1
    r["loss_before"], r["loss_held"] = float(both.decoder.loss), float(held.loss)
    ctx.figures["weights"] = table(
        [[str(t_), both.decoder.tokens[t_], *(f"{100 * a:.0f}" for a in A[t_]), both.predicted[t_]]
         for t_ in range(A.shape[0])],
        ["t", "reads", *ex.tokens, "writes"],
    )


STEPS_ = (
    Step(
        "One state for the whole source",
        "An encoder reads {length} symbols; the plain decoder starts from its last state alone and must write them "
        "backwards. Everything it needs passes through {hidden} numbers. With attention, the decoder also reads at "
        "every step c_t = Σ_k α_t,k h_k, a weighted sum of every encoder state, with α_t = softmax_k (s_{{t-1}} · h_k). "
        "Both were just trained for {steps} steps.",
        question=Question(
            "Which writes the reversal better after the same training?",
            ("with attention", "without attention"),
            "q_better",
            "Per symbol (teacher-forced): {acc_att:.0%} with attention, {acc_plain:.0%} without. On this source "
            "({source}) the plain one writes {written_plain} ({right_plain} of {rows} right), the attention one "
            "{written_att} ({right_att} of {rows}).",
        ),
        trace="plain",
    ),
    Step(
        "Where does it look first?",
        "The first symbol to write is the last one read.",
        question=Question(
            "Where does α_0 put its weight?",
            ("on the first source symbol", "on the last source symbol", "evenly"),
            "q_peak",
            "α_0 peaks on source step {peak0} ({peak0_mass:.0%}); the last is step {last}. Down the rows the "
            "weight follows the anti-diagonal: a mean {diag:.2f} on k = {last} - t, where y_t was read, and {diag1:.2f} "
            "on the cell just right of it. α_t is scored from s_{{t-1}}, the state that wrote y_{{t-1}}, and an "
            "encoder state h_k has read x_k and everything before it.",
        ),
        tries=("In the Attention tab, step with ←/→: the lit row is the decoder's step, the bright cell where it looks.",),
        figure="weights",
        trace="main",
        pane="attention",
        at={"step": 0},
    ),
    Step(
        "Where the gradient enters the encoder",
        "Without attention, the decoder's losses reach the encoder through one door: its last state, h^d_0 = h^e_S. "
        "With attention, also through every context c_t = Σ_k α_t,k h_k, a door into every encoder state.",
        question=Question(
            "Without attention, at which encoder step is ||dL/dh_k|| largest?",
            ("at its last step", "somewhere else"),
            "q_grad",
            "Without attention {g_last_plain:.3g} at the last step, {g0_plain:.3g} at the first: the gradient enters "
            "at the end and travels back. With attention {via:.0%} of what reaches the encoder comes through the "
            "contexts, each h_k its own share ({g0_att:.3g} at the first step, {g_last_att:.3g} at the last).",
        ),
        figure="grads",
        trace="encoder-att",
        at={"step": 0},
    ),
    Step(
        "Hold the attention elsewhere",
        "At step {t} the decoder should write {sym_right!r} (source step {k_right}) and wrote {wrote_before!r}. "
        "Now α_{t} is held on source step {k_wrong}, which holds {sym_wrong!r}, and everything after runs again.",
        question=Question(
            "What does it write at step {t} now?",
            ("the symbol it is made to look at", "still the right one"),
            "q_held",
            "It writes {wrote_held!r}; the loss goes from {loss_before:.3f} to {loss_held:.3f}. The context is what "
            "carries the symbol, not the decoder's state.",
        ),
        tries=("In the Attention tab: pick a source token with , and . and press a to hold the current step on it.",),
        trace="held",
        pane="attention",
        at={"step": "t"},
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("attention reverses better than the bottleneck", r["acc_att"] > r["acc_plain"] + 0.1),
        Check("the attention model learns the reversal (>= 90% per symbol)", r["acc_att"] >= 0.9),
        Check("its weights follow the anti-diagonal (mean >= 0.7 on it and the cell beside it)", r["band"] >= 0.7),
        Check("without attention the encoder's gradient is largest at its last step", r["plain_peak_last"]),
        Check("holding the attention raises the loss", r["loss_held"] > r["loss_before"]),
    ]


def _build(ctx: Context) -> None:
    ctx.results.update(length=LENGTH, hidden=HIDDEN, steps=STEPS)
    build(ctx)


LESSON = Lesson(
    name="attention",
    title="The bottleneck and attention",
    summary="reversing 12 symbols through one state, and with attention over every encoder state, trained live",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
