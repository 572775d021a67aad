"""`rnn-tui eval`: how good a model is, in nats and bits per token, against simple baselines.

    rnn-tui eval --checkpoint assets/models/chars-lstm --text notes.txt   # one text, one sequence
    rnn-tui eval --checkpoint assets/models/chars-lstm                    # fresh windows of its text
    rnn-tui eval --checkpoint assets/models/recall-lstm                   # fresh examples of its task
    rnn-tui eval --weights model.pt --vocab vocab.json --text test.txt --baseline-text train.txt
"""

from __future__ import annotations

import argparse
import math
import sys

from rnn_tui.engine.errors import EngineError
from rnn_tui.safe_text import safe


class EvalFlagError(EngineError):
    """Flags that do not fit `eval` (one line, exit 2)."""


def add_parser(sub) -> None:
    from rnn_tui.cli import add_model_flags, int_in

    p = sub.add_parser(
        "eval",
        help="score a model: nats and bits per token, perplexity, against unigram and n-gram baselines",
        description="Score a language model on a text read as one sequence (the state carried from the "
        "first token to the last, as `trace` reads it): nats and bits per token and perplexity, beside "
        "a unigram and an n-gram model (interpolated Kneser-Ney, its order chosen on held-out text) "
        "fitted on the text the model was trained on. Without --text, a run or task model is scored on "
        "fresh examples of its task against the task's natural baselines (chance and the class prior "
        "for classes, predicting the mean for values).",
        epilog="The baselines are never fitted on the text being scored: a run directory knows its "
        "training text; for imported weights give it with --baseline-text. Exit code 2 for a bad flag "
        "or file, or a model that does not predict tokens given --text.",
    )
    add_model_flags(p)
    p.add_argument("--dtype", choices=("float32", "float64"), help="precision (default float32)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument("--baseline-text", metavar="FILE",
                   help="the text the model was trained on, to fit the baselines (read with its vocabulary)")
    p.add_argument("--batches", type=int_in(1, 1000), metavar="N",
                   help="without --text: batches of 32 fresh examples to score (default 8)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from rnn_tui.cli import spec_from_args
    from rnn_tui.commands.generate import with_run_tokenize

    spec = with_run_tokenize(spec_from_args(args), args)
    sequence = spec.input is not None or spec.input_ids is not None
    if spec.vectors is not None:
        raise EvalFlagError("eval scores tokens: --vectors models are scored by `rnn-tui trace --targets`")
    if sequence:
        if args.batches is not None:
            raise EvalFlagError("--batches scores fresh examples of a task: drop it with --text/--input")
        return text_eval(spec, args)
    if args.baseline_text is not None:
        raise EvalFlagError("--baseline-text fits the baselines of a text: give the text to score with --text FILE")
    if not (spec.checkpoint or spec.task):
        raise EvalFlagError("say what to score: --text FILE (or --input TEXT), or a run or task (--checkpoint DIR, "
                            "--task NAME) to score on fresh examples")  # fmt: skip
    return task_eval(spec, args)


# ---- one text ---------------------------------------------------------------------------------------------
def text_eval(spec, args) -> int:
    import numpy as np

    from rnn_tui.commands.generate import refuse_early
    from rnn_tui.engine.evaluate import (
        EvalError, TextEval, baseline_detail, contains, encode_training_text, evaluate_sequence, fit_baselines,
        score_baselines, training_text,
    )  # fmt: skip
    from rnn_tui.engine.generate import not_a_language_model
    from rnn_tui.engine.subject import open_subject

    refuse_early(spec, not_a_language_model, "be scored per token")
    subject = open_subject(spec)
    notes = list(subject.notes)
    if subject.encdec_task is not None:
        raise EvalError("an encoder-decoder is scored on its task's examples: drop --text")
    reason = not_a_language_model(subject.config, subject.vocab, subject.output_labels)
    if reason is not None:
        raise EvalError(f"this model cannot be scored per token: {reason}")
    if subject.config.bidirectional:
        notes.append("the model is bidirectional: each step also reads the tokens after it, the one it predicts "
                     "included, so its score is not a language model's")  # fmt: skip
    dtype = args.dtype or "float32"
    x = np.asarray(subject.x, dtype=np.int64)
    model = evaluate_sequence(subject.model, x, subject.targets, dtype=dtype)
    if args.baseline_text is not None:
        from rnn_tui.engine.files import MiB, read_text

        text = read_text(args.baseline_text, "--baseline-text", 64 * MiB)
        train = encode_training_text(text, subject, spec.tokenize, spec.vocab, f"--baseline-text {args.baseline_text}")
    else:
        train = training_text(spec, subject)
    if train.ids is None:
        result = TextEval(model, why_none=train.why_none, notes=tuple(notes))
    else:
        base = fit_baselines(train.ids, subject.config.vocab_size, fitted_on=train.fitted_on)
        unigram, ngram = score_baselines(base, x, subject.targets)
        if contains(train.ids, x):
            notes.append("the scored text is part of the baselines' training text: every score here is in-sample")
        result = TextEval(model, (unigram, ngram), base.fitted_on, baseline_detail=baseline_detail(base),
                          notes=tuple(notes))  # fmt: skip
    if args.format == "json":
        return _json_text(result, subject, dtype, len(x))
    _print_text(result, subject, dtype, len(x))
    return 0


def _json_text(result, subject, dtype: str, read: int) -> int:
    from rnn_tui.commands.trace import write_json

    doc = {
        "schema": "rnn-tui.eval/1",
        "kind": "text",
        "model": safe(subject.title),
        "dtype": dtype,
        "read": read,
        **{k: v for k, v in result.model.to_dict().items() if k not in ("name", "detail")},
        "baselines": [b.to_dict() for b in result.baselines],
        "baselines_fitted_on": result.fitted_on,
        "baselines_left_out": result.why_none or None,
        "ngram": result.baseline_detail or None,
        "comparisons": [c.to_dict() for c in result.comparisons],
        "beats": result.beats,
        "notes": list(result.notes),
    }
    write_json(doc)
    sys.stdout.write("\n")
    return 0


def _print_text(result, subject, dtype: str, read: int) -> None:
    from rich.console import Console

    from rnn_tui.engine.evaluate import verdict_line
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    for note in result.notes:
        err.print(Text(f"note: {safe(note)}"), soft_wrap=True)
    m = result.model
    console.print(Text(f"{safe(subject.title)} · {read:,} tokens read, {m.tokens:,} scored · {dtype}"))
    table = Table(box=None, pad_edge=False)
    for name, justify in (("", "left"), ("nats/token", "right"), ("bits/token", "right"), ("perplexity", "right")):
        table.add_column(name, justify=justify)
    for s in (m, *result.baselines):
        label = s.name + (f" ({s.detail.split(', ', 1)[1]})" if ", " in s.detail else "")
        table.add_row(Text(label), f"{s.nats_per_token:.4f}", f"{s.bits_per_token:.4f}", _ppl(s.perplexity))
    console.print(table)
    if not result.baselines:
        console.print(Text(f"baselines left out: {safe(result.why_none)}"), soft_wrap=True)
        return
    d = result.baseline_detail
    held = ", ".join(f"{n} {v:.3f}" for n, v in d["held_out_nats_per_token"].items())
    console.print(Text(f"baselines fitted on {safe(result.fitted_on)}"
                       + (f"; {safe(d['note'])}" if d.get("note") else "")), soft_wrap=True)  # fmt: skip
    if held:
        console.print(Text(f"n-gram order {d['order']} chosen on the last 10% held out (nats/token by order: {held})"),
                      soft_wrap=True)  # fmt: skip
    console.print(Text(verdict_line(result.comparisons, "bits/token", 1 / math.log(2))), soft_wrap=True)


def _ppl(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "inf"


# ---- fresh examples of a task -------------------------------------------------------------------------------
def task_eval(spec, args) -> int:
    from rnn_tui.engine.evaluate import EVAL_BATCHES, evaluate_task, verdict_line
    from rnn_tui.engine.generate import _in_dtype
    from rnn_tui.engine.subject import open_subject
    from rnn_tui.engine.tasks import get_task

    subject = open_subject(spec)
    if spec.checkpoint:
        from rnn_tui.engine.checkpoint import read_config

        info = read_config(spec.checkpoint)
        task = get_task(info.task, **info.task_options)
    else:
        task = subject.encdec_task or get_task(spec.task, **spec.task_options)
    for note in subject.notes:
        print(f"note: {safe(note)}", file=sys.stderr)
    dtype = args.dtype or "float32"
    model = subject.model if subject.encdec_task is not None else _in_dtype(subject.model, dtype)
    report = evaluate_task(model, task, batches=args.batches or EVAL_BATCHES)
    if args.format == "json":
        from rnn_tui.commands.trace import write_json

        doc = {
            "schema": "rnn-tui.eval/1",
            "kind": "task",
            "model": safe(subject.title),
            "task": report.task,
            "dtype": dtype,
            "scored": report.scored,
            "loss_name": report.loss_name,
            "loss": report.loss,
            "metric_name": report.metric_name,
            "metric": report.metric,
            "baselines": [{"name": b.name, "loss": b.loss, "metric": b.metric, "detail": b.detail}
                          for b in report.baselines],  # fmt: skip
            "baselines_fitted_on": report.fitted_on,
            "comparisons": [c.to_dict() for c in report.comparisons],
            "beats": report.beats,
        }
        if report.bits:
            doc.update(nats_per_token=report.loss, bits_per_token=report.loss / math.log(2),
                       perplexity=math.exp(report.loss))  # fmt: skip
        write_json(doc)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    console.print(Text(f"{safe(subject.title)} · {report.scored:,} outputs of fresh {task.name} examples · {dtype}"))
    line = f"loss {report.loss:.4f} {report.loss_name}"
    if report.bits:
        line += f" ({report.loss / math.log(2):.4f} bits/token, perplexity {math.exp(report.loss):.4g})"
    if report.metric is not None and report.metric_name != "mse":
        line += f" · {report.metric_name} {report.metric:.4f}"
    console.print(Text(line), soft_wrap=True)
    for b in report.baselines:
        shown = f"  {b.name}: {b.loss:.4f}" + (f" ({b.loss / math.log(2):.4f} bits/token)" if report.bits else "")
        if b.metric is not None and report.metric_name != "mse":
            shown += f" · {report.metric_name} {b.metric:.4f}"
        console.print(Text(shown + f"  ({b.detail})"), soft_wrap=True)
    console.print(Text(f"baselines fitted on {safe(report.fitted_on)}"), soft_wrap=True)
    unit, scale = ("bits/token", 1 / math.log(2)) if report.bits else (report.loss_name, 1.0)
    console.print(Text(verdict_line(report.comparisons, unit, scale)), soft_wrap=True)
    return 0
