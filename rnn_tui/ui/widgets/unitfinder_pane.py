"""The unit finder in the explorer: pick a feature of the text (inside brackets, inside quotes,
position in word, digit, vowel, space, punctuation ...) or select the span of steps where a
behaviour happens, and see every unit ranked by how well its activation follows it (Pearson's r,
with its sign), and the best units as colour over the text.

    <  /  >     start / end the selected span at the current step (then Enter on "selected span")
    Enter       rank against the highlighted feature
    u           go to the best unit (its row in the States heatmaps)

It ranks over the sequence on screen: type or paste a longer text in the input line to scan more.
For a whole corpus of sequences, batched, see `rnn_tui.engine.unitfinder.corpus_activations`
(the unit-finder lesson uses it). Pure numpy on the trace: no torch.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.widgets.pane import Pane
from rnn_tui.ui.widgets.unitfinder_strip import UnitStrip
from rnn_tui.ui.work import Job, keyed

SPAN = "__span__"
TOP = 10


def ranking(trace, chosen: str, span: tuple[int, int] | None):
    """Every h and c unit of the trace ranked against a feature, or the selected span (numpy)."""
    from rnn_tui.engine.errors import EngineError
    from rnn_tui.engine.unitfinder import find_units, trace_activations

    acts = trace_activations(trace)
    if chosen == SPAN:
        if span is None:
            raise EngineError("select a span first: < at its first step, > at its last")
        a, b = span
        return find_units(acts, span=(min(a, b), max(a, b) + 1), matrices=("h", "c"), keep=TOP)
    return find_units(acts, chosen, matrices=("h", "c"), keep=TOP)


class UnitFinderPane(Pane):
    TITLE = "Units"
    DESCRIPTION = "unit finder: rank units by how well they follow a feature of the text or a selected span"

    DEFAULT_CSS = """
    UnitFinderPane { layout: vertical; height: 1fr; }
    UnitFinderPane > Horizontal { height: 1fr; }
    UnitFinderPane #unitfinder-features { width: 40; height: 1fr; }
    UnitFinderPane #unitfinder-right { width: 1fr; padding: 0 1; }
    UnitFinderPane #unitfinder-hint { height: 1; color: $foreground-muted; }
    """

    BINDINGS = [
        Binding("less_than_sign", "mark(0)", "span start", key_display="<", tooltip="the selected span starts here"),
        Binding("greater_than_sign", "mark(1)", "span end", key_display=">", tooltip="the selected span ends here"),
        Binding("u", "go_best", "best unit", tooltip="select the best unit in the heatmaps"),
    ]

    span: reactive[tuple[int, int] | None] = reactive(None)
    chosen: reactive[str | None] = reactive(None)  # a feature name, SPAN, or None

    def __init__(self) -> None:
        super().__init__()
        self.result = None  # the UnitFinderResult shown
        self.error = ""
        self.ranked = Job(self, "unitfinder", ranking, keep=16)

    def compose(self) -> ComposeResult:
        from rnn_tui.engine.unitfinder import FEATURES

        options = [Option(Text(f.description), id=name) for name, f in FEATURES.items()]
        options.append(Option("the selected span (< and >)", id=SPAN))
        with Horizontal():
            yield OptionList(*options, id="unitfinder-features")
            with VerticalScroll(id="unitfinder-right"):
                yield Static(id="unitfinder-ranking")
                yield UnitStrip()
        yield Static("Enter ranks · < > select a span at the current step · u go to the best unit",
                     id="unitfinder-hint")

    def opened(self) -> None:
        self.query_one(OptionList).focus()
        self.rank()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.chosen = event.option.id
        self.rank()

    def watch_view(self) -> None:
        if self.chosen is not None:
            self.rank()

    def watch_span(self) -> None:
        if self.chosen == SPAN:
            self.rank()
        elif self.is_mounted:
            self._show()

    # ---- the ranking -------------------------------------------------------------------------
    def rank(self) -> None:
        """Rank the units of the trace on screen against the chosen feature (in a worker)."""
        view = self.view
        if view is None or self.chosen is None:
            self.result, self.error = None, ""
            self._show()
            return
        span = self.span if self.chosen == SPAN else None
        outcome = self.ranked.get(keyed(view.trace, self.chosen, span), view.trace, self.chosen, span)
        if outcome.running:
            return  # the ranking shown stays until the new one arrives
        self.result, self.error = (outcome.value, "") if outcome.ready else (None, outcome.error)
        self._show()

    def computed(self, job, key) -> None:
        if self.shown:
            self.rank()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        out = Text()
        if self.span is not None:
            a, b = sorted(self.span)
            out.append(f"selected span: steps {a}..{b}\n", style="bold")
        if self.error:
            out.append(self.error, style="italic")
        elif self.result is None:
            out.append("Pick a feature (or select a span and pick the last entry), then Enter.", style="italic")
        else:
            res = self.result
            out.append(f"{res.description}: {len(res.tokens)} steps, every h and c unit ranked by |r|\n\n", style="bold")
            table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
            for name, justify in (("unit", "left"), ("r", "right"), ("", "left")):
                table.add_column(name, justify=justify)
            for s in res.scores[:TOP]:
                bar = "█" * int(round(abs(s.r) * 12))
                table.add_row(s.name, f"{s.r:+.3f}", Text(bar, style="green" if s.r >= 0 else "red"))
            self.query_one("#unitfinder-ranking", Static).update(_stack(out, table))
            strip = self.query_one(UnitStrip)
            strip.result = res
            strip.display = True
            return
        self.query_one("#unitfinder-ranking", Static).update(out)
        self.query_one(UnitStrip).display = False

    # ---- keys --------------------------------------------------------------------------------
    def action_mark(self, end: int) -> None:
        if self.view is None:
            return
        t = self.view.step
        if end == 0 or self.span is None:
            self.span = (t, t)
        else:
            self.span = (self.span[0], t)

    def action_go_best(self) -> None:
        if self.result is None or not self.result.scores:
            return
        best = self.result.scores[0]
        self.post_message(MoveTo(unit=best.unit, matrix=best.matrix))


def _stack(head: Text, table: Table):
    from rich.console import Group

    return Group(head, table)
