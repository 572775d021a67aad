"""The `rnn-tui` command. With no subcommand it opens the explorer.

Every bad argument or file ends in one line on stderr that says what is wrong, and exit code 2.
Nothing heavy is imported here: torch loads only when a model is needed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from rnn_tui import __version__
from rnn_tui.engine.cells import ACTIVATIONS, CELLS
from rnn_tui.engine.device import CHOICES as DEVICE_NAMES

# subcommand modules under rnn_tui.commands, in the order `--help` lists them
COMMANDS = ("trace", "generate", "eval", "cells", "train", "export", "tasks", "serve", "lesson")
CELL_NAMES = CELLS  # the cell registry's names (rnn_tui.engine.cells: no numpy, no torch)
ACTIVATION_NAMES = ACTIVATIONS
TOKENIZE_NAMES = ("char", "word", "space")


class UsageError(Exception):
    """A bad command line; the message is the whole story."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be from {lo} to {hi}, got {value}")
        return value

    parse.__name__ = "number"
    return parse


def add_model_flags(p: argparse.ArgumentParser, seed_help: str | None = None) -> None:
    """The flags that say which model and sequence to open (shared by the explorer, trace,
    generate and eval); seed_help: what --seed means to the command, when not the initialisation."""
    g = p.add_argument_group("model and sequence")
    g.add_argument("--cell", choices=CELL_NAMES, help="cell variant (default lstm; imported weights: read from the file)")
    g.add_argument("--activation", choices=ACTIVATION_NAMES,
                   help="rnn activation (default tanh; imported weights: tanh is assumed unless given)")
    # defaults are None so a flag that was typed can be told from one that was not (see given_flags)
    g.add_argument("--hidden", type=int_in(1, 4096), metavar="N", help="units per layer (default 16)")
    g.add_argument("--layers", type=int_in(1, 16), metavar="N", help="stacked layers (default 1)")
    g.add_argument("--bidirectional", action="store_true", help="add a reverse-time direction")
    g.add_argument("--no-bias", dest="bias", action="store_false", help="no bias vectors")
    g.add_argument("--seed", type=int_in(0, 2**31 - 1), metavar="N", help=seed_help or "initialisation seed (default 0)")
    g.add_argument("--input", metavar="TEXT", help="text to run through a character model")
    g.add_argument("--text", metavar="FILE", help="a UTF-8 text file to run through the model (instead of --input)")
    g.add_argument("--scenario", metavar="FILE", help="a TOML scenario that sets the model and its weights by hand")
    g.add_argument("--checkpoint", metavar="DIR", help="a run directory written by `rnn-tui train`")
    g.add_argument("--task", metavar="NAME", help="take the sequence (and model shape) from a task; see `rnn-tui tasks`")
    g.add_argument("--tokenize", choices=TOKENIZE_NAMES,
                   help="how text becomes tokens: char, word, or space (split on whitespace only) (default char)")
    add_device_flag(g)
    add_weights_flags(p)
    w = p.add_argument_group("your own model (with --weights)")
    w.add_argument("--vocab", metavar="FILE", help="the model's vocabulary: a JSON list, a JSON object token -> id, "
                   "or one token per line (text needs it: ids are never made up)")
    w.add_argument("--input-ids", metavar="IDS", help='token ids to feed as they are, e.g. "3 17 5"')
    w.add_argument("--vectors", metavar="FILE", help="input vectors, one row per step (T x I): .npy or CSV")
    w.add_argument("--targets", metavar="FILE", help="a target per step: classes (-1 unscored) or rows of values; .npy or CSV")


def add_device_flag(g) -> None:
    """--device: where torch computes (train, trace and the explorer take it)."""
    g.add_argument("--device", choices=DEVICE_NAMES, default=None,
                   help="where torch computes: cpu (default), cuda (refused where there is none), "
                   "or auto (cuda where there is one, else cpu; says which)")


def add_weights_flags(p: argparse.ArgumentParser) -> None:
    """--weights and how to read it: every command that takes a weights file takes these."""
    g = p.add_argument_group("weights file")
    g.add_argument("--weights", metavar="FILE",
                   help="your own trained model: a torch state_dict (.safetensors, .pt) or numpy arrays (.npz)")
    g.add_argument("--prefix", metavar="P", help="with --weights: the module prefix of the recurrent layers (e.g. 'encoder.rnn.')")
    g.add_argument("--map", metavar="NAME=ROLE,...", dest="map",
                   help="with --weights: say what a tensor is; roles embedding.weight, head.weight, head.bias, "
                   "ignore, or a torch RNN name (weight_ih_l0 ...)")


def given_flags(args: argparse.Namespace) -> set[str]:
    """The model flags typed on the command line, by their Spec field names."""
    given = {n for n in ("cell", "activation", "hidden", "layers", "seed", "input", "scenario", "checkpoint",
                         "weights", "task", "tokenize", "vocab", "vectors", "targets", "prefix")
             if getattr(args, n, None) is not None}  # fmt: skip
    if getattr(args, "text", None) is not None:
        given.add("input")
    if getattr(args, "input_ids", None) is not None:
        given.add("input_ids")
    if getattr(args, "map", None) is not None:
        given.add("mapping")
    if args.bidirectional:
        given.add("bidirectional")
    if not args.bias:
        given.add("bias")
    return given


