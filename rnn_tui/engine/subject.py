"""What to look at: a model and one sequence, from the same flags the CLI and the explorer take.

`Spec` is the plain description (cell, sizes, input text, a scenario, a run directory, a
person's own weights, a task); `open_subject` turns it into a `Subject` (a live model plus the
sequence to trace) and `trace_subject` runs it. The CLI's `trace` and the explorer both go
through here, so they accept and refuse the same input with the same one-line messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.errors import EngineError

if TYPE_CHECKING:  # numpy loads when a subject is opened: the explorer's first frame goes without it
    import numpy as np

DEFAULT_TEXT = "hello world, hello recurrent networks"
MAX_TEXT = 100_000
# a trace keeps up to (8G + 16) numbers per step and unit (states, gates, pre-activations, deltas
# and their working copies; measured: 386 B per step and unit for a float64 LSTM, 126 B for an
# Elman RNN); past this the trace would swap, so it is refused with the sizes before it starts
MAX_TRACE_BYTES = 2 << 30


class SubjectError(EngineError):
    pass


@dataclass(frozen=True)
class Spec:
    cell: str | None = None  # None: lstm for a new model, read from the file for imported weights
    activation: str | None = None  # rnn only; None: tanh
    hidden: int = 16
    layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    seed: int = 0
    dtype: str = "float32"
    input: str | None = None  # text to read; None: the task's example, or a default text
    scenario: str | None = None  # TOML scenario file
    checkpoint: str | None = None  # run directory written by `rnn-tui train`
    weights: str | None = None  # a torch.nn.RNN/LSTM/GRU state_dict file
    task: str | None = None  # a task name: model shape and sequence come from it
    task_options: dict = field(default_factory=dict)
    tokenize: str = "char"  # how --input text becomes tokens: "char" | "word" | "space"
    random_steps: int = 24  # imported weights with no task and no text read this many N(0, 1) vectors
    # with --weights: the model's own vocabulary and the person's own sequence
    vocab: str | None = None  # the vocabulary file the model was trained with (engine.vocab)
    input_ids: tuple[int, ...] | None = None  # token ids fed as they are
    vectors: str | None = None  # a .npy or CSV file of input vectors, T x I (engine.inputs)
    targets: str | None = None  # a file of targets, one per step (engine.inputs)
    prefix: str | None = None  # the module prefix of the recurrent weights to read ("encoder.rnn.")
    mapping: tuple[tuple[str, str], ...] = ()  # --map: (the file's tensor name, its role)
    scan: str | None = None  # minGRU, minLSTM: "sequential" | "parallel" (None: the model's own, sequential)
    attention: str | None = None  # an encoder-decoder task: "none" | "dot" | "additive" (None: the task's, none)
    device: str = "cpu"  # where torch computes: cpu, cuda, or auto (engine.device)

    def replace(self, **changes) -> "Spec":
        return replace(self, **changes)


@dataclass
class Subject:
    """A live model and the sequence to trace through it."""

    model: object  # RNNModel
    x: np.ndarray  # (T,) ids or (T, I) vectors
    targets: list  # per output row, None where unscored
    tokens: list[str]  # display labels, one per step
    vocab: list[str] | None  # input vocabulary, when the input is tokens
    output_labels: list[str] | None  # class labels of the output
    dtype: str
    title: str
    encdec_task: object = None  # an encoder-decoder task traces both halves of its own example
    notes: tuple[str, ...] = ()  # what was read and what assumed (an import's report), one line each
    device: object = None  # the engine.device.Device the model is on (None: the CPU)
    # the input vocabulary's tokens as they are (not labels: " " rather than "␣"), id order; None
    # where the input is not tokens or their text is unknown (ids fed without --vocab)
    token_vocab: tuple[str, ...] | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config


# ---- the sources of a subject ------------------------------------------------------------------
def _shape(spec: Spec) -> dict:
    return dict(cell=spec.cell or "lstm", activation=spec.activation or "tanh")


def _tokens(spec: Spec, text: str) -> list[str]:
    from rnn_tui.engine.tokens import tokenize

    if not text:
        raise SubjectError("the input text is empty: give at least one character with --input")
    if len(text) > MAX_TEXT:
        raise SubjectError(f"the input text has {len(text)} characters; at most {MAX_TEXT} can be traced")
    tokens = tokenize(text, spec.tokenize)
    if not tokens:
        raise SubjectError(f"the input has no tokens ({spec.tokenize} tokens skip whitespace): give some text")
    return tokens


def _text_config(spec: Spec, V: int, cell: str | None = None, activation: str | None = None) -> ModelConfig:
    sh = _shape(spec)
    return ModelConfig(
        cell=cell or sh["cell"], activation=activation or sh["activation"], input_size=V, vocab_size=V,
        hidden_size=spec.hidden, num_layers=spec.layers, bidirectional=spec.bidirectional, bias=spec.bias,
        output_size=V,
    )  # fmt: skip


def _next_token(tokens: list[str]):
    """(ids, next-token targets, labels of the vocabulary, labels of the tokens)."""
    import numpy as np

    from rnn_tui.engine.tokens import label

    vocab = sorted(set(tokens))
    index = {tok: i for i, tok in enumerate(vocab)}
    x = np.array([index[t] for t in tokens], dtype=np.int64)
    targets = [int(v) for v in x[1:]] + [None]  # the last step has no next token
    return x, targets, [label(v) for v in vocab], [label(t) for t in tokens]


def text_subject(spec: Spec, text: str) -> Subject:
    """A next-token model over `text`'s own tokens (characters or words), freshly initialised."""
    from rnn_tui.engine.model import build_model

    tokens = _tokens(spec, text)
    x, targets, vocab, labels = _next_token(tokens)
    model = build_model(_text_config(spec, len(vocab)), seed=spec.seed)
    return Subject(model, x, targets, labels, vocab, vocab, spec.dtype, "next-token model (untrained)",
                   token_vocab=tuple(sorted(set(tokens))))  # fmt: skip


