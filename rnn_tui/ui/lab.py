"""Engine work behind the analysis panes (gradients, training, interventions, time-lapse),
run in their thread workers. Everything starts from a `Trace` the explorer already holds:

    model_for(trace, tensors)     the model that made it (its config and weights), or other weights
    model_input(trace)            the input it read: token ids recovered from one-hot or embedding
                                  rows, or the raw vectors
    retrace(trace, ...)           the same sequence through other weights, or with values held
    gradflow(trace)               every gradient-flow quantity (engine.gradflow)
    training_task(request, trace) the task to train the model on: the request's task, or, for free
                                  text, next-token prediction over the input's own tokens

torch is imported inside these functions only: this module is cheap to import.

`Lab` is the explorer's shared workbench (one per app): the snapshots the trainer took, which the
time-lapse pane scrubs through. Panes reach it with `lab_for(widget)`. The weights the trainer
produces go to the trace source (`hand_weights`), so a rebuild traces through them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rnn_tui.engine.records import Trace
from rnn_tui.engine.tasks.base import Task, TaskError, TrainDefaults
from rnn_tui.ui.source import FREE_TEXT, TraceRequest

MAX_SNAPSHOT_BYTES = 2 << 30  # the snapshots of one run held at once by the Time-lapse tab

if TYPE_CHECKING:  # pragma: no cover
    from rnn_tui.engine.gradflow import GradFlowReport


class LabError(ValueError):
    """Work the lab cannot do on this trace; the message is one line for the person."""


# ---- the model and input behind a trace ------------------------------------------------------
def token_ids(trace: Trace) -> np.ndarray | None:
    """(T,) the token ids a one-hot or embedding model read, recovered from its input vectors
    (each one-hot row, or the one embedding row equal to it); None for raw vectors, or when the
    ids cannot be recovered (two equal embedding rows)."""
    cfg = trace.config
    X = np.asarray(trace.inputs)
    if cfg.input_mode == "onehot":
        ids = X.argmax(axis=1)
        if not np.array_equal(X, np.eye(cfg.vocab_size, dtype=X.dtype)[ids]):
            return None
        return ids
    if cfg.input_mode == "embedding":
        E = np.asarray(trace.params["embedding.weight"]).astype(X.dtype)
        match = (X[:, None, :] == E[None, :, :]).all(-1)  # (T, vocab)
        if not np.all(match.sum(1) == 1):
            return None
        return match.argmax(1)
    return None


def model_input(trace: Trace):
    """What `run_trace` needs to read the trace's sequence again: ids (T,) or vectors (T, I)."""
    if trace.config.input_mode == "vectors":
        return np.asarray(trace.inputs)
    ids = token_ids(trace)
    if ids is None:
        raise LabError("the input tokens cannot be recovered from this trace's input vectors")
    return ids


def trace_device(trace: Trace):
    """The engine Device the trace was computed on (`--device`; the CPU for a trace that does not say)."""
    from rnn_tui.engine.device import as_device

    return as_device(trace.extras.get("device"))


def model_for(trace: Trace, tensors: dict | None = None):
    """The model of the trace's config holding `tensors` (default: the trace's own weights),
    in the trace's precision, on the trace's device (training it stays there)."""
    import torch  # noqa: F401

    from rnn_tui.engine.model import build_model

    if "attention" in trace.extras:  # its inputs [y_{t-1}; c_t] follow its own states: not a model on its own
        raise LabError("this decoder attends to its encoder, which the tab does not hold: hold its attention in "
                       "the Attention tab, or train it with rnn-tui train --task reverse --attention ...")
    model = build_model(trace.config, seed=0)
    if trace.dtype == "float64":
        model = model.double()
    model.load_tensors(trace.params if tensors is None else tensors)
    model.to(trace_device(trace).torch)
    model.eval()
    return model


def retrace(trace: Trace, tensors: dict | None = None, interventions: Sequence = ()) -> Trace:
    """The trace's sequence, targets and labels run again: through other weights (a snapshot,
    weights being trained), and/or with values held by hand (`engine.trace.Intervention`)."""
    import torch

    from rnn_tui.engine.trace import run_trace

    model = model_for(trace, tensors)
    x = torch.as_tensor(model_input(trace))
    again = run_trace(
        model, x, trace.targets, tokens=trace.tokens, vocab=trace.vocab, dtype=trace.dtype,
        interventions=list(interventions), device=trace_device(trace),
    )
    for key in KEPT_EXTRAS:  # what the trace says about its tokens holds for the same sequence
        if key in trace.extras:
            again.extras.setdefault(key, trace.extras[key])
    return again


