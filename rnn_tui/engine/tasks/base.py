"""What a task is: the records it hands the trainer and the explorer, and the base class.

A task generates its data offline (or reads a local text) and knows the model that fits it:
`model_config()` gives the right input mode, sizes, head and loss; `sample()` gives a training
batch; `example()` gives one sequence to trace; `metric()` scores a batch of outputs.

The trainer stays task-agnostic by calling `task.build_model`, `task.forward` and `task.loss`;
an encoder-decoder task overrides those three.

This module imports torch only inside methods, so listing tasks stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from rnn_tui.engine.errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    from torch import Generator, Tensor, nn

    from rnn_tui.engine.config import ModelConfig

IGNORE = -100  # target of an unscored step under cross-entropy, as torch's ignore_index
MODES = ("lm", "seq2seq", "seq2class", "regression", "encdec")


class TaskError(EngineError):
    """A task name or option that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class TrainDefaults:
    """Cell-independent training settings a task starts from; every CLI flag can override them."""

    hidden: int = 32  # H, units per layer and direction
    layers: int = 1  # stacked recurrent layers
    steps: int = 1000  # optimizer steps
    batch: int = 32  # sequences per step
    lr: float = 1e-2  # learning rate
    optimizer: str = "adam"  # "adam" | "sgd"
    momentum: float = 0.9  # SGD only
    clip: float | None = 1.0  # max gradient norm, None for no clipping
    weight_decay: float = 0.0  # L2 penalty
    tbptt: int | None = None  # truncated BPTT window K over long sequences, None for full BPTT
    seq_len: int = 32  # steps per training sequence (the task's own length option)
    embedding: int | None = None  # input_size of a learned embedding, None for one-hot/vectors
    gate_bias: float = 1.0  # starting bias of the gate that keeps the state (LSTM f, GRU z); 0: torch's init
    log_every: int = 25  # steps between metric evaluations

    def replace(self, **changes) -> "TrainDefaults":
        return replace(self, **changes)


