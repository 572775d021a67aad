"""`rnn-tui trace`: run one sequence through a model and print everything it computed."""

from __future__ import annotations

import argparse
import json
import math
import sys

from rnn_tui.engine.errors import EngineError
from rnn_tui.safe_text import safe


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


positive_number.__name__ = "number"


class TraceError(EngineError):
    """Trace flags that do not fit the subject (one line, exit 2)."""


def add_parser(sub) -> None:
    from rnn_tui.cli import add_model_flags, int_in

    p = sub.add_parser(
        "trace",
        help="trace one sequence: states, gates, outputs, losses, gradient norms",
        description="Run one sequence through a model and print its states, gates, outputs, "
        "losses and per-step gradient norms (JSON format: docs/trace-format.md).",
    )
    add_model_flags(p)
    p.add_argument("--dtype", choices=("float32", "float64"), help="precision (default float32; a scenario's own, float64 unless it says)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.add_argument("--tbptt", type=int_in(1, 100_000), metavar="K", help="also compare truncated BPTT with window K")
    p.add_argument("--clip", type=positive_number, metavar="X", help="also preview gradient clipping at norm X")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The trace, with numpy's floating-point warnings off: a value that overflows is reported as
    the value it is (NaN, Inf; null in JSON), and the BLAS kernels raise spurious 'invalid value'
    flags on huge finite inputs; a RuntimeWarning on stderr would say neither where nor what."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from rnn_tui.cli import spec_from_args
    from rnn_tui.engine.subject import open_subject, trace_subject

    subject = open_subject(spec_from_args(args))
    for note in subject.notes:  # what an import read and assumed; stderr, so stdout stays the trace
        print(f"note: {note}", file=sys.stderr)
    if subject.encdec_task is not None and (args.tbptt is not None or args.clip is not None):
        raise TraceError("--tbptt and --clip analyse one network: the encoder-decoder task has two")
    if args.format == "json" and subject.encdec_task is None and any(t is not None for t in subject.targets):
        from rnn_tui.engine.gradflow import check_flow_size, check_state_size

        T = len(subject.x)  # refuse an analysis too big now, not after a long trace
        check_flow_size(subject.config, T, T if subject.config.head == "step" else 1)
        check_state_size(subject.config)
    trace = trace_subject(subject, args.dtype)  # None: the subject's own (a scenario's float64)
    if subject.encdec_task is not None:
        return print_encdec(trace, args)
    scored = any(t is not None for t in trace.targets)
    if not scored and (args.tbptt is not None or args.clip is not None):
        raise TraceError("--tbptt and --clip compare gradients of the loss, and no step of this sequence is "
                         "scored: give --task NAME (or --input text) so there are targets")  # fmt: skip
    if args.format == "json":
        from rnn_tui.engine.export import trace_to_json

        # the gradient-flow analyses follow the loss: an unscored trace has none (grad keeps the norms)
        doc = trace_to_json(trace, report=gradient_flow(subject, trace, args) if scored else None)
        if not scored:
            doc["loss"] = None
        write_json(doc)
        sys.stdout.write("\n")
        return 0
    print_summary(trace)
    if args.tbptt is not None or args.clip is not None:
        print_gradient_previews(subject, trace, args)
    return 0


def write_json(doc: dict) -> None:
    """The document on stdout: UTF-8 as it is where stdout is UTF-8, else ASCII with \\u escapes
    (still the same JSON; a Latin-1 or ASCII terminal cannot hold '␣' or '中'). Characters a
    terminal acts on (C1 controls, DEL, bidi and other format characters, which json leaves raw)
    are written as \\u escapes too: the same JSON once parsed, never obeyed when it is shown."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    # json.dumps, not json.dump: only the one-shot form uses the C encoder (5x faster on a trace)
    text = json.dumps(doc, allow_nan=False, ensure_ascii=encoding not in ("utf8", "utf8sig"))
    sys.stdout.write(json_escape_controls(text))


def json_escape_controls(text: str) -> str:
    """JSON text with every character `safe_text` would escape written as a \\u escape."""
    import re
    import unicodedata

    from rnn_tui.safe_text import UNSAFE_CATEGORIES

    def escape(match) -> str:
        ch = match.group()
        if unicodedata.category(ch) not in UNSAFE_CATEGORIES:
            return ch
        n = ord(ch)
        if n < 0x10000:
            return f"\\u{n:04x}"
        n -= 0x10000
        return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"

    return re.sub(r"[^\x20-\x7e]", escape, text)


def print_gradient_previews(subject, trace, args) -> None:
    """--tbptt and --clip in text: one line each, the numbers of the JSON's grad.tbptt / grad.clip."""
    from rich.console import Console

    from rnn_tui.engine.gradflow import clip_preview, full_gradients, truncated_bptt

    token_ids = subject.x if subject.config.input_mode != "vectors" else None
    console = Console(highlight=False)
    full = full_gradients(trace, token_ids=token_ids)
    if args.tbptt is not None:
        tb = truncated_bptt(trace, args.tbptt, token_ids=token_ids, full=full)
        console.print(
            f"truncated BPTT, K={tb.K}: |g_K| {tb.norm:.4g} vs full |g| {tb.full_norm:.4g}, "
            f"distance {tb.relative_distance:.3g} of |g|, cosine {tb.cosine:.4f}"
        )
    if args.clip is not None:
        c = clip_preview(full, args.clip)
        what = f"scaled by {c.scale:.4g}" if c.clipped else "not clipped"
        console.print(f"clip at norm {c.threshold:g}: |g| {c.norm_before:.4g} -> {c.norm_after:.4g} ({what})")


def print_encdec(both, args) -> int:
    """Both halves of an encoder-decoder: one document with an `encoder` and a `decoder` trace."""
    from rnn_tui.engine.export import trace_to_json
    from rnn_tui.engine.records import SCHEMA

    if args.format == "json":
        from rnn_tui.engine.export import attention_to_json

        doc = {
            "schema": SCHEMA,
            "mode": "encdec",
            "decoder_inputs": both.decoder_inputs,
            "predicted": both.predicted,
            "encoder": trace_to_json(both.encoder),
            "decoder": trace_to_json(both.decoder),
        }
        if both.attention is not None:
            doc["attention"] = attention_to_json(both.attention)
        write_json(doc)
        sys.stdout.write("\n")
        return 0
    print("encoder (its last state starts the decoder; dL/dh includes what the decoder sends back)")
    print_summary(both.encoder, show_outputs=False)
    print(f"decoder (reads {both.decoder_inputs} inputs) predicted: {safe(' '.join(both.predicted))}")
    print_summary(both.decoder)
    if both.attention is not None:
        print_attention(both.attention, both.decoder.tokens)
    return 0


def print_attention(record, dec_tokens) -> None:
    """α as a compact table: a row per decoder step, a column per encoder token, each weight in
    tenths (0-9, 9 for 0.85 and above; · below 0.05), so 40 source tokens fit in 80 columns."""
    from rich.console import Console
    from rich.text import Text

    from rnn_tui.safe_text import one_cell

    console = Console(highlight=False)
    console.print(f"attention ({record.kind}): α_t,k in tenths (· below 0.05), a row per decoder step (what it "
                  f"reads), a column per encoder token; mean on the anti-diagonal k = T-1-t "
                  f"{record.anti_diagonal_mass:.3f}, on k = T-t beside it {record.diagonal_mass(1):.3f}")
    width = max([len(safe(one_cell(t))) for t in dec_tokens] + [5])
    console.print(Text(" " * (4 + width + 1) + " ".join(safe(one_cell(tok))[:1] for tok in record.encoder_tokens)))
    held = {t for t, _ in record.forced}
    for t, row in enumerate(record.weights):
        cells = " ".join("·" if a < 0.05 else str(min(int(a * 10 + 0.5), 9)) for a in row)
        mark = "*" if t in held else " "
        console.print(Text(f"{t:>3}{mark}{safe(one_cell(dec_tokens[t])):<{width}} {cells}"))
    if held:
        console.print("* held by hand")


def gradient_flow(subject, trace, args):
    """The gradient-flow analysis of the export's `grad` section (a GradFlowReport)."""
    from rnn_tui.engine.gradflow import analyze_gradflow

    token_ids = subject.x if subject.config.input_mode != "vectors" else None
    return analyze_gradflow(trace, tbptt=args.tbptt, clip=args.clip, token_ids=token_ids)


def print_summary(trace, show_outputs: bool = True) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    cfg = trace.config
    console = Console(highlight=False)
    n_params = sum(int(np.prod(v.shape)) for v in trace.params.values())
    console.print(
        f"[bold]{cfg.cell}[/]"
        + (f" ({cfg.activation})" if len(cfg.cell_spec.activations) > 1 else "")
        + f"  hidden {cfg.hidden_size} x {cfg.num_layers} layer(s)"
        + (" bidirectional" if cfg.bidirectional else "")
        + f"  {n_params} parameters  {trace.dtype}"
    )
    scored = any(t is not None for t in trace.targets)
    if show_outputs:
        console.print(f"loss {trace.loss:.6g} (mean over scored steps)" if scored else "loss - (no step is scored)")
    table = Table(box=None, pad_edge=False)
    table.add_column("t", justify="right")
    table.add_column("token")
    per_step = cfg.head == "step" and show_outputs
    if per_step:
        table.add_column("target")
        table.add_column("predicted")
        table.add_column("loss", justify="right")
    for lt in trace.layers:
        table.add_column(f"|dL/dh| {lt.name}", justify="right")
    norms = [lt.dL_dh_norm for lt in trace.layers]
    probs = trace.probs
    label = (lambda i: quoted(trace.vocab[i])) if trace.vocab else str
    for t in range(trace.T):
        row = [str(t), quoted(trace.tokens[t])]
        if per_step:
            target = trace.targets[t]
            row.append("-" if target is None else (label(target) if cfg.loss == "ce" else fmt_vec(target)))
            row.append(label(int(probs[t].argmax())) if probs is not None else fmt_vec(trace.outputs[t]))
            loss = trace.step_losses[t]
            row.append("-" if np.isnan(loss) else f"{loss:.4f}")
        row += [f"{n[t]:.3e}" for n in norms]
        table.add_row(*(Text(cell) for cell in row))  # labels are text: '[b]' is a token, not markup
    console.print(table)
    if cfg.head != "step" and show_outputs:  # one output for the whole sequence, from the pooled state
        target = trace.targets[0]
        shown = "-" if target is None else (label(target) if cfg.loss == "ce" else fmt_vec(target))
        guess = label(int(probs[0].argmax())) if probs is not None else fmt_vec(trace.outputs[0])
        loss = trace.step_losses[0]
        console.print(Text(f"output ({cfg.head} state): target {shown}  predicted {guess}  "
                           f"loss {'-' if np.isnan(loss) else f'{loss:.4f}'}"))


def quoted(label: str) -> str:
    """A token label in quotes. Labels are already printable (spaces, newlines and control
    characters shown as symbols or escapes), so repr() would only escape them twice; `safe`
    leaves them as they are and escapes whatever a label from elsewhere might hold."""
    return f"'{safe(label)}'"


def fmt_vec(v) -> str:
    return "[" + ", ".join(f"{float(a):.3g}" for a in v) + "]"
