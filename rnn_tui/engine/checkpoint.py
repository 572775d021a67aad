"""A training run on disk, committed as a unit and read without executing anything.

    run/
      model.safetensors      every tensor by its torch name (weight_ih_l0 ..., head.weight)
      config.json            model config, task name and options, train config, vocabulary, status
      trainer.safetensors    optimizer state, data-generator state, a half-read batch (for --resume)
      metrics.jsonl          one JSON object per logged step: step, loss, grad_norm, metric ...
      snapshots/step_000100.safetensors   the weights every N steps (the explorer's time-lapse)

A save is one commit of a new *generation* of the first three files, so a crash, a kill -9 or a
full disk at any moment leaves either the whole previous generation or the whole new one:

    1. each new file is written beside its old one as `.model.safetensors.g000007` (a staged
       file) and flushed to disk (fsync), then the folder is flushed;
    2. the commit: `commit.json`, naming the staged files, is written to a temporary file,
       flushed and renamed into place (one atomic rename), and the folder is flushed;
    3. each staged file is renamed over its fixed name, and `commit.json` is removed.

A reader that finds `commit.json` reads the staged files it names (or the fixed ones, once
renamed); without it, the fixed names are the committed generation. The files of a generation
carry its number (config.json `generation`, the tensors' metadata), so a reader racing a writer
can tell a mixed read and try again. A writer first finishes a commit left half-done (step 3)
and removes staged and temporary files no commit names: the remains of an interrupted save.

metrics.jsonl is appended as training goes, ahead of the last commit; the records of a run are
those up to its committed step (`read_metrics(..., upto=step)`), and a resume drops the others.
Runs written before generations existed (no `generation` in config.json) load as before.

Every file is read through `rnn_tui.engine.files`: a regular file of bounded size, read with a
bound, so a FIFO or a device in a run's place is refused instead of hanging. Reading uses JSON
and safetensors only: no pickle, so a file cannot run code.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.files import MiB, FileError, check_file, parse_json, read_bytes, shown
from rnn_tui.safe_text import safe

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor, nn

FORMAT = "rnn-tui-run"
VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
TRAINER_FILE = "trainer.safetensors"
COMMIT_FILE = "commit.json"
SNAPSHOT_DIR = "snapshots"
GENERATION_FILES = (MODEL_FILE, TRAINER_FILE, CONFIG_FILE)  # what one commit replaces together
SNAPSHOT_RE = re.compile(r"^step_(\d{6,})\.safetensors$")
TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")  # an atomic write's temporary file
STAGED_RE = re.compile(r"^\.(model\.safetensors|trainer\.safetensors|config\.json)\.g(\d{6,})$")
STATUSES = ("running", "finished", "cancelled", "diverged")
MAX_STEP = 10_000_000  # TrainConfig.steps at most: a config.json step past it is damaged
MAX_GENERATION = 10**12
# read limits: a run's JSON is small (a vocabulary of 100k words is ~2 MB); weights are at most
# MAX_PARAMETERS float64 numbers, and the trainer state (Adam) twice that
MAX_JSON_BYTES = 64 * MiB
MAX_METRICS_BYTES = 1 << 30
MAX_TENSOR_BYTES = 4 << 30
MAX_HEADER_BYTES = 100 * MiB


class CheckpointError(EngineError):
    """A run directory or tensor file that cannot be read or written; the message says why."""


# ---- durable writes ----------------------------------------------------------------------------
# Every write goes through os.open / os.write / os.fsync / os.replace (never a buffered file), so
# a failure of any one of them (ENOSPC, EIO) can be injected in a test, one call at a time.
_O_BINARY = getattr(os, "O_BINARY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - a write that makes no progress
            raise OSError(errno.EIO, "write made no progress")
        view = view[n:]


def _write_durable(path: Path, data: bytes, exclusive: bool = False) -> None:
    """`data` into `path` and flushed to disk; on failure the file is removed again."""
    flags = os.O_WRONLY | os.O_CREAT | _O_BINARY | _O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _unlink_quietly(path)
        raise


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` in one step: temp file in the same folder, fsync, os.replace,
    then fsync the folder so the rename itself is on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def _write_temp(path: Path, data: bytes) -> Path:
    """A new, flushed file next to `path` (same filesystem, so a rename is atomic), mode 0666 less
    the umask; its name matches TEMP_RE, so the remains of a crash are found and removed."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            _write_durable(tmp, data, exclusive=True)
            return tmp
        except FileExistsError:
            continue
    raise CheckpointError(f"cannot create a temporary file next to {safe(path)}")