@dataclass(frozen=True)
class Batch:
    """One training batch, batch-first torch tensors.

    x:    (B, T) long token ids, or (B, T, I) float vectors
    y:    ce + step:   (B, T) long, IGNORE where unscored
          ce + pooled: (B,) long
          mse + step:  (B, T, O) float
          mse + pooled:(B, O) float
    mask: (B, T) bool scored steps for mse + step; None otherwise
    """

    x: "Tensor"
    y: "Tensor"
    mask: "Tensor | None" = None

    @property
    def batch_size(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_tokens(self) -> int:
        """Input steps in the batch (B * T), for tokens-per-second figures."""
        return int(self.x.shape[0] * self.x.shape[1])


@dataclass(frozen=True)
class Example:
    """One sequence to trace in the explorer or the CLI.

    tokens:  one display label per input step (spaces and newlines made visible)
    x:       (T,) long token ids, or (T, I) float vectors
    targets: one entry per output row (T rows for a step head, one for a pooled head):
             a class index, a list of floats, or None where the row is unscored
    """

    tokens: list[str]
    x: "Tensor"
    targets: list


@dataclass(frozen=True, kw_only=True)
class EncDecBatch(Batch):
    """An encoder-decoder batch: x is the source (B, S); y the decoder targets (B, T) long.

    dec_x: (B, T) long decoder inputs, <s> then the targets shifted right (teacher forcing)
    """

    dec_x: "Tensor"


@dataclass(frozen=True, kw_only=True)
class EncDecExample(Example):
    """One source sequence (tokens, x) and its decoder side; targets are per decoder step."""

    dec_tokens: list[str]  # one label per decoder input step
    dec_x: "Tensor"  # (T,) long decoder inputs under teacher forcing


class Task:
    """Base class: subclasses set the class attributes and implement `sample` and `example`."""

    name: ClassVar[str] = ""  # key in the TASKS catalog, which holds description, mode, options

    @property
    def description(self) -> str:
        """One line, for `rnn-tui tasks`."""
        return self._info().description

    @property
    def mode(self) -> str:
        """One of MODES: "lm" | "seq2seq" | "seq2class" | "regression" | "encdec"."""
        return self._info().mode

    @property
    def options(self) -> dict[str, str]:
        """Option name -> one-line help."""
        return dict(self._info().options)

    def _info(self):
        from rnn_tui.engine.tasks.catalog import TASKS

        return TASKS[self.name]

    # set by each instance
    vocab: list[str] | None = None  # input token labels; None for raw-vector input
    output_labels: list[str] | None = None  # output class labels; None for mse
    defaults: TrainDefaults = TrainDefaults()

    # how the model fits the task
    head: str = "step"  # "step" | "last" | "mean"
    loss_name: str = "ce"  # "ce" | "mse"
    input_size: int | None = None  # vector width for raw-vector input
    output_size: int | None = None  # mse output width
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    solved: float | None = None  # metric value that counts as learning the task (None: no bar)
    chance: float | None = None  # metric value of an untrained guess, for the summary

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # ---- the model ----------------------------------------------------------------------
    def model_config(
        self,
        cell: str = "lstm",
        hidden: int | None = None,
        layers: int | None = None,
        bidirectional: bool = False,
        activation: str = "tanh",
        bias: bool = True,
    ) -> "ModelConfig":
        """The ModelConfig that fits this task's inputs and outputs."""
        from rnn_tui.engine.config import ModelConfig

        d = self.defaults
        if self.vocab is None:
            input_mode, vocab_size, input_size = "vectors", 0, int(self.input_size or 1)
        elif d.embedding:
            input_mode, vocab_size, input_size = "embedding", len(self.vocab), int(d.embedding)
        else:
            input_mode, vocab_size, input_size = "onehot", len(self.vocab), len(self.vocab)
        if self.loss_name == "ce":
            output_size = len(self.output_labels or [])
        else:
            output_size = int(self.output_size or 1)
        return ModelConfig(
            cell=cell,
            activation=activation,
            input_size=input_size,
            hidden_size=int(hidden if hidden is not None else d.hidden),
            num_layers=int(layers if layers is not None else d.layers),
            bidirectional=bool(bidirectional),
            bias=bool(bias),
            output_size=output_size,
            input_mode=input_mode,
            vocab_size=vocab_size,
            head=self.head,
            loss=self.loss_name,
        )

    def build_model(self, config: "ModelConfig", seed: int | None = None) -> "nn.Module":
        """A fresh model for this task (an encoder-decoder task builds its two halves)."""
        from rnn_tui.engine.model import build_model

        model = build_model(config, seed=seed)
        set_keep_gate_bias(model.tensors(), config, self.defaults.gate_bias)
        return model

    def forward(self, model: "nn.Module", batch: Batch) -> "Tensor":
        """The model's outputs on a batch, in the shape `loss` and `metric` read."""
        return model(batch.x)

    def loss(self, outputs: "Tensor", batch: Batch) -> "Tensor":
        """The mean loss over scored outputs."""
        from torch.nn import functional as F

        if self.loss_name == "ce":
            O = outputs.shape[-1]
            return F.cross_entropy(outputs.reshape(-1, O), batch.y.reshape(-1), ignore_index=IGNORE)
        row = ((outputs - batch.y) ** 2).mean(dim=-1)  # (B, T) or (B,)
        return row.mean() if batch.mask is None else row[batch.mask].mean()

    # ---- the data -----------------------------------------------------------------------
    def sample(self, batch_size: int, generator: "Generator") -> Batch:
        raise NotImplementedError

    def example(self, seed: int = 0) -> Example:
        raise NotImplementedError

    def metric(self, outputs: "Tensor", batch: Batch) -> tuple[str, float]:
        """Accuracy over scored positions (ce) or mean squared error over scored rows (mse)."""
        import torch

        with torch.no_grad():
            if self.loss_name == "ce":
                pred = outputs.argmax(dim=-1)
                scored = batch.y != IGNORE
                n = int(scored.sum())
                acc = float((pred[scored] == batch.y[scored]).sum()) / max(n, 1)
                return self.metric_name, acc
            row = ((outputs - batch.y) ** 2).mean(dim=-1)
            value = row.mean() if batch.mask is None else row[batch.mask].mean()
            return self.metric_name, float(value)

    def is_solved(self, value: float) -> bool:
        """Whether a metric value clears this task's bar for "learned it"."""
        if self.solved is None:
            return False
        return value >= self.solved if self.higher_is_better else value <= self.solved


def set_keep_gate_bias(tensors: dict, config: "ModelConfig", value: float) -> None:
    """Start the gates that keep the state open (the cell's `keep_gates`: LSTM f, GRU z, minGRU z
    with the sign that keeps, minLSTM f and i), their biases = ±value, in place.

    The forget gate f_t = σ(... + b_if + b_hf) starts near σ(value) instead of σ(0) = 0.5, so
    c_{t-1} survives many steps before training has taught the gate anything (Gers et al. 2000;
    Jozefowicz et al. 2015); the GRU's z_t plays the same part in h_t = (1 - z_t) n_t + z_t h_{t-1},
    minGRU's in h_t = (1 - z_t) h_{t-1} + z_t n_t with -value, and minLSTM's f_t/(f_t + i_t) with
    +value on f and -value on i. b_hh's rows (where the cell has b_hh) are zeroed so the sum is
    exactly the value. A cell without such a gate is left as it is.
    """
    import torch

    from rnn_tui.engine.config import layer_names

    keep = config.cell_spec.keep_gates
    if not value or not keep or not config.bias:
        return
    H = config.hidden_size
    with torch.no_grad():
        for gate, sign in keep:
            rows = slice(config.gates.index(gate) * H, (config.gates.index(gate) + 1) * H)
            for _, _, sfx in layer_names(config):
                tensors[f"bias_ih{sfx}"][rows].fill_(sign * value)  # (H,) the keeping gate's rows
                if f"bias_hh{sfx}" in tensors:
                    tensors[f"bias_hh{sfx}"][rows].zero_()


# ---- option parsing shared by the tasks: each raises TaskError with a one-line message ------
def int_option(task: str, name: str, value: Any, lo: int, hi: int) -> int:
    try:
        number = int(value)
        if number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise TaskError(f"{task}: {name} must be a whole number, got {value!r}") from None
    if not lo <= number <= hi:
        raise TaskError(f"{task}: {name} must be from {lo} to {hi}, got {number}")
    return number


def float_option(task: str, name: str, value: Any, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TaskError(f"{task}: {name} must be a number, got {value!r}") from None
    if not lo <= number <= hi:
        raise TaskError(f"{task}: {name} must be from {lo} to {hi}, got {number}")
    return number


def choice_option(task: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise TaskError(f"{task}: {name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


# ---- helpers for tasks generated from a small grammar ---------------------------------------
def python_rng(generator: "Generator"):
    """A `random.Random` seeded from the torch generator, so a grammar's draws follow its seed."""
    import random

    import torch

    return random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))


def pad_left(rows: list[list[int]], pad: int) -> "Tensor":
    """(B, T) long: each row right-aligned, so a pooled "last" head reads every row's last word."""
    import torch

    T = max(len(r) for r in rows)
    return torch.tensor([[pad] * (T - len(r)) + r for r in rows], dtype=torch.long)


class SentenceClassTask(Task):
    """A task whose example is one sentence from a small grammar with one class label.

    Subclasses set `index` (word -> id, with `pad` among the words) and `sentence(rng)`, which
    returns (words, label).
    """

    pad: str = "·"  # the word that fills rows on the left, so the last word ends every row
    index: dict[str, int] = {}

    def sentence(self, rng) -> tuple[list[str], int]:  # pragma: no cover - every subclass has one
        raise TaskError(f"{self.name}: no grammar")

    def sample(self, batch_size: int, generator: "Generator") -> Batch:
        import torch

        rng = python_rng(generator)
        rows, labels = [], []
        for _ in range(batch_size):
            words, label = self.sentence(rng)
            rows.append([self.index[w] for w in words])
            labels.append(label)
        return Batch(x=pad_left(rows, self.index[self.pad]), y=torch.tensor(labels, dtype=torch.long))

    def example(self, seed: int = 0) -> Example:
        import torch

        words, label = self.sentence(python_rng(torch.Generator().manual_seed(seed)))
        x = torch.tensor([self.index[w] for w in words], dtype=torch.long)
        return Example(tokens=words, x=x, targets=[label])
