"""Small tools the lessons share: hand-set models, one-hot traces, short training runs, and a
base for the lessons' own toy tasks (data generated on the spot, offline)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnn_tui.engine.tasks.base import Task, TrainDefaults


def hand_set_model(config, tensors: dict):
    """A model with every tensor given by hand (torch names -> nested lists or arrays)."""
    import torch

    from rnn_tui.engine.model import build_model

    model = build_model(config, seed=0).double()  # float64: 0.9 stays 0.9, the paper's numbers
    model.load_tensors({k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in tensors.items()})
    return model


def trace_tokens(model, tokens: Sequence[str], vocab: Sequence[str], targets=None, dtype: str = "float64",
                 out_labels: Sequence[str] | None = None, **kwargs):
    """Trace a sequence of tokens through a one-hot / embedding model over `vocab`."""
    import torch

    from rnn_tui.engine.trace import run_trace

    index = {t: k for k, t in enumerate(vocab)}
    x = torch.tensor([index[t] for t in tokens])
    return run_trace(model, x, targets, tokens=list(tokens), vocab=list(out_labels or vocab), dtype=dtype, **kwargs)


def train(task, model_config, *, steps: int, lr: float, batch: int = 32, clip: float | None = 1.0,
          optimizer: str = "adam", momentum: float = 0.9, seed: int = 0, model=None, ctx=None, label: str = "",
          log_every: int = 25, eval_batches: int = 4):
    """A short live training run; reports progress through the lesson context.
    Returns (trainer, result, grad norms per step, losses per step)."""
    from rnn_tui.engine.train import TrainConfig, Trainer

    cfg = TrainConfig(steps=steps, batch=batch, lr=lr, optimizer=optimizer, momentum=momentum, clip=clip,
                      seed=seed, log_every=log_every, eval_batches=eval_batches)
    trainer = Trainer(task, cfg, model_config=model_config, model=model)
    norms: list[float] = []
    losses: list[float] = []

    def on_progress(p) -> bool:
        if p.status == "running":
            norms.append(p.grad_norm)
            losses.append(p.loss)
        if ctx is not None:
            if ctx.cancelled():
                return False
            if p.status == "running" and p.step % 25 == 0:
                ctx.progress(f"training {label}: step {p.step}/{p.steps}, loss {p.loss:.3g}")
        return True

    result = trainer.run(on_progress=on_progress)
    if ctx is not None:
        ctx.progress(f"training {label}: {result.message}")  # raises LessonCancelled if asked to stop
    return trainer, result, norms, losses


class LessonTask(Task):
    """A toy task a lesson generates for itself: not in the `rnn-tui tasks` catalog."""

    name = "lesson"
    MODE = "seq2seq"
    DESCRIPTION = ""

    @property
    def mode(self) -> str:
        return self.MODE

    @property
    def description(self) -> str:
        return self.DESCRIPTION

    @property
    def options(self) -> dict[str, str]:
        return {}

    def __init__(self, **defaults):
        self.defaults = TrainDefaults(**defaults) if defaults else TrainDefaults()


def closest(choices: Sequence[float], value: float) -> int:
    """Index of the choice nearest the value (a question's right answer, from the live number)."""
    return int(np.argmin([abs(c - value) for c in choices]))