def _fsync_dir(folder: Path, strict: bool = False) -> None:
    """Make renames in `folder` durable. strict: a failure raises (before a commit, where it
    matters); otherwise it is ignored (where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | _O_CLOEXEC)
    except OSError:
        if strict and os.name == "posix":
            raise
        return
    try:
        os.fsync(fd)
    except OSError:
        if strict:
            raise
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def read_json(path: str | os.PathLike, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON file: a regular file of at most `limit` bytes, valid UTF-8 JSON, not nested past
    files.MAX_DEPTH; anything else is one CheckpointError naming the file."""
    where = safe(path)
    try:
        data = read_bytes(path, where, limit)
    except FileError as e:
        raise CheckpointError(_drop_prefix(str(e), where)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{where} is not text (expected UTF-8 JSON): the file is damaged") from None
    try:
        return parse_json(text, where)
    except FileError as e:
        raise CheckpointError(str(e)) from None


def _drop_prefix(message: str, where: str) -> str:
    """files.py says "WHAT: PATH is ..."; with WHAT the path itself, say it once."""
    doubled = f"{where}: {where} "
    return where + " " + message[len(doubled):] if message.startswith(doubled) else message


# ---- tensors -----------------------------------------------------------------------------------
def tensors_to_bytes(tensors: dict[str, "Tensor"], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of detached, contiguous CPU copies."""
    from safetensors.torch import save

    plain = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    return save(plain, metadata=metadata)


def save_tensors(path: str | os.PathLike, tensors: dict[str, "Tensor"], metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(path, tensors_to_bytes(tensors, metadata))


DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip


def safetensors_header(data: bytes, where: str) -> dict:
    """The header of safetensors bytes, checked before any tensor is built: its length, JSON, and
    that every tensor's offsets fit its dtype and shape and lie inside the file. A CheckpointError
    says what is wrong."""
    if len(data) < 8:
        raise CheckpointError(f"{where} is not a readable safetensors file (only {len(data)} bytes)")
    n = int.from_bytes(data[:8], "little")
    if n > min(MAX_HEADER_BYTES, len(data) - 8):
        raise CheckpointError(f"{where} is not a readable safetensors file (its header length {n:,} does not fit the file)")
    try:
        header = parse_json(data[8 : 8 + n], where)
    except FileError as e:
        raise CheckpointError(f"{where} is not a readable safetensors file (the header: {_first_line(e)})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where} is not a readable safetensors file (the header is not a JSON object)")
    body = len(data) - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            if entry is not None and not (isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values())):
                raise CheckpointError(f"{where}: its __metadata__ must map names to strings")
            continue
        ok = isinstance(entry, dict) and entry.get("dtype") in DTYPE_BYTES
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        if not ok:
            raise CheckpointError(f"{where}: tensor {safe(name)!r} has a damaged header entry")
        count = math.prod(shape)
        a, b = offsets
        if not (0 <= a <= b <= body and b - a == count * DTYPE_BYTES[entry["dtype"]]):
            raise CheckpointError(f"{where}: tensor {safe(name)!r} does not fit the file (offsets {a}..{b} of {body} bytes)")
    return header


def load_tensors(path: str | os.PathLike, limit: int = MAX_TENSOR_BYTES) -> tuple[dict[str, "Tensor"], dict[str, str]]:
    """(tensors, metadata) from a .safetensors file of at most `limit` bytes; a damaged, missing
    or special file is a CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    where = safe(path)
    try:
        data = read_bytes(path, where, limit)
    except FileError as e:
        raise CheckpointError(_drop_prefix(str(e), where)) from None
    header = safetensors_header(data, where)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, OverflowError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{where} is not a readable safetensors file ({_first_line(e)})") from None
    meta = header.get("__metadata__") or {}
    return tensors, {str(k): str(v) for k, v in meta.items()}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def model_tensors(model: "nn.Module") -> dict[str, "Tensor"]:
    """A model's tensors by torch name: `tensors()` where the model has it, else its state_dict."""
    if hasattr(model, "tensors"):
        return dict(model.tensors())
    return dict(model.state_dict())


def load_model_tensors(model: "nn.Module", tensors: dict[str, "Tensor"]) -> None:
    """Copy tensors into a model; missing/extra/mis-shaped tensors raise an EngineError."""
    if hasattr(model, "load_tensors"):
        model.load_tensors(tensors)
        return
    import torch

    mine = model.state_dict()
    missing, extra = sorted(set(mine) - set(tensors)), sorted(set(tensors) - set(mine))
    if missing or extra:
        raise ConfigError(f"tensor names do not match the model: missing {missing}, unexpected {extra}")
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(mine[name].shape):
            raise ConfigError(f"tensor {name} has shape {tuple(value.shape)}, the model needs {tuple(mine[name].shape)}")
    with torch.no_grad():
        model.load_state_dict({k: v.to(mine[k].dtype) for k, v in tensors.items()})


# ---- the run record ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """What config.json holds: enough to rebuild the model, the task and the trainer."""

    model: ModelConfig
    task: str
    task_options: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)  # TrainConfig.to_dict()
    vocab: list | None = None  # input token labels (None for raw vectors)
    output_labels: list | None = None  # output class labels (None for mse)
    step: int = 0  # optimizer steps taken when these weights were saved
    status: str = "running"  # one of STATUSES
    result: dict = field(default_factory=dict)  # final metric, divergence step, seconds ...
    generation: int | None = None  # the commit that wrote it (None: a run from before commits)

    def to_json(self) -> dict:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model.to_dict(),
            "task": {"name": self.task, "options": self.task_options},
            "train": self.train,
            "vocab": self.vocab,
            "output_labels": self.output_labels,
            "step": self.step,
            "status": self.status,
            "result": _finite(self.result),
        }
        if self.generation is not None:
            doc["generation"] = self.generation
        return doc

    @classmethod
    def from_json(cls, data: Any, where: str = CONFIG_FILE) -> "RunInfo":
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise CheckpointError(f"{where}: {what}")

        need(isinstance(data, dict), "expected a JSON object")
        need(data.get("format") == FORMAT, f"not an rnn-tui run (format is {shown(data.get('format'))}, expected {FORMAT!r})")
        version = data.get("version")
        need(_whole(version), f"'version' must be a whole number, got {shown(version)}")
        need(version <= VERSION, f"version {version} is newer than this rnn-tui reads (up to {VERSION}): update rnn-tui")
        need(isinstance(data.get("model"), dict), "the 'model' entry is missing")
        try:
            model = ModelConfig.from_dict(data["model"])
        except ConfigError as e:
            raise CheckpointError(f"{where}: {safe(e)}") from None
        except TypeError as e:
            raise CheckpointError(f"{where}: bad model entry ({safe(e)})") from None
        task = data.get("task") or {}
        need(isinstance(task, dict) and isinstance(task.get("name"), str), "the 'task' entry needs a name")
        options = task.get("options") or {}
        need(isinstance(options, dict), "task options must be an object")
        for key in ("vocab", "output_labels"):
            value = data.get(key)
            need(value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)), f"'{key}' must be a list of strings")
        train = data.get("train") or {}
        need(isinstance(train, dict), "'train' must be an object")
        step = data.get("step", 0)
        need(_whole(step) and 0 <= step <= MAX_STEP, f"'step' must be a whole number from 0 to {MAX_STEP}, got {shown(step)}")
        status = data.get("status", "finished")
        need(status in STATUSES, f"unknown status {shown(status)}")
        result = data.get("result") or {}
        need(isinstance(result, dict), "'result' must be an object")
        generation = data.get("generation")
        need(
            generation is None or (_whole(generation) and 1 <= generation <= MAX_GENERATION),
            f"'generation' must be a whole number from 1 to {MAX_GENERATION}, got {shown(generation)}",
        )
        return cls(
            model=model,
            task=task["name"],
            task_options=dict(options),
            train=dict(train),
            vocab=data.get("vocab"),
            output_labels=data.get("output_labels"),
            step=step,
            status=status,
            result=dict(result),
            generation=generation,
        )