def scenario_subject(spec: Spec) -> Subject:
    """A model whose every weight a scenario file sets by hand."""
    import torch

    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.scenario import apply_weights, load_scenario

    sc = load_scenario(spec.scenario)
    model = build_model(sc.config, seed=sc.seed)
    values = apply_weights(sc, model.tensors())
    model.load_tensors({k: torch.from_numpy(v) for k, v in values.items()}, strict=False)
    vocab = sc.vocab if sc.config.input_mode == "onehot" else None
    return Subject(model, sc.x, sc.targets, sc.tokens, vocab, sc.vocab, sc.dtype, sc.title,
                   token_vocab=None if vocab is None else tuple(vocab))  # fmt: skip


def _task(name: str, options: dict):
    from rnn_tui.engine.tasks import get_task

    return get_task(name, **options)


def _encdec(spec: Spec, task, model, title: str) -> Subject:
    """An encoder-decoder model on its task's example: both halves are traced together."""
    if spec.input is not None:
        raise SubjectError(f"the {task.name} task traces its own example: leave out --input")
    ex = task.example(seed=spec.seed)
    return Subject(model, ex.x.numpy(), list(ex.targets), list(ex.tokens), task.vocab, task.output_labels,
                   spec.dtype, title, encdec_task=task)  # fmt: skip


