"""Compare: the model on screen beside another cell on the same input, step for step.

    c / C   the other cell: next / previous, in the order `rnn-tui cells` lists them
    n       the other rnn's activation (tanh, relu, sigmoid, identity)

Both sides show the same heatmaps at the same step, unit, layer and map, and the same per-step
gradient norms ‖dL/dh_t‖ (log), so a vanishing gradient in one and not the other is plain to see.
The other model is built by the explorer's own trace source (same hidden size, layers, task,
input and seed) in a thread worker.
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.engine.config import ACTIVATIONS, CELLS
from rnn_tui.engine.records import Trace
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.numbers import number
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.step_bars import Series, StepBars
from rnn_tui.ui.work import Job, keyed


def default_other(cell: str) -> str:
    """The classic pair: a plain tanh RNN against an LSTM."""
    return "lstm" if cell == "rnn" else "rnn"


def cell_name(trace: Trace) -> str:
    cfg = trace.config
    return f"rnn-{cfg.activation}" if cfg.cell == "rnn" else cfg.cell


def reach(entry) -> float:
    """‖dL/dh_0‖ / max_t ‖dL/dh_t‖ in this layer: how much of the gradient reaches the first step."""
    norms = np.asarray(entry.dL_dh_norm, dtype=np.float64)
    top = float(np.nanmax(norms)) if norms.size and np.isfinite(norms).any() else 0.0
    first = norms[0] if entry.direction == "forward" else norms[-1]
    return float(first) / top if top > 0 else math.nan


def side_title(trace: Trace, view: View) -> Text:
    params = sum(int(v.size) for v in trace.params.values())
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f" {cell_name(trace)} ", style="bold reverse")
    out.append(f"  {params:,} params  loss {number(trace.loss)}  ")
    entry = trace.layer(view.layer, view.direction)
    r = reach(entry)
    if math.isfinite(r):
        out.append("first/peak ‖dL/dh‖ ", style="dim")
        out.append(f"{r:.2g}", style="bold")
    return out


class ComparePane(AnalysisPane):
    TITLE = "Compare"
    DESCRIPTION = "two cells side by side on the same input: heatmaps and gradient norms, step for step"

    BINDINGS = [
        Binding("c", "other_cell(1)", "other cell", tooltip="compare with the next cell"),
        Binding("C", "other_cell(-1)", "previous cell", show=False, tooltip="compare with the previous cell"),
        Binding("n", "other_activation", "rnn activation", tooltip="the other rnn's activation"),
    ]

    DEFAULT_CSS = """
    ComparePane > Horizontal { height: 1fr; }
    ComparePane .compare-side { width: 1fr; height: 1fr; }
    ComparePane #compare-right { border-left: vkey $panel; }
    ComparePane .compare-title { height: 1; }
    ComparePane .compare-bars { height: auto; }
    """

    other_cell: reactive[str | None] = reactive(None)  # None: the default partner of the cell on screen
    other_activation: reactive[str] = reactive("tanh")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # the other model's trace, by its request (a new input or seed makes them stale)
        self.other = Job(self, "compare", lambda source, request: source.build(request), keep=8)

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="compare-left", classes="compare-side"):
                yield Static(classes="compare-title", id="compare-left-title")
                yield HeatmapView(id="compare-left-map")
                yield StepBars(id="compare-left-bars", classes="compare-bars")
            with Vertical(id="compare-right", classes="compare-side"):
                yield Static(classes="compare-title", id="compare-right-title")
                yield HeatmapView(id="compare-right-map")
                yield StepBars(id="compare-right-bars", classes="compare-bars")

    # ---- the other model ---------------------------------------------------------------------------
    def other_request(self) -> TraceRequest | None:
        request = self.request
        if request is None:
            return None
        cell = self.other_cell or default_other(request.cell)
        return request.replace(cell=cell, activation=self.other_activation if cell == "rnn" else "tanh")

    @property
    def other_trace(self) -> Trace | None:
        req = self.other_request()
        outcome = None if req is None else self.other.result(req)
        return outcome.value if outcome is not None and outcome.ready else None

    def refresh_analysis(self) -> None:
        if not self.is_mounted:
            return
        self._draw_side("left", self.view)
        req = self.other_request()
        if req is None or self.view is None:
            self._draw_side("right", None, self.busy or "no trace yet")
            return
        outcome = self.other.get(req, self.source, req)
        if outcome.ready:
            self._draw_side("right", self._other_view(outcome.value))
        elif outcome.failed:
            self._draw_side("right", None, f"could not build {req.cell}: {outcome.error}")
        else:
            self._draw_side("right", None, f"building {req.cell}…")

    def _other_view(self, trace: Trace) -> View:
        v = self.view
        return View(trace, step=v.step, unit=v.unit, layer=v.layer, direction=v.direction, matrix=v.matrix,
                    all_maps=v.all_maps)

    def watch_request(self) -> None:
        self.other.forget()  # another input or seed: the other model's traces are stale

    # ---- drawing ------------------------------------------------------------------------------------
    def _draw_side(self, side: str, view: View | None, message: str = "") -> None:
        title = self.query_one(f"#compare-{side}-title", Static)
        heatmap = self.query_one(f"#compare-{side}-map", HeatmapView)
        bars = self.query_one(f"#compare-{side}-bars", StepBars)
        if view is None:
            title.update(Text(message or self.busy, style="dim italic"))
            heatmap.busy = message or self.busy
            heatmap.view = None
            bars.series = ()
            return
        trace = view.trace
        with self.app.batch_update():
            title.update(side_title(trace, view))
            heatmap.view = view
            entry = view.entry
            key = keyed(trace, view.layer, view.direction)
            if getattr(bars, "_compare_key", None) != key:
                bars._compare_key = key
                series = [Series("‖dL/dh_t‖", entry.dL_dh_norm, log=True)]
                if entry.dL_dc is not None:
                    series.append(Series("‖dL/dc_t‖", entry.dL_dc_norm, log=True))
                bars.series = tuple(series)
                bars.tokens = tuple(trace.tokens)
            bars.step = view.step

    # ---- actions and mouse ----------------------------------------------------------------------------
    def action_other_cell(self, delta: int) -> None:
        request = self.request
        current = self.other_cell or default_other(request.cell if request else "lstm")
        self.other_cell = CELLS[(CELLS.index(current) + delta) % len(CELLS)]

    def action_other_activation(self) -> None:
        self.other_activation = ACTIVATIONS[(ACTIVATIONS.index(self.other_activation) + 1) % len(ACTIVATIONS)]
        if (self.other_cell or default_other(self.request.cell if self.request else "lstm")) != "rnn":
            self.other_cell = "rnn"

    def watch_other_cell(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def watch_other_activation(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def on_heatmap_view_picked(self, message: HeatmapView.Picked) -> None:
        message.stop()
        self.post_message(MoveTo(step=message.step, unit=message.unit))

    def on_heatmap_view_hover(self, message: HeatmapView.Hover) -> None:
        message.stop()