def read_text_flag(args: argparse.Namespace) -> str | None:
    """--input, or the content of --text FILE (read with a bound: a FIFO or /dev/zero is refused)."""
    path = getattr(args, "text", None)
    if path is None:
        return args.input
    if args.input is not None:
        raise UsageError("rnn-tui: give --input TEXT or --text FILE, not both")
    from rnn_tui.engine.files import MiB, read_text

    return read_text(path, "--text", 64 * MiB)  # the training texts' bound; a trace takes 100000 characters


def spec_from_args(args: argparse.Namespace):
    """The Spec the flags describe, after the checks that need no torch (conflicting flags, an
    empty or oversized --input, a bad --map or --input-ids): SubjectError, one line, before any
    model is built."""
    from rnn_tui.engine.subject import Spec, check_spec
    from rnn_tui.engine.vocab import parse_ids
    from rnn_tui.engine.weights import parse_map

    ids = getattr(args, "input_ids", None)
    spec = Spec(
        cell=args.cell,
        activation=args.activation,
        hidden=16 if args.hidden is None else args.hidden,
        layers=1 if args.layers is None else args.layers,
        bidirectional=args.bidirectional,
        bias=args.bias,
        seed=0 if args.seed is None else args.seed,
        dtype=getattr(args, "dtype", None) or "float32",
        input=read_text_flag(args),
        scenario=args.scenario,
        checkpoint=args.checkpoint,
        weights=args.weights,
        task=args.task,
        tokenize=args.tokenize or "char",
        vocab=getattr(args, "vocab", None),
        input_ids=None if ids is None else tuple(parse_ids(ids)),
        vectors=getattr(args, "vectors", None),
        targets=getattr(args, "targets", None),
        prefix=getattr(args, "prefix", None),
        mapping=parse_map(getattr(args, "map", None)),
        device=getattr(args, "device", None) or "cpu",
    )
    check_spec(spec, given_flags(args))
    return spec


def build_parser() -> Parser:
    parser = Parser(
        prog="rnn-tui",
        description="Open up a recurrent neural network and watch it think. "
        "With no subcommand, opens the explorer.",
    )
    parser.add_argument("--version", action="version", version=f"rnn-tui {__version__}")
    add_model_flags(parser)
    parser.add_argument("--theme", default=None, metavar="NAME", help="explorer theme (see the help screen)")
    sub = parser.add_subparsers(title="subcommands", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        if importlib.util.find_spec(f"rnn_tui.commands.{name}") is None:
            continue
        importlib.import_module(f"rnn_tui.commands.{name}").add_parser(sub)
    parser.set_defaults(run=run_explorer)
    return parser


def run_explorer(args: argparse.Namespace) -> int:
    from rnn_tui.ui.launch import check, launch, with_default_demo

    spec = spec_from_args(args)
    check(with_default_demo(spec), args.theme)  # a bad flag is reported before the terminal test
    need_terminal("the explorer")
    return launch(spec, theme=args.theme)


def need_terminal(what: str) -> None:
    """UsageError unless a person's terminal is there to draw on and type into.

    Textual reads keys from stdin and draws on stderr (stdout stays free for redirection); with
    either not a terminal it would hang or write escape codes into a file. Under `rnn-tui serve`
    (TEXTUAL_DRIVER names the web driver) the browser is the terminal.
    """
    if os.environ.get("TEXTUAL_DRIVER"):
        return
    missing = [name for name, stream in (("stdin", sys.stdin), ("stderr", sys.stderr))
               if stream is None or not stream.isatty()]  # fmt: skip
    if missing:
        raise UsageError(
            f"rnn-tui: {what} needs a terminal ({' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not one): "
            "run it in a terminal; for text output use `rnn-tui trace` or `rnn-tui lesson NAME --headless`, "
            "for a browser `rnn-tui serve`"
        )


def printable_output() -> None:
    """Text that the terminal's encoding cannot hold is shown escaped, never a UnicodeEncodeError
    (an ASCII or Latin-1 SSH session and the model's '␣' and '⏎' labels)."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and (getattr(stream, "encoding", "") or "").lower() not in ("utf-8", "utf8"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot be changed (a test's capture)
                pass


def main(argv: list[str] | None = None) -> int:
    from rnn_tui.engine import threads

    threads.apply()  # one thread policy for every command, before numpy or torch loads
    printable_output()
    from rnn_tui.engine.errors import EngineError

    from rnn_tui.safe_text import safe

    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
    except UsageError as e:  # messages quote what was typed and what files hold: never raw
        print(safe(str(e)), file=sys.stderr)
        return 2
    except EngineError as e:
        print(f"rnn-tui: error: {safe(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnn-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnn-tui trace | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