def _sequence_from(spec: Spec, task, model, vocab: list[str] | None, title: str) -> Subject:
    """The task's own example, or the person's text read with the model's vocabulary."""
    import numpy as np

    from rnn_tui.engine.tokens import label

    if spec.input is None:
        ex = task.example(seed=spec.seed)
        x = ex.x.numpy() if hasattr(ex.x, "numpy") else np.asarray(ex.x)
        return Subject(model, x, list(ex.targets), [label(t) for t in ex.tokens], vocab, task.output_labels,
                       spec.dtype, title, token_vocab=None if vocab is None else tuple(vocab))  # fmt: skip
    if vocab is None:
        raise SubjectError(f"the {task.name} task reads numbers, not text: leave out --input to see its example")
    if getattr(task, "user_vocab", None) is not None:  # a model's own vocabulary: read as the run read its text
        from rnn_tui.engine.tasks.base import TaskError

        try:
            ex = task.encode(spec.input)
        except TaskError as e:
            raise SubjectError(str(e)) from None
        return Subject(model, ex.x.numpy(), list(ex.targets), list(ex.tokens), vocab, task.output_labels,
                       spec.dtype, title, token_vocab=tuple(vocab))  # fmt: skip
    tokens = _tokens(spec, spec.input)
    index = {tok: k for k, tok in enumerate(vocab)}
    missing = [t for t in tokens if t not in index]
    if missing:
        shown = " ".join(label(v) for v in vocab[:24]) + (" ..." if len(vocab) > 24 else "")
        raise SubjectError(f"{missing[0]!r} is not in the model's vocabulary: {shown}")
    x = np.array([index[t] for t in tokens], dtype=np.int64)
    rows = len(tokens) if model.config.head == "step" else 1
    if task.mode == "lm":
        targets = [int(v) for v in x[1:]] + [None]
    else:
        targets = [None] * rows  # a person's own input has no known answer
    return Subject(model, x, targets, [label(t) for t in tokens], vocab, task.output_labels, spec.dtype, title,
                   token_vocab=tuple(vocab))


def _task_options(spec: Spec) -> dict:
    """The task's options, with --attention among them (an encoder-decoder task's option)."""
    from rnn_tui.engine.tasks import TASKS

    options = dict(spec.task_options)
    if spec.attention is not None:
        info = TASKS.get(spec.task)
        if info is not None and "attention" not in info.options:
            names = [n for n, i in TASKS.items() if "attention" in i.options]
            raise SubjectError(f"--attention applies to the encoder-decoder task ({', '.join(names)}), not {spec.task}")
        options["attention"] = spec.attention
    return options


def task_subject(spec: Spec) -> Subject:
    """A freshly initialised model shaped for a task, on the task's example (or --input)."""
    task = _task(spec.task, _task_options(spec))
    sh = _shape(spec)
    config = task.model_config(cell=sh["cell"], hidden=spec.hidden, layers=spec.layers,
                               bidirectional=spec.bidirectional, activation=sh["activation"], bias=spec.bias)  # fmt: skip
    model = task.build_model(config, seed=spec.seed)
    if task.mode == "encdec":
        return _encdec(spec, task, model, f"{task.name} (untrained)")
    return _sequence_from(spec, task, model, task.vocab, f"{task.name} (untrained)")


def _run_task(run_dir: str, info):
    """The task a run was trained on; a config.json naming a task or option that does not exist
    gets a message that names the file."""
    from pathlib import Path

    from rnn_tui.engine.checkpoint import CONFIG_FILE, CheckpointError, run_task_options
    from rnn_tui.engine.tasks.base import TaskError

    try:
        return _task(info.task, run_task_options(run_dir, info))
    except TaskError as e:
        raise CheckpointError(f"{Path(run_dir) / CONFIG_FILE}: {e}") from None


def checkpoint_subject(spec: Spec) -> Subject:
    """A trained model from a run directory, on its task's example (or --input)."""
    from rnn_tui.engine.checkpoint import load_model

    model, ckpt = load_model(spec.checkpoint, metrics=False)  # a damaged metrics.jsonl does not stop a trace
    info = ckpt.info
    task = _run_task(spec.checkpoint, info)
    title = f"{info.task}, trained {info.step} steps"
    if task.mode == "encdec":
        return _encdec(spec, task, model, title)
    return _sequence_from(spec, task, model, info.vocab, title)


def weights_subject(spec: Spec) -> Subject:
    """A person's own model from a weights file (`engine.weights`: embedding, recurrent layers and
    head), on a task's input, on their own sequence (text read with their --vocab, --input-ids, or
    --vectors), or with none of these, on raw N(0, 1) vectors as wide as the weights read."""
    from rnn_tui.engine.weights import fit_config, fresh_parts, load_user_weights

    shape, tensors = load_user_weights(spec.weights, cell=spec.cell, activation=spec.activation,
                                       prefix=spec.prefix, mapping=spec.mapping)  # fmt: skip
    notes = [shape.report()]
    if spec.task:
        task = _task(spec.task, spec.task_options)
        if task.mode == "encdec":
            raise SubjectError(f"imported weights are one recurrent stack; the {task.name} task needs an encoder and a decoder")
        base = task.model_config(cell=shape.cell, hidden=shape.hidden_size, layers=shape.num_layers,
                                 bidirectional=shape.bidirectional, activation=shape.activation, bias=shape.bias)  # fmt: skip
        notes += fresh_parts(shape, fit_config(shape, base))
        model = _imported_model(shape, tensors, base, spec)
        subject = _sequence_from(spec, task, model, task.vocab, f"{shape.describe()} on {task.name}")
        return replace(subject, notes=tuple(notes))
    return _own_sequence(spec, shape, tensors, notes)


