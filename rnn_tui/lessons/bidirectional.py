"""Lesson 6, bidirectional networks: filling a blank that only the right-hand context explains.

The data: letters in fixed pairs (a b, c d, e f), four pairs in a row; the first letter of one pair is
blanked out ("c d _ b e f a b": the blank is an 'a', because a 'b' follows). Read left to right, the
letters before the blank say nothing about it (the pairs are drawn independently): one-directional
GRUs can only guess among a, c, e. A bidirectional GRU also reads right to left, so its reverse
direction has seen the 'b' when it reaches the blank. Both are trained live, same size, same steps.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import LessonTask, train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, table

PAIRS = (("a", "b"), ("c", "d"), ("e", "f"))
N_PAIRS = 4
BLANK = "_"
HIDDEN = 12
STEPS = 250


class FillBlankTask(LessonTask):
    """Pairs of letters, one first letter blanked; the target is the letter under the blank."""

    name = "lesson-fill-blank"
    MODE = "seq2seq"
    DESCRIPTION = "fill the blank: the letter is fixed by the one after it"
    head = "step"
    loss_name = "ce"
    metric_name = "accuracy"
    solved = 0.95

    def __init__(self):
        super().__init__(hidden=HIDDEN, steps=STEPS, batch=32, lr=1e-2, seq_len=2 * N_PAIRS)
        letters = [p for pair in PAIRS for p in pair]
        self.vocab = letters + [BLANK]
        self.output_labels = letters
        self.chance = 1.0 / len(PAIRS)

    def _draw(self, B: int, g):
        import torch

        from rnn_tui.engine.tasks.base import IGNORE

        P = len(PAIRS)
        which = torch.randint(0, P, (B, N_PAIRS), generator=g)  # (B, N) pair index
        first = 2 * which  # letter ids: a=0 b=1 c=2 ...
        x = torch.stack([first, first + 1], dim=-1).reshape(B, 2 * N_PAIRS)  # (B, T)
        blank_pair = torch.randint(0, N_PAIRS, (B,), generator=g)
        rows = torch.arange(B)
        pos = 2 * blank_pair
        y = torch.full_like(x, IGNORE)
        y[rows, pos] = x[rows, pos]
        x = x.clone()
        x[rows, pos] = len(self.vocab) - 1  # the blank
        return x, y

    def sample(self, batch_size, generator):
        from rnn_tui.engine.tasks.base import Batch

        x, y = self._draw(batch_size, generator)
        return Batch(x=x, y=y)

    def example(self, seed: int = 0):
        import torch

        from rnn_tui.engine.tasks.base import IGNORE, Example

        x, y = self._draw(1, torch.Generator().manual_seed(seed))
        return Example(tokens=[self.vocab[i] for i in x[0].tolist()], x=x[0],
                       targets=[None if v == IGNORE else int(v) for v in y[0].tolist()])


def build(ctx: Context) -> None:
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

    r = ctx.results
    task = FillBlankTask()
    ex = task.example(seed=5)
    blank = ex.tokens.index(BLANK)
    answer = task.output_labels[ex.targets[blank]]
    r["example"] = " ".join(ex.tokens)
    r["blank"], r["answer"], r["next"] = blank, answer, ex.tokens[blank + 1]
    rows = []
    for key, bidi in (("uni", False), ("main", True)):
        cfg = task.model_config(cell="gru", hidden=HIDDEN, bidirectional=bidi)
        label = "bidirectional GRU" if bidi else "one-directional GRU"
        trainer, res, _, _ = train(task, cfg, model=build_model(cfg, seed=0), steps=STEPS, lr=1e-2, ctx=ctx,
                                   label=label, eval_batches=8)
        tr = run_trace(trainer.model, ex.x, ex.targets, tokens=ex.tokens, vocab=task.output_labels, dtype="float64")
        ctx.traces[key] = tr
        p = tr.probs[blank]
        guess = task.output_labels[int(np.argmax(p))]
        name = "bi" if bidi else "uni"
        r[f"acc_{name}"] = float(res.metric)
        r[f"guess_{name}"], r[f"p_{name}"] = guess, float(p.max())
        r[f"p_true_{name}"] = float(p[ex.targets[blank]])
        r[f"params_{name}"] = int(trainer.model.num_parameters())
        top = np.argsort(p)[::-1][:3]
        r[f"top_{name}"] = ", ".join(f"{task.output_labels[k]} {p[k]:.2f}" for k in top)
        rows.append([label, str(r[f"params_{name}"]), f"{res.metric:.0%}", r[f"top_{name}"]])
    r["chance"] = task.chance
    r["q_uni"] = 0 if r["acc_uni"] < 0.6 else 1
    ctx.figures["models"] = table(rows, ["model", "parameters", "accuracy", f"at the blank (step {blank}): top 3"])


STEPS_ = (
    Step(
        "A blank the past cannot fill",
        "Letters come in fixed pairs: a b, c d, e f. One first letter is blanked: {example}. "
        "The blank at step {blank} must be {answer!r} — because a {next!r} follows. Nothing before it helps: the pairs "
        "are drawn independently.",
        question=Question(
            "A one-directional GRU reads left to right and predicts at the blank. How well can it do?",
            ("about 1 in 3: it can only guess a, c or e", "nearly always right"),
            "q_uni",
            "Trained live, it scores {acc_uni:.0%} (chance {chance:.0%}); here it says {top_uni}.",
        ),
        trace="uni",
        at={"step": "blank"},
    ),
    Step(
        "Read it both ways",
        "A bidirectional GRU runs a second GRU from the end to the start, and the head reads both states: "
        "y_t = V [h→_t ; h←_t] + b. At the blank, h←_t has already read the {next!r}. Same width, same training: "
        "accuracy {acc_bi:.0%}; here it says {top_bi}.",
        figure="models",
        tries=("Press ] to switch to the reverse direction (l0 reverse) and step back from the end.",),
        trace="main",
        at={"step": "blank"},
    ),
    Step(
        "The price",
        "A bidirectional model needs the whole sequence before it can answer anything: fine for tagging or "
        "filling blanks in a finished text, impossible for predicting the next character as it is typed. "
        "It also costs about twice the parameters ({params_bi} against {params_uni}) and twice the time per step.",
        trace="main",
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("the bidirectional GRU fills the blank (accuracy >= 90%)", r["acc_bi"] >= 0.9),
        Check("the one-directional GRU cannot (accuracy < 60%)", r["acc_uni"] < 0.6),
        Check("on the example, the bidirectional model is surer of the right letter", r["p_true_bi"] > r["p_true_uni"]),
    ]


LESSON = Lesson(
    name="bidirectional",
    title="Bidirectional networks: filling a blank",
    summary="a blank only the right-hand context explains: one-directional against bidirectional GRU",
    build=build,
    steps=STEPS_,
    checks=checks,
)
