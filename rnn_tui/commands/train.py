"""`rnn-tui train`: train a model on a task, save the run, end with the task metric.

    rnn-tui train --task recall --cell lstm --distance 30 --out runs/recall-lstm
    rnn-tui train --resume runs/recall-lstm --steps 2000
    rnn-tui train --task chars --text notes.txt --tokenize space --weights model.pt --vocab vocab.json

Settings a flag does not give come from the task's defaults (`rnn-tui tasks`), or, on --resume,
from the run being resumed. Ctrl-C stops cleanly after the current step and saves the run.

Exit codes: 0 the run finished, 1 it diverged (the last good weights are saved), 130 it was
cancelled with Ctrl-C (saved; --resume goes on), 2 a bad flag or file (nothing is written).
"""

from __future__ import annotations

import argparse
import shlex
from datetime import datetime
from pathlib import Path

from rnn_tui.engine.cells import ACTIVATIONS
from rnn_tui.engine.cells import CELLS as CELL_NAMES
from rnn_tui.safe_text import safe


def _task_options() -> dict[str, list[tuple[str, str]]]:
    """option -> [(task, help)] across every task, from the torch-free catalog."""
    from rnn_tui.engine.tasks import TASKS

    found: dict[str, list[tuple[str, str]]] = {}
    for name, info in TASKS.items():
        for option, help_text in info.options.items():
            found.setdefault(option, []).append((name, help_text))
    return found


def _number(kind, lo, hi, name):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {text}")
        return value

    parse.__name__ = name
    return parse


def add_parser(sub) -> None:
    whole = lambda lo, hi: _number(int, lo, hi, "number")  # noqa: E731
    real = lambda lo, hi: _number(float, lo, hi, "number")  # noqa: E731
    p = sub.add_parser(
        "train",
        help="train a model on a task and save the run (see `rnn-tui tasks`)",
        description="Train a model on a task with a progress bar, save the run directory "
        "(model.safetensors, config.json, metrics.jsonl) and end with the task metric. "
        "Unset flags take the task's defaults, or the resumed run's settings.",
        epilog="exit codes: 0 finished, 1 diverged (the last good weights are saved), "
        "130 cancelled with Ctrl-C (saved: --resume goes on), 2 a bad flag or file",
    )
    g = p.add_argument_group("task and model")
    g.add_argument("--task", metavar="NAME", help="the task to learn (see `rnn-tui tasks`)")
    g.add_argument("--cell", choices=CELL_NAMES, help="cell variant (default lstm, or the imported weights' cell)")
    g.add_argument("--activation", choices=ACTIVATIONS, help="rnn activation (default tanh)")
    g.add_argument("--hidden", type=whole(1, 4096), metavar="N", help="units per layer (default: the task's)")
    g.add_argument("--layers", type=whole(1, 16), metavar="N", help="stacked layers (default: the task's)")
    g.add_argument("--bidirectional", action="store_true", default=None, help="add a reverse-time direction")
    g.add_argument("--no-bias", dest="bias", action="store_false", default=None, help="no bias vectors")
    from rnn_tui.cli import add_weights_flags

    add_weights_flags(p)  # --weights FILE (your own model: fine-tuned whole, embedding and head kept), --prefix, --map

    t = p.add_argument_group("training")
    t.add_argument("--steps", type=whole(1, 10_000_000), metavar="N", help="optimizer steps in all")
    t.add_argument("--batch", type=whole(1, 65_536), metavar="N", help="sequences per batch")
    t.add_argument("--lr", type=real(0.0, 1e30), metavar="X", help="learning rate")
    t.add_argument("--optimizer", choices=("adam", "sgd"), help="optimizer")
    t.add_argument("--momentum", type=real(0.0, 0.999999), metavar="X", help="SGD momentum")
    t.add_argument("--clip", type=real(1e-12, 1e9), metavar="X", help="clip the gradient norm at X")
    t.add_argument("--no-clip", action="store_true", help="no gradient-norm clipping")
    t.add_argument("--clip-value", type=real(1e-12, 1e9), metavar="X", help="clamp every gradient entry to [-X, X]")
    t.add_argument("--tbptt", type=whole(1, 1_000_000), metavar="K", help="truncated BPTT with window K")
    t.add_argument("--weight-decay", type=real(0.0, 1e3), metavar="X", help="L2 penalty on weight matrices")
    t.add_argument("--l1", type=real(0.0, 1e3), metavar="X", help="L1 penalty on weight matrices")
    t.add_argument("--seed", type=whole(0, 2**31 - 1), metavar="N", help="seed of weights and data (default 0)")
    t.add_argument("--log-every", type=whole(1, 10_000_000), metavar="N", help="steps between metrics records")
    t.add_argument("--snapshot-every", type=whole(1, 10_000_000), metavar="N", help="save the weights every N steps (time-lapse)")
    t.add_argument("--save-every", type=whole(1, 10_000_000), metavar="N", help="save the whole run every N steps")
    t.add_argument("--threads", type=whole(1, 1024), metavar="N", help="torch CPU threads (default: rnn-tui's policy, 1 unless RNN_TUI_THREADS says)")
    from rnn_tui.cli import add_device_flag

    add_device_flag(t)  # --device cpu|cuda|auto: where the model, the batches and the optimizer state live

    o = p.add_argument_group("run directory")
    o.add_argument("--out", metavar="DIR", help="where to save the run (default runs/<task>-<cell>-<time>)")
    o.add_argument("--resume", metavar="DIR", help="carry on a saved run (flags given change its settings)")
    o.add_argument("--quiet", action="store_true", help="only the final summary")

    k = p.add_argument_group("task options (each applies to the tasks named)")
    for option, uses in sorted(_task_options().items()):
        tasks = ", ".join(name for name, _ in uses)
        k.add_argument(
            "--" + option.replace("_", "-"),
            dest=f"task_{option}",
            metavar="V",
            help=f"{uses[0][1]} [{tasks}]",
        )
    p.set_defaults(run=run)


