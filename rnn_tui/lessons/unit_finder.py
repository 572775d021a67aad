"""Lesson 8, finding a unit that tracks something (Karpathy's and LSTMVis's idea).

An LSTM is trained live to say, at every character of a text of brackets and letters, how deep
inside brackets it is. Nobody tells any unit what to do. Then the unit finder runs a corpus of
fresh text through the model (batched), and ranks every unit by the correlation of its activation
with a feature of the text — "bracket depth", "inside brackets", "is a letter"...: the best unit's
activation, coloured over the text, rises and falls with the nesting.
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import LessonTask, train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, table

MAX_DEPTH = 3
LENGTH = 32
HIDDEN = 10
STEPS = 300
CORPUS = 48  # fresh sequences scanned by the unit finder
FILLER = ("x", "y")


class DepthTask(LessonTask):
    """Random text of ( ) x y; the target at each step is the nesting depth after reading it."""

    name = "lesson-depth"
    MODE = "seq2seq"
    DESCRIPTION = "the bracket nesting depth at every character"
    head = "step"
    loss_name = "ce"

    def __init__(self):
        super().__init__(hidden=HIDDEN, seq_len=LENGTH)
        self.vocab = ["(", ")"] + list(FILLER)
        self.output_labels = [str(d) for d in range(MAX_DEPTH + 1)]
        self.chance = 1 / (MAX_DEPTH + 1)

    def draw_text(self, rng: np.random.Generator) -> str:
        """LENGTH characters whose brackets all close by the end (so texts can be laid end to end)."""
        out, depth = [], 0
        for k in range(LENGTH):
            u = rng.random()
            if depth >= LENGTH - k:  # just enough room left to close what is open
                out.append(")")
                depth -= 1
            elif u < 0.3 and depth < MAX_DEPTH and depth + 1 < LENGTH - k:
                out.append("(")
                depth += 1
            elif u < 0.55 and depth > 0:
                out.append(")")
                depth -= 1
            else:
                out.append(FILLER[int(rng.integers(0, len(FILLER)))])
        return "".join(out)

    def encode(self, text: str):
        index = {c: k for k, c in enumerate(self.vocab)}
        depth, ids, ys = 0, [], []
        for ch in text:
            depth += 1 if ch == "(" else -1 if ch == ")" else 0
            ids.append(index[ch])
            ys.append(depth)
        return ids, ys

    def sample(self, B, g):
        import torch

        from rnn_tui.engine.tasks.base import Batch

        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
        pairs = [self.encode(self.draw_text(rng)) for _ in range(B)]
        return Batch(x=torch.tensor([p[0] for p in pairs]), y=torch.tensor([p[1] for p in pairs]))

    def example(self, seed=0):
        import torch

        from rnn_tui.engine.tasks.base import Example

        text = self.draw_text(np.random.default_rng(10_000 + seed))
        ids, ys = self.encode(text)
        return Example(list(text), torch.tensor(ids), ys)


def build(ctx: Context) -> None:
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace
    from rnn_tui.engine.unitfinder import corpus_activations, find_units

    r = ctx.results
    task = DepthTask()
    cfg = task.model_config(cell="lstm", hidden=HIDDEN)
    trainer, res, _, _ = train(task, cfg, model=build_model(cfg, seed=0), steps=STEPS, lr=2e-2, ctx=ctx,
                               label="an LSTM on bracket depth")
    r["accuracy"] = float(res.metric)
    ex = task.example(seed=1)
    ctx.traces["main"] = run_trace(trainer.model, ex.x, ex.targets, tokens=ex.tokens, vocab=task.output_labels,
                                   dtype="float64")

    ctx.progress("scanning a corpus with the unit finder")
    rng = np.random.default_rng(2024)
    text = "".join(task.draw_text(rng) for _ in range(CORPUS))
    ids = [task.vocab.index(c) for c in text]
    acts = corpus_activations(trainer.model, ids, list(text), length=LENGTH)
    r["corpus_tokens"] = len(text)
    results = {}
    rows = []
    for feature in ("depth", "brackets"):
        found = find_units(acts, feature, matrices=("h", "c"))
        results[feature] = found
        best = found.scores[0]
        r[f"best_{feature}"] = best.name
        r[f"r_{feature}"] = best.r
        r[f"unit_{feature}"] = best.unit
        r[f"matrix_{feature}"] = best.matrix
        rows.append([found.description, best.name, f"{best.r:+.3f}",
                     ", ".join(f"{s.name} {s.r:+.2f}" for s in found.scores[1:3])])
    ctx.figures["ranking"] = table(rows, ["feature", "best unit", "r", "next best"])
    # the untrained model: the same scan, for contrast
    untrained = corpus_activations(build_model(cfg, seed=0), ids, list(text), length=LENGTH)
    r["r_depth_untrained"] = find_units(untrained, "depth").scores[0].r

    best = results["depth"].scores[0]
    vals = acts.values[(best.layer, best.direction, best.matrix)][:, best.unit]
    depth = results["depth"].values
    n = 96
    r["strip_text"] = text[:n]
    r["strip_depth"] = "".join(str(int(d)) for d in depth[:n])
    lo, hi = float(vals.min()), float(vals.max())
    ramp = " ▁▂▃▄▅▆▇█"
    sign = 1 if best.r >= 0 else -1
    scaled = [(sign * (v - (lo if sign > 0 else hi)) / ((hi - lo) or 1.0)) for v in vals[:n]]
    r["strip_unit"] = "".join(ramp[int(round(min(max(s, 0), 1) * (len(ramp) - 1)))] for s in scaled)
    ctx.figures["strip"] = "\n".join(
        [
            f"text   {r['strip_text']}",
            f"depth  {r['strip_depth']}",
            f"{best.matrix}[{best.unit}]   {r['strip_unit']}" + ("   (sign flipped: the unit falls as depth rises)" if sign < 0 else ""),
        ]
    )
    ctx.units.update(results)  # the lesson pane colours the text with these
    r["q_best"] = 0 if abs(best.r) > 0.7 else 1

    # select and match: a span of the example where it is deepest, ranked on that one sequence
    from rnn_tui.engine.unitfinder import trace_activations

    d = np.asarray(ex.targets)
    level = max(1, int(d.max()) - 1)
    a, b, k = 0, 0, 0  # the longest run of steps at least `level` deep
    while k < len(d):
        if d[k] >= level:
            j = k
            while j < len(d) and d[j] >= level:
                j += 1
            if j - k > b - a:
                a, b = k, j
            k = j
        else:
            k += 1
    r["span_level"] = level
    span = find_units(trace_activations(ctx.traces["main"]), span=(a, b), matrices=("h", "c"))
    ctx.units["span"] = span
    r["span_a"], r["span_b"] = a, b - 1
    r["span_text"] = "".join(ex.tokens[a:b])
    r["best_span"], r["r_span"] = span.scores[0].name, span.scores[0].r
    r["span_unit"] = span.scores[0].unit
    r["span_same"] = (
        "the very unit the corpus found for depth"
        if span.scores[0].unit == best.unit and span.scores[0].matrix == best.matrix
        else f"not {best.name}, the corpus's depth unit: one short span says less than a whole corpus"
    )
    r["sign_word"] = "rises" if best.r >= 0 else "falls"


STEPS_ = (
    Step(
        "Train, without telling any unit what to do",
        "An LSTM with {hidden} units learned, live, to output the bracket depth at every character of text made of "
        "( ) x y: accuracy {accuracy:.0%}. To do that, something in it must count.",
        question=Question(
            "Will one single unit follow the depth closely (|r| > 0.7), or is it spread over many?",
            ("one unit follows it", "no single unit does"),
            "q_best",
            "Over {corpus_tokens} characters of fresh text, {best_depth} has r = {r_depth:+.3f} with the depth: "
            "its activation {sign_word} with the nesting. In the untrained model the best unit had r = {r_depth_untrained:+.3f}.",
        ),
        trace="main",
        at={"matrix": "c"},
    ),
    Step(
        "The ranking",
        "For a feature f of the text and a unit's activation a, Pearson's r = cov(a, f) / (σ_a σ_f), over every "
        "character of the corpus (windows of {length} run through the model as one batch). Each unit is ranked by |r|; "
        "the sign says whether it rises or falls with the feature.",
        figure="ranking",
        trace="main",
        at={"unit": "unit_depth", "matrix": "matrix_depth"},
    ),
    Step(
        "The unit over the text",
        "The best depth unit's activation drawn under the text, next to the true depth.",
        figure="strip",
        units="depth",
        tries=(
            "Select the unit with ↑/↓ (unit {unit_depth}) and step through: its row in the {matrix_depth} heatmap "
            "follows the brackets.",
        ),
        trace="main",
        at={"unit": "unit_depth", "matrix": "matrix_depth"},
    ),
)


SPAN_STEP = Step(
    "Select and match",
    "No feature in mind? Select the steps where the behaviour happens and rank the units against that. "
    "Steps {span_a}..{span_b} of the example ({span_text!r}) are the longest stretch at least {span_level} deep; ranked on "
    "this one sequence, "
    "the best match is {best_span} (r = {r_span:+.3f}) — {span_same}.",
    trace="main",
    at={"unit": "span_unit", "step": "span_a"},
)
STEPS_ = STEPS_ + (SPAN_STEP,)


def checks(r: dict) -> list[Check]:
    return [
        Check("the LSTM learned the depth (>= 90%)", r["accuracy"] >= 0.9),
        Check("a unit follows the depth with |r| >= 0.8", abs(r["r_depth"]) >= 0.8),
        Check("training made it: the untrained model's best |r| is lower", abs(r["r_depth_untrained"]) < abs(r["r_depth"])),
    ]


def _build(ctx: Context) -> None:
    ctx.results.update(hidden=HIDDEN, length=LENGTH)
    build(ctx)


LESSON = Lesson(
    name="unit-finder",
    title="Finding a unit that tracks something",
    summary="train an LSTM on bracket depth, then rank every unit by how well it follows a feature of the text",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
