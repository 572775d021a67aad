"""Import a user's own `torch.nn.RNN/LSTM/GRU` weights, reading the model's shape from the tensors.

    shape, tensors = load_user_weights("my_lstm.pt")             # or a .safetensors file
    model = build_with_weights(shape, tensors, task.model_config())

A state_dict names its tensors weight_ih_l{k}[_reverse], weight_hh_l{k}[_reverse],
bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse]. From them:

    H       = columns of weight_hh_l0                 (weight_hh is (G*H, H))
    G       = rows of weight_hh_l0 / H                1: rnn, 3: gru (r, z, n), 4: lstm (i, f, g, o)
    I       = columns of weight_ih_l0                 (the input size)
    layers  = how many l{k} there are; bidirectional = whether _reverse ones exist; bias = bias_*

What the tensors cannot tell: an rnn's nonlinearity (tanh or relu: pass `activation`), and torch's
gru from the textbook gru (pass `cell`). A module prefix ("lstm.", "module.rnn.") is stripped.

A .pt file is read with `torch.load(..., weights_only=True)` only: a pickled object, a whole
nn.Module or a booby-trapped pickle is refused before anything in it runs.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rnn_tui.engine.cells import REGISTRY
from rnn_tui.engine.config import CELLS, ConfigError, ModelConfig
from rnn_tui.engine.errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

    from rnn_tui.engine.model import RNNModel

RECURRENT = re.compile(
    r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr|weight_ci|weight_cf|weight_co)"
    r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$"
)
PASSTHROUGH = ("head.weight", "head.bias", "embedding.weight")  # rnn-tui's own names, kept when present
ROWS_TO_CELL = {1: "rnn", 3: "gru", 4: "lstm"}
GATE_ROWS = {name: cell.G for name, cell in REGISTRY.items()}  # gate blocks per cell, from the registry
NESTED_KEYS = ("state_dict", "model_state_dict", "model")  # {"state_dict": {...}, "epoch": 3}
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


class WeightsError(EngineError):
    """A weights file that cannot be imported; the message names the tensor and what was expected."""


@dataclass(frozen=True)
class ImportedWeights:
    """The recurrent layers' shape, read from an imported state_dict."""

    cell: str
    activation: str  # rnn only; "tanh" unless told otherwise (tensors cannot tell tanh from relu)
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    bias: bool
    prefix: str = ""  # module prefix stripped from the names ("lstm.", "module.rnn.")
    source: str = ""  # the file read
    ignored: tuple[str, ...] = ()  # tensors in the file that are not recurrent weights

    def describe(self) -> str:
        act = f" ({self.activation})" if self.cell == "rnn" else ""
        bi = " bidirectional" if self.bidirectional else ""
        return (
            f"{self.num_layers}-layer{bi} {self.cell}{act}, input size {self.input_size}, "
            f"hidden size {self.hidden_size}, bias {'on' if self.bias else 'off'}"
        )

    def model_config(self, **rest) -> ModelConfig:
        """A ModelConfig with this recurrent shape; `rest` sets input mode, vocabulary, head ...

        Without `rest` the model reads raw vectors of the imported input size and has a head as
        wide as the recurrent output.
        """
        settings = dict(
            input_mode="vectors",
            vocab_size=0,
            output_size=self.hidden_size * (2 if self.bidirectional else 1),
        )
        settings.update(rest)
        settings.update(
            cell=self.cell,
            activation=self.activation,
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            bias=self.bias,
        )
        return ModelConfig(**settings)


# ---- reading files -----------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict[str, "Tensor"]:
    """A name -> tensor dict from .safetensors, or .pt/.pth via torch.load(weights_only=True)."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file (a run directory goes to --checkpoint)")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from rnn_tui.engine.checkpoint import CheckpointError, load_tensors

        try:
            tensors, _ = load_tensors(path)
        except CheckpointError as e:
            raise WeightsError(str(e)) from None
        return tensors
    if suffix in TORCH_SUFFIXES:
        return _read_torch(path)
    raise WeightsError(
        f"{path}: unknown weights format {suffix or '(no suffix)'!r}: save a state_dict as .safetensors or .pt"
    )


def _read_torch(path: Path) -> dict[str, "Tensor"]:
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols it then refuses
            # weights_only=True: only tensors and plain containers are unpickled; nothing is executed
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(
            f"{path} is not a plain state_dict and was refused without running it "
            f"({_refusal(e)}); save it with torch.save(module.state_dict(), path)"
        ) from None
    except EOFError:
        raise WeightsError(f"{path} is empty or cut short: it is not a readable torch file") from None
    except Exception as e:  # damaged zip, truncated file, random bytes ...
        raise WeightsError(f"{path} is not a readable torch file ({_first_sentence(e)})") from None
    return _as_state_dict(obj, path)


def _refusal(e: BaseException) -> str:
    """Why torch's weights-only unpickler said no, in a few words."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or re.search(r"unsupported GLOBAL ([\w.]+)", text)
    if m:
        return f"it asks to load {m.group(1)}"
    m = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if m:
        return m.group(1).strip().rstrip(".")[:120]
    return _first_line(e)


