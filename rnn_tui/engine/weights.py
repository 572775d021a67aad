"""Import a person's own trained model: its embedding, its recurrent layers and its output layer.

    shape, tensors = load_user_weights("model.pt")               # .safetensors, .pt/.pth, .npz
    print(shape.report())                                        # what was used for what, what ignored
    model = build_with_weights(shape, tensors, shape.model_config())

The recurrent layers are found by torch's state_dict names, weight_ih_l{k}[_reverse],
weight_hh_l{k}[_reverse], bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse], under any module prefix
("rnn.", "module.encoder.lstm."). From them:

    H       = columns of weight_hh_l0                 (weight_hh is (G*H, H))
    G       = rows of weight_hh_l0 / H                1: rnn, 3: gru (r, z, n), 4: lstm (i, f, g, o)
    I       = columns of weight_ih_l0                 (the input size)
    layers  = how many l{k} there are; bidirectional = whether _reverse ones exist; bias = bias_*

Around them, by shape and by common names:

    embedding   a (V, I) matrix X.weight with no X.bias (nn.Embedding): encoder, embedding, emb ...
    head        a (O, D*H) matrix X.weight, with X.bias (O,) when it has one (nn.Linear): decoder,
                linear, fc, head, out ...

so the PyTorch examples' word language model (encoder / rnn / decoder) and d2l's RNNModel (rnn /
linear, one-hot input) are read whole. Numpy files from from-scratch RNNs are read by their names:
min-char-rnn's Wxh (H, V), Whh (H, H), Why (V, H), bh (H, 1), by (V, 1) for
h_t = tanh(Wxh x_t + Whh h_{t-1} + bh), y_t = Why h_t + by; rnn-tutorial-rnnlm's U (H, V),
W (H, H), V (V, H) for s_t = tanh(U x_t + W s_{t-1}), o_t = softmax(V s_t). Anything else is named
with a map, NAME=ROLE (roles: embedding.weight, head.weight, head.bias, any torch RNN tensor name,
or ignore). A model with one bias per layer gets bias_hh = 0, which computes the same.

What the tensors cannot tell: an rnn's nonlinearity (tanh or relu look alike: tanh is assumed and
the report says so unless `activation` is given), and torch's gru from the textbook gru (`cell`).

Nothing in a file runs: a .pt file is read with torch.load(weights_only=True) only after its zip
archive's declared sizes are checked (no compressed entries: torch.save writes none, so no zip
bomb); a .safetensors header (8 bytes + JSON) is checked before any tensor is read, and only the
tensors used are read; a .npz is read with numpy's allow_pickle=False after each array's header.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rnn_tui.engine.cells import REGISTRY
from rnn_tui.engine.config import ACTIVATIONS, CELLS, ConfigError, ModelConfig
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.files import MiB, check_file

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

    from rnn_tui.engine.model import RNNModel

RECURRENT = re.compile(
    r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr|weight_ci|weight_cf|weight_co)"
    r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$"
)
RECURRENT_ROLE = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_ci|weight_cf|weight_co)_l\d+(_reverse)?$")
OTHER_ROLES = ("embedding.weight", "head.weight", "head.bias")
IGNORE = "ignore"
ROWS_TO_CELL = {1: "rnn", 3: "gru", 4: "lstm"}
GATE_ROWS = {name: cell.G for name, cell in REGISTRY.items()}  # gate blocks per cell, from the registry
NESTED_KEYS = ("state_dict", "model_state_dict", "model")  # {"state_dict": {...}, "epoch": 3}
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
SUFFIXES = (".safetensors", *TORCH_SUFFIXES, ".npz")
# module names that say what a matrix is (the last part of "module.encoder.weight", digits dropped)
EMBEDDING_NAMES = {"encoder", "wte", "lookup", "lut", "tok", "token", "tokens", "word", "words"}
HEAD_NAMES = {
    "decoder", "linear", "fc", "head", "out", "output", "proj", "projection", "classifier", "lm_head",
    "dense", "readout", "logits", "h2o", "fc_out", "out_proj", "generator", "predictor", "softmax",
}  # fmt: skip
# numpy conventions of public from-scratch RNNs: file name -> role (tanh RNNs, one-hot input)
CONVENTIONS = {
    "min-char-rnn": {"Wxh": "weight_ih_l0", "Whh": "weight_hh_l0", "bh": "bias_ih_l0", "Why": "head.weight", "by": "head.bias"},
    "rnn-tutorial-rnnlm": {"U": "weight_ih_l0", "W": "weight_hh_l0", "V": "head.weight"},
}
# a weights file is read up to this size (a 100-million-weight model in float64 is 800 MB); the
# header of a safetensors file up to MAX_HEADER
MAX_WEIGHTS_BYTES = 2 << 30
MAX_HEADER = 100 * MiB
EXPORT_FORMAT = "rnn-tui-export"  # safetensors metadata "format" of `rnn-tui export` files


class WeightsError(EngineError):
    """A weights file that cannot be imported; the message names the tensor and what was expected
    (names from the file with their control characters escaped)."""

    def __init__(self, message: str):
        super().__init__(printable(message))


@dataclass(frozen=True)
class Stored:
    """One tensor of a weights file: its shape and type at once, its numbers only when `load`ed."""

    shape: tuple[int, ...]
    dtype: str  # "float32", "int64", "<U1" ...
    floating: bool
    loader: Callable[[], "Tensor"]
    alias_of: str = ""  # a tied tensor saved once under another name (safetensors' save_model)

    def load(self) -> "Tensor":
        return self.loader()


def _as_stored(value) -> Stored:
    if isinstance(value, Stored):
        return value
    return Stored(tuple(value.shape), str(value.dtype).removeprefix("torch."), bool(value.dtype.is_floating_point),
                  lambda: value)  # fmt: skip


@dataclass(frozen=True)
class ImportedWeights:
    """An imported model's shape, read from its file, and which of its tensors played which role."""

    cell: str
    activation: str  # rnn only; "tanh" unless told otherwise (tensors cannot tell tanh from relu)
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    bias: bool
    prefix: str = ""  # module prefix stripped from the recurrent names ("lstm.", "module.rnn.")
    source: str = ""  # the file read
    ignored: tuple[str, ...] = ()  # tensors in the file that were not used
    embedding: str = ""  # the file's name of the embedding matrix ("encoder.weight"), "" without one
    vocab_size: int = 0  # rows of the embedding (the tokens it reads); 0 without one
    head: str = ""  # the file's name of the output layer's matrix ("decoder.weight"), "" without one
    head_bias: str = ""  # ... and of its bias ("decoder.bias"), "" when the layer has none
    output_size: int = 0  # rows of the head; 0 without one
    names: str = ""  # whose names were read: "" torch's, "min-char-rnn", "rnn-tutorial-rnnlm", "--map"
    renamed: tuple[tuple[str, str], ...] = ()  # (file name, role) read by a map or a convention
    filled: tuple[str, ...] = ()  # tensors the file lacks that are exactly zero (bias_hh of one-bias RNNs)
    activation_assumed: bool = False  # an rnn whose activation nobody gave: tanh was assumed
    cell_from: str = ""  # where the cell came from when not from the shapes ("the file's metadata")
    tied: str = ""  # the name the embedding was saved under when it is tied to the head ("decoder.weight")

    def describe(self) -> str:
        act = f" ({self.activation})" if len(REGISTRY[self.cell].activations) > 1 else ""
        bi = " bidirectional" if self.bidirectional else ""
        return (
            f"{self.num_layers}-layer{bi} {self.cell}{act}, input size {self.input_size}, "
            f"hidden size {self.hidden_size}, bias {'on' if self.bias else 'off'}"
        )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def num_recurrent(self) -> int:
        """How many recurrent tensors the layers have (the file's, and any filled with zeros)."""
        per = len(REGISTRY[self.cell].tensor_shapes(self.hidden_size, self.input_size, self.bias))
        return self.num_layers * self.num_directions * per

    def report(self) -> str:
        """One line: which tensors were used for what, which were ignored, what was assumed."""
        parts = []
        if self.embedding:
            tied = f", tied: saved as {self.tied}" if self.tied else ""
            parts.append(f"{self.embedding} -> embedding ({self.vocab_size} x {self.input_size}{tied})")
        if self.names:
            pairs = ", ".join(f"{n}={r}" for n, r in self.renamed if not r.startswith(("head.", "embedding.")))
            whose = "--map" if self.names == "--map" else f"{self.names}'s names"
            core = f"{pairs} ({whose})"
        else:
            core = f"{self.prefix}* ({self.num_recurrent} tensors)"
        parts.append(f"{core} -> {self.describe()}" + (f" ({self.cell} from {self.cell_from})" if self.cell_from else ""))
        if self.filled:
            parts.append(f"{', '.join(self.filled)} = 0 (the file has one bias per layer)")
        if self.head:
            names = self.head + (f", {self.head_bias}" if self.head_bias else "")
            parts.append(f"{names} -> head ({self.output_size} outputs{'' if self.head_bias else ', no bias'})")
        else:
            parts.append("no output layer in the file")
        parts.append("ignored: " + _shortlist(self.ignored) if self.ignored else "nothing ignored")
        line = f"read {Path(self.source).name or self.source}: " + "; ".join(parts)
        if self.activation_assumed:
            line += "; tanh assumed (weights cannot tell tanh from relu: give --activation relu if it was)"
        return printable(line)

    def model_config(self, input_mode: str | None = None, **rest) -> ModelConfig:
        """The imported model as a ModelConfig: the file's embedding (or, without one, a one-hot
        input when input_mode="onehot", else raw vectors of the input size), its recurrent layers
        and its head (without one: a head as wide as the recurrent output, freshly initialised).
        `rest` sets the rest (output_size, head, loss ...)."""
        if self.vocab_size:
            settings = dict(input_mode="embedding", vocab_size=self.vocab_size)
        elif input_mode == "onehot":
            settings = dict(input_mode="onehot", vocab_size=self.input_size)
        else:
            settings = dict(input_mode="vectors", vocab_size=0)
        settings["output_size"] = self.output_size or self.hidden_size * self.num_directions
        settings["head_bias"] = bool(self.head_bias) if self.head else True
        settings.update(rest)
        settings.update(
            cell=self.cell, activation=self.activation, input_size=self.input_size, hidden_size=self.hidden_size,
            num_layers=self.num_layers, bidirectional=self.bidirectional, bias=self.bias,
        )  # fmt: skip
        try:
            return ModelConfig(**settings)
        except ConfigError as e:
            raise WeightsError(f"{self.source or 'the weights'}: {e}") from None