KEPT_EXTRAS = ("token_vocab", "vocab_from_input", "input_labels", "task")


def gradflow(trace: Trace) -> "GradFlowReport":
    """Every gradient-flow quantity of the trace (see `rnn_tui.engine.gradflow`)."""
    from rnn_tui.engine.gradflow import analyze_gradflow

    return analyze_gradflow(trace, token_ids=token_ids(trace) if trace.config.input_mode == "embedding" else None)


def connectivity_rows(trace: Trace, rows: tuple[int, int]) -> np.ndarray:
    """(R, T) ||∂y_r/∂x_k|| for output rows [a, b) (nan elsewhere): `engine.gradflow.input_connectivity`."""
    from rnn_tui.engine.gradflow import input_connectivity

    return input_connectivity(trace, rows=range(*rows))


@dataclass(frozen=True)
class FlowWindow:
    """Part of the gradient flow of a long trace, per layers entry (as `trace.layers`): what the
    Gradients tab shows of the steps in view before the whole analysis arrives."""

    rows: np.ndarray  # output rows whose flow was computed (the scored ones asked for)
    steps: np.ndarray  # steps whose step Jacobian norm was computed
    flow: list[np.ndarray]  # (R, T) ||d l_r / d h_k||, nan outside `rows`
    flow_c: list[np.ndarray | None]  # (R, T) ||d l_r / d c_k||, LSTMs only
    jacobian_norm: list[np.ndarray]  # (T,) ||d s_t / d s_prev||_2, nan outside `steps`
    spectrum: list[dict]  # gate -> engine.gradflow.Spectrum of W_hh


def gradflow_window(trace: Trace, rows: tuple[int, int] | None, steps: tuple[int, int] | None) -> FlowWindow:
    """The flow-matrix rows of the scored outputs in rows [a, b), and the step Jacobian norms at
    steps [a, b) (either may be None: none), with each entry's W_hh spectrum (cheap). The engine's
    functions for each piece, so the numbers are those of the whole analysis."""
    from rnn_tui.engine.gradflow import default_sources, flow_matrix, jacobian_norms, recurrent_spectrum

    cfg = trace.config
    sources = default_sources(trace, window=rows) if rows is not None else np.zeros(0, dtype=np.int64)
    if sources.size:
        flows = flow_matrix(trace, sources=sources)
    else:  # nothing scored here: every row stays not computed
        R = len(trace.targets)
        flows = [(np.full((R, trace.T), np.nan), None if e.c is None else np.full((R, trace.T), np.nan))
                 for e in trace.layers]
    picked = np.arange(*steps) if steps is not None else np.zeros(0, dtype=np.int64)
    norms = (jacobian_norms(trace, steps=picked.tolist()) if picked.size
             else [np.full(trace.T, np.nan) for _ in trace.layers])
    spectra = [recurrent_spectrum(cfg, trace.params, f"_{e.name}") for e in trace.layers]
    return FlowWindow(rows=np.asarray(sources), steps=picked, flow=[f for f, _ in flows],
                      flow_c=[c for _, c in flows], jacobian_norm=list(norms), spectrum=spectra)


