"""What to look at: a model and one sequence, from the same flags the CLI and the explorer take.

`Spec` is the plain description (cell, sizes, input text, a scenario file, ...); `open_subject`
turns it into a `Subject` (a live model plus the sequence to trace) and `trace_subject` runs it.
The CLI's `trace` and the explorer both go through here, so they accept and refuse the same input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.errors import EngineError

DEFAULT_TEXT = "hello world, hello recurrent networks"
MAX_TEXT = 100_000


class SubjectError(EngineError):
    pass


@dataclass(frozen=True)
class Spec:
    cell: str = "lstm"
    activation: str = "tanh"
    hidden: int = 16
    layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    seed: int = 0
    dtype: str = "float32"
    input: str | None = None  # text to run through a character model
    scenario: str | None = None  # TOML scenario file
    checkpoint: str | None = None  # run directory written by `rnn-tui train`
    weights: str | None = None  # a torch.nn.RNN/LSTM/GRU state_dict file
    task: str | None = None  # a task name: the sequence comes from its example
    task_options: dict = field(default_factory=dict)

    def replace(self, **changes) -> "Spec":
        return replace(self, **changes)


@dataclass
class Subject:
    """A live model and the sequence to trace through it."""

    model: object  # RNNModel
    x: np.ndarray  # (T,) ids or (T, I) vectors
    targets: list
    tokens: list[str]
    vocab: list[str] | None  # input vocabulary, when the input is tokens
    output_labels: list[str] | None  # class labels of the output
    dtype: str
    title: str

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def char_vocab(text: str) -> list[str]:
    return sorted(set(text))


def char_subject(spec: Spec, text: str) -> Subject:
    """A character model over `text`'s own characters; targets are the next characters."""
    from rnn_tui.engine.model import build_model

    if not text:
        raise SubjectError("the input text is empty: give at least one character with --input")
    if len(text) > MAX_TEXT:
        raise SubjectError(f"the input text has {len(text)} characters; at most {MAX_TEXT} can be traced")
    vocab = char_vocab(text)
    V = len(vocab)
    config = ModelConfig(
        cell=spec.cell,
        activation=spec.activation,
        input_size=V,
        vocab_size=V,
        hidden_size=spec.hidden,
        num_layers=spec.layers,
        bidirectional=spec.bidirectional,
        bias=spec.bias,
        output_size=V,
    )
    index = {ch: i for i, ch in enumerate(vocab)}
    x = np.array([index[ch] for ch in text], dtype=np.int64)
    targets = [int(v) for v in x[1:]] + [None]
    model = build_model(config, seed=spec.seed)
    return Subject(model, x, targets, list(text), vocab, vocab, spec.dtype, "character model")


def scenario_subject(spec: Spec) -> Subject:
    import torch

    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.scenario import apply_weights, load_scenario

    sc = load_scenario(spec.scenario)
    model = build_model(sc.config, seed=sc.seed)
    values = apply_weights(sc, model.tensors())
    model.load_tensors({k: torch.from_numpy(v) for k, v in values.items()}, strict=False)
    vocab = sc.vocab if sc.config.input_mode == "onehot" else None
    return Subject(model, sc.x, sc.targets, sc.tokens, vocab, sc.vocab, sc.dtype, sc.title)


def open_subject(spec: Spec) -> Subject:
    """Build the model and sequence a Spec describes; EngineError with one line if it cannot."""
    given = [name for name in ("scenario", "checkpoint", "weights") if getattr(spec, name)]
    if len(given) > 1:
        raise SubjectError(f"give only one of --{' / --'.join(given)}")
    if spec.dtype not in ("float32", "float64"):
        raise SubjectError(f"unknown dtype {spec.dtype!r}: choose float32 or float64")
    if spec.scenario:
        return scenario_subject(spec)
    if spec.checkpoint or spec.weights or spec.task:
        from rnn_tui.engine import sources  # tasks, checkpoints and imported weights

        return sources.open_subject(spec)
    return char_subject(spec, DEFAULT_TEXT if spec.input is None else spec.input)


def trace_subject(subject: Subject, dtype: str | None = None):
    from rnn_tui.engine.trace import run_trace

    return run_trace(
        subject.model,
        subject.x,
        subject.targets,
        tokens=subject.tokens,
        vocab=subject.output_labels,
        dtype=dtype or subject.dtype,
    )
