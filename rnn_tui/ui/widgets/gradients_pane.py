"""Gradients: how the error reaches back through time, for the layer and direction in view.

    l0 · loss 2.31 · γ 0.66 per step back (R² 0.91, 55 pairs, lags ≤ 33) · ‖W_hh‖₂ 1.2 · ρ 0.93
    t ▼                                       per-step bars over the tokens:
    x          h e l l o ␣ w o r l d           ‖dL/dh_t‖ and ‖dL/dc_t‖ (log), the step Jacobian
    ‖dL/dh‖ log ▁▂▂▃▄▅▅▆▇█▇                    norm ‖ds_t/ds_t-1‖, and ‖∂L/∂W_hh at step k‖ (log)
    ‖d l_r/d h_k‖ (log10)        W_hh spectrum against 1
    r\\k ...                      i σ ●●─●──│── ...

The numbers come from `engine.gradflow.analyze_gradflow`, run in a thread worker (it needs
torch) whenever this tab is open on a trace it has not analysed yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual.worker import get_current_worker

from rnn_tui.engine.records import Trace
from rnn_tui.ui.lab import gradflow
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.numbers import finite_trace, number
from rnn_tui.ui.palette import Scale
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane, keyed
from rnn_tui.ui.widgets.matrix_view import Matrix, MatrixView
from rnn_tui.ui.widgets.spectrum_view import SpectrumView
from rnn_tui.ui.widgets.step_bars import Series, StepBars


@dataclass
class GradFlowReady(Message):
    trace: Trace
    report: object  # engine.gradflow.GradFlowReport


@dataclass
class GradFlowFailed(Message):
    trace: Trace
    error: str


def log_matrix(flow: np.ndarray) -> tuple[np.ndarray, Scale]:
    """log10 of a flow matrix for colouring, and its scale. Exact zeros (a loss cannot reach a
    later step) and rows that were not computed sit at the bottom of the scale."""
    v = np.asarray(flow, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    if not ok.any():
        return np.zeros_like(v), Scale("sequential", 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lv = np.where(ok, np.log10(np.where(ok, v, 1.0)), np.nan)
    lo, hi = float(np.nanmin(lv)), float(np.nanmax(lv))
    if hi <= lo:
        hi = lo + 1.0
    nonfinite_input = ~np.isfinite(v) & ~np.isnan(v)  # +-inf: a diverged model, shown as such
    lv = np.where(ok, lv, lo)
    lv = np.where(nonfinite_input, np.nan, lv)
    return lv, Scale("sequential", lo, hi)


def summary(trace: Trace, entry, flow) -> Text:
    """One line: the layer, the loss, the fitted decay and the spectral numbers."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f" {entry.name} ", style="bold reverse")
    out.append(f"  loss {number(trace.loss)}  ")
    d = flow.decay
    if math.isfinite(d.gamma):
        out.append("γ ", style="bold")
        out.append(f"{d.gamma:.3g}", style="bold")
        out.append(f"  per step back (R² {d.r2:.2f}, {d.points} pairs, lags ≤ {d.max_lag})  ")
    else:
        out.append("γ not fitted (too few pairs)  ", style="dim")
    radii = " ".join(
        f"{'' if g == 'a' else g + ' '}{s.spectral_radius:.3g}" for g, s in flow.spectrum.items()
    )
    out.append("ρ(W_hh) ", style="bold")
    out.append(radii)
    return out