def _first_sentence(e: BaseException) -> str:
    """torch's messages run on for several sentences; the first says what happened."""
    return _first_line(e).split(". ")[0].rstrip(".")


def _first_line(e: BaseException) -> str:
    for line in str(e).strip().splitlines():
        if line.strip():
            return line.strip()[:200]
    return type(e).__name__


def _as_state_dict(obj, path: Path) -> dict[str, "Tensor"]:
    import torch

    if isinstance(obj, dict):
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return dict(obj)
        for key in NESTED_KEYS:  # a training checkpoint that holds the state_dict
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return {str(k): v for k, v in inner.items()}
    kind = type(obj).__name__
    raise WeightsError(
        f"{path} holds a {kind}, not a state_dict of tensors: save it with torch.save(module.state_dict(), path)"
    )


# ---- reading the shape from names and shapes ---------------------------------------------------
def infer_shape(
    state: dict[str, "Tensor"],
    cell: str | None = None,
    activation: str | None = None,
    prefix: str | None = None,
    source: str = "the weights",
) -> tuple[ImportedWeights, dict[str, "Tensor"]]:
    """(shape, tensors under rnn-tui's names) from a state_dict; every inconsistency is a WeightsError."""
    where = source

    def fail(message: str) -> None:
        raise WeightsError(f"{where}: {message}")

    if cell is not None and cell not in CELLS:
        fail(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}")
    if activation is not None and activation not in ("tanh", "relu"):
        fail(f"an imported rnn's activation is tanh or relu, not {activation!r}")

    # which keys are recurrent weights, and under which module prefix
    by_prefix: dict[str, dict[str, "Tensor"]] = {}
    for key, value in state.items():
        m = RECURRENT.match(key)
        if m and (prefix is None or m.group("prefix") == prefix):
            by_prefix.setdefault(m.group("prefix"), {})[key[len(m.group("prefix")) :]] = value
    if not by_prefix:
        if prefix is not None:
            fail(f"no recurrent weights under the prefix {prefix!r} (names like {prefix}weight_ih_l0)")
        sample = ", ".join(sorted(state)[:4]) or "no tensors at all"
        fail(f"no torch.nn.RNN/LSTM/GRU weights found (expected names like weight_ih_l0; found {sample})")
    if len(by_prefix) > 1:
        found = ", ".join(repr(p) for p in sorted(by_prefix))
        fail(f"recurrent weights under several prefixes ({found}): pick one with --prefix")
    (found_prefix, rec), = by_prefix.items()

    for name, t in rec.items():
        if not t.dtype.is_floating_point:
            fail(f"tensor {found_prefix}{name} has dtype {t.dtype}, expected floating point weights")
    if any(name.startswith("weight_hr") for name in rec):
        fail("LSTM projections (proj_size > 0, weight_hr_l*) are not supported")

    layers = sorted({int(RECURRENT.match(n).group("layer")) for n in rec})
    if layers != list(range(len(layers))):
        fail(f"layers {layers} are not numbered 0..{len(layers) - 1}")
    L = len(layers)
    bidirectional = any(n.endswith("_reverse") for n in rec)
    bias = "bias_ih_l0" in rec or "bias_hh_l0" in rec
    peephole = any(n.startswith("weight_c") for n in rec)

    if "weight_hh_l0" not in rec or "weight_ih_l0" not in rec:
        fail(f"missing tensor {found_prefix}{'weight_hh_l0' if 'weight_hh_l0' not in rec else 'weight_ih_l0'}")
    w_hh, w_ih = rec["weight_hh_l0"], rec["weight_ih_l0"]
    if w_hh.dim() != 2 or w_ih.dim() != 2:
        bad = "weight_hh_l0" if w_hh.dim() != 2 else "weight_ih_l0"
        fail(f"tensor {found_prefix}{bad} has shape {tuple(rec[bad].shape)}, expected a matrix")
    rows, H = w_hh.shape
    if H == 0 or rows % H:
        fail(f"tensor {found_prefix}weight_hh_l0 has shape {tuple(w_hh.shape)}: its rows are not a multiple of H={H}")
    G = rows // H
    if cell is None:
        if G not in ROWS_TO_CELL:
            fail(f"tensor {found_prefix}weight_hh_l0 has {rows} = {G} x {H} rows: rnn has 1xH, gru 3xH, lstm 4xH")
        cell = "lstm-peephole" if peephole and G == 4 else ROWS_TO_CELL[G]
    elif GATE_ROWS[cell] != G:
        fail(
            f"a {cell} needs weight_hh_l0 of shape ({GATE_ROWS[cell] * H}, {H}), the file has {tuple(w_hh.shape)} "
            f"(that is a {ROWS_TO_CELL.get(G, 'no known cell')})"
        )
    if peephole and cell != "lstm-peephole":
        fail(f"peephole tensors (weight_ci_l0 ...) found but the cell is {cell}")
    if activation is not None and cell != "rnn":
        fail(f"an activation applies to the rnn cell only, not {cell}")
    I = int(w_ih.shape[1])
    D = 2 if bidirectional else 1
    shape = ImportedWeights(
        cell=cell,
        activation=activation or "tanh",
        input_size=I,
        hidden_size=int(H),
        num_layers=L,
        bidirectional=bidirectional,
        bias=bias,
        prefix=found_prefix,
        source=source,
    )

    # every expected tensor present with the expected shape, and nothing else
    expected: dict[str, tuple[int, ...]] = {}
    for k in range(L):
        for sfx in [f"_l{k}"] + ([f"_l{k}_reverse"] if bidirectional else []):
            for name, want in REGISTRY[cell].tensor_shapes(H, I if k == 0 else D * H, bias).items():
                expected[name + sfx] = want
    what = f"a {shape.describe()}"
    for name, want in expected.items():
        if name not in rec:
            fail(f"missing tensor {found_prefix}{name} of shape {want} for {what}")
        got = tuple(rec[name].shape)
        if got != want:
            fail(f"tensor {found_prefix}{name} has shape {got}, expected {want} for {what}")
    extra = sorted(set(rec) - set(expected))
    if extra:
        fail(f"unexpected tensor {found_prefix}{extra[0]} for {what}")
    for name in expected:
        if not bool(rec[name].isfinite().all()):
            fail(f"tensor {found_prefix}{name} holds NaN or Inf values")

    tensors = {name: rec[name] for name in expected}
    ignored = []
    for key, value in state.items():
        if key.startswith(found_prefix) and key[len(found_prefix) :] in rec:
            continue
        plain = key[len("module.") :] if key.startswith("module.") else key
        if plain in PASSTHROUGH and value.dtype.is_floating_point:
            tensors[plain] = value
        else:
            ignored.append(key)
    return _replace(shape, ignored=tuple(sorted(ignored))), tensors


