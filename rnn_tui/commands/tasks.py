"""`rnn-tui tasks`: the tasks a model can learn, with their mode and options (no torch needed)."""

from __future__ import annotations

import argparse

MODE_WORDS = {
    "lm": "language model",
    "seq2seq": "one label per step",
    "seq2class": "one label per sequence",
    "regression": "regression (MSE)",
    "encdec": "encoder-decoder",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tasks",
        help="list the tasks a model can be trained on",
        description="List the tasks `rnn-tui train --task NAME` can learn, with their mode and options.",
    )
    p.add_argument("--options", action="store_true", help="also list each task's options")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from rnn_tui.engine.tasks import TASKS

    console = Console(highlight=False)
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("task")
    table.add_column("mode")
    table.add_column("description")
    show_options = getattr(args, "options", False)
    for name, info in TASKS.items():
        table.add_row(name, info.mode, info.description)
        if show_options:
            for option, help_text in info.options.items():
                table.add_row("", "", f"[dim]--{option.replace('_', '-')}  {help_text}[/]")
    console.print(table)
    console.print(
        "[dim]modes: " + ", ".join(f"{m} = {w}" for m, w in MODE_WORDS.items()) + "[/]\n"
        "[dim]train one: rnn-tui train --task NAME --cell lstm   (rnn-tui tasks --options for their options)[/]"
    )
    return 0