def printable(text: str) -> str:
    """`text` with every control or format character written as an escape: tensor names come from
    a file, and a file can hold ESC or bidi controls."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _shortlist(names, n: int = 4) -> str:
    names = list(names)
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


# ---- the map: NAME=ROLE,... ----------------------------------------------------------------------
def parse_map(text: str | None) -> tuple[tuple[str, str], ...]:
    """`--map` as (file name, role) pairs; WeightsError for a bad pair, role or repeat."""
    if text is None:
        return ()
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, role = item.rpartition("=")
        name, role = name.strip(), role.strip()
        if not eq or not name or not role:
            raise WeightsError(f"--map: {item!r} is not NAME=ROLE (e.g. --map encoder.weight=embedding.weight)")
        check_role(role)
        pairs.append((name, role))
    if not pairs:
        raise WeightsError("--map is empty: give NAME=ROLE pairs, e.g. --map Wx=weight_ih_l0,Wy=head.weight")
    for kind, index in (("tensor", 0), ("role", 1)):
        seen = [p[index] for p in pairs]
        twice = sorted({v for v in seen if seen.count(v) > 1})
        if twice and not (index == 1 and twice == [IGNORE]):
            what = [v for v in twice if v != IGNORE][0]
            raise WeightsError(f"--map names the {kind} {what!r} twice")
    return tuple(pairs)


def check_role(role: str) -> None:
    if role in OTHER_ROLES or role == IGNORE or RECURRENT_ROLE.match(role):
        return
    raise WeightsError(
        f"--map: unknown role {role!r}: roles are embedding.weight, head.weight, head.bias, ignore, "
        "or a torch RNN tensor name such as weight_ih_l0, bias_hh_l1_reverse"
    )


# ---- reading files -----------------------------------------------------------------------------
def read_weights(path: str | Path) -> tuple[dict[str, Stored], dict[str, str]]:
    """(name -> Stored, the file's metadata) from .safetensors, .pt/.pth/.bin/.ckpt or .npz."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file (a run directory goes to --checkpoint)")
    try:
        size = check_file(path, "--weights", MAX_WEIGHTS_BYTES)
    except EngineError as e:
        raise WeightsError(str(e)) from None
    if suffix == ".safetensors":
        header = _safetensors_header(path, size)  # checked before a single tensor is read
        stored, metadata = _read_safetensors(path, header), dict(header.get("__metadata__") or {})
        for name, kept in metadata.items():  # save_model keeps tied tensors once: {"encoder.weight": "decoder.weight"}
            if name not in stored and kept in stored and stored[kept].floating:
                stored[name] = replace(stored[kept], alias_of=kept)
        return stored, metadata
    if suffix in TORCH_SUFFIXES:
        return _read_torch(path, size), {}
    if suffix == ".npz":
        return _read_npz(path, size), {}
    raise WeightsError(
        f"{path}: unknown weights format {suffix or '(no suffix)'!r}: save a state_dict as .safetensors or .pt "
        "(or numpy arrays as .npz)"
    )


def read_state_dict(path: str | Path) -> dict[str, "Tensor"]:
    """Every tensor of a weights file by name (see `read_weights`, which reads only what is used)."""
    stored, _ = read_weights(path)
    return {name: s.load() for name, s in stored.items() if s.floating}


# safetensors: 8 bytes little-endian header length, the JSON header, then the data
SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                      "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
SAFETENSORS_FLOATS = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def _safetensors_header(path: Path, size: int) -> dict:
    def bad(why: str) -> WeightsError:
        return WeightsError(f"{path} is not a readable safetensors file ({why})")

    if size < 8:
        raise WeightsError(f"{path} is empty or cut short: it is not a readable safetensors file")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n < 2 or n > min(MAX_HEADER, size - 8):
            raise bad(f"its header claims {n:,} bytes of a {size:,}-byte file")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad("its header is not JSON") from None
    except RecursionError:
        raise bad("its header is nested too deeply") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    data = size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if not (isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())):
                raise bad("its __metadata__ is not an object of strings")
            continue
        ok = isinstance(entry, dict) and entry.get("dtype") in SAFETENSORS_DTYPES
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        if not ok:
            raise bad(f"tensor {name!r} is described wrongly in the header")
        a, b = offsets
        if not 0 <= a <= b <= data:
            raise bad(f"tensor {name!r} lies outside the file (bytes {a:,}..{b:,} of {data:,})")
        if b - a != math.prod(shape) * SAFETENSORS_DTYPES[entry["dtype"]]:
            raise bad(f"tensor {name!r} has {b - a:,} bytes for a {entry['dtype']} tensor of shape {tuple(shape)}")
    return header


