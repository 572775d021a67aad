"""A training run on disk, written atomically and read without executing anything.

    run/
      model.safetensors      every tensor by its torch name (weight_ih_l0 ..., head.weight)
      config.json            model config, task name and options, train config, vocabulary, status
      metrics.jsonl          one JSON object per logged step: step, loss, grad_norm, metric ...
      trainer.safetensors    optimizer state, data-generator state, a half-read batch (for --resume)
      snapshots/step_000100.safetensors   the weights every N steps (the explorer's time-lapse)

Every file is replaced in one step: written to a temporary file in the same folder, flushed to
disk, then renamed over the old one (`os.replace`), so a crash mid-write leaves the old file whole.
Reading uses JSON and safetensors only: no pickle, so a file cannot run code.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor, nn

FORMAT = "rnn-tui-run"
VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
TRAINER_FILE = "trainer.safetensors"
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_RE = re.compile(r"^step_(\d{6,})\.safetensors$")
STATUSES = ("running", "finished", "cancelled", "diverged")


class CheckpointError(EngineError):
    """A run directory or tensor file that cannot be read or written; the message says why."""


# ---- atomic writes -----------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace `path` with `data` in one step: temp file in the same folder, fsync, os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _temp_file(path: Path) -> tuple[int, str]:
    """A new file next to `path` (same filesystem, so the rename is atomic), mode 0666 less umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise CheckpointError(f"cannot create a temporary file next to {path}")


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a file") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path} is not text (expected UTF-8 JSON): the file is damaged") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): the file is damaged") from None


