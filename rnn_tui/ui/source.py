"""Where the explorer's traces come from.

The app is handed a *source* (as memray's `TUIApp(reader)` is handed a reader) and calls
`source.build(request)` in a thread worker; tests hand it a fake that returns precomputed traces.

`EngineSource` is the real one. It imports torch inside its methods only, so the app draws its
first frame before torch is loaded (importing this module stays cheap).
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Protocol

from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.records import Trace

FREE_TEXT = "text"  # the task that is no task: a next-token model over the input's own tokens
DEFAULT_TEXT = "hello world, hello recurrent world"
TOKENIZE = ("char", "word")


class SourceError(ValueError):
    """A request the source cannot build; the message is one line for the status bar."""


@dataclass(frozen=True)
class TraceRequest:
    """What the person asked to see: the model's shape, the task and the input."""

    cell: str = "lstm"
    activation: str = "tanh"  # rnn only
    hidden: int = 32  # units per layer and direction
    layers: int = 1
    bidirectional: bool = False
    task: str = FREE_TEXT  # FREE_TEXT, or a task name from the engine's catalog
    text: str = DEFAULT_TEXT  # the input; "" asks the task for its own example
    tokenize: str = "char"  # "char" | "word"
    seed: int = 0  # weights and examples are repeatable

    def __post_init__(self) -> None:
        if self.tokenize not in TOKENIZE:
            raise SourceError(f"unknown tokenization {self.tokenize!r}: choose char or word")

    @classmethod
    def from_config(cls, config: ModelConfig, **changes) -> "TraceRequest":
        return cls(
            cell=config.cell,
            activation=config.activation,
            hidden=config.hidden_size,
            layers=config.num_layers,
            bidirectional=config.bidirectional,
            **changes,
        )

    def replace(self, **changes) -> "TraceRequest":
        return replace(self, **changes)

    def check(self) -> None:
        """Raise ConfigError now for a shape no model can have (before any worker starts)."""
        ModelConfig(
            cell=self.cell,
            activation=self.activation,
            hidden_size=self.hidden,
            num_layers=self.layers,
            bidirectional=self.bidirectional,
        )


class TraceSource(Protocol):
    """What the explorer needs from the engine. `build` runs in a thread worker."""

    def tasks(self) -> list[tuple[str, str]]:
        """(name, one-line description) of every task the Model pane offers; cheap, no torch."""
        ...

    def build(self, request: TraceRequest) -> Trace:
        """Build the model the request describes and trace its input; may take seconds.

        Raises an exception whose message is one line for the person (SourceError, ConfigError,
        the engine's EngineError) when the request cannot be built.
        """
        ...


# ---- tokens ----------------------------------------------------------------------------------
def _wide(ch: str) -> bool:
    """CJK and other East Asian wide or full-width characters (two terminal cells)."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def tokenize(text: str, mode: str) -> list[str]:
    """Characters, or words: runs of letters and digits (an apostrophe inside a word stays in it),
    with every CJK character and every punctuation mark, full-width included, a token of its own;
    whitespace separates words and is dropped."""
    if mode == "char":
        return list(text)
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch.isalnum() and not _wide(ch) or (word and ch in "'’"):
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        if not ch.isspace():
            tokens.append(ch)
    if word:
        tokens.append(word)
    return tokens


def label(token: str) -> str:
    """A token as drawn: whitespace and control characters made visible, one label per step."""
    visible = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
    out = []
    for ch in token:
        if ch in visible:
            out.append(visible[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) or "∅"


# ---- the real source --------------------------------------------------------------------------
@dataclass
class EngineSource:
    """Builds models with the engine and traces them. torch is imported on the first `build`.

    tensors: weights to load (torch names -> arrays), e.g. from a checkpoint or a user's own
    torch.nn.LSTM; used when they fit the requested model, which is then "trained"; otherwise the
    model is freshly initialised from the request's seed.
    """

    dtype: str = "float32"
    tensors: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tasks(self) -> list[tuple[str, str]]:
        from rnn_tui.engine.tasks import TASKS  # torch-free catalog

        names = [(FREE_TEXT, "next-token model over the input text's own tokens (untrained)")]
        names += [(info.name, info.description) for info in TASKS.values() if info.mode != "encdec"]
        return names

    def build(self, request: TraceRequest) -> Trace:
        with self._lock:  # one build at a time: torch's threads are shared
            return self._build(request)

    def _build(self, request: TraceRequest) -> Trace:
        import torch  # noqa: F401  (lazily: the UI draws before this)

        from rnn_tui.engine.model import build_model
        from rnn_tui.engine.trace import run_trace

        shape = dict(
            cell=request.cell,
            hidden=request.hidden,
            layers=request.layers,
            bidirectional=request.bidirectional,
            activation=request.activation,
        )
        if request.task == FREE_TEXT:
            tokens = tokenize(request.text, request.tokenize)
            if not tokens:
                raise SourceError("the input is empty: type at least one token")
            vocab = sorted(set(tokens))
            index = {tok: k for k, tok in enumerate(vocab)}
            V = len(vocab)
            config = ModelConfig(
                cell=request.cell,
                activation=request.activation,
                input_size=V,
                hidden_size=request.hidden,
                num_layers=request.layers,
                bidirectional=request.bidirectional,
                output_size=V,
                vocab_size=V,
            )
            x = torch.tensor([index[t] for t in tokens])
            targets = [index[t] for t in tokens[1:]] + [None]
            model = self._model(config, request.seed, build_model)
            return run_trace(model, x, targets, tokens=[label(t) for t in tokens], vocab=[label(v) for v in vocab], dtype=self.dtype)

        from rnn_tui.engine.tasks import get_task

        task = get_task(request.task)
        config = task.model_config(**shape)
        model = self._model(config, request.seed, task.build_model)
        labels = task.output_labels
        if not request.text:
            ex = task.example(seed=request.seed)
            return run_trace(model, ex.x, ex.targets, tokens=[label(t) for t in ex.tokens], vocab=labels, dtype=self.dtype)
        if task.vocab is None:
            raise SourceError(f"the {task.name} task reads numbers, not text: clear the input to see its example")
        tokens = tokenize(request.text, request.tokenize)
        index = {tok: k for k, tok in enumerate(task.vocab)}
        missing = [t for t in tokens if t not in index]
        if missing:
            shown = " ".join(task.vocab[:24]) + (" …" if len(task.vocab) > 24 else "")
            raise SourceError(f"{missing[0]!r} is not in the {task.name} task's vocabulary: {shown}")
        if not tokens:
            raise SourceError("the input is empty: type at least one token")
        x = torch.tensor([index[t] for t in tokens])
        rows = len(tokens) if config.head == "step" else 1
        if task.mode == "lm":
            targets = [index[t] for t in tokens[1:]] + [None]
        else:
            targets = [None] * rows  # a person's own input has no known answer
        return run_trace(model, x, targets, tokens=[label(t) for t in tokens], vocab=labels, dtype=self.dtype)

    def _model(self, config: ModelConfig, seed: int, factory):
        model = factory(config, seed=seed)
        if self.tensors:
            try:
                model.load_tensors(self.tensors)
            except ConfigError:
                pass  # the weights are for another shape: this model stays freshly initialised
        return model
