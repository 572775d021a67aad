"""Attention: where the decoder looks in the source at every step, and what happens if it looks elsewhere.

    dot attention · t=3 reads 'f' · α_3 peaks on k=4 'f' (93%) · anti-diagonal 0.88
    α_t,k        e  h  f  a  d          ← encoder tokens k (what was read)
      0 <s>      ·  ·  ·  ·  █          rows: decoder steps t (what it reads: y_{t-1})
    ▶ 3 f        ·  █  ·  ·  ·          the current step lit
    ,/.  pick an encoder step     a  hold α_t on it     d  drop the last hold   D  all

The weights come from the trace (`engine.attention.AttentionRecord`: rows sum to 1). A hold runs
the decoder again with α_t one-hot on the chosen encoder step (`engine.encdec.hold_attention`, in a
thread worker): the held run's weights are drawn, with the predictions that changed downstream
(under greedy decoding what the decoder reads next follows what it now writes).
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.engine.records import Trace
from rnn_tui.safe_text import one_cell
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.palette import Scale
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.interventions_pane import changes, changes_text
from rnn_tui.ui.widgets.matrix_view import Matrix, MatrixView
from rnn_tui.ui.work import Job, keyed

NO_ATTENTION = ("this model has no attention: open an encoder-decoder with it, "
                "rnn-tui --task reverse --attention dot (or additive)")  # fmt: skip


def held_run(base: Trace, holds: tuple[tuple[int, int], ...]) -> Trace:
    """The decoder run again with α held one-hot (in a worker: the cells' maths)."""
    from rnn_tui.engine.encdec import hold_attention

    return hold_attention(base, holds)


class AttentionPane(AnalysisPane):
    TITLE = "Attention"
    DESCRIPTION = "where an encoder-decoder's decoder looks in the source at each step; hold it on one position"

    BINDINGS = [
        Binding("comma", "column(-1)", "← source", tooltip="the encoder step to the left"),
        Binding("full_stop", "column(1)", "source →", tooltip="the encoder step to the right"),
        Binding("a", "hold", "hold α_t", tooltip="hold this step's attention on the selected encoder step"),
        Binding("d", "drop(False)", "drop last", tooltip="remove the last hold"),
        Binding("D", "drop(True)", "drop all", show=False, tooltip="remove every hold"),
    ]

    DEFAULT_CSS = """
    AttentionPane #att-summary { height: 1; padding: 0 1; }
    AttentionPane #att-holds { height: 1; padding: 0 1; }
    AttentionPane #att-body { height: 1fr; }
    AttentionPane #att-map { width: 1fr; }
    AttentionPane #att-changes { width: 42; padding: 0 1; border-left: vkey $panel; }
    AttentionPane.-narrow #att-changes { display: none; }
    """

    column: reactive[int] = reactive(0)  # the encoder step picked
    holds: reactive[tuple[tuple[int, int], ...]] = reactive(())

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.held = Job(self, "attention-hold", held_run, keep=4)  # by (trace, holds)

    def compose(self) -> ComposeResult:
        yield Static(id="att-summary")
        yield Static(id="att-holds")
        with Horizontal(id="att-body"):
            yield MatrixView(id="att-map")
            yield Static(id="att-changes")

    def on_resize(self) -> None:
        self.set_class(self.size.width < 90, "-narrow")

    @property
    def record(self):
        """The attention of the trace in view (None when its model has none)."""
        return None if self.view is None else self.view.trace.extras.get("attention")

    @property
    def held_trace(self) -> Trace | None:
        if self.view is None or not self.holds:
            return None
        outcome = self.held.result(keyed(self.view.trace, self.holds))
        return outcome.value if outcome is not None and outcome.ready else None

    # ---- keys ---------------------------------------------------------------------------------
    def action_column(self, delta: int) -> None:
        record = self.record
        if record is not None:
            self.column = min(max(self.column + delta, 0), len(record.encoder_tokens) - 1)

    def action_hold(self) -> None:
        if self.record is None:
            self.notify(NO_ATTENTION, timeout=4, markup=False)
            return
        t = self.view.step
        self.holds = tuple(h for h in self.holds if h[0] != t) + ((t, self.column),)

    def action_drop(self, everything: bool) -> None:
        self.holds = () if everything else self.holds[:-1]

    def watch_column(self) -> None:
        if self.is_mounted and self.shown:
            self.refresh_analysis()

    def watch_holds(self) -> None:
        if self.is_mounted and self.shown:
            self.refresh_analysis()

    def watch_view(self, old, new) -> None:
        if old is not None and new is not None and old.trace is not new.trace:
            self.holds = ()  # holds belong to the trace they were made on
        super().watch_view(old, new)

    def on_matrix_view_picked(self, message: MatrixView.Picked) -> None:
        message.stop()
        self.column = message.col
        self.post_message(MoveTo(step=message.row))

    # ---- drawing --------------------------------------------------------------------------------
    def refresh_analysis(self) -> None:
        if not self.is_mounted:
            return
        view = self.view
        if view is None:
            return self._message(self.busy or "no trace yet")
        record = self.record
        if record is None:
            return self._message(NO_ATTENTION)
        self.column = min(self.column, len(record.encoder_tokens) - 1)
        held = None
        if self.holds:
            outcome = self.held.get(keyed(view.trace, self.holds), view.trace, self.holds)
            if outcome.failed:
                return self._message(f"could not hold the attention: {outcome.error}")
            held = outcome.value if outcome.ready else None
        self._draw(view.trace, record, held)

    def _message(self, text: str) -> None:
        self.query_one("#att-summary", Static).update(Text(text, style="dim italic"))
        self.query_one("#att-holds", Static).update("")
        mv = self.query_one(MatrixView)
        mv.matrix = None
        mv.message = text
        self.query_one("#att-changes", Static).update("")

    def _draw(self, base: Trace, record, held: Trace | None) -> None:
        view = self.view
        shown = record if held is None else held.extras["attention"]
        trace = base if held is None else held
        t = view.step
        with self.app.batch_update():
            mv = self.query_one(MatrixView)
            key = keyed(base, held)
            if getattr(self, "_map_key", None) != key:
                self._map_key = key
                A = np.asarray(shown.weights, dtype=np.float64)
                held_rows = {ft for ft, _ in shown.forced}
                rows = tuple(f"{'*' if r in held_rows else ''}{one_cell(trace.tokens[r])}" for r in range(A.shape[0]))
                mv.matrix = Matrix(
                    values=A, scale=Scale("sequential", 0.0, 1.0),
                    title=f"α_t,k ({record.kind}): a row per decoder step (reads y_t-1), a column per source token"
                    + (" · * held" if held_rows else ""),
                    row_axis="t", col_axis="k", row_labels=rows,
                    col_labels=tuple(one_cell(tok) for tok in record.encoder_tokens), value_format="{:.3f}",
                    unit_name="t",
                )  # fmt: skip
            mv.cursor = (t, self.column)
            self.query_one("#att-summary", Static).update(self._summary(trace, shown, t, held is None and bool(self.holds)))
            self.query_one("#att-holds", Static).update(self._holds_text(record))
            self.query_one("#att-changes", Static).update(
                changes_text(base, changes(base, held)) if held is not None else
                Text("a holds this step's attention on the selected source token; what changes downstream "
                     "is listed here", style="dim"))  # fmt: skip

    def _summary(self, trace: Trace, record, t: int, waiting: bool) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        A = np.asarray(record.weights)
        k = int(np.argmax(A[t]))
        out.append(f"{record.kind} attention", style="bold")
        out.append(f" · t={t} reads {one_cell(trace.tokens[t])!r} · α_{t} peaks on k={k} "
                   f"{one_cell(record.encoder_tokens[k])!r} ({100 * A[t, k]:.0f}%)")
        out.append(f" · picked k={self.column} {one_cell(record.encoder_tokens[self.column])!r} "
                   f"{100 * A[t, self.column]:.0f}%")
        out.append(f" · anti-diagonal {record.anti_diagonal_mass:.2f}", style="dim")
        if waiting:
            out.append(" · running the decoder with the holds…", style="dim italic")
        return out

    def _holds_text(self, record) -> Text:
        if not self.holds:
            return Text(",/. picks a source token, a holds α_t on it", style="dim")
        held = self.held_trace
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("held: ", style="bold")
        out.append(", ".join(f"α_{t} on k={k} {one_cell(record.encoder_tokens[k])!r}" for t, k in self.holds))
        if held is not None:
            base = self.view.trace
            out.append(f"   loss {base.loss:.4g} → {held.loss:.4g} ({held.loss - base.loss:+.3g})", style="bold")
        out.append("   d drops the last, D all", style="dim")
        return out
