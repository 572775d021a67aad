"""`rnn-tui cells`: the cell variants and their equations."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("cells", help="list the cell variants with their equations",
                       description="List the cell variants with their equations and tensors.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from rnn_tui.engine.equations import EQUATIONS, PARAMETERS, SUMMARY

    console = Console(highlight=False)
    for cell, lines in EQUATIONS.items():
        console.print(Text(cell, style="bold"), Text(f"  {SUMMARY[cell]}", style="dim"))
        for line in lines:
            console.print(f"    {line}")
        console.print(Text(f"    tensors: {PARAMETERS[cell]}", style="dim"))
        console.print()
    return 0
