"""`rnn-tui generate`: prime a language model and sample what it writes next.

    rnn-tui generate --checkpoint assets/models/chars-lstm --prime "Beautiful is" --length 200
    rnn-tui generate --checkpoint assets/models/chars-lstm --prime "Now" --temperature 0   # greedy
    rnn-tui generate --weights model.pt --vocab vocab.json --tokenize space --prime "the" --top-k 40
    rnn-tui generate ... --format json     # prime_tokens, tokens, p, entropy, top (per step)
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from rnn_tui.engine.errors import EngineError
from rnn_tui.safe_text import safe

SEED_HELP = "the sample's seed: the same seed repeats a sample (default: a new one, printed)"
# engine.generate's bounds, here so that building the parser imports no numpy (a test holds them equal)
MAX_LENGTH = 10_000
MAX_TEMPERATURE = 100.0


class GenerateFlagError(EngineError):
    """Flags that do not fit `generate` (one line, exit 2)."""


def _number(lo: float, hi: float, *, open_low: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = value > lo if open_low else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            bound = f"above {lo:g}" if open_low else f"from {lo:g}"
            raise argparse.ArgumentTypeError(f"must be {bound} {'and at most' if open_low else 'to'} {hi:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def add_parser(sub) -> None:
    from rnn_tui.cli import add_model_flags, int_in

    p = sub.add_parser(
        "generate",
        help="sample text from a language model, token by token, from a prime",
        description="Feed a prime through a language model, then sample one token at a time from its "
        "next-token distribution (the state carried from token to token). Temperature 0 is greedy "
        "(argmax); top-k and top-p cut the distribution before sampling. Every probability reported "
        "is the model's own softmax of its logits at temperature 1.",
        epilog="text output: the prime, then what the model wrote (a summary line on stderr); "
        "json: prime_tokens, tokens, ids, p (each chosen token's probability), q (its probability "
        "in the distribution it was drawn from), entropy (nats), top (the most likely tokens per step), "
        "seed. Exit code 2 for a bad flag, file, or a model that does not predict tokens.",
    )
    add_model_flags(p, seed_help=SEED_HELP)
    g = p.add_argument_group("generating")
    g.add_argument("--prime", metavar="TEXT", help="the text to start from, read with the model's vocabulary "
                   "(or --input-ids IDS for a model without one)")
    g.add_argument("--length", type=int_in(1, MAX_LENGTH), default=100, metavar="N",
                   help=f"tokens to generate, 1 to {MAX_LENGTH} (default 100)")
    g.add_argument("--temperature", type=_number(0.0, MAX_TEMPERATURE), default=1.0, metavar="T",
                   help="divide the logits by T before sampling; 0: greedy, always the most likely (default 1)")
    g.add_argument("--top-k", type=int_in(1, 10_000_000), metavar="K",
                   help="sample among the K most likely tokens only (and list K per step in json)")
    g.add_argument("--top-p", type=_number(0.0, 1.0, open_low=True), metavar="P",
                   help="sample among the fewest most likely tokens whose probabilities sum to P (nucleus)")
    g.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rnn_tui.cli import spec_from_args

    if args.input is not None or args.text is not None:
        raise GenerateFlagError("generate starts from --prime TEXT: drop --input/--text")
    if args.prime is not None and args.input_ids is not None:
        raise GenerateFlagError("give the prime as --prime TEXT or as --input-ids IDS, not both")
    if args.scenario and args.prime is not None:
        raise GenerateFlagError("a scenario sets its own input, and that is the prime: drop --prime")
    if args.prime is None and args.input_ids is None and not args.scenario:
        raise GenerateFlagError("say what to start from: --prime TEXT (or --input-ids IDS)")
    if args.prime == "":
        raise GenerateFlagError("--prime is empty: give at least one token to start from")
    for flag in ("vectors", "targets"):
        if getattr(args, flag) is not None:
            raise GenerateFlagError(f"--{flag} does not apply to generate: it feeds the model its own tokens")
    seed = args.seed
    args.seed = None  # the sample's seed, not the initialisation's: a fresh model keeps seed 0
    args.input = args.prime
    spec = spec_from_args(args)
    spec = with_run_tokenize(spec, args)
    return _generate(spec, args, seed)


def with_run_tokenize(spec, args):
    """A run directory read its training text with its own tokenizer: text is read the same way
    unless --tokenize says otherwise."""
    if args.tokenize is None and spec.checkpoint:
        from rnn_tui.engine.checkpoint import read_config

        mode = read_config(spec.checkpoint).task_options.get("tokenize")
        if mode in ("char", "word", "space"):
            return spec.replace(tokenize=mode)
    return spec


def refuse_early(spec, why_not, what: str) -> None:
    """Refuse a run or task model that is not a language model before the prime or text is read
    with its vocabulary (a recall model would otherwise answer that 'a' is not one of its tokens)."""
    from rnn_tui.engine.generate import GenerateError

    config = vocab = labels = None
    if spec.checkpoint:
        from rnn_tui.engine.checkpoint import read_config

        info = read_config(spec.checkpoint)
        config, vocab, labels, name = info.model, info.vocab, info.output_labels, f"the {info.task} run"
    elif spec.task and not spec.weights:
        from rnn_tui.engine.tasks import get_task

        task = get_task(spec.task, **spec.task_options)
        if task.mode == "encdec":
            raise GenerateError(f"the {task.name} model cannot {what}: it is an encoder-decoder (two networks)")
        config, vocab, labels, name = task.model_config(), task.vocab, task.output_labels, f"the {task.name} model"
    if config is None or not hasattr(config, "head"):  # an encoder-decoder run keeps two configs
        if config is not None:
            raise GenerateError(f"{name} cannot {what}: it is an encoder-decoder (two networks)")
        return
    reason = why_not(config, vocab, labels)
    if reason is not None:
        raise GenerateError(f"{name} cannot {what}: {reason}")


def _generate(spec, args, seed) -> int:
    import numpy as np

    from rnn_tui.engine.generate import TOP, GenerateError, cannot_generate, detokenize, generate
    from rnn_tui.engine.subject import open_subject

    refuse_early(spec, cannot_generate, "generate text")
    subject = open_subject(spec)
    for note in subject.notes:
        print(f"note: {safe(note)}", file=sys.stderr)
    if subject.encdec_task is not None:
        raise GenerateError("this model cannot generate text: it is an encoder-decoder (two networks)")
    reason = cannot_generate(subject.config, subject.vocab, subject.output_labels)
    if reason is not None:
        raise GenerateError(f"this model cannot generate text: {reason}")
    vocab = subject.token_vocab
    if vocab is None:
        print("note: the model's vocabulary is not known (no --vocab): tokens are shown as ids", file=sys.stderr)
    prime = [int(i) for i in np.asarray(subject.x).reshape(-1)]
    top = args.top_k if args.top_k is not None else TOP
    t0 = time.perf_counter()
    gen = generate(subject.model, prime, args.length, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, seed=seed, top=min(top, 100))  # fmt: skip
    elapsed = time.perf_counter() - t0
    token = (lambda i: vocab[i]) if vocab is not None else (lambda i: i)  # noqa: E731
    if args.format == "json":
        from rnn_tui.commands.trace import write_json

        doc = {
            "schema": "rnn-tui.generate/1",
            "model": safe(subject.title),
            "prime": detokenize([vocab[i] for i in prime], spec.tokenize) if vocab is not None else None,
            "prime_tokens": [token(i) for i in gen.prime_ids],
            "prime_ids": list(gen.prime_ids),
            "text": detokenize([vocab[i] for i in gen.ids], spec.tokenize) if vocab is not None else None,
            "tokens": [token(s.id) for s in gen.steps],
            "ids": gen.ids,
            "p": [s.p for s in gen.steps],
            "q": [s.q for s in gen.steps],
            "entropy": [s.entropy for s in gen.steps],
            "entropy_unit": "nats",
            "top": [[{"token": token(c.id), "id": c.id, "p": c.p} for c in s.top] for s in gen.steps],
            "temperature": gen.temperature,
            "top_k": gen.top_k,
            "top_p": gen.top_p,
            "seed": gen.seed,
            "tokenize": spec.tokenize,
        }
        write_json(doc)
        sys.stdout.write("\n")
        return 0
    if vocab is not None:
        prime_text = detokenize([vocab[i] for i in prime], spec.tokenize)
        text = detokenize([vocab[i] for i in gen.ids], spec.tokenize)
        if spec.tokenize != "char" and gen.ids and not prime_text.endswith("\n") and vocab[gen.ids[0]] != "<eos>":
            text = " " + text
    else:
        prime_text = " ".join(map(str, prime))
        text = " " + " ".join(map(str, gen.ids))
    _print_text(prime_text, text)
    p = [s.p for s in gen.steps]
    H = [s.entropy for s in gen.steps]
    how = "greedy (temperature 0)" if gen.seed is None else (
        f"temperature {gen.temperature:g}" + (f", top-k {gen.top_k}" if gen.top_k else "")
        + (f", top-p {gen.top_p:g}" if gen.top_p is not None else "") + f", seed {gen.seed}")  # fmt: skip
    rate = len(p) / elapsed if elapsed > 0 else math.inf
    print(f"generated {len(p)} tokens in {elapsed:.2f} s ({rate:,.0f} tokens/s); {how}; "
          f"mean p {sum(p) / len(p):.3f}, mean entropy {sum(H) / len(H):.3f} nats", file=sys.stderr)  # fmt: skip
    return 0


def _print_text(prime: str, text: str) -> None:
    """Prime and continuation, sanitized (line breaks and tabs kept); on a terminal the prime is
    dim, so what the model wrote stands out."""
    shown_prime, shown = safe(prime, newlines=True, tabs=True), safe(text, newlines=True, tabs=True)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.text import Text

        out = Text()
        out.append(shown_prime, style="dim")
        out.append(shown, style="bold")
        Console(highlight=False, soft_wrap=True).print(out)
        return
    sys.stdout.write(shown_prime + shown + "\n")
