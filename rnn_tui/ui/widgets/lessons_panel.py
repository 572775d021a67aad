"""The lesson beside the explorer: the current step's text (with the live numbers), its figure,
phase portrait or coloured unit strip, things to try, and a question to answer before the reveal.

Bound to the screen's View: the live lesson arrives inside the trace (`trace.extras["lesson"]`,
put there by `LessonSource`). Moving to a lesson step sends the explorer where the step points,
with messages only: `RequestChange` (another of the lesson's traces), `MoveTo` (step, unit,
matrix, once that trace is on screen) and `LessonPanel.ShowPane` (a tab).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.ui.messages import MoveTo, RequestChange
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.braille_plot import PhasePlot
from rnn_tui.ui.widgets.narration_bar import NarrationBar
from rnn_tui.ui.widgets.unitfinder_strip import UnitStrip

PANE_IDS = {  # a lesson step's `pane` -> the tab id of that pane (when the explorer has it)
    "explore": "tab-explorepane",
    "states": "tab-explorepane",
    "gradients": "tab-gradientspane",
    "training": "tab-trainingpane",
    "model": "tab-modelpane",
    "attention": "tab-attentionpane",
}
KEYS_HELP = "n next · b back · 1-4 answer · r reveal · ⇧↓/⇧↑ (J/K) scroll · L hide · Esc leave"


@dataclass
class Answer:
    chosen: int | None = None  # the choice the person made (None: revealed without answering)


class LessonPanel(VerticalScroll, can_focus=False):
    """One lesson, step by step."""

    DEFAULT_CSS = """
    LessonPanel { background: $surface; padding: 0 1; }
    LessonPanel > .lesson-title { text-style: bold; color: $primary; }
    LessonPanel > .lesson-step { text-style: bold; margin-top: 1; }
    LessonPanel > .lesson-figure { margin-top: 1; color: $foreground; }
    LessonPanel > .lesson-try { color: $secondary; }
    LessonPanel > .lesson-question { margin-top: 1; color: $accent; }
    LessonPanel > .lesson-keys { color: $foreground-muted; margin-top: 1; }
    LessonPanel > PhasePlot { height: 18; margin-top: 1; }
    LessonPanel > NarrationBar { margin-top: 1; }
    """

    view: reactive[View | None] = reactive(None)
    busy: reactive[str] = reactive("")
    request = reactive(None)  # the screen's TraceRequest
    index: reactive[int] = reactive(0)

    class ShowPane(Message):
        """Open the explorer tab with this id."""

        def __init__(self, pane_id: str) -> None:
            super().__init__()
            self.pane_id = pane_id

    def __init__(self, name: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lesson_name = name
        self.run = None  # the LessonRun, from the first lesson trace that arrives
        self.answers: dict[int, Answer] = {}
        self._pending: dict | None = None  # where to go once the step's trace is on screen
        self._applied: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(classes="lesson-title", id="lesson-title")
        yield Static(classes="lesson-step", id="lesson-step")
        yield NarrationBar().data_bind(LessonPanel.view)
        yield Static(id="lesson-text")
        yield Static(classes="lesson-figure", id="lesson-figure")
        yield PhasePlot()
        yield UnitStrip()
        yield Static(classes="lesson-try", id="lesson-try")
        yield Static(classes="lesson-question", id="lesson-question")
        yield Static(KEYS_HELP, classes="lesson-keys", id="lesson-keys")

    # ---- what is on screen -----------------------------------------------------------------
    @property
    def step(self):
        if self.run is None:
            return None
        steps = self.run.lesson.steps
        return steps[min(max(self.index, 0), len(steps) - 1)]

    def watch_view(self, view: View | None) -> None:
        if view is None:
            return
        run = view.trace.extras.get("lesson")
        if run is not None and self.run is None:
            self.run = run
            self.index = 0
            self._go(0)
        if self.run is not None:
            self._apply_pending()
            self._show()
            self._update_phase()

    def watch_busy(self) -> None:
        if self.run is None and self.is_mounted:
            self._show()

    def watch_index(self) -> None:
        if self.is_mounted:
            self._show()

    def on_mount(self) -> None:
        self._show()

    def _current_key(self) -> str | None:
        return None if self.view is None else self.view.trace.extras.get("lesson_key")

    def _show(self) -> None:
        run, step = self.run, self.step
        title = self.query_one("#lesson-title", Static)
        if run is None or step is None:
            from rnn_tui.lessons import LESSONS

            title.update(Text(f"Lesson: {self.lesson_name}"))
            line = LESSONS.get(self.lesson_name, ("", ""))[1]
            self.query_one("#lesson-step", Static).update(
                Text(f"{line}\n\nsetting up live: {self.busy or 'starting'}…", style="italic")
            )
            for sel in ("#lesson-text", "#lesson-figure", "#lesson-try", "#lesson-question"):
                self.query_one(sel, Static).update("")
            self.query_one(PhasePlot).display = False
            self.query_one(UnitStrip).display = False
            self.query_one(NarrationBar).display = False
            return
        from rnn_tui.lessons import fill

        r = run.results
        n = len(run.lesson.steps)
        title.update(Text(run.lesson.title))  # Text, never markup: lesson text has [ ] in it
        self.query_one("#lesson-step", Static).update(Text(f"Step {self.index + 1}/{n}: {step.title}"))
        self.query_one(NarrationBar).display = True
        self.query_one("#lesson-text", Static).update(Text(step.render(r)))
        figure = run.figures.get(step.figure, "") if step.figure else ""
        fig = self.query_one("#lesson-figure", Static)
        fig.update(Text(figure, no_wrap=True, overflow="crop"))
        fig.display = bool(figure)
        plot = self.query_one(PhasePlot)
        plot.display = bool(step.phase)
        if step.phase:
            plot.portrait = run.phases[step.phase]
            self._update_phase()
        strip = self.query_one(UnitStrip)
        strip.display = bool(step.units)
        if step.units:
            strip.result = run.units[step.units]
        tries = "\n".join("Try: " + fill(t, r) for t in step.tries)
        tr = self.query_one("#lesson-try", Static)
        tr.update(Text(tries))
        tr.display = bool(tries)
        self.query_one("#lesson-question", Static).update(self._question_text())
        if self.index == n - 1:
            checks = "\n".join(("✓ " if c.ok else "✗ ") + c.label for c in run.checks)
            self.query_one("#lesson-keys", Static).update(
                Text(f"{KEYS_HELP}\n\nLive results ({run.elapsed:.1f} s to set up):\n{checks}")
            )
        else:
            self.query_one("#lesson-keys", Static).update(KEYS_HELP)

    def _question_text(self) -> Text:
        step, run = self.step, self.run
        out = Text()
        if step is None or step.question is None or run is None:
            return out
        from rnn_tui.lessons import fill

        q, r = step.question, run.results
        out.append("Predict: " + fill(q.prompt, r) + "\n", style="bold")
        answer = self.answers.get(self.index)
        right = q.correct(r)
        for k, choice in enumerate(q.choices):
            mark = "  "
            if answer is not None:
                mark = "✓ " if k == right else ("✗ " if k == answer.chosen else "  ")
            out.append(f"{mark}{k + 1}) {fill(choice, r)}\n")
        if answer is None:
            out.append("Press 1-4 to answer, or r to reveal.", style="italic")
        else:
            if answer.chosen is not None:
                out.append("Right!\n" if answer.chosen == right else "Not quite.\n", style="bold")
            out.append(fill(q.explain, r))
        return out

    def _update_phase(self) -> None:
        if self.step is None or not self.step.phase or self.view is None:
            return
        key = self.step.trace or self.run.lesson.first_trace
        if self._current_key() == key:
            plot = self.query_one(PhasePlot)
            plot.portrait = self._portrait(key)
            plot.step = self.view.step

    def _portrait(self, key: str):
        """The step's phase portrait for the input on screen: the lesson's own, or, once the
        person typed their own input, the same map (the same input held) with that input's path,
        so the ◉ and "nearest" describe the state the model is in now."""
        own = self.run.phases[self.step.phase]
        lesson_trace = self.run.traces.get(key)
        trace = self.view.trace
        if lesson_trace is None or (trace.tokens == lesson_trace.tokens and trace.T == lesson_trace.T):
            return own
        cached = getattr(self, "_typed_portrait", None)
        if cached is not None and cached[0] is trace.layers[0].h:
            return cached[1]
        from rnn_tui.engine.phase import PhaseError, portrait_from_trace

        held = [t for t, tok in enumerate(trace.tokens) if tok == own.input_label]
        try:
            portrait = portrait_from_trace(trace, held[-1] if held else trace.T - 1)
        except PhaseError:
            portrait = own
        self._typed_portrait = (trace.layers[0].h, portrait)
        return portrait

    # ---- moving through the lesson -----------------------------------------------------------
    def move(self, delta: int) -> None:
        if self.run is None:
            return
        k = min(max(self.index + delta, 0), len(self.run.lesson.steps) - 1)
        if k != self.index:
            self.index = k
            self._go(k)

    def answer(self, choice: int | None) -> None:
        """Answer the current question (choice index), or reveal it (None)."""
        step = self.step
        if step is None or step.question is None or self.index in self.answers:
            return
        if choice is not None and not 0 <= choice < len(step.question.choices):
            return
        self.answers[self.index] = Answer(choice)
        self.query_one("#lesson-question", Static).update(self._question_text())

    def _go(self, k: int) -> None:
        """Send the explorer where lesson step k points."""
        from rnn_tui.ui.screens.lesson_source import request_for

        run = self.run
        step = run.lesson.steps[k]
        key = step.trace or self._current_key() or run.lesson.first_trace
        self._pending = {"key": key, "at": step.where(run.results), "pane": step.pane}
        req = request_for(run.traces[key], self.lesson_name, key)
        fields = ("cell", "activation", "hidden", "layers", "bidirectional", "task", "text")
        if self.request is None or any(getattr(req, f) != getattr(self.request, f) for f in fields):
            self.post_message(RequestChange({f: getattr(req, f) for f in fields}))
        if step.pane and step.pane in PANE_IDS:
            self.post_message(self.ShowPane(PANE_IDS[step.pane]))
        self._apply_pending()

    def _apply_pending(self) -> None:
        p = self._pending
        if p is None or self.view is None or self._current_key() != p["key"]:
            return
        self._pending = None
        at = dict(p["at"])
        if at.get("step", 0) is not None and at.get("step", 0) < 0:
            at["step"] = self.view.trace.T + at["step"]
        if at:
            self.post_message(MoveTo(step=at.get("step"), unit=at.get("unit"), matrix=at.get("matrix")))
