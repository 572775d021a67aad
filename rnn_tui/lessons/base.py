"""What a lesson is: data (its steps of text) and one small function that sets up the live models.

    lesson = get_lesson("memory")
    run = run_lesson(lesson)              # builds, trains, traces: live, never canned
    for step in lesson.steps:
        print(step.render(run.results))   # the text, with the live numbers in it

A `Lesson` holds:
- `build(ctx)`: builds the models (a hand-set scenario, a task, or training for a few seconds),
  traces them, and fills `ctx.results` (plain numbers and short strings the text quotes),
  `ctx.traces` (what the explorer shows, by key), `ctx.figures` (text tables drawn from the live
  numbers), `ctx.phases` (phase portraits, for two-unit RNNs) and `ctx.units` (unit-finder results);
- `steps`: a few `Step`s of text. Text is a format string over the results ("γ = {gamma_rnn:.2f}");
  a step may name the trace to show, where to put the cursor, the pane to open, a figure, a
  phase portrait, things to try, and a question to answer before the reveal;
- `checks(results)`: the lesson's claims as `Check`s ("the unclipped run diverged") that must
  hold on the live numbers; the tests run every lesson to its end and require them.

Nothing is printed here: `rnn-tui lesson --headless` and the explorer's lesson pane show it.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rnn_tui.engine.errors import EngineError

TIME_LIMIT = 60.0  # seconds a lesson may take to reach its result on a 2-core machine


class LessonError(EngineError):
    pass


class LessonCancelled(Exception):
    """The person left the lesson while it was still setting up."""


@dataclass(frozen=True)
class Question:
    """Predict before the reveal: the right choice is computed from the live results."""

    prompt: str
    choices: tuple[str, ...]
    answer: str  # key in results holding the index of the right choice
    explain: str  # format string over the results, shown after the answer

    def correct(self, results: dict) -> int:
        return int(results[self.answer])


@dataclass(frozen=True)
class Step:
    title: str
    text: str  # format string over the results
    tries: tuple[str, ...] = ()  # things to try in the explorer (format strings too)
    question: Question | None = None
    trace: str | None = None  # key of the trace the explorer shows from this step on
    at: dict = field(default_factory=dict)  # where to look: step, unit, matrix (int or a results key)
    pane: str | None = None  # the explorer tab to open: "explore", "gradients", "training", ...
    figure: str | None = None  # key in the run's figures: a text table drawn from live numbers
    phase: str | None = None  # key in the run's phase portraits
    units: str | None = None  # key in the run's unit-finder results: the best unit coloured over the text

    def render(self, results: dict) -> str:
        return fill(self.text, results)

    def where(self, results: dict) -> dict:
        """`at` with results keys resolved: step and unit name a results key when given as text;
        matrix is a matrix name ("h", "c", "f" ...) or a results key holding one."""
        out = {}
        for k, v in self.at.items():
            if not isinstance(v, str):
                out[k] = v
            elif k == "matrix":
                out[k] = results.get(v, v)
            elif v in results:
                out[k] = results[v]
            else:
                raise LessonError(f"step {self.title!r} points at {v!r}, which the lesson did not compute")
        return out


@dataclass(frozen=True)
class Check:
    label: str
    ok: bool


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    summary: str  # one line for the menu
    build: Callable[["Context"], None]
    steps: tuple[Step, ...]
    checks: Callable[[dict], list[Check]]
    first_trace: str = "main"  # the trace the explorer opens on


@dataclass
class Context:
    """What `build` fills; `progress(text)` reports what it is doing (training step ...)."""

    results: dict[str, Any] = field(default_factory=dict)
    traces: dict[str, Any] = field(default_factory=dict)  # key -> Trace
    figures: dict[str, str] = field(default_factory=dict)
    phases: dict[str, Any] = field(default_factory=dict)  # key -> PhasePortrait
    units: dict[str, Any] = field(default_factory=dict)  # feature -> UnitFinderResult
    timings: dict[str, float] = field(default_factory=dict)  # what took how long (seconds)
    on_progress: Callable[[str], Any] | None = None
    cancel: Callable[[], bool] | None = None

    def progress(self, text: str) -> None:
        if self.cancel is not None and self.cancel():
            raise LessonCancelled()
        if self.on_progress is not None:
            self.on_progress(text)

    def cancelled(self) -> bool:
        return bool(self.cancel is not None and self.cancel())


@dataclass(frozen=True)
class LessonRun:
    """A lesson set up live: its numbers, traces and figures, and how long it took."""

    lesson: Lesson
    results: dict
    traces: dict
    figures: dict
    phases: dict
    units: dict
    checks: tuple[Check, ...]
    elapsed: float  # seconds from start to the result
    timings: dict

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def run_lesson(lesson: Lesson, on_progress: Callable[[str], Any] | None = None,
               cancel: Callable[[], bool] | None = None) -> LessonRun:
    """Set the lesson up live (build, train, trace) and check its claims on the numbers."""
    import torch

    ctx = Context(on_progress=on_progress, cancel=cancel)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # lessons seed their own models; leave the caller's RNG
        torch.manual_seed(0)
        lesson.build(ctx)
    elapsed = time.perf_counter() - t0
    ctx.results.setdefault("elapsed", elapsed)
    missing = [s.trace for s in lesson.steps if s.trace and s.trace not in ctx.traces]
    if lesson.first_trace not in ctx.traces or missing:
        raise LessonError(f"lesson {lesson.name}: no trace {(missing or [lesson.first_trace])[0]!r} was built")
    checks = tuple(lesson.checks(ctx.results))
    return LessonRun(lesson, dict(ctx.results), dict(ctx.traces), dict(ctx.figures), dict(ctx.phases), dict(ctx.units), checks,
                     elapsed, dict(ctx.timings))


class _Formatter(string.Formatter):
    def get_value(self, key, args, kwargs):
        if isinstance(key, str) and key not in kwargs:
            raise LessonError(f"the lesson text names {key!r}, which the lesson did not compute")
        return super().get_value(key, args, kwargs)


def fill(text: str, results: dict) -> str:
    """A lesson's format string with the live numbers in it."""
    return _Formatter().vformat(text, (), results)


def table(rows: list[list[str]], header: list[str] | None = None) -> str:
    """A plain text table, columns padded to their widest cell (for figures)."""
    from rich.cells import cell_len

    allrows = ([header] if header else []) + rows
    widths = [max(cell_len(str(r[k])) for r in allrows) for k in range(len(allrows[0]))]
    out = []
    for n, r in enumerate(allrows):
        cells = [str(c) + " " * (widths[k] - cell_len(str(c))) for k, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
        if header and n == 0:
            out.append("  ".join("─" * w for w in widths))
    return "\n".join(out)


def sparkline(values, lo: float | None = None, hi: float | None = None) -> str:
    """Values as a row of block glyphs ▁..█ (nan as ·)."""
    import math

    ramp = "▁▂▃▄▅▆▇█"
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return "·" * len(values)
    lo = min(finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    span = (hi - lo) or 1.0
    out = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append("·")
        else:
            k = int(round((min(max(v, lo), hi) - lo) / span * (len(ramp) - 1)))
            out.append(ramp[k])
    return "".join(out)
