"""The trace source of a lesson: it sets the lesson up live (on the explorer's build worker) and
hands out the lesson's traces by key.

A lesson trace is asked for with `TraceRequest(task="lesson:NAME:KEY", ...)`; the trace comes back
with the whole live lesson in `trace.extras["lesson"]` (a `LessonRun`: results, figures, phase
portraits, unit-finder results, other traces), which is how the lesson panel — bound to the view —
gets it. Any other request (the person changed the model in the Model tab) goes to the wrapped
source, as in the plain explorer.

torch is imported only when the lesson is built (in the worker), never at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from rnn_tui.ui.source import TraceRequest, TraceSource

PREFIX = "lesson:"


def lesson_task(name: str, key: str) -> str:
    return f"{PREFIX}{name}:{key}"


def parse_task(task: str) -> tuple[str, str] | None:
    """"lesson:bptt:lstm" -> ("bptt", "lstm"); None for a task that is not a lesson's."""
    if not task.startswith(PREFIX):
        return None
    name, _, key = task[len(PREFIX):].partition(":")
    return name, key or "main"


def request_for(trace, name: str, key: str) -> TraceRequest:
    """The request that names a lesson trace, with the trace's model shape (for the status bar and
    the Model tab)."""
    cfg = trace.config
    return TraceRequest(
        cell=cfg.cell,
        activation=cfg.activation,
        hidden=cfg.hidden_size,
        layers=cfg.num_layers,
        bidirectional=cfg.bidirectional,
        task=lesson_task(name, key),
        text="",
    )


class LessonSource:
    """A `TraceSource` for one lesson, wrapping the explorer's own source for everything else."""

    def __init__(self, inner: TraceSource, name: str, on_progress: Callable[[str], object] | None = None):
        from rnn_tui.lessons import get_lesson

        self.inner = inner
        self.lesson = get_lesson(name)  # LessonError for an unknown name, before any worker runs
        self.name = name
        self.on_progress = on_progress  # called from the worker thread with one line of progress
        self.cancel = threading.Event()  # set to stop a lesson that is still setting up
        self.run = None  # the LessonRun, once built
        self._lock = threading.Lock()

    def first_request(self) -> TraceRequest:
        """The request the explorer opens on (the model shape is corrected once the lesson is built)."""
        return TraceRequest(task=lesson_task(self.name, self.lesson.first_trace), text="")

    def trace_keys(self) -> list[str]:
        """The lesson's traces that its steps show, first one first."""
        keys = [self.lesson.first_trace]
        for step in self.lesson.steps:
            if step.trace and step.trace not in keys:
                keys.append(step.trace)
        return keys

    def tasks(self) -> list[tuple[str, str]]:
        """The lesson's traces (so the Model tab can name and pick them), then the usual tasks."""
        mine = [(lesson_task(self.name, key), f"lesson {self.name}: the {key!r} model") for key in self.trace_keys()]
        try:
            return mine + list(self.inner.tasks())
        except Exception:
            return mine

    def ensure_run(self):
        """Set the lesson up (once; later calls return the same run)."""
        from rnn_tui.lessons import run_lesson

        with self._lock:
            if self.run is None:
                self.run = run_lesson(self.lesson, on_progress=self._progress, cancel=self.cancel.is_set)
            return self.run

    def _progress(self, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(text)

    def ready(self, request: TraceRequest):
        """The lesson's trace for this request when the lesson is set up already (under `rnn-tui
        serve --lesson` it is, before any visitor comes); else None, and `build` sets it up."""
        parsed = parse_task(request.task)
        if self.run is None or parsed is None or request.text:
            return None
        try:
            return self.build(request)
        except Exception:  # noqa: BLE001 - the worker's build says what is wrong
            return None

    def build(self, request: TraceRequest):
        parsed = parse_task(request.task)
        if parsed is None:
            return self.inner.build(request)
        name, key = parsed
        run = self.ensure_run()
        if name != self.name or key not in run.traces:
            from rnn_tui.lessons import LessonError

            raise LessonError(f"lesson {self.name} has no trace {key!r}")
        trace = run.traces[key]
        if request.text:  # the person typed their own input: run it through the lesson's model
            trace = self._own_input(trace, request)
        return replace(trace, extras={**trace.extras, "lesson": run, "lesson_key": key})

    def _own_input(self, trace, request: TraceRequest):
        """The lesson trace's model (rebuilt from the trace's own tensors) on the typed text; its
        tokens must be ones the model knows (read off the trace's one-hot inputs)."""
        import numpy as np
        import torch

        from rnn_tui.engine.model import build_model
        from rnn_tui.engine.trace import run_trace
        from rnn_tui.ui.source import SourceError, tokenize

        cfg = trace.config
        if cfg.input_mode != "onehot":
            raise SourceError("this lesson model reads numbers, not text: clear the input to see the lesson's sequence")
        if any(np.any(e.h0 != 0) for e in trace.layers):
            raise SourceError("this lesson model starts from another network's state: clear the input")
        known = {tok: int(np.argmax(row)) for tok, row in zip(trace.tokens, trace.inputs)}
        tokens = tokenize(request.text, request.tokenize)
        missing = [t for t in tokens if t not in known]
        if missing or not tokens:
            shown = " ".join(sorted(known))
            raise SourceError(f"{(missing or [''])[0]!r} is not a token this lesson's model has seen: use {shown}")
        model = build_model(cfg, seed=0).double()
        model.load_tensors({k: torch.as_tensor(v) for k, v in trace.params.items()})
        rows = len(tokens) if cfg.head == "step" else 1
        return run_trace(model, torch.tensor([known[t] for t in tokens]), [None] * rows, tokens=tokens,
                         vocab=trace.vocab, dtype=trace.dtype)