RUN_TEXT = "text.txt"  # a language model's training text kept inside its run (saved from the explorer)


def run_task_options(run_dir: str | os.PathLike, info: RunInfo) -> dict:
    """A run's task options, with a `text` that names a file inside the run directory (the
    explorer saves a model trained on its own input with the input as `text.txt`) read there,
    wherever the run has been moved and whatever the current folder."""
    options = dict(info.task_options)
    text = options.get("text")
    if isinstance(text, str) and not os.path.isabs(text) and "/" not in text and "\\" not in text:
        inside = Path(run_dir) / text
        if inside.is_file():
            options["text"] = str(inside)
    return options


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(obj: Any) -> Any:
    """JSON has no NaN/Inf: write them as null (a diverged loss is reported by step, not value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# ---- commits -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Committed:
    """Where the files of a run's committed generation are, right now."""

    generation: int | None  # None: no commit.json (the fixed names, or a run from before commits)
    files: dict  # name in GENERATION_FILES -> the path to read it from

    def path(self, name: str) -> Path:
        return self.files[name]


def staged_name(name: str, generation: int) -> str:
    return f".{name}.g{generation:06d}"


def read_commit(run_dir: str | os.PathLike) -> dict | None:
    """commit.json, checked, or None when the run has none (no save is half-done)."""
    path = Path(run_dir) / COMMIT_FILE
    if not os.path.lexists(path):
        return None
    doc = read_json(path, limit=MiB)
    where = safe(path)
    if not (isinstance(doc, dict) and doc.get("format") == FORMAT and _whole(doc.get("generation"))
            and 1 <= doc["generation"] <= MAX_GENERATION and isinstance(doc.get("files"), dict)):  # fmt: skip
        raise CheckpointError(f"{where} is not an rnn-tui commit record: the run is damaged")
    generation = doc["generation"]
    for name, staged in doc["files"].items():
        if name not in GENERATION_FILES or staged != staged_name(name, generation):
            raise CheckpointError(f"{where} names {shown(staged)} for {shown(name)}: the run is damaged")
    return doc


