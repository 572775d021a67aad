"""Scenario files: a textbook's hand-worked example as TOML — the model, every weight, the input.

    [model]
    cell = "rnn"            # any cell `rnn-tui cells` lists
    activation = "identity" # rnn only
    input_size = 2
    hidden_size = 2
    output_size = 2
    bias = false            # no bias anywhere: neither b_ih, b_hh nor the head's (head_bias = true keeps it)
    [weights]               # any tensor by its torch name; a number fills it, a nested list sets it
    fill = 1.0              # value for every tensor not listed (random init when absent)
    [input]
    vectors = [[1, 1], [1, 1], [2, 2]]   # or: text = "..."
    targets = [0, 1, -1]    # optional: class per step (-1 = unscored), or one vector per step (mse)

With `text`, the input is one-hot over the text's characters (or over `vocab` when given) and,
unless `targets` says otherwise, each step's target is the next character.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.files import MiB, FileError, parse_toml, read_bytes
from rnn_tui.safe_text import safe

MODEL_KEYS = {
    "cell", "activation", "input_size", "hidden_size", "output_size", "num_layers",
    "bidirectional", "bias", "head_bias", "head", "loss", "seed", "dtype",
}  # fmt: skip
MAX_STEPS = 100_000
MAX_SCENARIO_BYTES = 64 * MiB  # 100,000 steps of a few numbers each fit in a few MB


class ScenarioError(EngineError):
    pass


@dataclass(frozen=True)
class Scenario:
    path: Path
    config: ModelConfig
    weights: dict[str, object]  # torch name -> number or nested list, as written
    fill: float | None
    seed: int
    dtype: str
    x: np.ndarray  # (T,) token ids or (T, I) vectors
    tokens: list[str]
    targets: list  # per output row, None where unscored
    vocab: list[str] | None
    title: str


def _need(ok: bool, path: Path, message: str) -> None:
    if not ok:
        raise ScenarioError(f"{safe(path.name)}: {safe(message)}")


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file: a regular file of at most MAX_SCENARIO_BYTES, read with that bound (a FIFO
    or /dev/zero is refused, not waited on), UTF-8 TOML nested at most files.MAX_DEPTH deep."""
    if str(path) == "":
        raise ScenarioError("the scenario path is empty: give a TOML file")
    path = Path(path)
    if not os.path.lexists(path):
        raise ScenarioError(f"scenario file {safe(path)} does not exist")
    try:
        raw = read_bytes(path, "scenario", MAX_SCENARIO_BYTES)
    except FileError as e:
        raise ScenarioError(str(e)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{safe(path.name)}: not a text file (expected UTF-8 TOML)") from None
    try:
        doc = parse_toml(text, safe(path.name))
    except FileError as e:
        raise ScenarioError(str(e)) from None
    return parse_scenario(doc, path)


def parse_scenario(doc: dict, path: Path = Path("scenario.toml")) -> Scenario:
    unknown = sorted(set(doc) - {"model", "weights", "input", "title"})
    _need(not unknown, path, f"unknown section(s) [{'], ['.join(unknown)}]: expected [model], [weights], [input]")
    model = doc.get("model")
    _need(isinstance(model, dict), path, "missing [model] section (cell, hidden_size, ...)")
    bad = sorted(set(model) - MODEL_KEYS)
    _need(not bad, path, f"unknown [model] key(s): {', '.join(bad)}")
    inp = doc.get("input")
    _need(isinstance(inp, dict), path, "missing [input] section: give vectors = [[...], ...] or text = \"...\"")
    bad = sorted(set(inp) - {"vectors", "text", "vocab", "targets"})
    _need(not bad, path, f"unknown [input] key(s): {', '.join(bad)}")
    _need(("vectors" in inp) != ("text" in inp), path, "[input] needs exactly one of vectors or text")

    settings = {k: v for k, v in model.items() if k not in ("seed", "dtype")}
    # "no biases" means none: the head's bias goes with the recurrent ones unless head_bias says
    settings.setdefault("head_bias", settings.get("bias", True))
    seed = model.get("seed", 0)
    _need(isinstance(seed, int) and not isinstance(seed, bool), path, "[model] seed must be a whole number")
    dtype = model.get("dtype", "float64")
    _need(dtype in ("float32", "float64"), path, "[model] dtype must be float32 or float64")

    if "text" in inp:
        text = inp["text"]
        _need(isinstance(text, str) and len(text) > 0, path, "[input] text must be a non-empty string")
        _need(len(text) <= MAX_STEPS, path, f"[input] text is longer than {MAX_STEPS} characters")
        vocab_src = inp.get("vocab", None)
        _need(
            vocab_src is None or isinstance(vocab_src, str)
            or (isinstance(vocab_src, list) and all(isinstance(v, str) and len(v) == 1 for v in vocab_src)),
            path, '[input] vocab must be a string of characters, e.g. vocab = "abc"',
        )  # fmt: skip
        vocab = list(vocab_src) if vocab_src is not None else sorted(set(text))
        _need(len(vocab) > 0, path, "[input] vocab is empty: give the characters the one-hot input is over")
        repeated = sorted({ch for ch in vocab if vocab.count(ch) > 1})
        _need(not repeated, path, f"[input] vocab lists {''.join(repeated)!r} more than once")
        missing = sorted(set(text) - set(vocab))
        _need(not missing, path, f"[input] text uses characters not in vocab: {''.join(missing)!r}")
        index = {ch: i for i, ch in enumerate(vocab)}
        x = np.array([index[ch] for ch in text], dtype=np.int64)
        tokens = list(text)
        V = len(vocab)
        settings.setdefault("input_size", V)
        settings.setdefault("output_size", V)
        _need(settings["input_size"] == V, path, f"input_size is {settings['input_size']} but the vocabulary has {V} characters")
        settings.update(input_mode="onehot", vocab_size=V)
    else:
        vectors = inp["vectors"]
        _need(isinstance(vectors, list) and len(vectors) > 0, path, "[input] vectors must be a non-empty list of lists")
        _need(len(vectors) <= MAX_STEPS, path, f"[input] has more than {MAX_STEPS} vectors")
        _need(
            all(isinstance(v, list) and all(_is_number(a) for a in v) for v in vectors),
            path, "[input] vectors must be a list of lists of numbers, one list per step",
        )  # fmt: skip
        try:
            x = np.array(vectors, dtype=np.float64)
        except (ValueError, TypeError):
            raise ScenarioError(f"{path.name}: [input] vectors must be lists of numbers, all the same length") from None
        _need(x.ndim == 2, path, "[input] vectors must be a list of lists of numbers, one list per step")
        _need(bool(np.isfinite(x).all()), path, "[input] vectors must be finite numbers")
        settings.setdefault("input_size", x.shape[1])
        _need(
            settings["input_size"] == x.shape[1],
            path, f"input_size is {settings['input_size']} but each input vector has {x.shape[1]} numbers",
        )  # fmt: skip
        settings.update(input_mode="vectors", vocab_size=0)
        vocab = None
        tokens = [f"x{t + 1}" for t in range(x.shape[0])]
    try:
        config = ModelConfig(**settings)
    except ConfigError as e:
        raise ScenarioError(f"{path.name}: {e}") from None
    except TypeError as e:
        raise ScenarioError(f"{path.name}: bad [model] setting: {e}") from None

    targets = _targets(inp, config, x, vocab, path)
    weights = doc.get("weights", {})
    _need(isinstance(weights, dict), path, "[weights] must be a table of tensor names")
    fill = weights.get("fill")
    _need(
        fill is None or (isinstance(fill, (int, float)) and not isinstance(fill, bool) and math.isfinite(fill)),
        path, "[weights] fill must be a finite number",
    )  # fmt: skip
    named = {k: v for k, v in weights.items() if k != "fill"}
    title = doc.get("title", path.stem)
    _need(isinstance(title, str), path, "title must be a string")
    return Scenario(
        path=path,
        config=config,
        weights=named,
        fill=None if fill is None else float(fill),
        seed=seed,
        dtype=dtype,
        x=x,
        tokens=tokens,
        targets=targets,
        vocab=vocab if config.output_size == len(vocab or []) else None,
        title=safe(title),  # shown in the status line: text from a file
    )


def _is_number(value) -> bool:
    """An int or float from TOML (true/false and strings are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers_only(value) -> bool:
    """A number, or lists nested to any depth whose leaves are all numbers."""
    if isinstance(value, list):
        return all(_numbers_only(v) for v in value)
    return _is_number(value)


def _targets(inp: dict, config: ModelConfig, x: np.ndarray, vocab, path: Path) -> list:
    rows = x.shape[0] if config.head == "step" else 1
    given = inp.get("targets")
    if given is None:
        if vocab is not None and config.head == "step" and config.output_size == len(vocab):
            return [int(v) for v in x[1:]] + [None]  # next character; the last step has none
        return [None] * rows
    _need(isinstance(given, list), path, "[input] targets must be a list")
    _need(len(given) == rows, path, f"[input] has {len(given)} targets for {rows} output rows")
    out = []
    for t in given:
        if config.loss == "ce":
            _need(
                isinstance(t, int) and not isinstance(t, bool) and -1 <= t < config.output_size,
                path, f"target {t!r} must be a class index 0..{config.output_size - 1}, or -1 for unscored",
            )  # fmt: skip
            out.append(None if t == -1 else t)
        else:
            ok = isinstance(t, list) and len(t) == config.output_size and all(_is_number(v) for v in t)
            _need(ok, path, f"each mse target must be a list of {config.output_size} numbers")
            _need(all(math.isfinite(v) for v in t), path, "mse targets must be finite numbers")
            out.append([float(v) for v in t])
    return out


def apply_weights(scenario: Scenario, tensors: dict) -> dict:
    """The scenario's weights as arrays by torch name, checked against the model's tensors.

    tensors: the model's own {name: tensor}, which gives shapes and the values of unlisted ones.
    """
    path = scenario.path
    unknown = sorted(set(scenario.weights) - set(tensors))
    _need(
        not unknown, path,
        f"[weights] names no tensor of this model: {', '.join(unknown)} (it has: {', '.join(sorted(tensors))})",
    )  # fmt: skip
    out = {}
    for name, t in tensors.items():
        shape = tuple(t.shape)
        if name in scenario.weights:
            value = scenario.weights[name]
            if _is_number(value):
                arr = np.full(shape, float(value))
            else:
                _need(
                    _numbers_only(value), path,
                    f"[weights] {name} must be a number or nested lists of numbers",
                )  # fmt: skip
                try:
                    arr = np.array(value, dtype=np.float64)
                except (ValueError, TypeError):
                    raise ScenarioError(f"{path.name}: [weights] {name} must be a number or nested lists of numbers") from None
                _need(arr.shape == shape, path, f"[weights] {name} has shape {arr.shape}, the model needs {shape}")
            _need(bool(np.isfinite(arr).all()), path, f"[weights] {name} must hold finite numbers")
            out[name] = arr
        elif scenario.fill is not None:
            out[name] = np.full(shape, scenario.fill)
    return out
