"""The trainer: one optimizer step after another, reported as records, never printed.

    task = get_task("recall", distance=30)
    trainer = Trainer(task, TrainConfig.from_defaults(task.defaults, steps=300), cell="lstm")
    result = trainer.run(on_progress=print)

One step, as the lecture notes write it:

    L      = task loss on a fresh batch (+ l1 * sum |W|)          the forward pass
    g      = dL/dθ by backpropagation through time               the backward pass
    g      = g * min(1, clip / ||g||)   (and g = clamp(g, ±clip_value))
    θ      = θ - lr * step(g)           SGD with momentum, or Adam (+ weight decay)

Truncated BPTT with window K (`tbptt`) cuts each sequence into windows of K steps: the state flows
from one window to the next but is detached, so the gradient reaches at most K steps back. With a
per-step head every window is one optimizer step; with a pooled "last" head the earlier windows
only carry the state and the last window takes the step.

The model trains through its fused torch module where torch has the cell (`model.py` builds it);
the same weights, under the same names, load into the explicit cells for tracing.

On a GPU (`device="cuda"`, `engine.device`) the model, every batch and the optimizer state are
there; the data generator still draws on the CPU, so the same seed gives the same batches on
either device, and every save is a CPU copy, so a run trained on a GPU opens without one.

A non-finite loss, gradient or updated weight ends the run cleanly with status "diverged at step
N": the weights are rolled back to the last ones whose loss, gradient and values were finite, so
neither the saved run nor its snapshots ever hold NaN or Inf. A run can be cancelled (a `threading.Event`, a
callable returning True, or `on_progress` returning False) and resumed from its run directory
with the optimizer state, the data generator and a half-read batch, so the loss curve of a
cancelled-then-resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rnn_tui.engine.errors import EngineError

if TYPE_CHECKING:  # pragma: no cover
    import threading

    from torch import Tensor, nn

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.tasks.base import Batch, Task, TrainDefaults

OPTIMIZERS = ("adam", "sgd")
STATUSES = ("running", "finished", "cancelled", "diverged")
# memory one training step may take: the activations kept for backward of a whole batch. Measured
# at 9-13 bytes per number of BATCH_NUMBERS (fused and explicit cells, float32); past this limit
# a step would swap or be killed by the system, so the run is refused up front with the sizes.
MAX_STEP_BYTES = 4 << 30
BYTES_PER_NUMBER = 12


class TrainConfigError(EngineError):
    """A training setting that cannot be used; the message says what to change."""


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000  # optimizer steps in all (a resumed run continues up to this count)
    batch: int = 32  # sequences per batch
    lr: float = 1e-2  # learning rate
    optimizer: str = "adam"  # "adam" or "sgd"
    momentum: float = 0.9  # SGD momentum (0 for plain SGD)
    weight_decay: float = 0.0  # L2 penalty on weight matrices (not biases), through the optimizer
    l1: float = 0.0  # L1 penalty on weight matrices (not biases), added to the loss
    clip: float | None = 1.0  # max global gradient norm; None: no clipping by norm
    clip_value: float | None = None  # clamp every gradient entry to [-v, v]; None: no clamping
    tbptt: int | None = None  # truncated BPTT window K; None: full BPTT over each sequence
    seed: int = 0  # initial weights and data order: same seed, same loss curve
    log_every: int = 25  # steps between metrics records (task metric, mean loss)
    snapshot_every: int | None = None  # steps between weight snapshots (time-lapse); None: none
    save_every: int | None = None  # steps between saves of the whole run (crash safety); None: at the end
    eval_batches: int = 4  # fresh batches the final metric is measured on
    threads: int | None = None  # torch CPU threads while training; None: rnn-tui's policy (engine/threads.py)

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise TrainConfigError(message)

        def whole(name: str, lo: int, hi: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            need(
                isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi,
                f"{name} must be a whole number from {lo} to {hi}, got {value!r}",
            )

        def number(name: str, lo: float, hi: float, optional: bool = False, open_lo: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            ok = ok and (lo < value if open_lo else lo <= value) and value <= hi
            bound = f"above {lo:g} and at most {hi:g}" if open_lo else f"from {lo:g} to {hi:g}"
            need(ok, f"{name} must be a number {bound}, got {value!r}")

        whole("steps", 1, 10_000_000)
        whole("batch", 1, 65_536)
        number("lr", 0.0, 1e30)
        need(self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}: choose adam or sgd")
        number("momentum", 0.0, 0.999999)
        number("weight_decay", 0.0, 1e3)
        number("l1", 0.0, 1e3)
        number("clip", 0.0, 1e9, optional=True, open_lo=True)
        number("clip_value", 0.0, 1e9, optional=True, open_lo=True)
        whole("tbptt", 1, 1_000_000, optional=True)
        whole("seed", 0, 2**63 - 1)
        whole("log_every", 1, 10_000_000)
        whole("snapshot_every", 1, 10_000_000, optional=True)
        whole("save_every", 1, 10_000_000, optional=True)
        whole("eval_batches", 0, 10_000)
        whole("threads", 1, 1024, optional=True)

    @classmethod
    def from_defaults(cls, defaults: "TrainDefaults", **overrides) -> "TrainConfig":
        """A task's TrainDefaults with the given settings on top (None means "the default")."""
        base = dict(
            steps=defaults.steps,
            batch=defaults.batch,
            lr=defaults.lr,
            optimizer=defaults.optimizer,
            momentum=defaults.momentum,
            weight_decay=defaults.weight_decay,
            clip=defaults.clip,
            tbptt=defaults.tbptt,
            log_every=defaults.log_every,
        )
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(base)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainConfigError(f"unknown training setting(s): {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class Progress:
    """Where a run stands after a step: plain numbers, safe to hand from a worker thread."""

    step: int  # optimizer steps done
    steps: int  # optimizer steps planned
    loss: float  # this step's loss (NaN/Inf when it diverged)
    grad_norm: float  # global gradient norm before clipping
    metric_name: str  # the task's metric: "accuracy", "mse" ...
    metric: float | None  # its latest value on a training batch (None before the first record)
    tokens_per_s: float  # input steps processed per second, this session
    elapsed: float  # seconds of training in all (across resumes)
    status: str = "running"  # "running" | "finished" | "cancelled" | "diverged"
    diverged_at: int | None = None  # the step whose loss or gradient was not finite
    message: str = ""  # one line for the user when the run ends
    record: dict | None = None  # the metrics record logged at this step (every log_every steps)

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def fraction(self) -> float:
        return self.step / self.steps if self.steps else 1.0


@dataclass(frozen=True)
class Snapshot:
    """The weights at a step (numpy copies by torch name), for the explorer's time-lapse."""

    step: int
    loss: float
    metric: float | None
    tensors: dict  # name -> numpy array
    path: Path | None = None  # run/snapshots/step_000100.safetensors when the run has a directory


@dataclass(frozen=True)
class TrainResult:
    status: str  # "finished" | "cancelled" | "diverged"
    step: int  # steps behind the final weights
    steps: int
    metric_name: str
    metric: float | None  # on `eval_batches` fresh batches after training (None if not measured)
    loss: float | None  # mean loss of the last logged interval
    elapsed: float  # seconds of training in all
    tokens_per_s: float  # this session
    diverged_at: int | None
    history: tuple  # the metrics records, one dict per logged step
    run_dir: Path | None
    message: str
    chance: float | None = None  # the task's untrained metric, for comparison
    solved: bool = False  # whether the metric clears the task's bar


Cancel = "threading.Event | Callable[[], bool] | None"


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


class Trainer:
    """Trains one model on one task; `run()` can be called again after a cancel to go on."""

    def __init__(
        self,
        task: "Task",
        config: TrainConfig,
        model_config: "ModelConfig | None" = None,
        model: "nn.Module | None" = None,
        run_dir: str | Path | None = None,
        task_options: dict | None = None,
        _resuming: bool = False,
        device=None,
        **model_options,
    ):
        """`model_options` (cell, hidden, layers, bidirectional, activation, bias) go to
        `task.model_config` when no model_config is given; `model` starts from given weights.
        `device` (an `engine.device.Device`, "cpu", "cuda" or "auto") is where it trains; None:
        where the given model is, else the CPU."""
        import torch

        from rnn_tui.engine.device import as_device, of_module

        self.task = task
        self.config = config
        if model_config is None and model is not None:
            model_config = getattr(model, "config", None)  # a given model knows its own shape
        self.model_config = model_config or task.model_config(**model_options)
        self.task_options = dict(task_options or {})
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None and not _resuming:
            _check_new_run_dir(self.run_dir)
        self.model = model if model is not None else task.build_model(self.model_config, seed=config.seed)
        self.device = as_device(device) if device is not None else of_module(self.model)
        self.model.to(self.device.torch)  # before the optimizer is built on its parameters
        self._check_fit()
        self.step = 0
        self.elapsed = 0.0
        self.history: list[dict] = []
        self.status = "running"
        self.diverged_at: int | None = None
        self._diverged_what = ("loss", "NaN")  # what diverged and its value, for the message
        self.generator = torch.Generator().manual_seed(config.seed)
        self._pending: dict | None = None  # a half-read batch under truncated BPTT
        self._acc = [0.0, 0.0, 0]  # loss sum, grad-norm sum, steps since the last record
        self._metric: float | None = None
        self._metric_name = getattr(task, "metric_name", "metric")
        self.notes: list[str] = []
        self._build_optimizer()

    # ---- setup ------------------------------------------------------------------------------
    def _check_fit(self) -> None:
        self._check_memory()
        cfg, K = self.model_config, self.config.tbptt
        if K is None:
            return
        if getattr(self.task, "mode", "") == "encdec" or not hasattr(cfg, "head"):
            raise TrainConfigError("--tbptt works on single-network tasks, not the encoder-decoder task")
        if cfg.bidirectional:
            raise TrainConfigError("--tbptt needs a one-direction model: a reverse direction reads the whole sequence")
        if cfg.head == "mean":
            raise TrainConfigError("--tbptt cannot train a mean-pooled head: use --pool last or drop --tbptt")

    def _check_memory(self) -> None:
        """Refuse a batch whose forward and backward pass cannot fit in memory, before the first step.

        numbers ~ B * T * (L * D * H * (G + 3) + I + 3 * O): per step and sequence, each layer and
        direction keeps its G gates, h, c and a pre-activation buffer; the input and the logits
        with their softmax and gradient. T is the longest of a few sampled sequences (both halves
        of an encoder-decoder), or the tbptt window.
        """
        import torch

        cfg = self.model_config
        if not hasattr(cfg, "gates"):
            cfg = getattr(self.model, "config", cfg)
        if not hasattr(cfg, "gates"):
            return
        sample = self.task.sample(8, torch.Generator().manual_seed(0))
        T = int(sample.x.shape[1]) + (int(sample.dec_x.shape[1]) if hasattr(sample, "dec_x") else 0)
        if self.config.tbptt is not None:
            T = min(T, self.config.tbptt)
        B, H, L, D = self.config.batch, cfg.hidden_size, cfg.num_layers, cfg.num_directions
        numbers = B * T * (L * D * H * (len(cfg.gates) + 3) + cfg.input_size + 3 * cfg.output_size)
        need = numbers * BYTES_PER_NUMBER
        if need > MAX_STEP_BYTES:
            raise TrainConfigError(
                f"one training step would need about {need / 1e9:.1f} GB of memory (batch {B} x {T} steps, "
                f"{L} layer(s) of {H} units); at most {MAX_STEP_BYTES / 2**30:.0f} GB: lower --batch or "
                "--hidden, shorten the sequences, or train with --tbptt K"
            )

    def _param_groups(self) -> list[dict]:
        """Weight matrices (and embeddings) take the L2 penalty; biases do not."""
        named = list(self.model.named_parameters())
        return [
            {"name": "weights", "params": [p for n, p in named if not _is_bias(n)], "weight_decay": self.config.weight_decay},
            {"name": "biases", "params": [p for n, p in named if _is_bias(n)], "weight_decay": 0.0},
        ]

    def _build_optimizer(self) -> None:
        import torch

        c = self.config
        groups = self._param_groups()
        if c.optimizer == "adam":
            self.optimizer = torch.optim.Adam(groups, lr=c.lr)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self._l1_params = list(self.optimizer.param_groups[0]["params"])
        self._backup = [p.detach().clone() for p in self.params]
        self._backup_step: int | None = None  # the step whose weights _backup holds (None: none yet)

    def _apply_hyperparameters(self) -> None:
        """The config's lr, momentum and weight decay on the optimizer (a resume may change them)."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = c.lr
            if c.optimizer == "sgd":
                group["momentum"] = c.momentum
            group["weight_decay"] = c.weight_decay if group.get("name") == "weights" else 0.0

    def reconfigure(self, **changes) -> None:
        """Change training settings between runs (after a cancel, say): the next `run()` uses them.

        The optimizer keeps its state unless the optimizer itself changes; a new tbptt window
        starts from the next fresh batch.
        """
        config = self.config.replace(**changes)
        old, self.config = self.config, config
        try:
            self._check_fit()
        except TrainConfigError:
            self.config = old
            raise
        if config.optimizer != old.optimizer:
            self._build_optimizer()
        else:
            self._apply_hyperparameters()
        if config.tbptt != old.tbptt:
            self._pending = None

    # ---- one step ---------------------------------------------------------------------------
    def _next_batch(self) -> "Batch":
        return self._on_device(self.task.sample(self.config.batch, self.generator))

    def _on_device(self, batch: "Batch") -> "Batch":
        """The batch with its tensors on the training device (the generator draws on the CPU)."""
        if not self.device.accelerated:
            return batch
        import torch

        dev = self.device.torch
        moved = {f.name: getattr(batch, f.name).to(dev) for f in fields(batch) if isinstance(getattr(batch, f.name), torch.Tensor)}
        return replace(batch, **moved)

    def _forward(self) -> tuple["Tensor", "Batch", int] | None:
        """(outputs, the batch they score, input steps read) for the next step."""
        if self.config.tbptt is None:
            batch = self._next_batch()
            return self.task.forward(self.model, batch), batch, batch.num_tokens
        if self.model_config.head == "last":
            return self._forward_tbptt_last()
        return self._forward_tbptt_window()

    def _forward_tbptt_last(self):
        """A pooled head under TBPTT: carry the state through all but the last window untracked."""
        import torch

        K, batch = self.config.tbptt, self._next_batch()
        T = batch.x.shape[1]
        state = None
        start = max(0, T - K)
        if start:
            with torch.no_grad():
                for a in range(0, start, K):
                    _, state = self.model(batch.x[:, a : min(a + K, start)], state, return_state=True)
        out = self.model(batch.x[:, start:], state)
        return out, batch, batch.num_tokens

    def _forward_tbptt_window(self):
        """A per-step head under TBPTT: the next window of the current batch, from the carried state."""
        import torch

        from rnn_tui.engine.tasks.base import Batch

        K, tokens = self.config.tbptt, 0
        while True:
            if self._pending is None:
                self._pending = {"batch": self._next_batch(), "pos": 0, "state": None}
            p = self._pending
            batch, a = p["batch"], p["pos"]
            T = batch.x.shape[1]
            b = min(a + K, T)
            window = Batch(
                x=batch.x[:, a:b],
                y=batch.y[:, a:b],
                mask=batch.mask[:, a:b] if batch.mask is not None else None,
            )
            tokens += window.num_tokens
            p["pos"] = b
            if _scored(window):
                out, state = self.model(window.x, p["state"], return_state=True)
            else:  # nothing to learn from here: only carry the state on
                with torch.no_grad():
                    out, state = self.model(window.x, p["state"], return_state=True)
            p["state"] = _detach(state)
            if b >= T:
                self._pending = None
            if _scored(window):
                return out, window, tokens

    def _penalty(self, loss: "Tensor") -> "Tensor":
        if not self.config.l1:
            return loss
        return loss + self.config.l1 * sum(p.abs().sum() for p in self._l1_params)

    def _grad_norm(self) -> float:
        import torch

        c = self.config
        if c.clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, c.clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        if c.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.params, c.clip_value)
        return float(norm)

    def _one_step(self) -> tuple[float, float, int, bool]:
        """(loss, grad norm, tokens, ok). Not ok: a non-finite loss, gradient or updated weight
        (`self._diverged_what` says which); the weights are those of the last good step."""
        import torch

        out, batch, tokens = self._forward()
        loss = self.task.loss(out, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            self._diverged_what = ("loss", _show(value))
            return value, float("nan"), tokens, False
        self.optimizer.zero_grad(set_to_none=True)
        self._penalty(loss).backward()
        norm = self._grad_norm()
        if not math.isfinite(norm):
            self._diverged_what = ("gradient norm", _show(norm))
            return value, norm, tokens, False  # the weights that gave a finite loss stay
        with torch.no_grad():
            for saved, p in zip(self._backup, self.params):
                saved.copy_(p)
        self._backup_step = self.step
        self.optimizer.step()
        bad = self._non_finite_weights()
        if bad is not None:  # the update overflowed: back to the weights from before it
            with torch.no_grad():
                for saved, p in zip(self._backup, self.params):
                    p.copy_(saved)
            self._diverged_what = ("weights", bad)
            return value, norm, tokens, False
        if self.step % self.config.log_every == self.config.log_every - 1 or self.step + 1 == self.config.steps:
            self._metric_name, self._metric = self.task.metric(out.detach(), batch)
        return value, norm, tokens, True

    def _non_finite_weights(self) -> str | None:
        """None when every weight is finite, else "NaN" or "Inf" (what the first bad one holds).

        One sum of all weights first (NaN and Inf carry through a sum; one number to read back):
        only when it is not finite, which huge but finite weights can also make it, is each
        tensor looked at."""
        import torch

        with torch.no_grad():
            total = float(torch.stack([p.sum() for p in self.params]).sum()) if self.params else 0.0
        if math.isfinite(total):
            return None
        for p in self.params:
            if not bool(torch.isfinite(p).all()):
                return "NaN" if bool(torch.isnan(p).any()) else "Inf"
        return None

    def _restore_backup(self) -> None:
        """Back to the weights from before the last update (those of step - 1), when this session
        made that update; otherwise the weights stay (the initial or resumed ones: nothing older)."""
        import torch

        if self._backup_step is None or self._backup_step != self.step - 1:
            return
        with torch.no_grad():
            for saved, p in zip(self._backup, self.params):
                p.copy_(saved)
        self.step -= 1  # the weights now are those from before the last update
        self._pending = None

    # ---- the loop ---------------------------------------------------------------------------
    def run(
        self,
        on_progress: Callable[[Progress], Any] | None = None,
        on_checkpoint: Callable[[Snapshot], Any] | None = None,
        cancel: "threading.Event | Callable[[], bool] | None" = None,
    ) -> TrainResult:
        """Train until `config.steps`, a cancel, or divergence; returns the result record.

        `on_progress` is called after every step with a Progress (return False to cancel);
        `on_checkpoint` every `snapshot_every` steps with a Snapshot.
        """
        import torch

        from rnn_tui.engine import threads as policy

        threads = torch.get_num_threads()
        torch.set_num_threads(self.config.threads if self.config.threads is not None else policy.count())
        try:
            return self._run(on_progress, on_checkpoint, cancel)
        finally:
            torch.set_num_threads(threads)

    def _run(self, on_progress, on_checkpoint, cancel) -> TrainResult:
        c = self.config
        self.model.train()
        self.status = "running"
        if self.run_dir is not None:
            self._save(status="running")
        t0 = time.perf_counter()
        base_elapsed = self.elapsed
        tokens_seen = 0
        loss = norm = float("nan")
        cancelled = False
        while self.step < c.steps:
            loss, norm, tokens, ok = self._one_step()
            tokens_seen += tokens
            elapsed = time.perf_counter() - t0
            self.elapsed = base_elapsed + elapsed
            rate = tokens_seen / elapsed if elapsed > 0 else 0.0
            if not ok:
                self.status = "diverged"
                self.diverged_at = self.step + 1
                if self._diverged_what[0] == "loss":
                    self._restore_backup()  # these weights gave a non-finite loss: back to the last good ones
                break
            self.step += 1
            acc = self._acc
            acc[0] += loss
            acc[1] += norm
            acc[2] += 1
            record = None
            if self.step % c.log_every == 0 or self.step == c.steps:
                record = self._record(rate)
            if c.snapshot_every and self.step % c.snapshot_every == 0:
                self._snapshot(loss, on_checkpoint)
            if self.run_dir is not None and c.save_every and self.step % c.save_every == 0 and self.step < c.steps:
                self._save(status="running")
            progress = Progress(
                step=self.step,
                steps=c.steps,
                loss=loss,
                grad_norm=norm,
                metric_name=self._metric_name,
                metric=self._metric,
                tokens_per_s=rate,
                elapsed=self.elapsed,
                record=record,
            )
            if on_progress is not None and on_progress(progress) is False:
                cancelled = True
            if cancelled or _is_cancelled(cancel):
                cancelled = True
                break
        elapsed = time.perf_counter() - t0
        rate = tokens_seen / elapsed if elapsed > 0 else 0.0
        return self._finish(loss, norm, rate, cancelled, on_progress)

    def _finish(self, loss, norm, rate, cancelled, on_progress) -> TrainResult:
        c = self.config
        if self.status == "diverged":
            what, value = self._diverged_what
            after = " after the update" if what == "weights" else ""
            message = (
                f"diverged at step {self.diverged_at}: the {what} became {value}{after}; "
                f"kept the weights of step {self.step}; {divergence_advice(c)}"
            )
            self._acc = [0.0, 0.0, 0]
            self._pending = None
            self.history = [r for r in self.history if r["step"] <= self.step]  # none past the weights kept
        elif cancelled:
            self.status = "cancelled"
            message = f"cancelled at step {self.step} of {c.steps}"
        else:
            self.status = "finished"
            message = f"finished {c.steps} steps"
        final = self.evaluate() if self.status == "finished" and c.eval_batches else None
        metric_name = final[0] if final else self._metric_name
        metric = final[1] if final else self._metric
        chance = getattr(self.task, "chance", None)
        solved = bool(metric is not None and hasattr(self.task, "is_solved") and self.task.is_solved(metric))
        result_loss = self.history[-1]["loss"] if self.history else None
        if self.run_dir is not None:
            self._save(
                status=self.status,
                trainer_state=self.status != "diverged",
                result={
                    "metric_name": metric_name,
                    "metric": metric,
                    "loss": result_loss,
                    "diverged_at": self.diverged_at,
                    "elapsed": round(self.elapsed, 3),
                    "message": message,
                },
            )
            if self.status == "diverged":
                from rnn_tui.engine.checkpoint import prune_snapshots

                prune_snapshots(self.run_dir, above=self.step)  # a snapshot past the weights kept
        result = TrainResult(
            status=self.status,
            step=self.step,
            steps=c.steps,
            metric_name=metric_name,
            metric=metric,
            loss=result_loss,
            elapsed=self.elapsed,
            tokens_per_s=rate,
            diverged_at=self.diverged_at,
            history=tuple(self.history),
            run_dir=self.run_dir,
            message=message,
            chance=chance,
            solved=solved,
        )
        if on_progress is not None:
            on_progress(
                Progress(
                    step=self.step,
                    steps=c.steps,
                    loss=loss,
                    grad_norm=norm,
                    metric_name=metric_name,
                    metric=metric,
                    tokens_per_s=rate,
                    elapsed=self.elapsed,
                    status=self.status,
                    diverged_at=self.diverged_at,
                    message=message,
                )
            )
        self.model.eval()
        return result

    def _record(self, rate: float) -> dict:
        acc = self._acc
        record = {
            "step": self.step,
            "loss": acc[0] / acc[2],
            "grad_norm": acc[1] / acc[2],
            "metric_name": self._metric_name,
            "metric": self._metric,
            "tokens_per_s": round(rate, 1),
            "elapsed": round(self.elapsed, 3),
        }
        self._acc = [0.0, 0.0, 0]
        self.history.append(record)
        if self.run_dir is not None:
            from rnn_tui.engine.checkpoint import append_metrics

            with _writing(self.run_dir):
                append_metrics(self.run_dir, [record])
        return dict(record)

    def _snapshot(self, loss: float, on_checkpoint) -> None:
        from rnn_tui.engine.checkpoint import model_tensors, save_snapshot

        path = None
        if self.run_dir is not None:
            with _writing(self.run_dir):
                path = save_snapshot(self.run_dir, self.model, self.step)
        if on_checkpoint is not None:
            tensors = {k: v.detach().cpu().numpy().copy() for k, v in model_tensors(self.model).items()}
            on_checkpoint(Snapshot(self.step, loss, self._metric, tensors, path))

    @property
    def metric_name(self) -> str:
        return self._metric_name

    def evaluate(self, batches: int | None = None, seed: int | None = None) -> tuple[str, float]:
        """The task metric averaged over fresh batches (a generator of their own, not the training one)."""
        import torch

        n = self.config.eval_batches if batches is None else batches
        g = torch.Generator().manual_seed((self.config.seed if seed is None else seed) + 7919)
        was_training = self.model.training
        self.model.eval()
        values, name = [], self._metric_name
        with torch.no_grad():
            for _ in range(max(1, n)):
                batch = self._on_device(self.task.sample(self.config.batch, g))
                name, value = self.task.metric(self.task.forward(self.model, batch), batch)
                values.append(value)
        self.model.train(was_training)
        return name, sum(values) / len(values)

    # ---- the run directory ------------------------------------------------------------------
    def run_info(self, status: str, result: dict | None = None):
        from rnn_tui.engine.checkpoint import RunInfo

        return RunInfo(
            model=self.model_config,
            task=self.task.name,
            task_options=self.task_options,
            train=self.config.to_dict(),
            vocab=list(self.task.vocab) if self.task.vocab is not None else None,
            output_labels=list(self.task.output_labels) if self.task.output_labels is not None else None,
            step=self.step,
            status=status,
            result=result or {},
        )

    def _save(self, status: str, trainer_state: bool = True, result: dict | None = None) -> None:
        """Weights, config.json and (trainer_state) the optimizer state, committed together as
        one new generation of the run (`checkpoint.save_run`): a crash leaves the old save or
        the new one, never a mix."""
        from rnn_tui.engine.checkpoint import model_tensors, save_run

        with _writing(self.run_dir):
            save_run(
                self.run_dir,
                self.run_info(status, result),
                model_tensors(self.model),
                self._trainer_state() if trainer_state else None,
            )

    def _trainer_state(self) -> tuple[dict, dict]:
        import torch

        tensors: dict[str, Tensor] = {"rng": self.generator.get_state()}
        opt = self.optimizer.state_dict()
        scalars: dict[str, dict] = {}
        for index, entry in opt["state"].items():
            for key, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt.{index}.{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        if self._pending is not None:
            p = self._pending
            tensors["pending.x"] = p["batch"].x
            tensors["pending.y"] = p["batch"].y
            if p["batch"].mask is not None:
                tensors["pending.mask"] = p["batch"].mask
            state = p["state"]
            if state is not None:
                h, cell = (state if isinstance(state, tuple) else (state, None))
                tensors["pending.h"] = h
                if cell is not None:
                    tensors["pending.c"] = cell
        meta = {
            "step": self.step,
            "elapsed": self.elapsed,
            "acc": list(self._acc),
            "metric_name": self._metric_name,
            "metric": self._metric,
            "optimizer": self.config.optimizer,
            "param_groups": [{k: v for k, v in g.items() if k != "params"} | {"params": g["params"]} for g in opt["param_groups"]],
            "scalars": scalars,
            "pending_pos": self._pending["pos"] if self._pending is not None else None,
        }
        return tensors, meta

    def _load_trainer_state(self, tensors: dict, meta: dict) -> None:
        import torch

        from rnn_tui.engine.checkpoint import CheckpointError
        from rnn_tui.engine.tasks.base import Batch

        try:
            state: dict[int, dict] = {}
            for name, value in tensors.items():
                if name.startswith("opt."):
                    _, index, key = name.split(".", 2)
                    state.setdefault(int(index), {})[key] = value
            for index, entry in meta["scalars"].items():
                state.setdefault(int(index), {}).update(entry)
            groups = [dict(g) for g in meta["param_groups"]]
            for g in groups:
                if "betas" in g:
                    g["betas"] = tuple(g["betas"])
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
            self.generator.set_state(tensors["rng"].to(torch.uint8))
            self._acc = [float(meta["acc"][0]), float(meta["acc"][1]), int(meta["acc"][2])]
            self._metric_name = meta["metric_name"]
            self._metric = meta["metric"]
            self.elapsed = float(meta["elapsed"])
            if meta.get("pending_pos") is not None:
                mask = tensors.get("pending.mask")
                batch = Batch(x=tensors["pending.x"], y=tensors["pending.y"], mask=mask.bool() if mask is not None else None)
                batch = self._on_device(batch)
                h, cell = tensors.get("pending.h"), tensors.get("pending.c")
                dev = self.device.torch
                h, cell = (None if t is None else t.to(dev) for t in (h, cell))
                carried = None if h is None else ((h, cell) if cell is not None else h)
                self._pending = {"batch": batch, "pos": int(meta["pending_pos"]), "state": carried}
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
            raise CheckpointError(f"{self.run_dir}: the trainer state does not fit this run ({e}); resume is not possible") from None
        self._apply_hyperparameters()

    @classmethod
    def resume(cls, run_dir: str | Path, task: "Task | None" = None, device=None, **overrides) -> "Trainer":
        """Carry on a saved run: its weights, optimizer, data generator and history, on `device`
        (whichever it was trained on: the files hold CPU copies).

        `overrides` change training settings (e.g. steps=2000 to train longer, a lower lr after
        a divergence); a run whose optimizer state is missing or older than its weights (a
        diverged run) goes on with a fresh optimizer and says so in `notes`.
        """
        from rnn_tui.engine.checkpoint import (
            CheckpointError,
            load_checkpoint,
            load_model_tensors,
            load_trainer_state,
            prune_snapshots,
            read_metrics,
            recover,
            write_metrics,
        )
        from rnn_tui.engine.config import ConfigError
        from rnn_tui.engine.tasks import get_task

        from rnn_tui.engine.checkpoint import CONFIG_FILE, run_task_options
        from rnn_tui.engine.tasks.base import TaskError

        run_dir = Path(run_dir)
        ckpt = load_checkpoint(run_dir, metrics=False)
        info = ckpt.info
        if task is None:
            try:
                task = get_task(info.task, **run_task_options(run_dir, info))
            except TaskError as e:
                raise CheckpointError(f"{run_dir / CONFIG_FILE}: {e}") from None
        elif task.name != info.task:
            raise CheckpointError(f"{run_dir} was trained on task {info.task!r}, not {task.name!r}")
        if info.vocab is not None and task.vocab is not None and list(task.vocab) != list(info.vocab):
            raise CheckpointError(
                f"{run_dir}: the task's vocabulary has changed since the run was saved "
                f"({len(info.vocab)} tokens then, {len(task.vocab)} now): is it the same --text file?"
            )
        saved = dict(info.train)
        try:
            TrainConfig.from_dict(saved)
        except (TrainConfigError, TypeError) as e:
            raise CheckpointError(f"{run_dir / CONFIG_FILE}: the saved training settings are damaged ({e})") from None
        saved.update({k: v for k, v in overrides.items() if v is not None})
        config = TrainConfig.from_dict(saved)
        records = read_metrics(run_dir, upto=info.step)  # a damaged metrics file stops the resume here
        state = load_trainer_state(run_dir)
        trainer = cls(
            task, config, model_config=info.model, run_dir=run_dir, task_options=info.task_options, _resuming=True,
            device=device,
        )
        try:
            load_model_tensors(trainer.model, ckpt.tensors)
        except ConfigError as e:
            raise CheckpointError(f"{run_dir}: {e}") from None
        trainer.step = info.step
        if state is not None and _state_matches(state[1], info) and state[1].get("optimizer") == config.optimizer:
            trainer._load_trainer_state(*state)
        else:
            if info.status == "diverged":
                why = "it diverged"
            elif state is None and info.result.get("saved_by") == "explorer":
                why = "the run was saved from the explorer (w), which keeps no optimizer state"
            else:
                why = "no matching optimizer state was saved"
            trainer.notes.append(f"resuming at step {info.step} with a fresh optimizer: {why}")
            trainer.generator.manual_seed(config.seed + info.step)
            elapsed = info.result.get("elapsed")  # a number from config.json, if it is one
            ok = isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool) and 0 <= elapsed < math.inf
            trainer.elapsed = float(elapsed) if ok else 0.0
        # what lies past the committed step (records and snapshots of steps a crash undid, the
        # remains of an interrupted save) goes; the records up to it stay, every one
        with _writing(run_dir):
            recover(run_dir)
            write_metrics(run_dir, records)
            prune_snapshots(run_dir, above=info.step)
        trainer.history = records
        if info.step >= config.steps:
            trainer.notes.append(f"the run already has {info.step} steps: pass more --steps to train on")
        return trainer


def _state_matches(meta: dict, info) -> bool:
    """Whether a saved trainer state belongs to the weights config.json names: the same commit
    (generation), or for runs from before commits, the same step."""
    if info.generation is not None and meta.get("generation") is not None:
        return meta["generation"] == info.generation
    return meta.get("step") == info.step


def train(task: "Task", config: TrainConfig, **kwargs) -> TrainResult:
    """Build a Trainer and run it: keyword arguments go to Trainer() and run() as they fit."""
    run_keys = ("on_progress", "on_checkpoint", "cancel")
    run_kwargs = {k: kwargs.pop(k) for k in run_keys if k in kwargs}
    return Trainer(task, config, **kwargs).run(**run_kwargs)


# ---- helpers ---------------------------------------------------------------------------------
def _is_bias(name: str) -> bool:
    return name.split(".")[-1].startswith("bias")


def _scored(batch: "Batch") -> bool:
    """Whether a batch has any scored target (an all-unscored window would give a NaN mean)."""
    from rnn_tui.engine.tasks.base import IGNORE

    if batch.mask is not None:
        return bool(batch.mask.any())
    if not batch.y.dtype.is_floating_point:
        return bool((batch.y != IGNORE).any())
    return True


def _detach(state):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _check_new_run_dir(run_dir: Path) -> None:
    """A new run never writes over anything: not a run, not the files of another, not a file; and
    the folder must be one this process can create and write. The remains of a first save that
    did not finish (`checkpoint.run_state` "unfinished") are an empty run: they are cleared."""
    import os

    from rnn_tui.engine.checkpoint import (
        METRICS_FILE,
        SNAPSHOT_DIR,
        TRAINER_FILE,
        CheckpointError,
        clear_unfinished,
        run_state,
    )
    from rnn_tui.safe_text import safe

    where = safe(run_dir)
    if os.path.lexists(run_dir) and not run_dir.is_dir():
        raise CheckpointError(f"{where} is a file, not a folder: choose another --out")
    state = run_state(run_dir)
    if state == "committed":
        raise CheckpointError(f"{where} already holds a run: continue it with --resume {where}, or choose another --out")
    leftover = [n for n in (METRICS_FILE, TRAINER_FILE, SNAPSHOT_DIR) if os.path.lexists(run_dir / n)]
    if leftover:
        raise CheckpointError(
            f"{where} holds {leftover[0]} from another run, which a new run would mix with its own: "
            "choose another --out"
        )
    existing = run_dir.absolute()
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CheckpointError(f"cannot make {where}: {safe(existing)} is a file, not a folder: choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write to {safe(existing)} (permission denied): choose another --out")
    if not _can_create_in(existing):
        raise CheckpointError(f"cannot write to {safe(existing)} (no files can be made there): choose another --out")
    if state == "unfinished":
        clear_unfinished(run_dir)  # an interrupted first save: nothing was committed


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be made in `folder` (os.access says yes for /proc and read-only
    mounts, where making one fails): make one and remove it."""
    import os
    import secrets

    probe = folder / f".rnn-tui-probe.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return False
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
    return True


class _writing:
    """Turn a failed write into a one-line CheckpointError (a full disk, a folder that vanished)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if isinstance(error, OSError):
            from rnn_tui.engine.checkpoint import CheckpointError

            raise CheckpointError(f"cannot write the run to {self.run_dir}: {error.strerror or error}") from None
        return False


def _show(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Inf" if x > 0 else "-Inf")


def divergence_advice(c: TrainConfig) -> str:
    """What to try after a divergence, for the optimizer that diverged. Adam scales every step by
    the gradient's own running size, so clipping the gradient's norm barely changes its steps:
    its step size is the learning rate. SGD's step is the gradient, which a clip bounds."""
    if c.optimizer == "adam":
        return f"try a lower --lr (now {c.lr:g}; Adam's steps are about lr in size, so clipping barely helps)"
    if c.clip is None:
        return f"try a lower --lr (now {c.lr:g}) or --clip 1"
    return f"try a lower --lr (now {c.lr:g}) or a smaller --clip (now {c.clip:g})"