# ---- tensors -----------------------------------------------------------------------------------
def tensors_to_bytes(tensors: dict[str, "Tensor"], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of detached, contiguous CPU copies."""
    from safetensors.torch import save

    plain = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    return save(plain, metadata=metadata)


def save_tensors(path: str | os.PathLike, tensors: dict[str, "Tensor"], metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(path, tensors_to_bytes(tensors, metadata))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, "Tensor"], dict[str, str]]:
    """(tensors, metadata) from a .safetensors file; a damaged or missing file is a CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a safetensors file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        tensors = load(data)
        metadata = _safetensors_metadata(data)
    except (SafetensorError, ValueError, OverflowError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors file ({_first_line(e)})") from None
    return tensors, metadata


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """The __metadata__ of a safetensors file (its header is length-prefixed JSON)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


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

    def to_json(self) -> dict:
        return {
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

    @classmethod
    def from_json(cls, data: Any, where: str = CONFIG_FILE) -> "RunInfo":
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise CheckpointError(f"{where}: {what}")

        need(isinstance(data, dict), "expected a JSON object")
        need(data.get("format") == FORMAT, f"not an rnn-tui run (format is {data.get('format')!r}, expected {FORMAT!r})")
        version = data.get("version")
        need(isinstance(version, int) and version <= VERSION, f"version {version!r} is newer than this rnn-tui reads ({VERSION})")
        need(isinstance(data.get("model"), dict), "the 'model' entry is missing")
        try:
            model = ModelConfig.from_dict(data["model"])
        except ConfigError as e:
            raise CheckpointError(f"{where}: {e}") from None
        except TypeError as e:
            raise CheckpointError(f"{where}: bad model entry ({e})") from None
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
        need(isinstance(step, int) and step >= 0, f"'step' must be a whole number, got {step!r}")
        status = data.get("status", "finished")
        need(status in STATUSES, f"unknown status {status!r}")
        result = data.get("result") or {}
        need(isinstance(result, dict), "'result' must be an object")
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
        )


def _finite(obj: Any) -> Any:
    """JSON has no NaN/Inf: write them as null (a diverged loss is reported by step, not value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_config(run_dir: str | os.PathLike, info: RunInfo) -> None:
    atomic_write_json(Path(run_dir) / CONFIG_FILE, info.to_json())


def read_config(run_dir: str | os.PathLike) -> RunInfo:
    run_dir = _existing_run_dir(run_dir)
    path = run_dir / CONFIG_FILE
    return RunInfo.from_json(read_json(path), where=str(path))


def _existing_run_dir(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run directory (it should hold {MODEL_FILE} and {CONFIG_FILE})")
    if not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(f"{run_dir} has no {CONFIG_FILE}: it is not an rnn-tui run directory")
    return run_dir


# ---- metrics -----------------------------------------------------------------------------------
def append_metrics(run_dir: str | os.PathLike, records: list[dict]) -> None:
    """Append one JSON line per record; each line is written whole and flushed to disk."""
    if not records:
        return
    path = Path(run_dir) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(_finite(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_metrics(run_dir: str | os.PathLike, records: list[dict]) -> None:
    """Replace metrics.jsonl atomically (used when a resumed run drops records past its step)."""
    text = "".join(json.dumps(_finite(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records)
    atomic_write_text(Path(run_dir) / METRICS_FILE, text)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """Every whole record in metrics.jsonl; a torn last line (a crash mid-append) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not the run's metrics file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                break  # torn by a crash mid-append
            raise CheckpointError(f"{path}: line {n} is not valid JSON: the file is damaged") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise CheckpointError(f"{path}: line {n} is not a metrics record (needs a whole-number 'step')")
        records.append(record)
    return records


# ---- weights -----------------------------------------------------------------------------------
def save_model(run_dir: str | os.PathLike, model: "nn.Module", step: int) -> Path:
    path = Path(run_dir) / MODEL_FILE
    save_tensors(path, model_tensors(model), {"format": FORMAT, "step": str(step)})
    return path


def snapshot_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR / f"step_{step:06d}.safetensors"


def save_snapshot(run_dir: str | os.PathLike, model: "nn.Module", step: int) -> Path:
    path = snapshot_path(run_dir, step)
    save_tensors(path, model_tensors(model), {"format": FORMAT, "step": str(step)})
    return path


def list_snapshots(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every snapshot, in step order."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = SNAPSHOT_RE.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def check_float_tensors(tensors: dict[str, "Tensor"], where: str) -> None:
    """Weights must be floating point and finite: a saved run never holds NaN or Inf (a run that
    diverges keeps its last good weights), so such a file is damaged or not from rnn-tui."""
    for name, t in tensors.items():
        if not t.dtype.is_floating_point:
            raise CheckpointError(f"{where}: tensor {name} has dtype {t.dtype}, expected floating point weights")
    for name, t in tensors.items():
        if not bool(t.isfinite().all()):
            raise CheckpointError(f"{where}: tensor {name} holds NaN or Inf values: the weights are damaged")


@dataclass(frozen=True)
class Checkpoint:
    """A run read back: its record, its weights (torch names) and its metrics."""

    path: Path
    info: RunInfo
    tensors: dict
    metrics: list


def load_checkpoint(run_dir: str | os.PathLike, metrics: bool = True) -> Checkpoint:
    run_dir = _existing_run_dir(run_dir)
    info = read_config(run_dir)
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no {MODEL_FILE}: the run saved no weights")
    tensors, _ = load_tensors(path)
    check_float_tensors(tensors, str(path))
    return Checkpoint(run_dir, info, tensors, read_metrics(run_dir) if metrics else [])


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
        if not path.is_file():
            steps = ", ".join(str(s) for s, _ in list_snapshots(run_dir)) or "none"
            raise CheckpointError(f"{run_dir} has no snapshot at step {snapshot} (snapshots: {steps})")
        tensors, _ = load_tensors(path)
        check_float_tensors(tensors, str(path))
    model = build_for(ckpt.info, task)
    try:
        load_model_tensors(model, tensors)
    except ConfigError as e:
        raise CheckpointError(f"{Path(run_dir) / MODEL_FILE}: {e}") from None
    model.eval()
    return model, ckpt


# ---- trainer state (for --resume) --------------------------------------------------------------
def save_trainer_state(run_dir: str | os.PathLike, tensors: dict[str, "Tensor"], meta: dict) -> None:
    """Optimizer and data-generator state: tensors in safetensors, the rest as JSON metadata."""
    save_tensors(Path(run_dir) / TRAINER_FILE, tensors, {"format": FORMAT, "json": json.dumps(meta, allow_nan=False)})


def load_trainer_state(run_dir: str | os.PathLike) -> tuple[dict[str, "Tensor"], dict] | None:
    """(tensors, meta) saved by `save_trainer_state`, or None when the run has none."""
    path = Path(run_dir) / TRAINER_FILE
    if not path.exists():
        return None
    tensors, metadata = load_tensors(path)
    try:
        meta = json.loads(metadata.get("json", ""))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: its metadata is not valid JSON: the file is damaged") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its metadata is not a JSON object")
    return tensors, meta