def committed_files(run_dir: str | os.PathLike) -> Committed:
    """The committed generation's files: the staged ones a commit.json names while they are not
    yet renamed, else the fixed names."""
    run_dir = Path(run_dir)
    commit = read_commit(run_dir)
    files = {name: run_dir / name for name in GENERATION_FILES}
    if commit is None:
        return Committed(None, files)
    for name, staged in commit["files"].items():
        if os.path.lexists(run_dir / staged):
            files[name] = run_dir / staged
    return Committed(commit["generation"], files)


def commit_generation(run_dir: str | os.PathLike, generation: int, files: dict[str, bytes]) -> None:
    """Replace the named files of a run together, as generation `generation` (see the module's
    docstring). Before the commit point a failure removes what it staged and raises, leaving the
    previous generation whole; after it, the new generation stands whatever fails next (the next
    writer finishes the renames)."""
    run_dir = Path(run_dir)
    staged: dict[str, str] = {}
    try:
        for name, data in files.items():
            staged[name] = staged_name(name, generation)
            _write_durable(run_dir / staged[name], data)
        _fsync_dir(run_dir, strict=True)
        record = {"format": FORMAT, "generation": generation, "files": staged}
        tmp = _write_temp(run_dir / COMMIT_FILE, json_bytes(record))
        try:
            os.replace(tmp, run_dir / COMMIT_FILE)  # the commit point
        except BaseException:
            _unlink_quietly(tmp)
            raise
    except BaseException:
        for name in staged.values():
            _unlink_quietly(run_dir / name)
        raise
    try:
        _fsync_dir(run_dir, strict=True)
        _roll_forward(run_dir, record)
    except OSError:
        pass  # committed: commit.json and the staged files stand for the new generation