def numpy_tensors(model) -> dict[str, np.ndarray]:
    """A model's weights as numpy copies, safe to hand to another thread."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.tensors().items()}


# ---- training ----------------------------------------------------------------------------------
class TextTask(Task):
    """Next-token prediction over one sequence of token ids: the input text's own tokens.

    Each training sequence is a window of `seq_len` consecutive tokens at a random place;
    the target of step t is token t+1.
    """

    name = "text"
    head = "step"
    loss_name = "ce"
    metric_name = "accuracy"

    def __init__(self, ids: np.ndarray, vocab: list[str], seq_len: int = 64):
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size < 2:
            raise TaskError("the input needs at least two tokens to learn the next one")
        self.ids = ids
        self.vocab = list(vocab)
        self.output_labels = list(vocab)
        self.seq_len = int(min(seq_len, ids.size - 1))
        self.chance = 1.0 / max(len(vocab), 1)
        self.defaults = TrainDefaults(steps=300, batch=16, lr=1e-2, clip=1.0, seq_len=self.seq_len, log_every=10)

    @property
    def description(self) -> str:
        return "next-token prediction over the input's own tokens"

    @property
    def mode(self) -> str:
        return "lm"

    @property
    def options(self) -> dict[str, str]:
        return {}

    def sample(self, batch_size: int, generator):
        import torch

        from rnn_tui.engine.tasks.base import Batch

        ids = torch.as_tensor(self.ids)
        L = self.seq_len
        starts = torch.randint(0, ids.numel() - L, (batch_size,), generator=generator)  # (B,)
        offsets = starts[:, None] + torch.arange(L + 1)[None]  # (B, L + 1)
        window = ids[offsets]
        return Batch(x=window[:, :-1], y=window[:, 1:])

    def example(self, seed: int = 0):
        import torch

        from rnn_tui.engine.tasks.base import Example

        x = torch.as_tensor(self.ids)
        targets = [int(t) for t in self.ids[1:]] + [None]
        return Example(tokens=[self.vocab[i] for i in self.ids], x=x, targets=targets)


def training_task(request: TraceRequest, trace: Trace) -> Task:
    """The task the model on screen is trained on (same model config as the trace)."""
    if request.task == FREE_TEXT:
        if trace.config.input_mode == "vectors":
            raise LabError("this model reads vectors and has no task to learn: choose a task in the Model tab")
        ids = token_ids(trace)
        if ids is None or trace.vocab is None:
            raise LabError("this input cannot be trained on: its tokens are not recoverable")
        return TextTask(ids, trace.vocab)
    from rnn_tui.engine.tasks import get_task

    task = get_task(request.task)
    return task


@dataclass(frozen=True)
class SnapshotRecord:
    """The weights at one step of a run, for the time-lapse (numpy copies by torch name)."""

    step: int
    loss: float
    metric: float | None
    tensors: dict


# ---- the shared workbench ---------------------------------------------------------------------
@dataclass
class Lab:
    """What the analysis panes share: the trainer's snapshots."""

    snapshots: list[SnapshotRecord] = field(default_factory=list)
    snapshot_config: Any = None  # the ModelConfig the snapshots fit
    run_label: str = ""  # what produced the snapshots ("training in the explorer", a run directory)
    saved_runs: dict = field(default_factory=dict)  # id(weights) -> (weights, run directory) saved by the Training tab
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_snapshot(self, config, record: SnapshotRecord, label: str) -> None:
        with self._lock:
            if self.snapshot_config != config or self.run_label != label:
                self.snapshots = []
                self.snapshot_config = config
                self.run_label = label
            self.snapshots = [s for s in self.snapshots if s.step != record.step] + [record]
            self.snapshots.sort(key=lambda s: s.step)

    def replace_snapshots(self, config, records: list[SnapshotRecord], label: str) -> None:
        with self._lock:
            self.snapshots = sorted(records, key=lambda s: s.step)
            self.snapshot_config = config
            self.run_label = label

    def current_snapshots(self) -> tuple[Any, list[SnapshotRecord], str]:
        with self._lock:
            return self.snapshot_config, list(self.snapshots), self.run_label


def hand_weights(source, tensors: dict | None) -> bool:
    """Hand trained weights to the trace source, so rebuilds (a new input) keep them; None gives
    back the weights it had before. False when the source takes no weights (no `use_weights`)."""
    use = getattr(source, "use_weights", None)
    if use is None:
        return False
    use(tensors)
    return True


def lab_for(node) -> Lab:
    """The app's workbench, made on first use."""
    app = node.app
    lab = app.__dict__.get("_rnn_tui_lab")
    if lab is None:
        lab = Lab()
        app.__dict__["_rnn_tui_lab"] = lab
    return lab


def source_for(node):
    """The trace source the explorer was opened with."""
    source = getattr(node.screen, "source", None)
    return source if source is not None else getattr(node.app, "source", None)


def load_run_snapshots(run_dir: str) -> tuple[Any, list[SnapshotRecord]]:
    """The snapshots a training run saved on disk (`rnn-tui train ... --snapshot-every N`):
    (model config, records), with each snapshot's loss from metrics.jsonl where logged."""
    from rnn_tui.engine.checkpoint import list_snapshots, load_tensors, read_config, read_metrics

    from rnn_tui.engine.files import size_text
    from rnn_tui.safe_text import safe

    info = read_config(run_dir)
    found = list_snapshots(run_dir)
    if not found:
        raise LabError(f"{safe(run_dir)} holds no snapshots: train with snapshots to scrub through them")
    # every snapshot is held in memory at once: a folder of thousands of big ones is refused
    total = sum(os.stat(p).st_size for _, p in found if os.path.isfile(p))
    if total > MAX_SNAPSHOT_BYTES:
        raise LabError(f"{safe(run_dir)}: its {len(found)} snapshots take {size_text(total)}; "
                       f"at most {size_text(MAX_SNAPSHOT_BYTES)} of them are loaded at once")  # fmt: skip
    losses = {r["step"]: r for r in read_metrics(run_dir)}
    records = []
    for step, path in found:
        tensors, _ = load_tensors(path)
        record = losses.get(step, {})
        loss = record.get("loss")
        records.append(SnapshotRecord(
            step=step,
            loss=float("nan") if loss is None else float(loss),
            metric=record.get("metric"),
            tensors={k: v.detach().cpu().numpy() for k, v in tensors.items()},
        ))
    return info.model, records


