"""Training: train the model on screen on its task, and watch it learn.

    r run (or resume)   p pause   x stop   u undo: back to the weights before training
    w save the trained model as a run directory (`rnn-tui --checkpoint DIR` opens it)

The trainer (`engine.train.Trainer`) runs in a thread worker that checks for cancellation after
every step (quitting the app cancels it too). It reports by messages that carry the whole state
(`TrainingState`, replaceable: a newer one supersedes any still queued), at most ~20 a second,
applied in one `batch_update`. About twice a second it also traces the explorer's sequence
through the weights as they are, so every other tab watches the model learn; the weights are
handed to the trace source, so a new input is traced with them too. Snapshots taken along the
way feed the Time-lapse tab. A run whose loss or gradient stops being a number ends "diverged",
with the step, and keeps the last good weights.

The free-text "task" is next-token prediction over the input's own tokens; any other task trains
on its own generated data with its own defaults.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, ProgressBar, Select, Static
from textual.worker import Worker, get_current_worker

from rnn_tui.ui.visible_input import OrderedInput, box_number
from rnn_tui.engine.records import Trace
from rnn_tui.safe_text import safe
from rnn_tui.ui.lab import (NO_OPTIMIZER, SnapshotRecord, hand_weights, model_for, numpy_tensors, retrace, run_archive,
                            save_trained, training_task)
from rnn_tui.ui.messages import TraceReady
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.loss_plot import LossPlot, downsample, log10_losses
from rnn_tui.ui.work import Job as WorkJob
from rnn_tui.ui.work import one_line

POST_EVERY = 0.05  # seconds between progress messages: at most ~20 a second
TRACE_EVERY = 0.5  # seconds between re-traces of the explorer's sequence while training
SNAPSHOTS = 20  # snapshots per run, for the time-lapse
RUN_LABEL = "training in the explorer"


@dataclass(frozen=True)
class TrainSettings:
    """What the form asks for; None: the task's default."""

    steps: int | None = None
    lr: float | None = None
    batch: int | None = None
    clip: float | None = None
    no_clip: bool = False
    optimizer: str | None = None


@dataclass(frozen=True)
class TrainingState:
    """Where training stands, whole (each message replaces the last)."""

    status: str = "idle"  # idle | starting | running | paused | stopped | finished | diverged | failed
    step: int = 0
    steps: int = 0
    loss: float = math.nan
    grad_norm: float = math.nan
    metric_name: str = ""
    metric: float | None = None
    tokens_per_s: float = 0.0
    elapsed: float = 0.0
    diverged_at: int | None = None
    message: str = ""
    curve: tuple[tuple, tuple] = ((), ())  # (steps, log10 loss), downsampled
    metric_curve: tuple[tuple, tuple] = ((), ())  # (steps, metric) at each logged step
    task: str = ""
    baseline: str = ""  # when the run has ended: the model against its task's baselines (engine.evaluate)

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running")


@dataclass
class TrainingProgress(Message):
    """The training worker's state; only the newest of those queued is handled."""

    state: TrainingState
    worker_id: int = 0

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.worker_id == self.worker_id


@dataclass
class TrainedTrace(Message):
    """The explorer's sequence traced through the weights being trained."""

    request: TraceRequest
    trace: Trace
    tensors: dict
    step: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainedTrace)


@dataclass
class Job:
    """One training session of the model on screen (resumed by running it again)."""

    request: TraceRequest
    base: Trace  # the explorer's trace when training began: its sequence is re-traced
    settings: TrainSettings
    trainer: object = None  # engine.train.Trainer, made by the first worker
    losses: list = field(default_factory=list)  # per optimizer step
    metrics: list = field(default_factory=list)  # (step, value) per logged step
    task_name: str = ""
    lab: object = None  # the app's Lab, where snapshots go
    label: str = RUN_LABEL
    task: object = None  # the engine Task it trains on (made with the trainer)
    train: dict = field(default_factory=dict)  # its TrainConfig.to_dict(), for a saved run