def _roll_forward(run_dir: Path, record: dict) -> None:
    """Rename a commit's staged files over their fixed names, then drop commit.json (idempotent)."""
    for name, staged in record["files"].items():
        if os.path.lexists(run_dir / staged):
            os.replace(run_dir / staged, run_dir / name)
    _fsync_dir(run_dir, strict=True)
    os.unlink(run_dir / COMMIT_FILE)
    _fsync_dir(run_dir)


def recover(run_dir: str | os.PathLike) -> list[str]:
    """Before writing to a run: finish a commit left half-done, and remove the remains of
    interrupted saves (temporary and staged files no commit names). Returns the names removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    commit = read_commit(run_dir)
    if commit is not None:
        _roll_forward(run_dir, commit)
    removed = []
    for folder in (run_dir, run_dir / SNAPSHOT_DIR):
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if TEMP_RE.match(entry.name) or (folder == run_dir and STAGED_RE.match(entry.name)):
                if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                    _unlink_quietly(Path(entry.path))
                    removed.append(entry.name)
    return removed


def _committed_generation(run_dir: Path) -> int:
    """The generation of the run's last commit (0 for none, or a run from before commits)."""
    commit = read_commit(run_dir)
    if commit is not None:
        return commit["generation"]
    if not os.path.lexists(run_dir / CONFIG_FILE):
        return 0
    return read_config(run_dir).generation or 0


