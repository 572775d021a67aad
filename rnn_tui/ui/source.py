"""Where the explorer's traces come from.

The app is handed a *source* (as memray's `TUIApp(reader)` is handed a reader) and calls
`source.build(request)` in a thread worker; tests hand it a fake that returns precomputed traces.

`EngineSource` is the real one. It imports torch inside its methods only, so the app draws its
first frame before torch is loaded (importing this module stays cheap).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.subject import DEFAULT_TEXT  # the same default as `rnn-tui trace`

if TYPE_CHECKING:  # the records bring numpy: loaded with the first trace, after the first frame
    from rnn_tui.engine.records import Trace

FREE_TEXT = "text"  # the task that is no task: a next-token model over the input's own tokens
TOKENIZE = ("char", "word", "space")
NEW_VOCABULARY = "another vocabulary"  # how a trace's `assumed` line begins when only the text's tokens changed


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
    checkpoint: str | None = None  # a run directory whose trained model to open (None: the source's own)
    fresh: bool = False  # a new model of this shape and seed: never the source's file nor weights trained here

    def __post_init__(self) -> None:
        if self.tokenize not in TOKENIZE:
            raise SourceError(f"unknown tokenization {self.tokenize!r}: choose char, word or space")

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
    """What the explorer needs from the engine. `build` runs in a thread worker.

    A source may also take weights for later builds, `use_weights(tensors | None)` (see
    `EngineSource.use_weights`); the Training tab hands it the weights it trains. And it may name
    the training run it was opened on, `run_directory` (str | None): the Time-lapse tab opens
    that run's snapshots by itself. And it may hold a trace already, `ready(request)` (Trace |
    None; cheap, called on the UI thread): the explorer then opens on it in its first frame,
    with no worker (`rnn-tui serve` builds the first trace once, before any visitor comes).
    """

    def tasks(self) -> list[tuple[str, str]]:
        """(name, one-line description) of every task the Model pane offers; cheap, no torch."""
        ...

    def build(self, request: TraceRequest) -> Trace:
        """Build the model the request describes and trace its input; may take seconds.

        Raises an exception whose message is one line for the person (SourceError, ConfigError,
        the engine's EngineError) when the request cannot be built.
        """
        ...


# ---- tokens: the engine's, so the explorer reads text exactly as `rnn-tui trace` does -----------
from rnn_tui.engine.tokens import is_wide as _wide  # noqa: E402,F401
from rnn_tui.engine.tokens import label, tokenize  # noqa: E402,F401
from rnn_tui.safe_text import safe  # noqa: E402


def shape_fields(config: ModelConfig) -> dict:
    """The request fields a model's config fixes: cell, activation, hidden, layers, direction."""
    return dict(cell=config.cell, activation=config.activation, hidden=config.hidden_size,
                layers=config.num_layers, bidirectional=config.bidirectional)


def run_shape(run_dir: str) -> dict | None:
    """The request fields a run directory's model fixes (its config.json: JSON only, no torch);
    None when the folder is not a readable run (the build then says why)."""
    from rnn_tui.engine.checkpoint import read_config
    from rnn_tui.engine.errors import EngineError

    try:
        return shape_fields(read_config(run_dir).model)
    except (EngineError, OSError):
        return None


def run_task(run_dir: str) -> str | None:
    """The task a run directory's model was trained on (None: not a readable run)."""
    from rnn_tui.engine.checkpoint import read_config
    from rnn_tui.engine.errors import EngineError

    try:
        return read_config(run_dir).task
    except (EngineError, OSError):
        return None


def run_request(run_dir: str, **changes) -> TraceRequest:
    """A request for a run directory's trained model on its task's own example (or `changes`);
    ValueError (one line) when the folder is not a readable run."""
    from rnn_tui.engine.checkpoint import read_config

    info = read_config(run_dir)
    fields = dict(shape_fields(info.model), task=info.task, text="", checkpoint=str(run_dir))
    return TraceRequest(**{**fields, **changes})


# ---- the real source --------------------------------------------------------------------------
@dataclass
class EngineSource:
    """Builds models and traces them through the engine's `subject` module, the same path as
    `rnn-tui trace`: the same inputs accepted, the same one-line errors. torch is imported on the
    first `build`, inside the worker.

    spec: where the explorer was opened (`rnn_tui.engine.subject.Spec`): a scenario file, a run
    directory or a person's own weights is kept while the Model pane leaves the model's shape as
    that file has it; a new shape is a fresh model of that shape on the same input.
    tensors: weights to load when they fit the model, given when the source is made; the Training
    tab's trained weights go through `use_weights`.
    """

    dtype: str = "float32"
    tensors: dict | None = None
    spec: object | None = None  # rnn_tui.engine.subject.Spec; None: free text, fresh models
    _trained: dict | None = field(default=None, repr=False)  # see use_weights
    _origin_shape: dict | None = field(default=None, repr=False)
    _last_vocab: tuple | None = field(default=None, repr=False)  # the last build's input tokens
    _weights_vocab: tuple | None = field(default=None, repr=False)  # the tokens `_trained` was made for
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_spec(cls, spec) -> "EngineSource":
        return cls(dtype=spec.dtype, spec=spec)

    def _origin(self) -> str | None:
        spec = self.spec
        if spec is None:
            return None
        return spec.scenario or spec.checkpoint or spec.weights or None

    def initial_request(self) -> TraceRequest:
        """The request the explorer opens on. With a file of weights, the shape shown until the
        first trace arrives is the command line's; the screen then takes the model's own."""
        spec = self.spec
        if spec is None:
            return TraceRequest()
        own_sequence = bool(spec.task or self._origin())
        text = spec.input if spec.input is not None else ("" if own_sequence else DEFAULT_TEXT)
        return TraceRequest(
            cell=spec.cell or "lstm", activation=spec.activation or "tanh", hidden=spec.hidden,
            layers=spec.layers, bidirectional=spec.bidirectional, task=spec.task or FREE_TEXT,
            text=text, tokenize=spec.tokenize, seed=spec.seed,
        )  # fmt: skip

    @property
    def run_directory(self) -> str | None:
        """The training run the explorer was opened on (`--checkpoint DIR`), else None."""
        return getattr(self.spec, "checkpoint", None) or None

    def use_weights(self, tensors: dict | None) -> None:
        """Load these weights (numpy arrays by torch name) into every later build whose model they
        fit, so a new input is traced through the weights just trained; None: back to the
        weights the source was made with. Called from the UI thread: one assignment, which a
        build in progress reads once (`weights`)."""
        self._trained = tensors
        # trained on the model last built: its ids mean that build's tokens, and no others
        self._weights_vocab = self._last_vocab if tensors is not None else None

    @property
    def weights(self) -> dict | None:
        """The weights later builds load where they fit: the last handed to `use_weights`, else
        the source's own `tensors`."""
        return self._trained if self._trained is not None else self.tensors

    def tasks(self) -> list[tuple[str, str]]:
        from rnn_tui.engine.tasks import TASKS  # torch-free catalog

        names = [(FREE_TEXT, "next-token model over the input text's own tokens (untrained)")]
        names += [(info.name, info.description) for info in TASKS.values()]  # encdec too: `--task reverse` opens on it
        return names

    def build(self, request: TraceRequest) -> Trace:
        with self._lock:  # one build at a time: torch's threads are shared
            return self._build(request)

    def spec_for(self, request: TraceRequest):
        """The engine Spec that builds what the request asks for."""
        from rnn_tui.engine.subject import Spec

        from rnn_tui.engine.tasks import TASKS  # torch-free catalog

        base = self.spec if self.spec is not None else Spec(dtype=self.dtype)
        info = TASKS.get(request.task)
        own_example = info is not None and info.mode == "encdec"  # it traces its own example, not a text
        common = dict(
            seed=request.seed, input=None if own_example else (request.text or None), tokenize=request.tokenize,
            task=None if request.task == FREE_TEXT else request.task, dtype=self.dtype,
        )  # fmt: skip
        asked = dict(cell=request.cell, activation=request.activation, hidden=request.hidden,
                     layers=request.layers, bidirectional=request.bidirectional)
        if request.text:  # text typed in the explorer replaces ids or vectors given on the command line
            common.update(input_ids=None, vectors=None, targets=None)
        if request.checkpoint and asked == run_shape(request.checkpoint):
            # a run named by the request (the Compare tab's trained partner, a session's model):
            # the run sets the model; what the command line opened is not part of it
            run = dict(scenario=None, weights=None, vocab=None, input_ids=None, vectors=None, targets=None,
                       prefix=None, mapping=(), checkpoint=request.checkpoint)  # fmt: skip
            return base.replace(**{**run, **common})
        origin = self._origin()
        if request.checkpoint or request.fresh:  # another shape asked of a run, or a fresh model asked for
            origin = None
        if origin and (self._origin_shape is None or asked == self._origin_shape):
            if base.scenario and request.text:
                raise SourceError("a scenario sets its own input: change the model's shape to type text")
            return base.replace(**common)  # the file sets the shape
        # a new shape: a fresh model, so what belonged to the file (its vocabulary, its map) goes too
        fresh = dict(scenario=None, checkpoint=None, weights=None, vocab=None, input_ids=None, vectors=None,
                     targets=None, prefix=None, mapping=())  # fmt: skip
        from rnn_tui.engine.cells import get_cell

        if base.scan is not None and base.scan not in get_cell(request.cell).scans:
            fresh["scan"] = None  # --scan belongs to the cells with a linear recurrence; another cell has none
        if base.attention is not None and (info is None or info.mode != "encdec"):
            fresh["attention"] = None  # --attention belongs to the encoder-decoder task
        return base.replace(**{**fresh, **asked, **common})

    def _build(self, request: TraceRequest) -> Trace:
        from rnn_tui.engine.records import Trace
        from rnn_tui.engine.subject import open_subject, trace_subject

        spec = self.spec_for(request)
        subject = open_subject(spec)
        weights = None if request.fresh or (spec.checkpoint and spec.checkpoint == request.checkpoint) else self.weights
        vocab, before = subject.token_vocab, self._last_vocab
        assumed = None  # said, never silent: what the model shown is, where it is not what was asked
        if weights:  # (a run named by the request keeps its own weights)
            made_for = self._weights_vocab if weights is self._trained else None
            if made_for is not None and vocab is not None and vocab != made_for:
                assumed = (f"the trained weights are for another vocabulary ({len(made_for)} tokens; this text "
                           f"has {len(vocab)}): this model is untrained")
            else:
                try:
                    subject.model.load_tensors(weights)
                except (ConfigError, RuntimeError, TypeError):  # another shape or vocabulary size
                    assumed = "the trained weights do not fit this model: it is untrained"
        elif (not (spec.task or self._origin()) and before is not None and vocab is not None
              and vocab != before):
            assumed = f"{NEW_VOCABULARY} ({len(vocab)} tokens, this text's own): a new untrained model"
        self._last_vocab = vocab
        result = trace_subject(subject)  # the subject's own precision: a scenario keeps its float64
        title = subject.title
        if not isinstance(result, Trace):  # an encoder-decoder: show the decoder half
            attends = result.attention is not None
            result = result.decoder
            title += (f" (decoder half, {result.extras['attention'].kind} attention over the encoder's states: "
                      "the Attention tab)" if attends else " (decoder half; its h0 is the encoder's final state)")
        result.extras.setdefault("title", safe(title))  # a scenario's title is text from a file
        if subject.notes:  # what an import read and assumed, for the Model tab
            result.extras.setdefault("notes", list(subject.notes))
        if assumed:
            result.extras["assumed"] = assumed
            result.extras["notes"] = [*result.extras.get("notes", []), assumed]
        # the input's tokens as they are (the Generate tab writes text with them), and whether
        # they are the input's own (a fresh next-token model: another text is another model)
        result.extras.setdefault("token_vocab", subject.token_vocab)
        result.extras.setdefault("vocab_from_input", not (spec.task or spec.scenario or spec.checkpoint or spec.weights))
        if subject.vocab is not None:
            result.extras.setdefault("input_labels", [label(v) for v in subject.vocab])
        task = run_task(spec.checkpoint) if spec.checkpoint else spec.task
        if task:  # the task the model is on (a run's own, where the request says only "text")
            result.extras.setdefault("task", task)
        if (self._origin() and not request.checkpoint and (spec.scenario or spec.checkpoint or spec.weights)
                and self._origin_shape is None):
            self._origin_shape = shape_fields(result.config)
        return result
