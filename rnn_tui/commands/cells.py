"""`rnn-tui cells`: the cell variants and their equations, from the cell registry."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("cells", help="list the cell variants with their equations",
                       description="List the cell variants with their equations and tensors.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from rnn_tui.engine.cells import REGISTRY

    console = Console(highlight=False)
    for name, cell in REGISTRY.items():
        console.print(Text(name, style="bold"), Text(f"  {cell.summary}", style="dim"))
        for line in cell.equations:
            console.print(f"    {line}")
        console.print(Text(f"    tensors: {cell.tensors}", style="dim"))
        fused = "no torch.nn module: run step by step"
        if cell.scans:
            fused = "no torch.nn module: the loop or the chunked parallel scan (--scan sequential|parallel)"
        if cell.fused:
            fused = f"fused in torch.nn.{cell.fused}" + (
                f" ({', '.join(cell.fused_activations)})" if len(cell.activations) > 1 else "")
        console.print(Text(f"    gates {' '.join(cell.gates)} · state {' '.join(cell.states)} · {fused}", style="dim"))
        console.print()
    return 0