# ---- saving what was trained here -------------------------------------------------------------
SAVED_BY = "explorer"  # config.json's result.saved_by for a run saved with w: it holds no optimizer state
NO_OPTIMIZER = "train --resume starts a fresh optimizer (the explorer keeps no optimizer state)"


def save_trained(run_dir, base: Trace, request: TraceRequest, task: Task, train: dict, tensors: dict, step: int,
                 status: str, result: dict | None = None):
    """Save weights trained in the explorer as a run directory (`engine.checkpoint.save_run`,
    one atomic commit) that `rnn-tui --checkpoint DIR` opens and `rnn-tui train --resume DIR`
    trains further. A model trained on its own input (the free-text "task") is saved as the
    chars task on that input, kept in the run as text.txt; the vocabulary the chars task reads
    from it must be the model's, or nothing is saved. The run holds no optimizer state (the
    explorer keeps none): config.json says so (result.saved_by), and a resume says it starts a
    fresh optimizer. Returns the run directory."""
    import shutil
    from pathlib import Path

    import torch

    from rnn_tui.engine.checkpoint import RUN_TEXT, RunInfo, atomic_write_text, save_run
    from rnn_tui.engine.tasks import get_task

    run_dir = Path(run_dir)
    if run_dir.exists():
        raise LabError(f"{run_dir} exists already: a save never writes over a folder")
    if isinstance(task, TextTask):
        vocab = list(base.extras.get("token_vocab") or ())
        if not vocab or not request.text:
            raise LabError("this model's tokens are not known as text: it cannot be saved as a language model")
        options = {"text": RUN_TEXT, "tokenize": request.tokenize, "seq_len": max(1, len(task.ids) - 1),
                   "max_vocab": max(5000, len(vocab) + 1)}  # fmt: skip
        run_dir.mkdir(parents=True)
        try:
            atomic_write_text(run_dir / RUN_TEXT, request.text)
            reread = get_task("chars", **{**options, "text": str(run_dir / RUN_TEXT)})
            if list(reread.vocab) != vocab:
                raise LabError("the chars task reads this input as another vocabulary than the model's: not saved")
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        name, output_labels = "chars", vocab
    else:
        name, options = task.name, {}
        vocab = list(task.vocab) if getattr(task, "vocab", None) is not None else None
        labels = getattr(task, "output_labels", None)
        output_labels = list(labels) if labels is not None else None
    info = RunInfo(model=base.config, task=name, task_options=options, train=dict(train), vocab=vocab,
                   output_labels=output_labels, step=int(step), status=status,
                   result={**(result or {}), "saved_by": SAVED_BY})  # fmt: skip
    weights = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in tensors.items()}
    save_run(run_dir, info, weights)
    return run_dir


def run_archive(save, name: str) -> bytes:
    """A run saved by `save(folder)` into a temporary folder, as the bytes of a .tar.gz holding
    `name/` (for a browser: nothing stays on the server)."""
    import io
    import tarfile
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="rnn-tui-run-") as tmp:
        folder = save(Path(tmp) / name)
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            tar.add(folder, arcname=name)
        return out.getvalue()


def train_copy(trace: Trace, request: TraceRequest, cancel=None) -> Trace:
    """The trace's model trained here on its task with the task's own defaults (a new model of
    the trace's config and weights: nothing else is touched), and the trace's sequence traced
    through the trained weights. LabError (one line) when the run diverges or is stopped."""
    from rnn_tui.engine.train import TrainConfig, Trainer

    task = training_task(request, trace)
    config = TrainConfig.from_defaults(task.defaults)
    trainer = Trainer(task, config, model_config=trace.config, model=model_for(trace))
    result = trainer.run(cancel=cancel)
    if result.status != "finished":
        raise LabError(result.message or f"training {result.status} at step {result.step}")
    trained = retrace(trace, numpy_tensors(trainer.model))
    metric = "" if result.metric is None else f", {result.metric_name} {result.metric:.3g}"
    trained.extras["title"] = f"trained here: {result.step} steps on {getattr(task, 'name', 'its task')}{metric}"
    return trained