def settings_config(task, settings: TrainSettings):
    """The TrainConfig of a run: the task's defaults with the form's settings on top."""
    from rnn_tui.engine.train import TrainConfig

    config = TrainConfig.from_defaults(
        task.defaults, steps=settings.steps, lr=settings.lr, batch=settings.batch, clip=settings.clip,
        optimizer=settings.optimizer,
    )
    if settings.no_clip:
        config = config.replace(clip=None)
    every = max(1, config.steps // SNAPSHOTS)
    return config.replace(snapshot_every=every, log_every=min(config.log_every, every))


class TrainingPane(AnalysisPane):
    TITLE = "Training"
    DESCRIPTION = "train the model on its task: live loss curve, metric, pause, stop; the trace follows"

    BINDINGS = [
        Binding("r", "run", "run/resume", tooltip="train the model on screen (again: resume after a pause)"),
        Binding("p", "pause", "pause", tooltip="pause training; r resumes"),
        Binding("x", "stop", "stop", tooltip="stop training and keep the weights"),
        Binding("u", "undo", "undo", tooltip="back to the weights from before training"),
        Binding("w", "save_run", "save run",
                tooltip="save the trained model as a run directory (rnn-tui --checkpoint DIR opens it)"),
    ]

    DEFAULT_CSS = """
    TrainingPane #train-form { height: 1; }
    TrainingPane #train-form Label { width: auto; padding: 0 1 0 1; }
    TrainingPane #train-form Input { width: 8; }
    TrainingPane #train-form Select { width: 14; }
    TrainingPane #train-status { height: auto; max-height: 4; padding: 0 1; }
    TrainingPane ProgressBar { height: 1; padding: 0 1; }
    TrainingPane #train-status.-diverged { color: $error; text-style: bold; }
    """

    state: reactive[TrainingState] = reactive(TrainingState)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._job: Job | None = None
        self._worker: Worker | None = None
        self._ending = ""  # why the worker is being cancelled: "pause" | "stop"
        self._untrained: tuple[TraceRequest, Trace] | None = None  # the trace before training
        self._drawn: TrainingState | None = None  # the state on screen
        self._trained: tuple[dict, int] | None = None  # (weights, step) last handed to the source: what is on screen
        self.saver = WorkJob(self, "save-run", lambda save: save(), keep=4)
        self._saves = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="train-form"):
            yield Label("steps")
            yield OrderedInput(id="train-steps", placeholder="task", type="integer", compact=True)
            yield Label("lr")
            yield OrderedInput(id="train-lr", placeholder="task", type="number", compact=True)
            yield Label("batch")
            yield OrderedInput(id="train-batch", placeholder="task", type="integer", compact=True)
            yield Label("clip")
            yield OrderedInput(id="train-clip", placeholder="task", compact=True)
            yield Label("opt")
            yield Select([("default", "default"), ("adam", "adam"), ("sgd", "sgd")], id="train-optimizer",
                         value="default", allow_blank=False, compact=True)
        yield Static(id="train-status")
        yield ProgressBar(id="train-progress", show_eta=True)
        yield LossPlot(id="train-plot")

    def on_mount(self) -> None:
        self._draw_state(self.state)  # (is_mounted turns true only after this handler)

    def refresh_analysis(self) -> None:
        if self._drawn is not self.state:  # what training did while the tab was hidden
            self._draw_state(self.state)

    # ---- the form --------------------------------------------------------------------------------
    def read_settings(self) -> TrainSettings:
        """The form's values; raises ValueError with a line for the person."""

        def number(box_id: str, kind, lo: float, hi: float, name: str):
            return box_number(self, box_id, kind, lo, hi, name)

        clip_text = self.query_one("#train-clip", Input).value.strip().lower()
        no_clip = clip_text in ("none", "off", "no", "0")
        optimizer = self.query_one("#train-optimizer", Select).value
        return TrainSettings(
            steps=number("train-steps", int, 1, 1_000_000, "steps"),
            lr=number("train-lr", float, 1e-9, 1e6, "lr"),
            batch=number("train-batch", int, 1, 4096, "batch"),
            clip=None if no_clip else number("train-clip", float, 1e-9, 1e9, "clip"),
            no_clip=no_clip,
            optimizer=None if optimizer in ("default", Select.NULL) else str(optimizer),
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus()

    # ---- actions -----------------------------------------------------------------------------------
    def action_run(self) -> None:
        if self.state.active:
            return
        view, request = self.view, self.request
        if view is None or request is None:
            self._set(status="failed", message="no model yet: wait for the trace")
            return
        try:
            settings = self.read_settings()
        except ValueError as error:
            self._set(status="failed", message=str(error))
            return
        job = self._job
        resumable = (
            job is not None and job.trainer is not None and job.request == request
            and self.state.status == "paused" and job.settings == settings
        )
        if not resumable:
            if self._untrained is None or self._untrained[0] != request:
                self._untrained = (request, view.trace)
            job = Job(request=request, base=view.trace, settings=settings, lab=self.lab,
                      label=f"{RUN_LABEL} at {time.strftime('%H:%M:%S')}")
            self._job = job
        self._ending = ""
        self._set(status="starting", message="starting…" if job.trainer is None else "resuming…")
        self._worker = self.train(job)

    def action_pause(self) -> None:
        if self.state.active and self._worker is not None:
            self._ending = "pause"
            self._worker.cancel()

    def action_stop(self) -> None:
        if self.state.active and self._worker is not None:
            self._ending = "stop"
            self._worker.cancel()
        elif self.state.status == "paused":
            self._set(status="stopped", message=f"stopped at step {self.state.step}")
        if self._job is not None:
            self._job.trainer = None  # a stopped run starts afresh (from the weights it left)

    def action_undo(self) -> None:
        if self.state.active:
            self.notify("pause or stop training first", timeout=3)
            return
        if self._untrained is None:
            self.notify("nothing to undo: the model has not been trained here", timeout=3)
            return
        request, trace = self._untrained
        hand_weights(self.source, None)
        self._job = None
        self._trained = None
        # a fresh state: no step count, so no "loss NaN" line for a run that is no more
        self.state = TrainingState(status="idle", message="back to the weights from before training")
        if request == self.request:
            self.post_message(TraceReady(request, trace))

    def watch_request(self, old: TraceRequest | None, new: TraceRequest | None) -> None:
        if self._job is not None and new != self._job.request:
            if self.state.active and self._worker is not None:
                self._ending = "stop"
                self._worker.cancel()
            self._job = None
            if not self.state.active:
                self._set(status="idle", message="the model changed: r trains the new one", curve=((), ()),
                          metric_curve=((), ()), step=0, diverged_at=None)

    def on_unmount(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    # ---- the worker ---------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def train(self, job: Job) -> None:
        worker = get_current_worker()
        wid = id(worker)
        post = lambda state: self.post_message(TrainingProgress(state, wid))  # noqa: E731
        try:
            if job.trainer is None:
                job.trainer = self._make_trainer(job)
        except Exception as error:  # a setting or task that cannot train: one line
            post(TrainingState(status="failed", message=one_line(error)))
            return
        trainer = job.trainer
        config = trainer.config
        lab = job.lab
        cfg = job.base.config
        if trainer.step == 0:
            lab.add_snapshot(cfg, SnapshotRecord(0, job.base.loss, None, numpy_tensors(trainer.model)), job.label)
        last_post = last_trace = 0.0
        ended = False

        def state(p, status: str) -> TrainingState:
            xs, ys = downsample(range(1, len(job.losses) + 1), log10_losses(job.losses))
            ms = tuple(s for s, _ in job.metrics), tuple(v for _, v in job.metrics)
            return TrainingState(
                status=status, step=p.step, steps=p.steps, loss=p.loss, grad_norm=p.grad_norm,
                metric_name=p.metric_name, metric=p.metric, tokens_per_s=p.tokens_per_s, elapsed=p.elapsed,
                diverged_at=p.diverged_at, message=p.message, curve=(xs, ys), metric_curve=downsample(*ms),
                task=job.task_name,
            )

        def send_trace(step: int) -> None:
            tensors = numpy_tensors(trainer.model)
            try:
                trace = retrace(job.base, tensors)
            except Exception:  # noqa: BLE001 - a trace that cannot be made is not worth stopping for
                return
            if not np.isfinite(trace.outputs).all():
                return  # weights on their way to divergence: the explorer keeps the last finite picture
            self.post_message(TrainedTrace(job.request, trace, tensors, step))

        def on_progress(p) -> bool:
            nonlocal last_post, last_trace, ended
            if p.done:
                ended = True
                status = {"finished": "finished", "diverged": "diverged"}.get(p.status, "cancelled")
                send_trace(p.step)
                post(replace(state(p, status), baseline=baseline_line(trainer) if p.step else ""))
                return True
            job.losses.append(p.loss)
            if p.metric is not None and (p.step % trainer.config.log_every == 0 or p.step == 1):
                job.metrics.append((p.step, p.metric))
            now = time.monotonic()
            if now - last_post >= POST_EVERY:
                last_post = now
                post(state(p, "running"))
            if now - last_trace >= TRACE_EVERY:
                last_trace = now
                send_trace(p.step)
            return not worker.is_cancelled

        def on_checkpoint(snap) -> None:
            lab.add_snapshot(cfg, SnapshotRecord(snap.step, float(snap.loss), snap.metric, snap.tensors), job.label)

        try:
            trainer.run(on_progress=on_progress, on_checkpoint=on_checkpoint, cancel=lambda: worker.is_cancelled)
        except Exception as error:  # noqa: BLE001 - shown in the pane, never raised
            post(TrainingState(status="failed", message=one_line(error), step=trainer.step))
            return
        if not ended:  # the trainer had nothing to do (already at its step count)
            post(TrainingState(status="finished", step=trainer.step, steps=config.steps,
                               message=f"finished {config.steps} steps"))

    def _make_trainer(self, job: Job):
        from rnn_tui.engine.train import Trainer

        task = training_task(job.request, job.base)
        job.task_name = getattr(task, "name", "")
        config = settings_config(task, job.settings)
        job.task, job.train = task, config.to_dict()
        model = model_for(job.base)
        return Trainer(task, config, model_config=job.base.config, model=model)

    # ---- saving ----------------------------------------------------------------------------------------
    def action_save_run(self) -> None:
        """The weights on screen, trained here, as a run directory under ./runs (never over a
        folder); in a browser (`rnn-tui serve`) a .tar.gz of it sent as a download, and nothing
        kept on the server."""
        import io
        import os
        from pathlib import Path

        from rnn_tui.served import served
        from rnn_tui.ui.session import unique_path

        if self.state.active:
            self.notify("pause or stop training first, then w saves the run", timeout=4, markup=False)
            return
        if self.saver.busy:
            self.notify("a save is under way", timeout=3, markup=False)
            return
        job, trained = self._job, self._trained
        if job is None or job.task is None or trained is None or job.request != self.request:
            self.notify("nothing trained here to save: r trains the model on screen", timeout=4, markup=False)
            return
        tensors, step = trained
        status = {"finished": "finished", "diverged": "diverged"}.get(self.state.status, "cancelled")
        name = f"{job.task.name if job.task.name != 'text' else 'chars'}-{job.base.config.cell}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = {} if self.state.metric is None else {"metric": self.state.metric_name, "value": self.state.metric}

        def save(folder):
            return save_trained(folder, job.base, job.request, job.task, job.train, tensors, step, status, result)

        web = served() or self.app.is_web
        if web and not self.app.is_web:
            self.notify("runs are sent to the browser, and this is not one", severity="error", markup=False)
            return
        if web:
            work = lambda: ("web", f"{name}.tar.gz", io.BytesIO(run_archive(save, name)))  # noqa: E731
        else:
            folder = unique_path(Path(os.getcwd()) / "runs", name)
            work = lambda: ("disk", str(save(folder)), tensors)  # noqa: E731
        self.notify("saving the run…", timeout=2, markup=False)
        self._saves += 1
        self.saver.get(self._saves, work)  # every press is a save of its own

    def computed(self, job, key) -> None:
        if job is not self.saver:
            super().computed(job, key)
            return
        outcome = job.result(key)
        if outcome is None or outcome.running:
            return
        if outcome.failed:
            self.notify(f"could not save the run: {outcome.error}", severity="error", timeout=6, markup=False)
            return
        where, name, payload = outcome.value
        if where == "web":
            self.app.deliver_binary(payload, save_filename=name, open_method="download", mime_type="application/gzip")
            self.notify(f"{name}: sent to your browser as a download; {NO_OPTIMIZER}", title="run saved", timeout=6,
                        markup=False)
            return
        self.lab.saved_runs[id(payload)] = (payload, name)  # a session of these weights names this run
        self.notify(safe(f"saved {name}: rnn-tui --checkpoint {name} opens it; {NO_OPTIMIZER}"), title="run saved",
                    timeout=8, markup=False)

    # ---- messages from the worker --------------------------------------------------------------------
    def on_training_progress(self, message: TrainingProgress) -> None:
        message.stop()
        if self._worker is None or message.worker_id != id(self._worker):
            return
        state = message.state
        if state.status == "cancelled":
            if self._ending == "pause":
                state = replace(state, status="paused", message=f"paused at step {state.step}: r resumes")
            else:
                state = replace(state, status="stopped", message=f"stopped at step {state.step}")
                if self._job is not None:
                    self._job.trainer = None
        self.state = state

    def on_trained_trace(self, message: TrainedTrace) -> None:
        message.stop()
        if message.request != self.request:
            return  # the explorer has moved on to another model
        hand_weights(self.source, message.tensors)
        self._trained = (message.tensors, message.step)
        self.post_message(TraceReady(message.request, message.trace))

    # ---- drawing ------------------------------------------------------------------------------------
    def _set(self, **changes) -> None:
        self.state = replace(self.state, **changes)

    def watch_state(self, state: TrainingState) -> None:
        if self.shown:  # hidden, it draws when opened next (refresh_analysis)
            self._draw_state(state)

    def _draw_state(self, state: TrainingState) -> None:
        self._drawn = state
        with self.app.batch_update():
            status = self.query_one("#train-status", Static)
            status.update(status_text(state))
            status.set_class(state.status == "diverged", "-diverged")
            bar = self.query_one(ProgressBar)
            bar.update(total=max(state.steps, 1), progress=state.step)  # never indeterminate: no idle animation
            self.query_one(LossPlot).show(state.curve, state.metric_curve, state.metric_name,
                                          state.diverged_at if state.status == "diverged" else None)


def baseline_line(trainer) -> str:
    """The trained model against its task's baselines on fresh examples, one line (or why not)."""
    from rnn_tui.engine.evaluate import evaluate_task

    try:
        return evaluate_task(trainer.model, trainer.task, batches=4).line()
    except Exception as error:  # noqa: BLE001 - the run's result stands without it
        return f"vs baselines: left out ({one_line(error)})"


def status_text(state: TrainingState) -> Text:
    """Two lines: what the run is doing and its numbers; then the run's own message; once it has
    ended, a third: the model against its task's baselines."""
    out = Text(no_wrap=True, overflow="ellipsis")
    words = {
        "idle": "not training",
        "starting": "starting",
        "running": "training",
        "paused": "paused",
        "stopped": "stopped",
        "finished": "finished",
        "diverged": "DIVERGED",
        "failed": "could not train",
    }
    out.append(words.get(state.status, state.status), style="bold")
    if state.status == "diverged" and state.diverged_at is not None:
        out.append(f" at step {state.diverged_at}", style="bold")
    if state.task:
        out.append(" ")
        out.append(f"on {state.task}", style="dim")
    if state.steps:
        out.append("   ")
        out.append(f"step {state.step}/{state.steps}   ")
        loss = "NaN" if math.isnan(state.loss) else f"{state.loss:.4g}"
        out.append(f"loss {loss}   ")
        if state.metric is not None:
            out.append(f"{state.metric_name} {state.metric:.4g}   ")
        if math.isfinite(state.grad_norm):
            out.append(f"‖g‖ {state.grad_norm:.3g}   ")
        out.append(f"{state.tokens_per_s:,.0f} tokens/s   {state.elapsed:.1f} s", style="dim")
    out.append("\n")
    if state.status == "idle" and not state.message:
        out.append("r trains the model on screen on its task; p pauses, x stops, u undoes", style="dim")
    elif state.status != "running":
        out.append(state.message)
    if state.baseline and not state.active:
        out.append("\n")
        out.append(state.baseline)
    return out