class GradientsPane(AnalysisPane):
    TITLE = "Gradients"
    DESCRIPTION = "‖dL/dh_t‖ per step, the gradient-flow matrix, step Jacobians, fitted γ and the W_hh spectrum"

    BINDINGS = [
        Binding("c", "toggle_cell_flow", "h/c flow", tooltip="the flow matrix of h, or of the LSTM cell state c"),
        Binding("g", "recompute", "recompute", tooltip="analyse the trace again"),
        Binding("w", "toggle_spectrum", "flow/spectrum", tooltip="the flow matrix or the W_hh spectrum (narrow), "
                "or the spectrum shown or hidden (wide)"),
    ]

    DEFAULT_CSS = """
    GradientsPane #grad-summary { height: 1; }
    GradientsPane #grad-body { height: 1fr; }
    GradientsPane #grad-flow { width: 1fr; }
    GradientsPane #grad-spectrum { width: 46; padding: 0 1; border-left: vkey $panel; }
    GradientsPane.-narrow #grad-spectrum { width: 1fr; border-left: none; display: none; }
    GradientsPane.-narrow.-spectrum #grad-spectrum { display: block; }
    GradientsPane.-narrow.-spectrum #grad-flow { display: none; }
    GradientsPane.-no-spectrum #grad-spectrum { display: none; }
    """

    cell_flow: reactive[bool] = reactive(False)  # the matrix shows d l_r / d c_k (LSTMs)
    spectrum: reactive[bool] = reactive(False)  # narrow: the spectrum in place of the flow matrix

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._report_for: Trace | None = None  # the trace the shown report belongs to
        self._report = None
        self._pending: Trace | None = None  # the trace being analysed
        self._error: tuple[Trace, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="grad-summary")
        yield StepBars(id="grad-bars")
        with Horizontal(id="grad-body"):
            yield MatrixView(id="grad-flow")
            yield SpectrumView(id="grad-spectrum")

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")

    def watch_spectrum(self, spectrum: bool) -> None:
        self.set_class(spectrum, "-spectrum")

    def action_toggle_spectrum(self) -> None:
        if self.has_class("-narrow"):
            self.spectrum = not self.spectrum
        else:
            self.toggle_class("-no-spectrum")

    # ---- analysis ----------------------------------------------------------------------------------
    @property
    def report(self):
        """The gradient-flow report of the trace in view, once it is computed (else None)."""
        if self.view is not None and self._report_for is self.view.trace:
            return self._report
        return None

    def refresh_analysis(self) -> None:
        view = self.view
        if view is None:
            self._show_message(self.busy or "no trace yet")
            return
        trace = view.trace
        if self._report_for is trace:
            self._draw()
            return
        if self._error is not None and self._error[0] is trace:
            self._show_message(f"no gradient flow: {self._error[1]}")
            return
        if self._pending is not trace:
            self._pending = trace
            self._show_message("analysing the gradient flow…")
            self.analyse(trace)

    @work(thread=True, exclusive=True, group="gradflow", exit_on_error=False)
    def analyse(self, trace: Trace) -> None:
        worker = get_current_worker()
        try:
            report = gradflow(trace)
        except Exception as error:  # shown in the pane, never raised
            if not worker.is_cancelled:
                text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                if not finite_trace(trace):
                    text = f"the model has diverged (NaN or inf in its weights or states): {text}"
                self.post_message(GradFlowFailed(trace, text))
            return
        if not worker.is_cancelled:
            self.post_message(GradFlowReady(trace, report))

    def on_grad_flow_ready(self, message: GradFlowReady) -> None:
        message.stop()
        if self._pending is message.trace:
            self._pending = None
        self._report_for, self._report = message.trace, message.report
        if self.view is not None and self.view.trace is message.trace:
            self._draw()

    def on_grad_flow_failed(self, message: GradFlowFailed) -> None:
        message.stop()
        if self._pending is message.trace:
            self._pending = None
        self._error = (message.trace, message.error)
        if self.view is not None and self.view.trace is message.trace:
            self._show_message(f"no gradient flow: {message.error}")

    # ---- drawing -----------------------------------------------------------------------------------
    def _show_message(self, text: str) -> None:
        if not self.is_mounted:
            return
        self.query_one("#grad-summary", Static).update(Text(text, style="dim italic"))
        bars = self.query_one(StepBars)
        bars.series = ()
        bars.message = ""
        flow = self.query_one(MatrixView)
        flow.matrix = None
        flow.message = text
        self.query_one(SpectrumView).spectra = None

    def _entry_flow(self):
        view, report = self.view, self._report
        index = view.entries.index((view.layer, view.direction))
        return view.trace.layers[index], report.layers[index]

    def _draw(self) -> None:
        view, report = self.view, self._report
        if view is None or report is None or not self.is_mounted:
            return
        trace = view.trace
        entry, flow = self._entry_flow()
        with self.app.batch_update():
            self.query_one("#grad-summary", Static).update(summary(trace, entry, flow))
            bars = self.query_one(StepBars)
            series = [Series("‖dL/dh_t‖", entry.dL_dh_norm, log=True)]
            if entry.dL_dc is not None:
                series.append(Series("‖dL/dc_t‖", entry.dL_dc_norm, log=True))
            series.append(Series("‖J_t‖", flow.jacobian_norm))
            series.append(Series("‖∂L/∂W_hh‖ₖ", flow.dW_hh_step_norm, log=True))
            key = keyed(trace, view.layer, view.direction)
            if getattr(self, "_bars_key", None) != key:
                self._bars_key = key
                bars.series = tuple(series)
                bars.tokens = tuple(trace.tokens)
            bars.step = view.step
            self._draw_matrix(trace, flow)
            self.query_one(SpectrumView).spectra = flow.spectrum

    def _draw_matrix(self, trace: Trace, flow) -> None:
        view = self.view
        mv = self.query_one(MatrixView)
        use_c = self.cell_flow and flow.flow_c is not None
        key = keyed(trace, view.layer, view.direction, use_c)
        if getattr(self, "_matrix_key", None) != key:
            self._matrix_key = key
            raw = flow.flow_c if use_c else flow.flow
            values, scale = log_matrix(raw)
            R = raw.shape[0]
            pooled = R != trace.T
            what = "c" if use_c else "h"
            mv.matrix = Matrix(
                values=values,
                scale=scale,
                title=f"‖d l_r / d {what}_k‖ (log10)",
                row_axis="r",
                col_axis="k",
                row_labels=("y",) if pooled and R == 1 else None,
                raw=raw,
                unit_name="r",
            )
        R = mv.matrix.shape[0] if mv.matrix is not None else 0
        row = view.step if R == trace.T else 0
        mv.cursor = (row, view.step)

    def watch_cell_flow(self) -> None:
        if self.report is not None:
            self._draw()

    # ---- actions -------------------------------------------------------------------------------------
    def action_toggle_cell_flow(self) -> None:
        if self.view is None or not self.view.trace.config.has_cell_state:
            self.notify("only LSTMs have a cell state c", timeout=3)
            return
        self.cell_flow = not self.cell_flow

    def action_recompute(self) -> None:
        if self.view is None:
            return
        self._report_for = self._report = None
        self._error = None
        self._pending = None
        self.refresh_analysis()

    def on_matrix_view_picked(self, message: MatrixView.Picked) -> None:
        message.stop()
        self.post_message(MoveTo(step=message.col))
