"""What a model is: one frozen dataclass that every other part of the engine reads.

The names follow `torch.nn.RNN/LSTM/GRU` where torch has a word for the thing. What each cell is
(its gates, states, tensors, activations) comes from the cell registry, `rnn_tui.engine.cells`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from rnn_tui.engine.cells import ACTIVATIONS, CELLS, REGISTRY, SCANS, Cell
from rnn_tui.engine.errors import EngineError
INPUT_MODES = ("onehot", "embedding", "vectors")
HEADS = ("step", "last", "mean")  # per-step outputs, or one output from a pooled state
LOSSES = ("ce", "mse")
DTYPES = ("float32", "float64")
# the most weights a model may have: 100 million is 400 MB of float32 weights before the optimizer
# and the trace copy them; a size past this is a typo (hidden_size = 65536), refused before allocating
MAX_PARAMETERS = 100_000_000

# gate names per cell, in the order torch stacks their rows in weight_ih / weight_hh
GATES = {name: cell.gates for name, cell in REGISTRY.items()}


class ConfigError(EngineError):
    """A model description that cannot be built; the message says what to change."""


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # one of CELLS
    activation: str = "tanh"  # one of the cell's activations (the rnn has four, the others tanh)
    input_size: int = 16  # width of the vectors fed to layer 0 (vocab size for one-hot)
    hidden_size: int = 32  # H, units per layer and direction
    num_layers: int = 1  # stacked layers; layer k>0 reads layer k-1's output
    bidirectional: bool = False  # a second, reverse-time direction per layer
    bias: bool = True  # b_ih and b_hh in every layer
    output_size: int = 16  # rows of head.weight
    input_mode: str = "onehot"  # onehot over a vocabulary, a learned embedding, or raw vectors
    vocab_size: int = 16  # tokens in the vocabulary (onehot, embedding); 0 for raw vectors
    head: str = "step"  # "step": y_t = V h_t + b at every step; "last"/"mean": one y from a pooled h
    loss: str = "ce"  # "ce" cross-entropy over classes, "mse" squared error
    head_bias: bool = True  # the head's bias c in y = V h + c; False: y = V h (no head.bias tensor)
    scan: str = "sequential"  # a linear recurrence (minGRU, minLSTM) run as the loop or the chunked scan

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.cell in CELLS, f"unknown cell {self.cell!r}: choose one of {', '.join(CELLS)}")
        need(
            self.activation in ACTIVATIONS,
            f"unknown activation {self.activation!r}: choose one of {', '.join(ACTIVATIONS)}",
        )
        choosers = [name for name, cell in REGISTRY.items() if len(cell.activations) > 1]
        need(
            self.activation in REGISTRY[self.cell].activations,
            f"--activation applies to the {' and '.join(choosers)} cell{'s' if len(choosers) > 1 else ''} only, "
            f"not {self.cell!r}"
            if len(REGISTRY[self.cell].activations) == 1
            else f"a {self.cell} takes the activation {', '.join(REGISTRY[self.cell].activations)}",
        )
        scanners = [name for name, cell in REGISTRY.items() if cell.scans]
        need(self.scan in SCANS, f"unknown scan {self.scan!r}: choose {' or '.join(SCANS)}")
        need(self.scan == "sequential" or self.scan in REGISTRY[self.cell].scans,
             f"--scan {self.scan} applies to the {' and '.join(scanners)} cells only, not {self.cell!r}")
        need(self.input_mode in INPUT_MODES, f"unknown input mode {self.input_mode!r}")
        need(self.head in HEADS, f"unknown head {self.head!r}: choose one of {', '.join(HEADS)}")
        need(self.loss in LOSSES, f"unknown loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        for name in ("input_size", "hidden_size", "num_layers", "output_size"):
            value = getattr(self, name)
            need(
                _whole(value) and 1 <= value <= 65536,
                f"{name} must be a whole number from 1 to 65536, got {value!r}",
            )
        need(self.num_layers <= 64, f"num_layers must be at most 64, got {self.num_layers}")
        for name in ("bidirectional", "bias", "head_bias"):
            value = getattr(self, name)
            need(isinstance(value, bool), f"{name} must be true or false, got {value!r}")
        need(
            _whole(self.vocab_size) and 0 <= self.vocab_size <= 10_000_000,
            f"vocab_size must be a whole number from 0 to 10000000, got {self.vocab_size!r}",
        )
        if self.input_mode == "onehot":
            need(self.vocab_size == self.input_size, "a one-hot input needs input_size == vocab_size")
        if self.input_mode == "embedding":
            need(self.vocab_size >= 1, "an embedding input needs vocab_size >= 1")
        n = self.num_parameters
        need(
            n <= MAX_PARAMETERS,
            f"a {self.cell} with hidden_size {self.hidden_size}, {self.num_layers} layer(s) and input_size "
            f"{self.input_size} would have {n:,} weights (about {n * 4 / 1e9:.1f} GB); at most "
            f"{MAX_PARAMETERS:,} fit: choose a smaller hidden size or fewer layers",
        )

    @property
    def num_parameters(self) -> int:
        """How many numbers the model's tensors hold, counted from the sizes (nothing allocated).

        Per layer and direction, the cell's tensors (W_ih (G*H, I_k), W_hh (G*H, H), b_ih and b_hh
        (G*H), peepholes ...); I_0 = input_size, I_k = D*H above. Head (O, D*H) (+ O with head_bias);
        embedding vocab_size x input_size.
        """
        H, D = self.hidden_size, self.num_directions
        per_layer = 0
        for k in range(self.num_layers):
            inputs = self.input_size if k == 0 else D * H
            for shape in self.cell_spec.tensor_shapes(H, inputs, self.bias).values():
                per_layer += D * _product(shape)
        head = self.output_size * D * H + (self.output_size if self.head_bias else 0)
        embedding = self.vocab_size * self.input_size if self.input_mode == "embedding" else 0
        return per_layer + head + embedding

    @property
    def cell_spec(self) -> Cell:
        """The cell's registry entry: its facts and its maths (`rnn_tui.engine.cells`)."""
        return REGISTRY[self.cell]

    @property
    def gates(self) -> tuple[str, ...]:
        return self.cell_spec.gates

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def has_cell_state(self) -> bool:
        return self.cell_spec.has_cell_state

    @property
    def torch_native(self) -> bool:
        """True when a fused `torch.nn` module computes exactly this cell."""
        return self.cell_spec.torch_native(self.activation)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model setting(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)


def _product(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _whole(value) -> bool:
    """A whole number, and not a bool (True is an int to Python, never a size to a person)."""
    return isinstance(value, int) and not isinstance(value, bool)


def layer_names(config: ModelConfig) -> list[tuple[int, str, str]]:
    """(layer, direction, torch suffix) for every layer entry, forward before reverse."""
    out = []
    for k in range(config.num_layers):
        out.append((k, "forward", f"_l{k}"))
        if config.bidirectional:
            out.append((k, "reverse", f"_l{k}_reverse"))
    return out
