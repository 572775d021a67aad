"""`rnn-tui lesson [NAME]`: guided lessons on live models.

    rnn-tui lesson                   list the lessons
    rnn-tui lesson bptt              open the lesson in the explorer
    rnn-tui lesson bptt --headless   print each step's text and the live results (no terminal UI)

A lesson sets up its models live (a hand-set scenario, a task, or a few seconds of training), then
walks through a few steps of text with things to try and questions to answer before the reveal.
Headless, the answers are revealed at once and the lesson's claims are checked on the live
numbers: exit code 0 when all hold, 1 when one does not.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_parser(sub) -> None:
    from rnn_tui.cli import int_in

    p = sub.add_parser(
        "lesson",
        help="guided lessons on live models (no name: list them)",
        description="Guided lessons: each sets up live models (built, trained or hand-set on the spot) and "
        "walks through a few steps of text, things to try and questions. With no name, lists them.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the lesson to open (see the list)")
    p.add_argument("--headless", action="store_true",
                   help="print each step's text and the live results instead of opening the explorer")
    p.add_argument("--theme", default=None, metavar="NAME", help="explorer theme (e.g. high-contrast for a projector)")
    p.add_argument("--width", type=int_in(20, 1000), default=None, metavar="N", help="headless: width of figures (default: terminal)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rnn_tui.lessons import LESSONS, get_lesson

    if not args.name:
        return list_lessons(LESSONS)
    lesson = get_lesson(args.name)  # LessonError (one line, exit 2) for an unknown name
    if args.headless:
        return run_headless(lesson, width=args.width)
    return run_in_explorer(lesson, theme=args.theme)


def list_lessons(lessons: dict) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, (_, line) in lessons.items():
        table.add_row(name, line)
    console.print("Lessons (rnn-tui lesson NAME; add --headless to print one):")
    console.print(table)
    return 0


def run_headless(lesson, width: int | None = None) -> int:
    from rich.console import Console
    from rich.rule import Rule
    from rich.text import Text

    from rnn_tui.lessons import fill, run_lesson

    console = Console(highlight=False, markup=False, width=width, soft_wrap=False)  # lesson text has [ ]
    console.print(Rule(Text(f"{lesson.title}  ({lesson.name})", style="bold")))
    t0 = time.perf_counter()

    def progress(text: str) -> None:
        console.print(Text(f"  · {text}", style="dim"))

    run = run_lesson(lesson, on_progress=progress)
    console.print(Text(f"  · set up live in {run.elapsed:.1f} s", style="dim"))
    r = run.results
    for k, step in enumerate(lesson.steps, 1):
        console.print()
        console.print(Text(f"Step {k}/{len(lesson.steps)}: {step.title}", style="bold"))
        where = step.where(r)
        shown = f"explorer: trace {step.trace or lesson.first_trace!r}"
        if where:
            shown += ", " + ", ".join(f"{key} {value}" for key, value in where.items())
        if step.pane:
            shown += f", {step.pane} tab"
        console.print(Text(shown, style="dim"))
        console.print(step.render(r))
        if step.figure:
            console.print()
            console.print(run.figures[step.figure])
        if step.phase:
            from rnn_tui.ui.widgets.braille_plot import render_phase

            console.print()
            console.print(render_phase(run.phases[step.phase], min(console.width, 78), 18))
        for item in step.tries:
            console.print(Text("Try: ", style="cyan") + Text(fill(item, r)))
        if step.question is not None:
            q = step.question
            console.print(Text("Predict: ", style="magenta") + Text(fill(q.prompt, r)))
            for n, choice in enumerate(q.choices):
                console.print(f"  {chr(ord('a') + n)}) {fill(choice, r)}")
            right = q.correct(r)
            console.print(Text("Answer: ", style="magenta") + Text(f"{chr(ord('a') + right)}) {fill(q.choices[right], r)}"))
            console.print(fill(q.explain, r))
    console.print()
    console.print(Rule(Text("live results", style="bold")))
    for check in run.checks:
        mark = Text("✓ ", style="green") if check.ok else Text("✗ ", style="red bold")
        console.print(mark + Text(check.label))
    total = time.perf_counter() - t0
    console.print(Text(f"result reached live in {run.elapsed:.2f} s (whole lesson printed in {total:.1f} s)"))
    if not run.ok:
        print(f"rnn-tui lesson {lesson.name}: a result did not hold on this run (see ✗ above)", file=sys.stderr)
        return 1
    return 0


def run_in_explorer(lesson, theme: str | None = None) -> int:
    from rnn_tui.lessons import LessonError
    from rnn_tui.ui.lesson_app import run_lesson_app
    from rnn_tui.ui.source import EngineSource
    from rnn_tui.ui.themes import theme_name

    try:
        theme_name(theme or "dark")
    except ValueError as e:
        raise LessonError(str(e)) from None
    from rnn_tui.cli import need_terminal

    need_terminal("a lesson in the explorer")
    return run_lesson_app(EngineSource(dtype="float64"), lesson.name, theme=theme or "dark")
