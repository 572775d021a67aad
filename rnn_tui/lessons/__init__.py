"""Guided lessons: each sets up live models and walks through a few steps of text.

Lessons sit above the engine (they build, train and trace models through it, and carry the prose,
the questions and the tabs to open); the engine never imports them.

    from rnn_tui.lessons import LESSONS, get_lesson, run_lesson
    run = run_lesson(get_lesson("bptt"))

`LESSONS` lists them in teaching order (name -> module under this package); listing them imports
nothing heavy. See `base.py` for what a lesson is.
"""

from __future__ import annotations

from importlib import import_module

from rnn_tui.lessons.base import (
    Check,
    Context,
    Lesson,
    LessonCancelled,
    LessonError,
    LessonRun,
    Question,
    Step,
    fill,
    run_lesson,
)

# name -> (module, one line for the menu); the order is the teaching order
LESSONS: dict[str, tuple[str, str]] = {
    "memory": ("memory", "how h_t carries the past: hand-set RNNs checked on paper, a phase portrait"),
    "bptt": ("bptt", "backpropagation through time: the vanishing gradient, tanh RNN against LSTM"),
    "exploding": ("exploding", "exploding gradients: a run that diverges, the same run with clipping"),
    "lstm-gates": ("lstm_gates", "LSTM gates on a memory task: the forget gate holding"),
    "gru": ("gru", "GRU update and reset gates; torch's and the textbook's reset placement"),
    "bidirectional": ("bidirectional", "bidirectional networks: filling a blank that needs the right-hand context"),
    "task-modes": ("task_modes", "sequence-to-class, synchronous sequence-to-sequence, encoder-decoder"),
    "attention": ("attention", "the bottleneck and attention: reversing through one state, and with attention"),
    "scan": ("scan", "a recurrence without h_{t-1} in its gates: minGRU and the parallel scan"),
    "unit-finder": ("unit_finder", "finding a unit that tracks something: bracket depth"),
}


def lesson_names() -> list[str]:
    return list(LESSONS)


def get_lesson(name: str) -> Lesson:
    if name not in LESSONS:
        raise LessonError(f"unknown lesson {name!r}: choose one of {', '.join(LESSONS)}")
    return import_module(f"rnn_tui.lessons.{LESSONS[name][0]}").LESSON


__all__ = [
    "LESSONS",
    "Check",
    "Context",
    "Lesson",
    "LessonCancelled",
    "LessonError",
    "LessonRun",
    "Question",
    "Step",
    "fill",
    "get_lesson",
    "lesson_names",
    "run_lesson",
]