def save_run(
    run_dir: str | os.PathLike,
    info: RunInfo,
    tensors: dict[str, "Tensor"],
    trainer_state: tuple[dict[str, "Tensor"], dict] | None = None,
) -> RunInfo:
    """Commit the weights, config.json and (given) the trainer state as one new generation;
    returns the RunInfo as written (with its generation). A trainer state not given stays as it
    was (older than the weights, so a resume starts a fresh optimizer)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recover(run_dir)
    generation = _committed_generation(run_dir) + 1
    info = replace(info, generation=generation)
    stamp = {"format": FORMAT, "step": str(info.step), "generation": str(generation)}
    files = {MODEL_FILE: tensors_to_bytes(tensors, stamp)}
    if trainer_state is not None:
        state, meta = trainer_state
        files[TRAINER_FILE] = tensors_to_bytes(state, stamp | {"json": json.dumps(meta, allow_nan=False)})
    files[CONFIG_FILE] = json_bytes(info.to_json())
    commit_generation(run_dir, generation, files)
    return info


def write_config(run_dir: str | os.PathLike, info: RunInfo) -> None:
    """config.json alone (a run's other files untouched); `save_run` commits a whole save."""
    atomic_write_json(Path(run_dir) / CONFIG_FILE, info.to_json())


def read_config(run_dir: str | os.PathLike) -> RunInfo:
    run_dir = _existing_run_dir(run_dir)
    path = committed_files(run_dir).path(CONFIG_FILE)
    return RunInfo.from_json(read_json(path), where=safe(run_dir / CONFIG_FILE))


# ---- what a folder holds -----------------------------------------------------------------------
def run_state(run_dir: str | os.PathLike) -> str:
    """What a folder is to rnn-tui:

    "missing"     no such folder (or not a folder)
    "committed"   a run: it has a commit (config.json, or a commit.json)
    "unfinished"  no commit, only the remains of a first save that did not finish: staged or
                  temporary files, or (from before commits) rnn-tui weights without config.json.
                  It is an empty run: `rnn-tui train --out` may start there
    "empty"       nothing of rnn-tui's (an empty folder, or other files)
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "missing"
    if os.path.lexists(run_dir / CONFIG_FILE) or os.path.lexists(run_dir / COMMIT_FILE):
        return "committed"
    return "unfinished" if unfinished_remains(run_dir) else "empty"


def unfinished_remains(run_dir: Path) -> list[Path]:
    """The files an interrupted first save left in a folder with no commit."""
    found = [Path(e.path) for e in os.scandir(run_dir) if TEMP_RE.match(e.name) or STAGED_RE.match(e.name)]
    weights = run_dir / MODEL_FILE
    if os.path.isfile(weights) and _is_rnn_tui_weights(weights):
        found.append(weights)
    return found


def _is_rnn_tui_weights(path: Path) -> bool:
    """Whether a model.safetensors names rnn-tui as its writer (its header; never the data)."""
    try:
        check_file(path, "weights", MAX_TENSOR_BYTES)
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if not 0 < n <= MAX_HEADER_BYTES:
                return False
            header = parse_json(f.read(n), "header")
    except (OSError, FileError):
        return False
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def clear_unfinished(run_dir: str | os.PathLike) -> list[str]:
    """Remove the remains of an unfinished first save (see `run_state`); returns their names."""
    removed = []
    for path in unfinished_remains(Path(run_dir)):
        _unlink_quietly(path)
        removed.append(path.name)
    return removed


def _existing_run_dir(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    state = run_state(run_dir)
    where = safe(run_dir)
    if state == "missing":
        raise CheckpointError(f"{where} is not a run directory (it should hold {MODEL_FILE} and {CONFIG_FILE})")
    if state == "unfinished":
        raise CheckpointError(
            f"{where} holds no saved run: its first save did not finish (an interrupted `rnn-tui train`); "
            f"train into it again with --out {where}"
        )
    if state == "empty":
        raise CheckpointError(f"{where} has no {CONFIG_FILE}: it is not an rnn-tui run directory")
    return run_dir


# ---- metrics -----------------------------------------------------------------------------------
def _metrics_text(records: list[dict]) -> str:
    return "".join(json.dumps(_finite(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records)


def append_metrics(run_dir: str | os.PathLike, records: list[dict]) -> None:
    """Append one JSON line per record, flushed to disk. A line torn by an earlier crash or a
    failed write is cut off first, so the file stays whole lines."""
    if not records:
        return
    path = Path(run_dir) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _metrics_text(records).encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_BINARY | _O_CLOEXEC, 0o666)
    try:
        size = os.fstat(fd).st_size
        end = size
        if size:
            tail = os.pread(fd, min(size, MiB), size - min(size, MiB))
            end = size - len(tail) + tail.rfind(b"\n") + 1  # after the last whole line
        if end != size:
            os.ftruncate(fd, end)
        try:
            os.lseek(fd, end, os.SEEK_SET)
            _write_all(fd, data)
            os.fsync(fd)
        except BaseException:
            try:  # leave no torn line behind
                os.ftruncate(fd, end)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)


def write_metrics(run_dir: str | os.PathLike, records: list[dict]) -> None:
    """Replace metrics.jsonl atomically (used when a resumed run drops records past its step)."""
    atomic_write_text(Path(run_dir) / METRICS_FILE, _metrics_text(records))


def read_metrics(run_dir: str | os.PathLike, upto: int | None = None) -> list[dict]:
    """Every whole record in metrics.jsonl (up to step `upto` when given: a run's own records are
    those up to its committed step); a torn last line (a crash mid-append) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not os.path.lexists(path):
        return []
    where = safe(path)
    try:
        data = read_bytes(path, where, MAX_METRICS_BYTES)
    except FileError as e:
        raise CheckpointError(_drop_prefix(str(e), where)) from None
    lines = data.decode("utf-8", errors="replace").splitlines()
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = parse_json(line, f"{where}: line {n}")
        except FileError as e:
            if n == len(lines) and "nested" not in str(e):
                break  # torn by a crash mid-append
            raise CheckpointError(f"{e}" if "nested" in str(e) else f"{where}: line {n} is not valid JSON: the file is damaged") from None
        step = record.get("step") if isinstance(record, dict) else None
        if not (_whole(step) and 0 <= step <= MAX_STEP):
            raise CheckpointError(f"{where}: line {n} is not a metrics record (needs a whole-number 'step' from 0 to {MAX_STEP})")
        if upto is not None and step > upto:
            continue
        records.append(record)
    return records


# ---- weights -----------------------------------------------------------------------------------
def save_model(run_dir: str | os.PathLike, model: "nn.Module", step: int) -> Path:
    """model.safetensors alone (a run's other files untouched); `save_run` commits a whole save."""
    path = Path(run_dir) / MODEL_FILE
    save_tensors(path, model_tensors(model), {"format": FORMAT, "step": str(step)})
    return path


def snapshot_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{step:06d}.safetensors"


def save_snapshot(run_dir: str | os.PathLike, model: "nn.Module", step: int) -> Path:
    path = snapshot_path(run_dir, step)
    save_tensors(path, model_tensors(model), {"format": FORMAT, "step": str(step)})
    return path


def list_snapshots(run_dir: str | os.PathLike, upto: int | None = None) -> list[tuple[int, Path]]:
    """(step, path) of every snapshot (up to step `upto` when given), in step order."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        m = SNAPSHOT_RE.match(entry.name)
        if m and (upto is None or int(m.group(1)) <= upto):
            found.append((int(m.group(1)), Path(entry.path)))
    return sorted(found)


def prune_snapshots(run_dir: str | os.PathLike, above: int) -> list[int]:
    """Remove the snapshots of steps after `above` (a resume redoes them); returns their steps."""
    gone = []
    for step, path in list_snapshots(run_dir):
        if step > above:
            _unlink_quietly(path)
            gone.append(step)
    return gone


def check_float_tensors(tensors: dict[str, "Tensor"], where: str) -> None:
    """Weights must be floating point and finite: a saved run never holds NaN or Inf (a run that
    diverges keeps its last good weights), so such a file is damaged or not from rnn-tui."""
    for name, t in tensors.items():
        if not t.dtype.is_floating_point:
            raise CheckpointError(f"{where}: tensor {safe(name)} has dtype {t.dtype}, expected floating point weights")
    for name, t in tensors.items():
        if not bool(t.isfinite().all()):
            raise CheckpointError(f"{where}: tensor {safe(name)} holds NaN or Inf values: the weights are damaged")


@dataclass(frozen=True)
class Checkpoint:
    """A run read back: its record, its weights (torch names) and its metrics."""

    path: Path
    info: RunInfo
    tensors: dict
    metrics: list


def load_checkpoint(run_dir: str | os.PathLike, metrics: bool = True) -> Checkpoint:
    """A run's committed weights, config and (metrics=True) its records up to the committed step.

    The files read must be of one generation; a save racing the read is waited out by reading
    again (a few times), a mismatch that stays is a damaged run."""
    run_dir = _existing_run_dir(run_dir)
    for attempt in range(5):
        last = attempt == 4
        try:
            committed = committed_files(run_dir)
            info = RunInfo.from_json(read_json(committed.path(CONFIG_FILE)), where=safe(run_dir / CONFIG_FILE))
            path = committed.path(MODEL_FILE)
            if not os.path.lexists(path):
                raise CheckpointError(f"{safe(run_dir)} has no {MODEL_FILE}: the run saved no weights")
            tensors, meta = load_tensors(path)
        except CheckpointError as e:
            if not last and (_moved(run_dir) or "does not exist" in str(e)):
                continue  # a save renamed the files under this read: read the new ones
            raise
        if _same_generation(info, meta):
            break
        if last or info.generation is None or meta.get("generation") is None:
            raise CheckpointError(_mismatch(run_dir, info, meta))
    check_float_tensors(tensors, safe(path))
    records = read_metrics(run_dir, upto=info.step) if metrics else []
    return Checkpoint(run_dir, info, tensors, records)


def _moved(run_dir: Path) -> bool:
    """Whether a save is under way (or just ended) in `run_dir`: its files may have moved."""
    return os.path.lexists(run_dir / COMMIT_FILE) or any(STAGED_RE.match(e.name) for e in os.scandir(run_dir))


def _same_generation(info: RunInfo, meta: dict) -> bool:
    """Whether weights belong to the config read with them: the same commit, or (weights written
    by other tools carry no stamp, runs from before commits only their step) the same step."""
    if info.generation is not None and meta.get("generation") is not None:
        return meta["generation"] == str(info.generation)
    return meta.get("step") in (None, str(info.step))


def _mismatch(run_dir: Path, info: RunInfo, meta: dict) -> str:
    where = safe(run_dir)
    if info.generation is None or meta.get("generation") is None:
        return (f"{where}: {MODEL_FILE} holds the weights of step {safe(meta.get('step'))} but {CONFIG_FILE} says "
                f"step {info.step}: a save that did not finish (by an rnn-tui from before commits); the run is damaged")  # fmt: skip
    return (f"{where}: {MODEL_FILE} is of save {safe(meta.get('generation'))} but {CONFIG_FILE} of save "
            f"{info.generation}: the run is damaged")  # fmt: skip


def build_for(info: RunInfo, task=None, seed: int | None = None) -> "nn.Module":
    """An untrained model of a run's shape: the task builds it for encoder-decoder runs."""
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.tasks import TASKS, get_task

    task_info = TASKS.get(info.task)
    if task is None and task_info is not None and task_info.mode == "encdec":
        task = get_task(info.task, **info.task_options)
    if task is not None:
        return task.build_model(info.model, seed=seed)
    return build_model(info.model, seed=seed)


def load_model(
    run_dir: str | os.PathLike, task=None, snapshot: int | None = None, metrics: bool = True
) -> tuple["nn.Module", Checkpoint]:
    """The trained model of a run (or of one of its snapshots), ready to trace, and its checkpoint.

    metrics=False leaves metrics.jsonl unread (tracing needs only the weights and config.json)."""
    ckpt = load_checkpoint(run_dir, metrics=metrics)
    tensors = ckpt.tensors
    if snapshot is not None:
        path = snapshot_path(run_dir, snapshot)
        if not os.path.lexists(path):
            steps = ", ".join(str(s) for s, _ in list_snapshots(run_dir)) or "none"
            raise CheckpointError(f"{safe(run_dir)} has no snapshot at step {snapshot} (snapshots: {steps})")
        tensors, _ = load_tensors(path)
        check_float_tensors(tensors, safe(path))
    model = build_for(ckpt.info, task)
    try:
        load_model_tensors(model, tensors)
    except ConfigError as e:
        raise CheckpointError(f"{safe(Path(run_dir) / MODEL_FILE)}: {safe(e)}") from None
    model.eval()
    return model, ckpt


# ---- trainer state (for --resume) --------------------------------------------------------------
def save_trainer_state(run_dir: str | os.PathLike, tensors: dict[str, "Tensor"], meta: dict) -> None:
    """trainer.safetensors alone; `save_run` commits it with the weights it belongs to."""
    save_tensors(Path(run_dir) / TRAINER_FILE, tensors, {"format": FORMAT, "json": json.dumps(meta, allow_nan=False)})


def load_trainer_state(run_dir: str | os.PathLike) -> tuple[dict[str, "Tensor"], dict] | None:
    """(tensors, meta) of the committed trainer state, or None when the run has none. meta gets
    the file's `generation` (None from before commits), to be matched against config.json's."""
    path = committed_files(run_dir).path(TRAINER_FILE)
    if not os.path.lexists(path):
        return None
    tensors, metadata = load_tensors(path)
    where = safe(path)
    try:
        meta = parse_json(metadata.get("json", ""), f"{where}: its metadata")
    except FileError as e:
        raise CheckpointError(f"{e}: the file is damaged" if "nested" not in str(e) else str(e)) from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: its metadata is not a JSON object")
    generation = metadata.get("generation")
    meta["generation"] = int(generation) if generation is not None and generation.isdigit() and len(generation) < 14 else None
    return tensors, meta
