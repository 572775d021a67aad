"""Every lesson, run headless to its end on live models: its claims hold, its text fills in, and it
reaches its result within the time limit."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from rnn_tui.cli import main
from rnn_tui.lessons import LESSONS, LessonError, fill, get_lesson, run_lesson
from rnn_tui.lessons.base import TIME_LIMIT

REQUIRED = {"memory", "bptt", "exploding", "lstm-gates", "gru", "bidirectional", "task-modes", "unit-finder", "attention",
            "scan"}


def test_the_catalog_has_the_lessons_of_the_issue():
    assert REQUIRED <= set(LESSONS)
    for name in LESSONS:
        lesson = get_lesson(name)
        assert lesson.name == name and lesson.steps and lesson.title
    with pytest.raises(LessonError, match="unknown lesson"):
        get_lesson("nope")


@pytest.mark.parametrize("name", list(LESSONS))
def test_lesson_runs_headless_to_its_end(name, capsys):
    code = main(["lesson", name, "--headless", "--width", "120"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "✗" not in out
    seconds = float(re.search(r"result reached live in ([0-9.]+) s", out).group(1))
    assert seconds < TIME_LIMIT
    lesson = get_lesson(name)
    for k, step in enumerate(lesson.steps, 1):
        assert f"Step {k}/{len(lesson.steps)}: {step.title}" in out


def test_lesson_records_are_consistent():
    run = run_lesson(get_lesson("memory"))
    assert run.ok and run.elapsed < TIME_LIMIT
    for step in run.lesson.steps:
        assert step.render(run.results)
        where = step.where(run.results)
        trace = run.traces[step.trace or run.lesson.first_trace]
        if "step" in where and where["step"] >= 0:
            assert where["step"] < trace.T
        if step.question is not None:
            q = step.question
            assert 0 <= q.correct(run.results) < len(q.choices)
            assert fill(q.explain, run.results)
        if step.phase:
            assert step.phase in run.phases
        if step.figure:
            assert step.figure in run.figures


def test_a_cancelled_lesson_stops():
    from rnn_tui.lessons import LessonCancelled

    with pytest.raises(LessonCancelled):
        run_lesson(get_lesson("lstm-gates"), cancel=lambda: True)


def test_cli_lists_lessons_and_refuses_unknown_ones():
    ok = subprocess.run([sys.executable, "-m", "rnn_tui", "lesson"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0
    for name in REQUIRED:
        assert name in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "rnn_tui", "lesson", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "unknown lesson 'nope'" in bad.stderr
