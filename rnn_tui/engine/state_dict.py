"""A trained run as a plain torch state_dict, for `rnn-tui export RUN_DIR --to FILE`.

    written = export_run("runs/chars-lstm", "chars_lstm.safetensors")   # or FILE.pt

For a cell torch has (lstm, gru, an rnn with tanh or relu) the file holds:

    embedding.weight        (V, I)      nn.Embedding(V, I)           models that read an embedding
    rnn.weight_ih_l0 ...                nn.LSTM / nn.GRU / nn.RNN(I, H, num_layers=L,
                                        bidirectional=..., bias=..., batch_first=True)
    head.weight (O, D*H)                nn.Linear(D*H, O, bias=...)
    head.bias (O,)                      (absent when the head has no bias)

so `load_state_dict(tensors, strict=True)` takes it into a module with the three parts
`embedding`, `rnn`, `head`. A model that reads tokens one-hot has no embedding tensor: its rnn reads
F.one_hot(x, V).float() (as d2l's RNNModel does); a model that reads vectors reads them as they are.
Cells torch lacks (lstm-peephole, gru-textbook, an rnn with sigmoid or identity) are written
under their rnn-tui names, "lstm_peephole.weight_ih_l0", "gru_textbook.weight_ih_l0", ...: no torch
module takes them by mistake (nn.GRU would load gru-textbook's tensors and compute something else),
and rnn-tui reads them back (a .safetensors file's metadata names the cell).

Beside the file, FILE.vocab.json holds the input vocabulary as a JSON list in id order (what
--vocab reads), and FILE.labels.json the output labels where they differ (a classifier's classes).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.weights import EXPORT_FORMAT

SUFFIXES = (".safetensors", ".pt", ".pth")


class ExportError(EngineError):
    """A run that cannot be exported, or a place it cannot be written; one line."""


@dataclass(frozen=True)
class Exported:
    """What `export_run` wrote, for the command to report."""

    path: Path
    names: dict[str, tuple[int, ...]]  # tensor name -> shape, as written
    module: str  # the recurrent layers' prefix: "rnn" for torch's cells, else the cell's own name
    torch_cell: str | None  # "LSTM" / "GRU" / "RNN" when torch has the cell, else None
    config: object  # the run's ModelConfig
    vocab_path: Path | None
    labels_path: Path | None

    def torch_code(self) -> str:
        """The few lines of torch that build the module this file loads into (strict=True)."""
        c = self.config
        D = 2 if c.bidirectional else 1
        load = ("from safetensors.torch import load_file\ntensors = load_file(PATH)" if self.path.suffix == ".safetensors"
                else "tensors = torch.load(PATH, weights_only=True)")  # fmt: skip
        lines = [
            "import torch",
            "from torch import nn",
            load.replace("PATH", repr(str(self.path))),
            "model = nn.Module()",
        ]
        if c.input_mode == "embedding":
            lines.append(f"model.embedding = nn.Embedding({c.vocab_size}, {c.input_size})")
        extra = (f", nonlinearity={c.activation!r}" if self.torch_cell == "RNN" else "")
        extra += ", bidirectional=True" if c.bidirectional else ""
        extra += ", bias=False" if not c.bias else ""
        lines.append(f"model.rnn = nn.{self.torch_cell}({c.input_size}, {c.hidden_size}, num_layers={c.num_layers}"
                     f"{extra}, batch_first=True)")  # fmt: skip
        lines.append(f"model.head = nn.Linear({c.hidden_size * D}, {c.output_size}{'' if c.head_bias else ', bias=False'})")
        lines.append("model.load_state_dict(tensors, strict=True)")
        if c.input_mode == "embedding":
            feed = "model.embedding(x)"
        elif c.input_mode == "onehot":
            feed = f"nn.functional.one_hot(x, {c.vocab_size}).float()"
        else:
            feed = "x"
        read = {"step": "out", "mean": "out.mean(dim=1)", "last": "out[:, -1]"}[c.head]
        if c.head == "last" and c.bidirectional:
            read = f"torch.cat([out[:, -1, :{c.hidden_size}], out[:, 0, {c.hidden_size}:]], dim=-1)"
        shape = "(B, T) token ids" if c.input_mode != "vectors" else f"(B, T, {c.input_size}) vectors"
        lines.append(f"out, _ = model.rnn({feed})  # x: {shape}")
        lines.append(f"y = model.head({read})")
        return "\n".join(lines)


def _module_name(config) -> tuple[str, str | None]:
    if config.torch_native:
        return "rnn", {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[config.cell]
    name = config.cell.replace("-", "_")
    if len(config.cell_spec.activations) > 1:  # rnn_sigmoid, indrnn_relu
        name += f"_{config.activation}"
    return name, None


def export_run(run_dir: str | Path, to: str | Path, force: bool = False) -> Exported:
    """Write a run's weights as a plain torch state_dict at `to` (.safetensors or .pt), and its
    vocabulary beside it. Nothing is overwritten unless `force`."""
    import torch

    from rnn_tui.engine.checkpoint import CheckpointError, atomic_write_bytes, atomic_write_json, load_checkpoint, tensors_to_bytes
    from rnn_tui.engine.tasks import TASKS

    to = Path(to)
    if to.suffix.lower() not in SUFFIXES:
        raise ExportError(f"--to {to}: write a .safetensors or a .pt file")
    ckpt = load_checkpoint(run_dir, metrics=False)
    info = ckpt.info
    task = TASKS.get(info.task)
    if task is not None and task.mode == "encdec":
        raise ExportError(f"{run_dir} holds an encoder and a decoder ({info.task}); export writes one-network runs")
    config = info.model
    module, torch_cell = _module_name(config)
    out: dict[str, torch.Tensor] = {}
    for name, t in ckpt.tensors.items():
        if name.startswith(("head.", "embedding.")):
            out[name] = t
        else:
            out[f"{module}.{name}"] = t
    vocab_path = to.with_name(to.stem + ".vocab.json") if info.vocab is not None else None
    labels = info.output_labels
    labels_path = to.with_name(to.stem + ".labels.json") if labels is not None and labels != info.vocab else None
    if not force:
        for path in (to, vocab_path, labels_path):
            if path is not None and path.exists():
                raise ExportError(f"{path} already exists: give another --to, or --force to replace it")
    if to.parent and not to.parent.is_dir():
        raise ExportError(f"--to {to}: the folder {to.parent} does not exist")
    try:
        if to.suffix.lower() == ".safetensors":
            meta = {"format": EXPORT_FORMAT, "cell": config.cell, "activation": config.activation,
                    "input": config.input_mode, "head": config.head, "run": info.task}  # fmt: skip
            atomic_write_bytes(to, tensors_to_bytes(out, meta))
        else:
            buffer = io.BytesIO()
            torch.save({k: v.detach().contiguous().clone() for k, v in out.items()}, buffer)
            atomic_write_bytes(to, buffer.getvalue())
        if vocab_path is not None:
            atomic_write_json(vocab_path, list(info.vocab))
        if labels_path is not None:
            atomic_write_json(labels_path, list(labels))
    except CheckpointError:
        raise
    except OSError as e:
        raise ExportError(f"cannot write {to}: {e.strerror or e}") from None
    return Exported(to, {k: tuple(v.shape) for k, v in out.items()}, module, torch_cell, config, vocab_path, labels_path)