def _replace(shape: ImportedWeights, **changes) -> ImportedWeights:
    from dataclasses import replace

    return replace(shape, **changes)


def load_user_weights(
    path: str | Path,
    cell: str | None = None,
    activation: str | None = None,
    prefix: str | None = None,
) -> tuple[ImportedWeights, dict[str, "Tensor"]]:
    """Read a torch RNN/LSTM/GRU state_dict file: (its shape, tensors by rnn-tui/torch names).

    The tensors are the recurrent ones (weight_ih_l0 ...) plus head.weight, head.bias and
    embedding.weight when the file has them under those names.
    """
    return infer_shape(read_state_dict(path), cell=cell, activation=activation, prefix=prefix, source=str(path))


# ---- a model around imported weights -----------------------------------------------------------
def fit_config(shape: ImportedWeights, base: ModelConfig) -> ModelConfig:
    """`base` (input encoding, vocabulary, head, loss from a task) with the imported recurrent shape.

    A one-hot or raw-vector input must already be as wide as weight_ih_l0 reads; an embedding
    takes the imported input size as its width.
    """
    where = shape.source or "the weights"
    if base.input_mode == "onehot" and shape.input_size != base.vocab_size:
        raise WeightsError(
            f"{where}: weight_ih_l0 reads {shape.input_size} inputs but the one-hot vocabulary has "
            f"{base.vocab_size} tokens: use weights trained on this task's vocabulary"
        )
    if base.input_mode == "vectors" and shape.input_size != base.input_size:
        raise WeightsError(
            f"{where}: weight_ih_l0 reads {shape.input_size} inputs but the task feeds vectors of size {base.input_size}"
        )
    try:
        return base.replace(
            cell=shape.cell,
            activation=shape.activation,
            input_size=shape.input_size,
            hidden_size=shape.hidden_size,
            num_layers=shape.num_layers,
            bidirectional=shape.bidirectional,
            bias=shape.bias,
        )
    except ConfigError as e:
        raise WeightsError(f"{where}: {e}") from None


def build_with_weights(
    shape: ImportedWeights,
    tensors: dict[str, "Tensor"],
    base: ModelConfig,
    seed: int | None = None,
    head: dict[str, "Tensor"] | None = None,
    dtype: str = "float32",
) -> "RNNModel":
    """A model whose recurrent layers hold the imported weights; the head (and an embedding) come
    from `head` or the file when their shapes fit, otherwise they are freshly initialised.
    `dtype` "float64" keeps float64 weights exact."""
    import torch

    from rnn_tui.engine.model import build_model

    config = fit_config(shape, base)
    model = build_model(config, seed=seed).to({"float32": torch.float32, "float64": torch.float64}[dtype])
    mine = model.tensors()
    given = dict(tensors)
    if head:
        given.update(head)
    load = {}
    for name, value in given.items():
        if name not in mine:
            continue
        if name in PASSTHROUGH and tuple(value.shape) != tuple(mine[name].shape):
            if head and name in head:
                raise WeightsError(
                    f"tensor {name} has shape {tuple(value.shape)}, the model needs {tuple(mine[name].shape)}"
                )
            continue  # the file's own head was for another output: start this one fresh
        load[name] = value
    try:
        model.load_tensors(load, strict=False)
    except ConfigError as e:
        raise WeightsError(f"{shape.source or 'the weights'}: {e}") from None
    return model