# ---- run ---------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    trainer = _make_trainer(args)
    cancel = threading.Event()
    # Ctrl-C, a `kill` and a closed SSH session all stop after the current step and save the run;
    # a second Ctrl-C interrupts at once (the files on disk stay whole: every write is atomic)
    names = [n for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {}

    def stop(signum, frame):
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        for name in names:
            previous[name] = signal.signal(getattr(signal, name), stop)
    try:
        result = _run_with_display(trainer, cancel, args)
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
    _summary(trainer, result)
    return {"finished": 0, "diverged": 1, "cancelled": 130}[result.status]


def _make_trainer(args: argparse.Namespace):
    from rnn_tui.engine.device import resolve
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.train import Trainer, TrainConfig, TrainConfigError

    device = resolve(args.device)  # CUDA asked for and absent: one line, before anything is read or built

    options = {k[len("task_") :]: v for k, v in vars(args).items() if k.startswith("task_") and v is not None}
    train_flags = dict(
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        optimizer=args.optimizer,
        momentum=args.momentum,
        clip=args.clip,
        clip_value=args.clip_value,
        tbptt=args.tbptt,
        weight_decay=args.weight_decay,
        l1=args.l1,
        seed=args.seed,
        log_every=args.log_every,
        snapshot_every=args.snapshot_every,
        save_every=args.save_every,
        threads=args.threads,
    )
    if args.no_clip and args.clip is not None:
        raise TrainConfigError("--clip and --no-clip contradict each other: give one")

    for flag in ("out", "resume", "weights"):
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            raise TrainConfigError(f"--{flag} is empty: give a path")

    if args.resume:
        given = [f"--{n}" for n in ("task", "cell", "activation", "hidden", "layers", "weights", "prefix", "map", "out") if getattr(args, n)]
        given += ["--bidirectional"] if args.bidirectional else []
        given += ["--no-bias"] if args.bias is False else []
        given += [f"--{k.replace('_', '-')}" for k in options]
        if given:
            raise TrainConfigError(
                f"--resume continues a saved run as it was built: drop {', '.join(given)} "
                "(training flags such as --steps and --lr may change)"
            )
        trainer = Trainer.resume(args.resume, device=device, **train_flags)
        _note_device(trainer)
        if args.no_clip:
            trainer.config = trainer.config.replace(clip=None)
        if trainer.step >= trainer.config.steps:
            raise TrainConfigError(
                f"{args.resume} already has {trainer.step} steps: give --steps N with N above {trainer.step} to train on"
            )
        return trainer

    if not args.task:
        raise TrainConfigError("say which task to learn with --task NAME (see `rnn-tui tasks`), or --resume DIR")
    task = get_task(args.task, **options)
    config = TrainConfig.from_defaults(task.defaults, **train_flags)
    if args.no_clip:
        config = config.replace(clip=None)
    model_config, model, notes = _model(task, args, config.seed)
    out = Path(args.out) if args.out else _default_out(args.task, model_config.cell)
    trainer = Trainer(task, config, model_config=model_config, model=model, run_dir=out, task_options=_recorded(task, options),
                      device=device)  # fmt: skip
    trainer.notes[:0] = notes  # what the import read: printed before the run starts
    _note_device(trainer)
    return trainer


def _note_device(trainer) -> None:
    """What --device auto chose (and why), among the notes printed before the run starts."""
    if trainer.device.asked == "auto":
        trainer.notes.append(trainer.device.note())


def _recorded(task, options: dict) -> dict:
    """Task options as config.json keeps them: parsed numbers, and files by absolute path."""
    kept = {}
    for key, value in options.items():
        parsed = getattr(task, key, None)
        if isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            kept[key] = parsed
        elif isinstance(value, str) and Path(value).is_file():
            kept[key] = str(Path(value).resolve())
        else:
            kept[key] = value
    return kept


def _model(task, args, seed: int):
    """(model config, the model holding the imported weights or None, notes on the import).

    With --weights the whole imported model is kept: its embedding and head when the file has
    them (they must fit the task: a model's own vocabulary comes with --vocab), fresh ones only
    where it has none, which the notes say."""
    from rnn_tui.engine.weights import WeightsError, build_with_weights, fit_config, fresh_parts, load_user_weights, parse_map

    shape_flags = dict(
        hidden=args.hidden,
        layers=args.layers,
        bidirectional=bool(args.bidirectional),
        activation=args.activation or "tanh",
        bias=args.bias if args.bias is not None else True,
    )
    mapping = parse_map(args.map)
    if not args.weights:
        for flag in ("prefix", "map"):
            if getattr(args, flag):
                raise WeightsError(f"--{flag} applies to --weights FILE only")
        return task.model_config(cell=args.cell or "lstm", **shape_flags), None, []
    if getattr(task, "mode", "") == "encdec":
        raise WeightsError("--weights cannot start the encoder-decoder task: it has two networks")
    shape, tensors = load_user_weights(args.weights, cell=args.cell, activation=args.activation, prefix=args.prefix,
                                       mapping=mapping)  # fmt: skip
    for flag, mine, theirs in (
        ("--hidden", args.hidden, shape.hidden_size),
        ("--layers", args.layers, shape.num_layers),
        ("--bidirectional", args.bidirectional, shape.bidirectional if args.bidirectional else None),
        ("--no-bias", False if args.bias is False else None, shape.bias if args.bias is False else None),
    ):
        if mine is not None and mine != theirs:
            raise WeightsError(f"{flag} does not match the imported weights ({shape.describe()}): drop {flag}")
    base = task.model_config(cell=shape.cell, hidden=shape.hidden_size, layers=shape.num_layers,
                             bidirectional=shape.bidirectional, activation=shape.activation, bias=shape.bias)
    reads_ids = shape.vocab_size or shape.output_size or base.input_mode == "onehot"
    if task.name == "chars" and getattr(task, "user_vocab", None) is None and reads_ids:
        raise WeightsError(
            "--weights with --task chars needs the model's own --vocab FILE: the text is then read with the token ids "
            "the model learned (a vocabulary made from the text would number the tokens differently)"
        )
    config = fit_config(shape, base)
    notes = [shape.report(), *fresh_parts(shape, config)]
    if getattr(task, "unknown", 0):
        notes.append(f"{task.unknown} tokens of the text are not in the vocabulary and read as <unk>")
    model = build_with_weights(shape, tensors, base, seed=seed)
    return model.config, model, notes


def _default_out(task: str, cell: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{task}-{cell}-{stamp}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


# ---- display -----------------------------------------------------------------------------------
def baseline_line(trainer) -> str:
    """The trained model against its task's baselines, on fresh examples (engine.evaluate): a text's
    unigram and n-gram, chance and the class prior, or predicting the mean."""
    from rnn_tui.engine.evaluate import EVAL_BATCHES, evaluate_task

    try:
        report = evaluate_task(trainer.model, trainer.task, batches=max(1, min(EVAL_BATCHES, trainer.config.eval_batches)))
    except Exception as e:  # noqa: BLE001 - the run is saved whatever this says
        from rnn_tui.safe_text import safe as _safe

        return f"vs baselines: left out ({_safe(str(e).splitlines()[0] if str(e) else type(e).__name__)})"
    return report.line()

def _run_with_display(trainer, cancel, args):
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False)
    for note in trainer.notes:
        console.print(f"[yellow]note:[/] {escape(safe(note))}", soft_wrap=True)  # one line each, however long
    if not args.quiet:
        _header(console, trainer)
    if console.is_terminal and not args.quiet:
        return _run_with_bar(trainer, cancel, console)
    return _run_plain(trainer, cancel, console, quiet=args.quiet)


def _header(console, trainer) -> None:
    cfg, c = trainer.model_config, trainer.config
    shape = f"{cfg.num_layers}x{cfg.hidden_size}" + (" bidirectional" if cfg.bidirectional else "")
    cell = cfg.cell + (f" ({cfg.activation})" if cfg.cell == "rnn" else "")
    clip = f"clip {c.clip:g}" if c.clip else "no clip"
    bptt = f"tbptt {c.tbptt}" if c.tbptt else "full BPTT"
    start = f" from step {trainer.step}" if trainer.step else ""
    where = _where(trainer)
    console.print(
        f"training [bold]{cell}[/] {shape} on [bold]{trainer.task.name}[/]{start}: "
        f"{c.steps} steps, batch {c.batch}, {c.optimizer} lr {c.lr:g}, {clip}, {bptt}, seed {c.seed}{where}"
    )


def _where(trainer) -> str:
    """Where it trains, for the header and the summary: ", on cuda (NVIDIA H200)" off the CPU or
    when --device auto chose; "" for the plain default (the CPU, asked for or not)."""
    from rich.markup import escape

    device = trainer.device
    if not device.accelerated and device.asked == "cpu":
        return ""
    return f", on {escape(safe(device.describe()))}"


def _metric_text(p) -> str:
    from rich.markup import escape

    return "" if p.metric is None else f"{escape(safe(p.metric_name))} {p.metric:.3f}"


def _run_with_bar(trainer, cancel, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[metric]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        job = bar.add_task("train", total=trainer.config.steps, completed=trainer.step, loss="-", metric="", rate="")

        def on_progress(p):
            bar.update(
                job,
                completed=p.step,
                loss=f"{p.loss:.4f}",
                metric=_metric_text(p),
                rate=f"{p.tokens_per_s:,.0f} tok/s",
            )

        return trainer.run(on_progress=on_progress, cancel=cancel)


def _run_plain(trainer, cancel, console, quiet: bool):
    from rich.markup import escape

    def on_progress(p):
        r = p.record
        if quiet or r is None:
            return
        metric = "" if r["metric"] is None else f"  {escape(safe(r['metric_name']))} {r['metric']:.4f}"
        console.print(f"step {r['step']:>7}  loss {r['loss']:.4f}  grad norm {r['grad_norm']:.3f}{metric}")

    return trainer.run(on_progress=on_progress, cancel=cancel)


def _summary(trainer, result) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    style = {"finished": "green", "cancelled": "yellow", "diverged": "red"}[result.status]
    head, sep, rest = result.message.partition(":")
    if sep and head.startswith(result.status):  # "diverged at step 12: the loss became NaN ..."
        console.print(f"[{style}]{escape(safe(head))}[/]:{escape(safe(rest))}", soft_wrap=True)
    else:
        console.print(f"[{style}]{result.status}[/]: {escape(safe(result.message))}", soft_wrap=True)
    if result.metric is not None:
        line = f"{trainer.task.name} {escape(safe(result.metric_name))}: [bold]{result.metric:.4f}[/]"
        if result.chance is not None:
            line += f"  (chance {result.chance:.4f})"
        if result.status == "finished" and getattr(trainer.task, "solved", None) is not None:
            line += "  [green]solved[/]" if result.solved else "  [yellow]not solved[/]"
        console.print(line)
    if result.loss is not None:
        rate = f"  ·  {result.tokens_per_s:,.0f} tokens/s" if result.tokens_per_s else ""
        where = _where(trainer).replace(", on ", "  ·  on ", 1)
        console.print(f"loss {result.loss:.4f}  ·  {result.elapsed:.1f} s{rate}{where}")
    if result.step > 0:
        console.print(escape(safe(baseline_line(trainer))), soft_wrap=True)
    if result.run_dir is not None:
        where = escape(safe(shlex.quote(str(result.run_dir))))  # a path is text, never markup; quoted to paste
        console.print(f"saved to {escape(safe(result.run_dir))}", soft_wrap=True)  # whole lines, ready to paste
        if result.status == "finished":
            console.print(f"  trace it:  rnn-tui trace --checkpoint {where}", soft_wrap=True)
        else:
            lower = " --lr <lower>" if result.status == "diverged" else ""
            console.print(f"  go on:     rnn-tui train --resume {where}{lower}", soft_wrap=True)

