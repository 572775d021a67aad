"""`rnn-tui export RUN_DIR --to FILE`: a trained run as a plain torch state_dict.

    rnn-tui export runs/chars-lstm --to chars_lstm.safetensors     # or .pt
    # -> chars_lstm.safetensors and chars_lstm.vocab.json, and the torch lines that load them

The names are torch's (embedding.weight, rnn.weight_ih_l0 ..., head.weight, head.bias), so
`load_state_dict(strict=True)` takes the file into nn.Embedding + nn.LSTM/GRU/RNN + nn.Linear;
cells torch lacks keep their rnn-tui names (see `rnn_tui.engine.state_dict`).
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained run as a plain torch state_dict (and its vocabulary as JSON)",
        description="Write a run directory's weights as a plain state_dict with torch names "
        "(embedding.weight, rnn.weight_ih_l0 ..., head.weight, head.bias) that load_state_dict(strict=True) "
        "takes into nn.Embedding + nn.LSTM/GRU/RNN + nn.Linear, the vocabulary beside it as FILE.vocab.json, "
        "and print the torch lines that load it.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rnn-tui train`")
    p.add_argument("--to", required=True, metavar="FILE", help="the file to write: .safetensors or .pt")
    p.add_argument("--force", action="store_true", help="replace FILE (and its .vocab.json) if they exist")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from rnn_tui.engine.state_dict import export_run

    done = export_run(args.run_dir, args.to, force=args.force)
    console = Console(highlight=False, soft_wrap=True)
    c = done.config
    parts = []
    if "embedding.weight" in done.names:
        parts.append(f"embedding.weight {_shape(done.names['embedding.weight'])}")
    rec = [n for n in done.names if n.startswith(done.module + ".")]
    what = f"{c.num_layers}-layer{' bidirectional' if c.bidirectional else ''} {c.cell}"
    what += f" ({c.activation})" if c.cell == "rnn" else ""
    parts.append(f"{done.module}.* ({len(rec)} tensors: {what}, input {c.input_size}, hidden {c.hidden_size})")
    parts.append("head.weight" + (", head.bias" if "head.bias" in done.names else "") + f" ({c.output_size} outputs)")
    console.print(escape(f"wrote {done.path}: " + "; ".join(parts)))
    if done.vocab_path is not None:
        console.print(escape(f"wrote {done.vocab_path}: the vocabulary, {c.vocab_size} tokens in id order (--vocab reads it)"))
    if done.labels_path is not None:
        console.print(escape(f"wrote {done.labels_path}: the output labels, {c.output_size} in order"))
    if c.input_mode == "onehot":
        console.print("the model reads tokens one-hot: there is no embedding tensor; its rnn reads one_hot(x, V).float()")
    if c.head != "step":
        console.print(f"the head reads the {'mean of the states' if c.head == 'mean' else 'last state'}, not every step")
    if done.torch_cell is None:
        console.print(escape(
            f"{c.cell}{' (' + c.activation + ')' if c.cell == 'rnn' else ''} is not a torch cell: its tensors keep "
            f"rnn-tui's names under {done.module}., which no torch module loads; rnn-tui reads them back with "
            f"--weights {done.path}" + ("" if done.path.suffix == ".safetensors" else f" --cell {c.cell}")
        ))
        return 0
    console.print("load it in torch:")
    for line in done.torch_code().splitlines():
        console.print("    " + escape(line))
    return 0


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + " x ".join(str(d) for d in shape) + ")"
