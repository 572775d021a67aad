"""A person's own input vectors and targets, read from files for a model that reads vectors.

    x = read_vectors("x.npy", width=3)                  # (T, 3); .npy, or CSV / whitespace text
    targets, loss = read_targets("y.csv", T, outputs=5)  # one per step: a class, or a vector

Files:
- `.npy`: one array, read with numpy's allow_pickle=False after its header is checked;
- anything else: text, one step per line, numbers separated by commas or whitespace (`#` starts
  a comment), as numpy's `savetxt` writes them.

Targets: T whole numbers are classes (cross-entropy; -1 marks a step that is not scored); a T x O
table is one target vector per step (squared error; a row holding nan is not scored). With one
output a column of numbers is a target value per step.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.files import MiB, read_bytes

MAX_FILE = 64 * MiB
MAX_STEPS = 100_000


class InputFileError(EngineError):
    """A vectors or targets file that cannot be used; one line naming the file and the flag."""


def read_array(path: str | Path, flag: str) -> np.ndarray:
    """A float64 array from .npy or text; a 1-D array stays 1-D."""
    data = read_bytes(path, flag, MAX_FILE)
    where = f"{flag}: {path}"
    if Path(path).suffix.lower() == ".npy":
        stream = io.BytesIO(data)
        try:
            version = np.lib.format.read_magic(stream)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(stream)
        except (ValueError, EOFError) as e:
            raise InputFileError(f"{where} is not a .npy array ({str(e).splitlines()[0][:120]})") from None
        if dtype.hasobject:
            raise InputFileError(f"{where} holds Python objects (a pickle): refused without running it")
        if math.prod(shape) * dtype.itemsize > len(data) - stream.tell():
            raise InputFileError(f"{where} is cut short: its header claims more numbers than it holds")
        stream.seek(0)
        try:
            arr = np.lib.format.read_array(stream, allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise InputFileError(f"{where} is not a readable .npy array ({str(e).splitlines()[0][:120]})") from None
        if arr.dtype.kind not in "fiub":
            raise InputFileError(f"{where} holds {arr.dtype} values, not numbers")
        return arr.astype(np.float64)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputFileError(f"{where} is not UTF-8 text (byte {e.start})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in line.replace(",", " ").split()])
        except ValueError:
            raise InputFileError(f"{where}: line {n} is not numbers separated by commas or spaces") from None
    if not rows:
        raise InputFileError(f"{where} holds no numbers")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise InputFileError(f"{where}: its lines hold different counts of numbers ({', '.join(map(str, sorted(widths)))})")
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0] if arr.shape[1] == 1 else arr


def read_vectors(path: str | Path, width: int) -> np.ndarray:
    """(T, width) input vectors, one row per step, finite."""
    arr = read_array(path, "--vectors")
    where = f"--vectors: {path}"
    if arr.ndim == 1 and width == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputFileError(f"{where} has shape {arr.shape}: give one row of {width} numbers per step (T x {width})")
    if arr.shape[1] != width:
        raise InputFileError(f"{where} has {arr.shape[1]} numbers per step but the model reads {width} (weight_ih_l0)")
    if not 1 <= arr.shape[0] <= MAX_STEPS:
        raise InputFileError(f"{where} has {arr.shape[0]} steps; give 1 to {MAX_STEPS}")
    if not np.isfinite(arr).all():
        raise InputFileError(f"{where} holds NaN or infinite values")
    return arr


def read_targets(path: str | Path, steps: int, outputs: int) -> tuple[list, str]:
    """(one target per step, the loss): classes for "ce" (None where -1), vectors for "mse"
    (None where a row holds nan)."""
    arr = read_array(path, "--targets")
    where = f"--targets: {path}"
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape[0] != steps:
        raise InputFileError(f"{where} has {arr.shape[0]} targets for {steps} steps: give one per step")
    if arr.ndim == 1 and outputs > 1:
        bad = [v for v in arr if not (math.isfinite(v) and v == int(v) and -1 <= v < outputs)]
        if bad:
            raise InputFileError(
                f"{where}: {bad[0]:g} is not a class of the model's {outputs} outputs (0..{outputs - 1}, or -1: unscored)"
            )
        return [None if v == -1 else int(v) for v in arr], "ce"
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != outputs:
        raise InputFileError(
            f"{where} has shape {arr.shape}: give a class per step, or a row of {outputs} target values per step"
        )
    if np.isinf(arr).any():
        raise InputFileError(f"{where} holds infinite values")
    return [None if np.isnan(row).any() else [float(v) for v in row] for row in arr], "mse"