def _read_safetensors(path: Path, header: dict) -> dict[str, Stored]:
    def loader(name: str):
        def load():
            from safetensors import SafetensorError, safe_open

            try:
                with safe_open(str(path), framework="pt") as f:  # maps the file: only this tensor is read
                    return f.get_tensor(name)
            except (SafetensorError, OSError, ValueError, RuntimeError) as e:
                raise WeightsError(f"{path} is not a readable safetensors file ({_first_line(e)})") from None

        return load

    return {
        name: Stored(tuple(e["shape"]), SAFETENSORS_FLOATS.get(e["dtype"], e["dtype"].lower()),
                     e["dtype"] in SAFETENSORS_FLOATS, loader(name))
        for name, e in header.items() if name != "__metadata__"
    }  # fmt: skip


def _read_torch(path: Path, size: int) -> dict[str, Stored]:
    import pickle
    import zipfile

    import torch

    if size == 0:
        raise WeightsError(f"{path} is empty or cut short: it is not a readable torch file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        what = "a bare pickle (torch's pre-1.6 format, or pickle.dump)" if magic[:1] == b"\x80" else "not a torch file"
        raise WeightsError(
            f"{path} is {what}, not the zip archive torch.save writes: refused without running it; "
            "save it with torch.save(module.state_dict(), path)"
        )
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise WeightsError(f"{path} is not a readable torch file ({_first_sentence(e)})") from None
    total = 0
    for info in entries:  # torch.save stores every record uncompressed: anything else is not its file
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise WeightsError(
                f"{path}: record {info.filename!r} is compressed, which torch.save never writes: refused "
                "without reading it (save it with torch.save(module.state_dict(), path))"
            )
        total += info.file_size
    if total > size:
        raise WeightsError(f"{path}: its records claim {total:,} bytes in a {size:,}-byte file: the file is damaged")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols it then refuses
            # weights_only=True: only tensors and plain containers are unpickled; nothing is executed.
            # mmap: the tensors stay in the file until used (an optimizer's state is never read)
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        raise WeightsError(
            f"{path} is not a plain state_dict and was refused without running it "
            f"({_refusal(e)}); save it with torch.save(module.state_dict(), path)"
        ) from None
    except EOFError:
        raise WeightsError(f"{path} is empty or cut short: it is not a readable torch file") from None
    except Exception as e:  # damaged zip, truncated file, random bytes ...
        raise WeightsError(f"{path} is not a readable torch file ({_first_sentence(e)})") from None
    return {name: _as_stored(t) for name, t in _as_state_dict(obj, path).items()}


def _read_npz(path: Path, size: int) -> dict[str, Stored]:
    """numpy arrays from np.savez / np.savez_compressed: each array's header is read first, and
    an array of Python objects (a pickle) is refused."""
    import zipfile

    import numpy as np
    import torch

    def bad(why: str) -> WeightsError:
        return WeightsError(f"{path} is not a readable .npz file ({why})")

    out: dict[str, Stored] = {}
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
            if sum(info.file_size for info in entries) > MAX_WEIGHTS_BYTES:
                raise WeightsError(f"{path}: its arrays would take more than {MAX_WEIGHTS_BYTES >> 30} GiB: refused before reading")
            for info in entries:
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename[: -len(".npy")]
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                if dtype.hasobject:
                    raise WeightsError(
                        f"{path}: array {name!r} holds Python objects (a pickle): refused without running it; "
                        "save arrays of numbers with np.savez"
                    )
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise bad(f"array {name!r} claims more bytes than it has")
                with z.open(info) as f:
                    arr = np.lib.format.read_array(f, allow_pickle=False)
                if arr.dtype.kind == "f":
                    t = torch.from_numpy(np.ascontiguousarray(arr))
                    out[name] = Stored(tuple(arr.shape), str(arr.dtype), True, lambda t=t: t)
                else:
                    out[name] = Stored(tuple(arr.shape), str(arr.dtype), False, lambda: None)
    except WeightsError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as e:
        raise bad(_first_sentence(e)) from None
    if not out:
        raise WeightsError(f"{path} holds no arrays")
    return out


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


# ---- which tensor is what ----------------------------------------------------------------------
def _module_kind(name: str) -> str:
    """"embedding" or "head" when the module's name says so ("module.encoder.weight"), else ""."""
    parts = name.split(".")
    module = (parts[-2] if len(parts) > 1 and parts[-1] in ("weight", "bias") else parts[-1]).lower()
    base = module.rstrip("0123456789_")
    if "emb" in module or base in EMBEDDING_NAMES:
        return "embedding"
    if base in HEAD_NAMES:
        return "head"
    return ""


def _sibling_bias(name: str) -> str | None:
    return name[: -len("weight")] + "bias" if name.endswith(".weight") else None


def _as_vector(s: Stored) -> Stored:
    """A bias written as a column or a row, (N, 1) or (1, N), read as the vector (N,) it is."""
    if len(s.shape) == 2 and 1 in s.shape:
        return Stored((max(s.shape),), s.dtype, s.floating, lambda: s.load().reshape(-1))
    return s


def _recurrent_names(stored: dict[str, Stored], mapped: dict[str, str], prefix: str | None, fail):
    """(whose names, file name -> recurrent role, the module prefix, a convention's other roles).

    A map's recurrent roles come first; else torch's names under one prefix (`prefix` picks it
    among several); else a numpy convention whose names the file has (min-char-rnn ...)."""
    rec_roles = {n: r for n, r in mapped.items() if RECURRENT_ROLE.match(r)}
    if rec_roles:
        return "--map", rec_roles, "", {}
    by_prefix: dict[str, dict[str, str]] = {}
    for key in stored:
        m = RECURRENT.match(key)
        if m and key not in mapped and (prefix is None or m.group("prefix") == prefix):
            by_prefix.setdefault(m.group("prefix"), {})[key] = key[len(m.group("prefix")) :]
    if len(by_prefix) > 1:
        found = ", ".join(repr(p) for p in sorted(by_prefix))
        fail(f"recurrent weights under several prefixes ({found}): pick one with --prefix")
    if by_prefix:
        ((found_prefix, renamed),) = by_prefix.items()
        return "", renamed, found_prefix, {}
    if prefix is not None:
        fail(f"no recurrent weights under the prefix {prefix!r} (names like {prefix}weight_ih_l0)")
    for convention, table in CONVENTIONS.items():
        if all(n in stored for n in table) and not any(n in mapped for n in table):
            recurrent = {n: r for n, r in table.items() if r.startswith(("weight_", "bias_"))}
            others = {n: r for n, r in table.items() if n not in recurrent and r not in mapped.values()}
            return convention, recurrent, "", others
    sample = _shortlist(sorted(stored), 4) or "no tensors at all"
    fail(
        "no recurrent weights found (torch names like weight_ih_l0, or min-char-rnn's Wxh, Whh ...; "
        f"found {sample}): name them with --map NAME=weight_ih_l0,..."
    )


def _around(stored: dict[str, Stored], used: set[str], mapped: dict[str, str], I: int, width: int, fail):
    """(embedding, head weight, head bias) file names, each None when the file has none.

    A map's roles first; else the embedding is the one (V, I) matrix X.weight with no X.bias and
    the head the one (O, width) matrix, its X.bias with it; names break ties (encoder, emb ... for
    an embedding; decoder, linear, fc ... for a head). Two candidates for one role, or one matrix
    that could be either, are refused with the names: a map says which."""
    role_of = {n: r for n, r in mapped.items() if r in OTHER_ROLES}
    given = {r: n for n, r in role_of.items()}
    free = {
        n: s for n, s in stored.items()
        if n not in used and n not in mapped and s.floating and len(s.shape) == 2 and not RECURRENT.match(n)
    }  # fmt: skip
    emb_cands = [n for n, s in free.items() if s.shape[1] == I and _sibling_bias(n) not in stored and _module_kind(n) != "head"]
    head_cands = [n for n, s in free.items() if s.shape[1] == width and _module_kind(n) != "embedding"]

    def pick(cands: list[str], kind: str, others: list[str]) -> str | None:
        if len(cands) > 1:
            cands = [n for n in cands if _module_kind(n) == kind] or cands
        if kind == "head" and len(cands) > 1:
            cands = [n for n in cands if _sibling_bias(n) in stored] or cands
        if len(cands) > 1:
            fail(f"{' and '.join(cands[:3])} could each be the {kind}: say which with --map NAME={kind}.weight")
        if not cands:
            return None
        chosen = cands[0]
        if _module_kind(chosen) == "" and chosen in others and _sibling_bias(chosen) not in stored:
            fail(f"{chosen} {free[chosen].shape} could be the embedding or the output layer: say which with "
                 f"--map {chosen}=embedding.weight (or head.weight)")  # fmt: skip
        return chosen

    emb = given.get("embedding.weight") or pick(emb_cands, "embedding", head_cands)
    head_w = given.get("head.weight") or pick([n for n in head_cands if n != emb], "head", emb_cands)
    head_b = given.get("head.bias")
    if head_b is None and head_w is not None and head_w not in role_of:
        sib = _sibling_bias(head_w)
        head_b = sib if sib in stored and sib not in mapped else None
    if head_b is not None and head_w is None:
        fail(f"{head_b} is given as head.bias but no head.weight is: name it with --map NAME=head.weight")
    if emb is not None:
        s = stored[emb]
        if not s.floating or len(s.shape) != 2 or s.shape[1] != I or s.shape[0] < 1:
            fail(f"{emb} has shape {s.shape}; an embedding for weight_ih_l0 (reads {I}) must be (tokens, {I})")
    if head_w is not None:
        s = stored[head_w]
        if not s.floating or len(s.shape) != 2 or s.shape[1] != width or s.shape[0] < 1:
            fail(f"{head_w} has shape {s.shape}; an output layer reading {width} units must be (outputs, {width})")
    if head_b is not None:
        rows = stored[head_w].shape[0]
        s = _as_vector(stored[head_b])
        if not s.floating or s.shape != (rows,):
            fail(f"{head_b} has shape {stored[head_b].shape}; the bias of {head_w} ({rows} outputs) must be ({rows},)")
    return emb, head_w, head_b


def infer_shape(
    state: dict,
    cell: str | None = None,
    activation: str | None = None,
    prefix: str | None = None,
    source: str = "the weights",
    mapping: tuple[tuple[str, str], ...] = (),
    metadata: dict[str, str] | None = None,
) -> tuple[ImportedWeights, dict[str, "Tensor"]]:
    """(shape, tensors under rnn-tui's names) from a name -> tensor (or Stored) dict; every
    inconsistency is a WeightsError naming the tensor. `mapping`: (file name, role) pairs."""
    where = source

    def fail(message: str) -> None:
        raise WeightsError(f"{where}: {message}")

    stored = {str(k): _as_stored(v) for k, v in state.items()}
    if cell is not None and cell not in CELLS:
        fail(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}")
    if activation is not None and activation not in ACTIVATIONS:
        fail(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    meta = metadata or {}
    cell_from = ""
    if meta.get("format") == EXPORT_FORMAT:  # rnn-tui's own export says what the tensors cannot
        if cell is None and meta.get("cell") in CELLS:
            cell = meta["cell"]
            cell_from = "the file's metadata" if cell == "gru-textbook" else ""  # the one the shapes cannot tell
        if activation is None and meta.get("activation") in ACTIVATIONS and meta.get("cell") in ("rnn", "indrnn"):
            activation = meta["activation"]

    mapped = dict(mapping)
    for name in mapped:
        if name not in stored:
            fail(f"--map names {name!r}, which the file does not have (it has {_shortlist(sorted(stored), 6)})")

    # ---- the recurrent layers: by a map, by torch's names, or by a numpy convention
    names, renamed, found_prefix, convention_roles = _recurrent_names(stored, mapped, prefix, fail)
    if names in CONVENTIONS:
        mapped.update(convention_roles)  # the convention's head, unless the map says otherwise
        activation = activation or "tanh"  # both compute np.tanh
    lenient = bool(names)  # a map or a convention: one bias per layer, biases as columns
    rec: dict[str, Stored] = {}
    rec_name: dict[str, str] = {}  # role -> file name
    for file_name, role in renamed.items():
        s = stored[file_name]
        rec[role] = _as_vector(s) if lenient and role.startswith("bias") else s
        rec_name[role] = file_name

    for role, s in rec.items():
        if not s.floating:
            fail(f"tensor {rec_name[role]} has dtype {s.dtype}, expected floating point weights")
    if any(r.startswith("weight_hr") for r in rec):
        fail("LSTM projections (proj_size > 0, weight_hr_l*) are not supported")

    layers = sorted({int(RECURRENT.match(r).group("layer")) for r in rec})
    if layers != list(range(len(layers))):
        fail(f"layers {layers} are not numbered 0..{len(layers) - 1}")
    L = len(layers)
    bidirectional = any(r.endswith("_reverse") for r in rec)
    bias = any(r.startswith("bias_") for r in rec)
    peephole = any(r.startswith("weight_c") for r in rec)

    shown = lambda role: rec_name.get(role, found_prefix + role)  # noqa: E731

    def missing(role: str) -> str:
        name = shown(role)
        return f"{name} (--map makes it {mapped[name]})" if name in mapped else name

    if "weight_ih_l0" not in rec:
        fail(f"missing tensor {missing('weight_ih_l0')}")
    w_ih = rec["weight_ih_l0"]
    if len(w_ih.shape) != 2:
        fail(f"tensor {shown('weight_ih_l0')} has shape {w_ih.shape}, expected a matrix")
    D = 2 if bidirectional else 1
    if "weight_hh_l0" not in rec:  # minGRU, minLSTM: the gates read x_t alone
        cell, H = _input_only_cell(stored, rec, cell, shown, D, fail)
        G = GATE_ROWS[cell]
    else:
        w_hh = rec["weight_hh_l0"]
        if len(w_hh.shape) == 1:  # one recurrent weight per unit: IndRNN's w_hh ⊙ h
            if cell not in (None, "indrnn"):
                fail(f"tensor {shown('weight_hh_l0')} has shape {w_hh.shape}, a vector: that is an indrnn, not a {cell}")
            cell, H, G = "indrnn", int(w_hh.shape[0]), 1
            if H == 0:
                fail(f"tensor {shown('weight_hh_l0')} is empty")
        elif len(w_hh.shape) != 2:
            fail(f"tensor {shown('weight_hh_l0')} has shape {w_hh.shape}, expected a matrix")
        else:
            rows, H = w_hh.shape
            if H == 0 or rows % H:
                fail(f"tensor {shown('weight_hh_l0')} has shape {w_hh.shape}: its rows are not a multiple of H={H}")
            G = rows // H
            if cell is None:
                if G not in ROWS_TO_CELL:
                    fail(f"tensor {shown('weight_hh_l0')} has {rows} = {G} x {H} rows: rnn has 1xH, gru 3xH, lstm 4xH")
                cell = "lstm-peephole" if peephole and G == 4 else ROWS_TO_CELL[G]
            elif REGISTRY[cell].recurrence != "matrix":
                what = "a vector (H,)" if REGISTRY[cell].recurrence == "diagonal" else "no weight_hh at all"
                fail(f"a {cell} has {what}, the file's {shown('weight_hh_l0')} is {w_hh.shape} "
                     f"(that is a {ROWS_TO_CELL.get(G, 'no known cell')})")  # fmt: skip
            elif GATE_ROWS[cell] != G:
                fail(
                    f"a {cell} needs weight_hh_l0 of shape ({GATE_ROWS[cell] * H}, {H}), the file has {w_hh.shape} "
                    f"(that is a {ROWS_TO_CELL.get(G, 'no known cell')})"
                )
    if peephole and cell != "lstm-peephole":
        fail(f"peephole tensors (weight_ci_l0 ...) found but the cell is {cell}")
    if activation is not None and len(REGISTRY[cell].activations) == 1:
        choosers = " and ".join(n for n, c in REGISTRY.items() if len(c.activations) > 1)
        fail(f"an activation applies to the {choosers} cells only, not {cell}")
    I = int(w_ih.shape[1])

    # every expected tensor present with the expected shape, and nothing else
    expected: dict[str, tuple[int, ...]] = {}
    for k in range(L):
        for sfx in [f"_l{k}"] + ([f"_l{k}_reverse"] if bidirectional else []):
            for name, want in REGISTRY[cell].tensor_shapes(H, I if k == 0 else D * H, bias).items():
                expected[name + sfx] = want
    filled = []
    if lenient:  # one bias per layer (min-char-rnn's bh): the other one is zero, which computes the same
        for role in expected:
            other = role.replace("bias_ih", "bias_hh") if role.startswith("bias_ih") else role.replace("bias_hh", "bias_ih")
            if role.startswith("bias_") and role not in rec and other in rec:
                filled.append(role)
    shape = ImportedWeights(
        cell=cell, activation=activation or "tanh", input_size=I, hidden_size=int(H), num_layers=L,
        bidirectional=bidirectional, bias=bias, prefix=found_prefix, source=source,
    )  # fmt: skip
    what = f"a {shape.describe()}"
    for role, want in expected.items():
        if role in filled:
            continue
        if role not in rec:
            fail(f"missing tensor {missing(role)} of shape {want} for {what}")
        if rec[role].shape != want:
            fail(f"tensor {shown(role)} has shape {rec[role].shape}, expected {want} for {what}")
    extra = sorted(set(rec) - set(expected))
    if extra:
        fail(f"unexpected tensor {shown(extra[0])} for {what}")

    # ---- the embedding and the head around them: by the map, else by shape and name
    used = set(rec_name.values())
    emb, head_w, head_b = _around(stored, used, mapped, I, D * H, fail)
    V = stored[emb].shape[0] if emb is not None else 0
    O = stored[head_w].shape[0] if head_w is not None else 0
    tensors: dict[str, "Tensor"] = {}

    # ---- the numbers: only now is anything read, and it must be finite
    def load(file_name: str, s: Stored) -> "Tensor":
        t = s.load()
        if not t.dtype.is_floating_point:
            fail(f"tensor {file_name} has dtype {t.dtype}, expected floating point weights")
        if not bool(t.isfinite().all()):
            fail(f"tensor {file_name} holds NaN or Inf values")
        return t

    import torch

    for role in expected:
        if role in filled:
            tensors[role] = torch.zeros(expected[role], dtype=torch.float64)
        else:
            tensors[role] = load(shown(role), rec[role])
    if emb is not None:
        tensors["embedding.weight"] = load(emb, stored[emb])
    if head_w is not None:
        tensors["head.weight"] = load(head_w, stored[head_w])
    if head_b is not None:
        tensors["head.bias"] = load(head_b, _as_vector(stored[head_b]))

    used |= {n for n in (emb, head_w, head_b) if n is not None}
    ignored = sorted(n for n in stored if n not in used)
    renamed_all = dict(renamed)
    if names:
        renamed_all.update({n: r for n, r in mapped.items() if r in OTHER_ROLES})
    shape = replace(
        shape,
        ignored=tuple(ignored),
        embedding=emb or "",
        vocab_size=V,
        head=head_w or "",
        head_bias=head_b or "",
        output_size=O,
        names=names,
        renamed=tuple(renamed_all.items()) if names else (),
        filled=tuple(filled),
        activation_assumed=len(REGISTRY[cell].activations) > 1 and activation is None,
        cell_from=cell_from,
        tied=stored[emb].alias_of if emb is not None else "",
    )
    return shape, tensors


def _input_only_cell(stored: dict, rec: dict, cell: str | None, shown, D: int, fail) -> tuple[str, int]:
    """(cell, H) of layers without weight_hh: minGRU (weight_ih rows z, n: 2H) or minLSTM (f, i, n:
    3H). The rows give H once the cell is known; without --cell, whichever of the two fits the
    other tensors (layer 1's weight_ih reads D*H columns, a head reads D*H), or a refusal."""
    rows = int(rec["weight_ih_l0"].shape[0])
    input_only = [n for n, c in REGISTRY.items() if c.recurrence == "none"]
    if cell is not None:
        if REGISTRY[cell].recurrence != "none":
            fail(f"missing tensor {shown('weight_hh_l0')} (a {cell} has one; {' and '.join(input_only)} have none)")
        if rows % GATE_ROWS[cell]:
            fail(f"a {cell} needs weight_ih_l0 with {GATE_ROWS[cell]}H rows, the file's {shown('weight_ih_l0')} "
                 f"has {rows}")  # fmt: skip
        return cell, rows // GATE_ROWS[cell]
    fits = []
    for name in input_only:
        G = GATE_ROWS[name]
        if rows % G or rows == 0:
            continue
        H = rows // G
        above = rec.get("weight_ih_l1")
        if above is not None and (len(above.shape) != 2 or above.shape != (G * H, D * H)):
            continue
        fits.append((name, H))
    if len(fits) > 1:  # a head (O, D*H) tells them apart
        widths = {int(s.shape[1]) for n, s in stored.items() if len(s.shape) == 2 and not RECURRENT.match(n)}
        fits = [(n, H) for n, H in fits if D * H in widths] or fits
    if len(fits) != 1:
        shape = tuple(rec["weight_ih_l0"].shape)
        options = " or ".join(f"a {n} ({GATE_ROWS[n]}H rows)" for n in input_only)
        fail(f"{shown('weight_ih_l0')} {shape} has no weight_hh: {options}; say which with --cell")
    return fits[0]


def load_user_weights(
    path: str | Path,
    cell: str | None = None,
    activation: str | None = None,
    prefix: str | None = None,
    mapping: tuple[tuple[str, str], ...] = (),
) -> tuple[ImportedWeights, dict[str, "Tensor"]]:
    """Read a model's weights file: (its shape, tensors by rnn-tui's names).

    The tensors are the recurrent ones (weight_ih_l0 ...) plus embedding.weight, head.weight and
    head.bias when the file has them (found by shape and name, or named by `mapping`).
    """
    stored, metadata = read_weights(path)
    return infer_shape(stored, cell=cell, activation=activation, prefix=prefix, source=str(path),
                       mapping=mapping, metadata=metadata)  # fmt: skip


# ---- a model around imported weights -----------------------------------------------------------
def fit_config(shape: ImportedWeights, base: ModelConfig) -> ModelConfig:
    """`base` (input encoding, vocabulary, head, loss from a task) with the imported model in it:
    its recurrent shape, and its embedding and head where the file has them, which must then fit
    the task (a mismatch says how to leave the file's part out: --map NAME=ignore).

    A one-hot or raw-vector input must already be as wide as weight_ih_l0 reads; a fresh
    embedding takes the imported input size as its width.
    """
    where = shape.source or "the weights"
    changes: dict = dict(
        cell=shape.cell, activation=shape.activation, input_size=shape.input_size, hidden_size=shape.hidden_size,
        num_layers=shape.num_layers, bidirectional=shape.bidirectional, bias=shape.bias,
    )  # fmt: skip
    if shape.vocab_size:
        if base.input_mode == "vectors":
            raise WeightsError(
                f"{where}: the file's embedding {shape.embedding} reads tokens but the task feeds vectors "
                f"(leave it out with --map {shape.embedding}=ignore)"
            )
        if base.vocab_size != shape.vocab_size:
            raise WeightsError(
                f"{where}: the file's embedding {shape.embedding} has {shape.vocab_size} rows but the task reads "
                f"{base.vocab_size} tokens (give the model's own --vocab, or learn a fresh embedding with "
                f"--map {shape.embedding}=ignore)"
            )
        changes.update(input_mode="embedding", vocab_size=shape.vocab_size)
    elif base.input_mode == "onehot" and shape.input_size != base.vocab_size:
        raise WeightsError(
            f"{where}: weight_ih_l0 reads {shape.input_size} inputs but the one-hot vocabulary has "
            f"{base.vocab_size} tokens: use weights trained on this task's vocabulary"
        )
    elif base.input_mode == "vectors" and shape.input_size != base.input_size:
        raise WeightsError(
            f"{where}: weight_ih_l0 reads {shape.input_size} inputs but the task feeds vectors of size {base.input_size}"
        )
    if shape.output_size:
        if shape.output_size != base.output_size:
            names = shape.head + (f",{shape.head_bias}" if shape.head_bias else "")
            ignore = ",".join(f"{n}=ignore" for n in names.split(","))
            raise WeightsError(
                f"{where}: the file's output layer {shape.head} has {shape.output_size} outputs but the task needs "
                f"{base.output_size} (train a fresh head with --map {ignore})"
            )
        changes["head_bias"] = bool(shape.head_bias)
    try:
        return base.replace(**changes)
    except ConfigError as e:
        raise WeightsError(f"{where}: {e}") from None


def fresh_parts(shape: ImportedWeights, config: ModelConfig) -> list[str]:
    """What of `config`'s model the file did not give (a fresh embedding, a fresh head), one line each."""
    notes = []
    if config.input_mode == "embedding" and not shape.vocab_size:
        notes.append(f"the file has no embedding: a fresh one ({config.vocab_size} x {config.input_size}) is initialised")
    if not shape.output_size:
        notes.append(f"the file has no output layer: a fresh head ({config.output_size} outputs) is initialised")
    return notes


def build_with_weights(
    shape: ImportedWeights,
    tensors: dict[str, "Tensor"],
    base: ModelConfig,
    seed: int | None = None,
    head: dict[str, "Tensor"] | None = None,
    dtype: str = "float32",
) -> "RNNModel":
    """A model of `base` fitted to the import (see `fit_config`) holding every imported tensor:
    recurrent layers, and embedding and head where the file has them; what it lacks is freshly
    initialised (`seed`). `head` gives a head by hand. dtype "float64" keeps float64 weights exact."""
    import torch

    from rnn_tui.engine.model import build_model

    config = fit_config(shape, base)
    if head and "head.bias" not in head and "head.bias" not in tensors:
        config = config.replace(head_bias=False)
    model = build_model(config, seed=seed).to({"float32": torch.float32, "float64": torch.float64}[dtype])
    given = dict(tensors)
    if head:
        given.update(head)
    try:
        model.load_tensors(given, strict=False)
    except ConfigError as e:
        raise WeightsError(f"{shape.source or 'the weights'}: {e}") from None
    return model