def _imported_model(shape, tensors, config: ModelConfig, spec: Spec):
    """The model holding the imported tensors in the trace's precision: float64 keeps a float64
    file's numbers exact, float32 holds what a float32 trace reads (half the memory of a big model)."""
    from rnn_tui.engine.weights import build_with_weights

    return build_with_weights(shape, tensors, config, seed=spec.seed, dtype=spec.dtype)


def _own_sequence(spec: Spec, shape, tensors, notes: list[str]) -> Subject:
    """An imported model on the person's own sequence. Token ids are never made up: text is read
    with the model's own vocabulary (--vocab) or refused; ids and vectors are read as given."""
    import numpy as np

    from rnn_tui.engine.inputs import read_targets, read_vectors
    from rnn_tui.engine.tokens import label
    from rnn_tui.engine.vocab import encode_text, load_vocab
    from rnn_tui.engine.weights import fresh_parts

    width = shape.vocab_size or shape.input_size  # tokens the model reads: embedding rows, or one-hot width
    reads = (f"its embedding {shape.embedding} has {shape.vocab_size} rows" if shape.vocab_size
             else f"weight_ih_l0 reads {shape.input_size} inputs")  # fmt: skip
    vocab = load_vocab(spec.vocab) if spec.vocab else None
    if vocab is not None and len(vocab) != width:
        raise SubjectError(f"--vocab: {vocab.describe()} do not fit the model: {reads}")
    T_note = ""
    if spec.vectors is not None:
        if shape.vocab_size:
            raise SubjectError(f"--vectors: this model reads token ids through {shape.embedding}: give --input-ids, "
                               "or --input/--text with its --vocab")  # fmt: skip
        x = read_vectors(spec.vectors, shape.input_size)
        config = shape.model_config()
        labels, vocab_labels = [f"x{t + 1}" for t in range(len(x))], None
        T_note = f"vectors from {spec.vectors}"
    elif spec.input is not None or spec.input_ids is not None:
        if spec.input_ids is None:
            if vocab is None:
                what = (f"{shape.embedding} reads token ids of a {shape.vocab_size}-token vocabulary" if shape.vocab_size
                        else f"weight_ih_l0 reads {shape.input_size} numbers per step, not text")  # fmt: skip
                raise SubjectError(
                    f"{what}: give the vocabulary the model was trained with as --vocab FILE to read text "
                    "(or feed ids with --input-ids)"
                )
            enc = encode_text(spec.input, vocab, spec.tokenize)
            ids, labels = enc.ids, [label(t) for t in enc.tokens]
            if enc.unknown:
                notes.append(f"{enc.unknown} of {len(ids)} tokens are not in {vocab.source} and read as <unk> "
                             f"(the first: {label(enc.first_unknown)!r})")  # fmt: skip
            T_note = f"your text, {spec.tokenize} tokens"
        else:
            ids = list(spec.input_ids)
            for i in ids:
                if i >= width:
                    raise SubjectError(f"--input-ids: id {i} is out of range: the model reads ids 0..{width - 1} ({reads})")
            labels = [label(vocab.tokens[i]) if vocab is not None else str(i) for i in ids]
            T_note = "token ids"
        x = np.array(ids, dtype=np.int64)
        config = shape.model_config(input_mode="onehot")  # the file's embedding, or one-hot over the input width
        vocab_labels = [label(t) for t in vocab.tokens] if vocab is not None else None
    else:
        if shape.vocab_size or vocab is not None:
            raise SubjectError("give the sequence to read: --input TEXT or --text FILE (read with --vocab), or --input-ids")
        model_config = shape.model_config()
        notes += fresh_parts(shape, model_config)
        model = _imported_model(shape, tensors, model_config, spec)
        x = np.random.default_rng(spec.seed).normal(size=(spec.random_steps, shape.input_size))
        tokens = [f"x{t + 1}" for t in range(spec.random_steps)]
        hint = "give --vocab with --input or --text to read text, --input-ids, or --vectors FILE" if shape.output_size \
            else "give --task to score it"  # fmt: skip
        title = f"{shape.describe()}, random N(0, 1) inputs, unscored ({hint})"
        return Subject(model, x, [None] * spec.random_steps, tokens, None, None, spec.dtype, title, notes=tuple(notes))

    T = len(x)
    O = config.output_size
    if spec.targets is not None:
        targets, loss = read_targets(spec.targets, T, O)
        config = config.replace(loss=loss)
    elif config.input_mode != "vectors" and O == width:
        targets = [int(v) for v in x[1:]] + [None]  # a language model: each step's target is the next token
    else:
        targets = [None] * T
        if shape.output_size:
            notes.append(f"the head has {O} outputs, not one per token: nothing is scored (give --targets FILE)")
    notes += fresh_parts(shape, config)
    model = _imported_model(shape, tensors, config, spec)
    output_labels = vocab_labels if vocab_labels is not None and O == len(vocab_labels) else None
    title = f"{shape.describe()}; {T_note}"
    return Subject(model, x, targets, labels, vocab_labels, output_labels, spec.dtype, title, notes=tuple(notes),
                   token_vocab=None if vocab is None or spec.vectors is not None else tuple(vocab.tokens))


FLAG_NAMES = {"bias": "no-bias"}  # Spec field -> the command-line flag that sets it
# what each source fixes by itself, so a flag for it would be silently ignored
FIXED_BY = {
    "scenario": ("cell", "activation", "hidden", "layers", "bidirectional", "bias", "seed", "input", "task", "tokenize",
                 "attention"),
    "checkpoint": ("cell", "activation", "hidden", "layers", "bidirectional", "bias", "task", "attention"),
    "weights": ("hidden", "layers", "bidirectional", "bias", "attention"),
}
WHY = {
    "scenario": "the scenario file sets the model, its weights and its input",
    "checkpoint": "the run directory brings its own model and task",
    "weights": "the model's shape is read from the weights file",
}


def check_spec(spec: Spec, given: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse, without torch, what cannot work: two model sources, a flag the source would ignore,
    an empty or oversized input text. `given`: the Spec fields the person set explicitly."""
    sources = [name for name in ("scenario", "checkpoint", "weights") if getattr(spec, name)]
    if len(sources) > 1:
        raise SubjectError(f"give only one of --{' / --'.join(sources)}")
    for name in ("scenario", "checkpoint", "weights", "task"):
        value = getattr(spec, name)
        if value is not None and not str(value).strip():
            raise SubjectError(f"--{name} is empty: give a {'name' if name == 'task' else 'path'}")
    if sources:
        ignored = [f"--{FLAG_NAMES.get(n, n)}" for n in FIXED_BY[sources[0]] if n in given]
        if ignored:
            raise SubjectError(f"{WHY[sources[0]]}: drop {', '.join(ignored)}")
    if spec.input is not None:
        if not spec.input:
            raise SubjectError("the input text is empty: give at least one character with --input")
        if len(spec.input) > MAX_TEXT:
            raise SubjectError(f"the input text has {len(spec.input)} characters; at most {MAX_TEXT} can be traced")
        if spec.tokenize in ("word", "space") and not spec.input.split():
            raise SubjectError(f"the input has no tokens ({spec.tokenize} tokens skip whitespace): give some text")
    own = [flag for flag, value in (("--vocab", spec.vocab), ("--input-ids", spec.input_ids), ("--vectors", spec.vectors),
                                    ("--targets", spec.targets), ("--prefix", spec.prefix), ("--map", spec.mapping))
           if value]  # fmt: skip
    if own and not spec.weights:
        raise SubjectError(f"{', '.join(own)} {'applies' if len(own) == 1 else 'apply'} to --weights FILE only")
    sequences = [flag for flag, value in (("--input/--text", spec.input), ("--input-ids", spec.input_ids),
                                          ("--vectors", spec.vectors)) if value is not None]  # fmt: skip
    if len(sequences) > 1:
        raise SubjectError(f"give one sequence: {' or '.join(sequences)}")
    if spec.task and (spec.vocab or spec.input_ids is not None or spec.vectors or spec.targets):
        raise SubjectError(f"the {spec.task} task brings its own vocabulary and inputs: drop "
                           + ", ".join(f for f in own if f not in ("--prefix", "--map")))  # fmt: skip
    if spec.targets and not sequences:
        raise SubjectError("--targets scores your own sequence: give --input/--text, --input-ids or --vectors with it")


def open_subject(spec: Spec) -> Subject:
    """Build the model and sequence a Spec describes, the model on its device; EngineError with
    one line if it cannot (CUDA asked for and absent among them, before anything is built)."""
    from rnn_tui.engine.device import resolve

    given = [name for name in ("scenario", "checkpoint", "weights") if getattr(spec, name)]
    if len(given) > 1:
        raise SubjectError(f"give only one of --{' / --'.join(given)}")
    if spec.dtype not in ("float32", "float64"):
        raise SubjectError(f"unknown dtype {spec.dtype!r}: choose float32 or float64")
    if spec.tokenize not in ("char", "word", "space"):
        raise SubjectError(f"unknown tokenization {spec.tokenize!r}: choose char, word or space")
    if spec.attention is not None and not spec.task:
        raise SubjectError("--attention applies to an encoder-decoder: give --task reverse")
    device = resolve(spec.device)
    subject = _open(spec)
    subject.device = device
    if device.accelerated:
        subject.model.to(device.torch)
    note = device.note()
    if note is not None:  # auto's choice, or the GPU: for trace's stderr and the Model tab
        subject.notes = (*subject.notes, note)
    return subject


def _open(spec: Spec) -> Subject:
    if spec.scenario:
        subject = scenario_subject(spec)
    elif spec.checkpoint:
        subject = checkpoint_subject(spec)
    elif spec.weights:
        subject = weights_subject(spec)
    elif spec.task:
        subject = task_subject(spec)
    else:
        subject = text_subject(spec, DEFAULT_TEXT if spec.input is None else spec.input)
    if spec.scan is not None:
        from rnn_tui.engine.model import use_scan

        use_scan(subject.model, spec.scan)  # ConfigError, one line, for a cell without a scan
    return subject


def check_trace_size(config: ModelConfig, T: int, dtype: str) -> None:
    """SubjectError when tracing T steps of this model would not fit in memory."""
    units = T * config.num_layers * config.num_directions * config.hidden_size
    need = units * (8 * len(config.gates) + 16) * (8 if dtype == "float64" else 4)
    if need > MAX_TRACE_BYTES:
        raise SubjectError(
            f"tracing {T} steps of {config.num_layers} layer(s) x {config.hidden_size} {config.cell} units would "
            f"take about {need / 1e9:.1f} GB; at most {MAX_TRACE_BYTES / 2**30:.0f} GB: "
            "trace a shorter input or a smaller model"
        )


def trace_subject(subject: Subject, dtype: str | None = None, **kwargs):
    """Trace the subject's sequence; kwargs go to `run_trace` (interventions, ...).

    An encoder-decoder subject gives an `EncDecTrace` (encoder and decoder traces, one backward
    pass through both).
    """
    from rnn_tui.engine.tokens import label
    from rnn_tui.engine.trace import run_trace

    if subject.encdec_task is not None:
        return subject.encdec_task.trace(subject.model, dtype=dtype or subject.dtype, device=subject.device)
    check_trace_size(subject.config, len(subject.x), dtype or subject.dtype)
    kwargs.setdefault("device", subject.device)
    return run_trace(
        subject.model,
        subject.x,
        subject.targets,
        # labels, never raw text: a scenario's or a run's characters may be ESC or bidi controls
        tokens=[label(t) for t in subject.tokens],
        vocab=None if subject.output_labels is None else [label(v) for v in subject.output_labels],
        dtype=dtype or subject.dtype,
        **kwargs,
    )
