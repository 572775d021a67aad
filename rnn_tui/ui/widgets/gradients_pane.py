"""Gradients: how the error reaches back through time, for the layer and direction in view.

    l0 · loss 2.31 · γ 0.66 per step back (R² 0.91, 55 pairs, lags ≤ 33) · ‖W_hh‖₂ 1.2 · ρ 0.93
    t ▼                                       per-step bars over the tokens:
    x          h e l l o ␣ w o r l d           ‖dL/dh_t‖ and ‖dL/dc_t‖ (log), the step Jacobian
    ‖dL/dh‖ log ▁▂▂▃▄▅▅▆▇█▇                    norm ‖ds_t/ds_t-1‖, and ‖∂L/∂W_hh at step k‖ (log)
    ‖d l_r/d h_k‖ (log10)        W_hh spectrum against 1
    r\\k ...                      i σ ●●─●──│── ...

The numbers come from `engine.gradflow.analyze_gradflow`, run in a thread worker (it needs
torch) when this tab is open on a trace it has not analysed yet.

A long trace (more than WHOLE_AT_ONCE steps) is analysed in view first: the flow-matrix rows and
step Jacobian norms around the current step (`lab.gradflow_window`, block by block) are drawn as
they arrive, then the whole analysis follows in the background (γ and ‖∂L/∂W_hh‖ₖ come with it).
Moving to steps not yet computed computes their blocks next. Rows of the flow matrix not computed
are drawn at the bottom of the scale and named in its title; their readout says nan.

Beside the flow matrix (wide), or in its place (`i`), the input connectivity ‖∂y_r/∂x_k‖: how
much the input at step k moves output r (`engine.gradflow.input_connectivity`), computed only
while it is on screen, a block of rows around the current step at a time.

A cell without W_hh (minGRU, minLSTM) has no spectrum: its step Jacobian is diagonal, diag(a_t),
in ‖J_t‖; IndRNN's diagonal w_hh is shown unit by unit against 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.engine.records import Trace
from rnn_tui.ui.lab import FlowWindow, connectivity_rows, gradflow, gradflow_window
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.numbers import finite_trace, number
from rnn_tui.ui.palette import Scale
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.matrix_view import Matrix, MatrixView
from rnn_tui.ui.widgets.spectrum_view import SpectrumView
from rnn_tui.ui.widgets.step_bars import Series, StepBars
from rnn_tui.ui.work import Job, keyed, one_line

WHOLE_AT_ONCE = 512  # steps up to which a trace is analysed whole at once (the engine's FLOW_WINDOW)
ROW_BLOCK = 64  # flow-matrix rows computed per window of a long trace
STEP_BLOCK = 128  # step Jacobian norms computed per window
ROWS_IN_VIEW = 48  # rows either side of the current step that the tab wants computed first
STEPS_IN_VIEW = 96  # steps either side whose Jacobian norms it wants first (the bars show ~180 at 200 columns)
CONN_BLOCK = 32  # rows of the input connectivity computed at a time (each row is min(O, D*H) sources)
CONN_IN_VIEW = 24  # rows either side of the current step it wants computed
WIDE = 160  # columns from which the connectivity sits beside the flow matrix


def explain(error: BaseException, trace: Trace, *args) -> str:
    """One line for an analysis that failed; a diverged model is named as the likely cause."""
    text = one_line(error)
    if not finite_trace(trace):
        text = f"the model has diverged (NaN or inf in its weights or states): {text}"
    return text


@dataclass
class FlowShown:
    """What the tab draws for one trace, built up as its analysis arrives (per layers entry)."""

    trace: Trace
    flow: list[np.ndarray]  # (R, T), nan where not computed
    flow_c: list[np.ndarray | None]
    jacobian_norm: list[np.ndarray]  # (T,), nan where not computed
    spectrum: list[dict]
    rows_done: np.ndarray  # (R,) rows computed (or unscored: nothing to compute)
    steps_done: np.ndarray  # (T,) steps whose Jacobian norm is known
    report: object = None  # the whole analysis (engine.gradflow.GradFlowReport), once it arrived
    version: int = 0  # bumped by every merge: what is drawn is keyed on it

    @classmethod
    def of_window(cls, trace: Trace, w: FlowWindow) -> "FlowShown":
        R, T = len(trace.targets), trace.T
        unscored = np.array([t is None for t in trace.targets], dtype=bool)
        shown = cls(trace, [f.copy() for f in w.flow], [None if c is None else c.copy() for c in w.flow_c],
                    [j.copy() for j in w.jacobian_norm], list(w.spectrum), unscored.copy(), np.zeros(T, bool))
        shown._mark(w)
        return shown

    @classmethod
    def of_report(cls, trace: Trace, report) -> "FlowShown":
        R, T = len(trace.targets), trace.T
        done = np.array([t is None for t in trace.targets], dtype=bool)
        done[np.asarray(report.sources, dtype=np.int64)] = True
        return cls(trace, [lf.flow for lf in report.layers], [lf.flow_c for lf in report.layers],
                   [lf.jacobian_norm for lf in report.layers], [lf.spectrum for lf in report.layers],
                   done, np.ones(T, bool), report=report)

    def _mark(self, w: FlowWindow) -> None:
        self.rows_done[np.asarray(w.rows, dtype=np.int64)] = True
        self.steps_done[np.asarray(w.steps, dtype=np.int64)] = True

    def add_window(self, w: FlowWindow) -> None:
        """Merge a window's rows and steps in (copying an array the report owns before writing)."""
        rows, steps = np.asarray(w.rows, dtype=np.int64), np.asarray(w.steps, dtype=np.int64)
        for k in range(len(self.flow)):
            if rows.size:
                self.flow[k] = self.flow[k].copy()
                self.flow[k][rows] = w.flow[k][rows]
                if self.flow_c[k] is not None and w.flow_c[k] is not None:
                    self.flow_c[k] = self.flow_c[k].copy()
                    self.flow_c[k][rows] = w.flow_c[k][rows]
            if steps.size:
                self.jacobian_norm[k] = self.jacobian_norm[k].copy()
                self.jacobian_norm[k][steps] = w.jacobian_norm[k][steps]
        self._mark(w)
        self.version += 1

    def add_report(self, report) -> "FlowShown":
        """The whole analysis, with the rows windows computed beyond its own kept."""
        whole = FlowShown.of_report(self.trace, report)
        extra = np.flatnonzero(self.rows_done & ~whole.rows_done)
        if extra.size:
            for k in range(len(whole.flow)):
                whole.flow[k] = whole.flow[k].copy()
                whole.flow[k][extra] = self.flow[k][extra]
                if whole.flow_c[k] is not None and self.flow_c[k] is not None:
                    whole.flow_c[k] = whole.flow_c[k].copy()
                    whole.flow_c[k][extra] = self.flow_c[k][extra]
            whole.rows_done |= self.rows_done
        whole.version = self.version + 1
        return whole

    def covers(self, rows: tuple[int, int] | None, steps: tuple[int, int] | None) -> bool:
        """Every row and step of a window is known already."""
        return bool((rows is None or self.rows_done[rows[0]:rows[1]].all())
                    and (steps is None or self.steps_done[steps[0]:steps[1]].all()))

    @property
    def complete(self) -> bool:
        """Everything the tab shows is computed: the whole analysis is in."""
        return self.report is not None


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


def computed_rows(done: np.ndarray, scored: np.ndarray) -> str:
    """"rows 1488…1999" for the scored rows computed (one span, or the count when scattered);
    "" when every scored row is."""
    rows = np.flatnonzero(done & scored)
    total = int(scored.sum())
    if rows.size == total:
        return ""
    if rows.size == 0:
        return "no rows yet"
    if rows[-1] - rows[0] + 1 == rows.size:
        return f"rows {rows[0]}…{rows[-1]}"
    return f"{rows.size} of {total} rows"


def summary(trace: Trace, entry, shown: FlowShown, index: int) -> Text:
    """One line: the layer, the loss, the fitted decay and the spectral numbers."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f" {entry.name} ", style="bold reverse")
    out.append(f"  loss {number(trace.loss)}  ")
    if shown.report is None:
        done = np.flatnonzero(shown.steps_done)
        span = f"steps {done[0]}…{done[-1]}" if done.size else "the steps in view"
        out.append(f"{span} of {trace.T}; analysing the rest (γ follows)…  ", style="dim italic")
    else:
        d = shown.report.layers[index].decay
        if math.isfinite(d.gamma):
            out.append("γ ", style="bold")
            out.append(f"{d.gamma:.3g}", style="bold")
            out.append(f"  per step back (R² {d.r2:.2f}, {d.points} pairs, lags ≤ {d.max_lag})  ")
        else:
            out.append("γ not fitted (too few pairs)  ", style="dim")
    cell = trace.config.cell_spec
    if cell.recurrence == "none":
        out.append("J_t = ", style="bold")
        out.append(f"{cell.step_jacobian} (no W_hh)")
        return out
    if cell.recurrence == "diagonal":
        (spec,) = shown.spectrum[index].values() or (None,)
        if spec is not None:
            above = int((np.asarray(spec.singular_values) > 1).sum())
            out.append("max|w_hh| ", style="bold")
            out.append(f"{spec.spectral_radius:.3g} ({above} of {len(spec.singular_values)} above 1)")
        return out
    radii = " ".join(
        f"{'' if g == 'a' else g + ' '}{s.spectral_radius:.3g}" for g, s in shown.spectrum[index].items()
    )
    out.append("ρ(W_hh) ", style="bold")
    out.append(radii)
    return out


@dataclass
class ConnectivityShown:
    """The input connectivity of one trace as its blocks of rows arrive."""

    trace: Trace
    values: np.ndarray  # (R, T) ||∂y_r/∂x_k||, nan where not computed
    done: np.ndarray  # (R,) rows computed
    version: int = 0

    def add(self, rows: np.ndarray, block: np.ndarray) -> None:
        self.values = self.values.copy()
        self.values[rows] = block[rows]
        self.done[rows] = True
        self.version += 1


class GradientsPane(AnalysisPane):
    TITLE = "Gradients"
    DESCRIPTION = "‖dL/dh_t‖ per step, the gradient-flow matrix, step Jacobians, fitted γ and the W_hh spectrum"

    BINDINGS = [
        Binding("c", "toggle_cell_flow", "h/c flow", tooltip="the flow matrix of h, or of the LSTM cell state c"),
        Binding("i", "toggle_connectivity", "flow/inputs", tooltip="the flow matrix or the input connectivity "
                "‖∂y_r/∂x_k‖ (side by side on a wide terminal)"),
        Binding("g", "recompute", "recompute", tooltip="analyse the trace again"),
        Binding("w", "toggle_spectrum", "flow/spectrum", tooltip="the flow matrix or the W_hh spectrum (narrow), "
                "or the spectrum shown or hidden (wide)"),
    ]

    DEFAULT_CSS = """
    GradientsPane #grad-summary { height: 1; }
    GradientsPane #grad-body { height: 1fr; }
    GradientsPane #grad-flow { width: 1fr; }
    GradientsPane #grad-conn { width: 1fr; display: none; }
    GradientsPane.-connectivity #grad-conn { display: block; }
    GradientsPane.-connectivity #grad-flow { display: none; }
    GradientsPane.-wide #grad-conn { display: block; border-left: vkey $panel; }
    GradientsPane.-wide #grad-flow { display: block; }
    GradientsPane.-narrow.-spectrum #grad-conn { display: none; }
    GradientsPane #grad-spectrum { width: 46; padding: 0 1; border-left: vkey $panel; }
    GradientsPane.-narrow #grad-spectrum { width: 1fr; border-left: none; display: none; }
    GradientsPane.-narrow.-spectrum #grad-spectrum { display: block; }
    GradientsPane.-narrow.-spectrum #grad-flow { display: none; }
    GradientsPane.-no-spectrum #grad-spectrum { display: none; }
    """

    cell_flow: reactive[bool] = reactive(False)  # the matrix shows d l_r / d c_k (LSTMs)
    spectrum: reactive[bool] = reactive(False)  # narrow: the spectrum in place of the flow matrix
    connectivity: reactive[bool] = reactive(False)  # the input connectivity in place of the flow matrix

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.whole = Job(self, "gradflow", gradflow, keep=2, explain=explain)  # by trace
        self.part = Job(self, "gradflow-window", gradflow_window, keep=4, explain=explain)  # by (trace, block)
        self.conn = Job(self, "connectivity", connectivity_rows, keep=8, explain=explain)  # by (trace, block)
        self._shown: FlowShown | None = None  # what has arrived for the trace last looked at
        self._conn: ConnectivityShown | None = None
        self._conn_error: tuple[Trace, str] | None = None
        self._error: tuple[Trace, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="grad-summary")
        yield StepBars(id="grad-bars")
        with Horizontal(id="grad-body"):
            yield MatrixView(id="grad-flow")
            yield MatrixView(id="grad-conn")
            yield SpectrumView(id="grad-spectrum")

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-narrow")
        wide = self.size.width >= WIDE
        if wide != self.has_class("-wide"):
            self.set_class(wide, "-wide")
            if self.shown:
                self.refresh_analysis()

    def watch_spectrum(self, spectrum: bool) -> None:
        self.set_class(spectrum, "-spectrum")

    def watch_connectivity(self, on: bool) -> None:
        self.set_class(on, "-connectivity")
        if self.is_mounted and self.shown:
            self.refresh_analysis()

    def action_toggle_connectivity(self) -> None:
        if self.has_class("-wide"):
            self.notify("the input connectivity is beside the flow matrix at this width", timeout=3)
            return
        if self.has_class("-narrow") and self.spectrum:
            self.spectrum = False
        self.connectivity = not self.connectivity

    @property
    def connectivity_seen(self) -> bool:
        """The connectivity matrix is on screen (beside the flow matrix, or in its place)."""
        return self.has_class("-wide") or (self.connectivity and not (self.has_class("-narrow") and self.spectrum))

    def action_toggle_spectrum(self) -> None:
        if self.has_class("-narrow"):
            self.spectrum = not self.spectrum
        else:
            self.toggle_class("-no-spectrum")

    # ---- analysis ----------------------------------------------------------------------------------
    @property
    def report(self):
        """The whole gradient-flow report of the trace in view, once it is computed (else None)."""
        shown = self.shown_flow
        return None if shown is None else shown.report

    @property
    def shown_flow(self) -> FlowShown | None:
        """What is known of the trace in view so far (a window of a long trace, or the whole)."""
        if self.view is not None and self._shown is not None and self._shown.trace is self.view.trace:
            return self._shown
        return None

    def refresh_analysis(self) -> None:
        view = self.view
        if view is None:
            self._show_message(self.busy or "no trace yet")
            return
        trace = view.trace
        if self._error is not None and self._error[0] is trace:
            self._show_message(f"no gradient flow: {self._error[1]}")
            return
        if self._shown is not None and self._shown.trace is not trace:
            self._shown = None  # another trace: start again (the jobs keep recent results by trace)
        if trace.T <= WHOLE_AT_ONCE:
            self._whole(trace)
        else:
            self._in_view_first(trace, view.step)
        if self._error is not None and self._error[0] is trace:
            self._show_message(f"no gradient flow: {self._error[1]}")
        elif self.shown_flow is not None:
            self._draw()
        else:
            self._show_message("analysing the gradient flow…")
        if self.connectivity_seen:
            self._connectivity(trace, view.step)

    # ---- input connectivity: the rows in view, computed while seen --------------------------------
    def _connectivity(self, trace: Trace, step: int) -> None:
        if self._conn is None or self._conn.trace is not trace:
            R = trace.outputs.shape[0]
            self._conn = ConnectivityShown(trace, np.full((R, trace.T), np.nan), np.zeros(R, bool))
        if self._conn_error is not None and self._conn_error[0] is trace:
            self._draw_connectivity(trace, f"no input connectivity: {self._conn_error[1]}")
            return
        shown = self._conn
        R = shown.values.shape[0]
        row = step if R == trace.T else 0
        a, b = max(row - CONN_IN_VIEW, 0), min(row + CONN_IN_VIEW, R - 1)
        blocks = sorted(range(a // CONN_BLOCK, b // CONN_BLOCK + 1), key=lambda k: abs(k * CONN_BLOCK - row))
        for k in blocks:
            rows = (k * CONN_BLOCK, min((k + 1) * CONN_BLOCK, R))
            if shown.done[rows[0] : rows[1]].all():
                continue
            key = keyed(trace, rows)
            if self.conn.result(key) is None and self.conn.busy:
                break  # one block at a time; the next is asked for when this one arrives
            outcome = self.conn.get(key, trace, rows)
            if outcome.failed:
                self._conn_error = (trace, outcome.error)
                self._draw_connectivity(trace, f"no input connectivity: {outcome.error}")
                return
            if outcome.running:
                break
            shown.add(np.arange(*rows), outcome.value)
        self._draw_connectivity(trace)

    def _draw_connectivity(self, trace: Trace, message: str = "") -> None:
        if not self.is_mounted:
            return
        view, shown = self.view, self._conn
        mv = self.query_one("#grad-conn", MatrixView)
        if message or shown is None or not shown.done.any():
            mv.matrix = None
            mv.message = message or "computing ‖∂y_r/∂x_k‖ for the rows in view…"
            self._conn_key = None
            return
        key = keyed(trace, shown.version)
        if getattr(self, "_conn_key", None) != key:
            self._conn_key = key
            values, scale = log_matrix(shown.values)
            done = np.flatnonzero(shown.done)
            rows = "" if done.size == len(shown.done) else (
                f" · rows {done[0]}…{done[-1]}" if done[-1] - done[0] + 1 == done.size else f" · {done.size} rows")
            R = shown.values.shape[0]
            mv.matrix = Matrix(
                values=values, scale=scale, title="‖∂y_r/∂x_k‖ (log10)" + rows,
                row_axis="r", col_axis="k", row_labels=("y",) if R == 1 and trace.T != 1 else None,
                raw=shown.values, unit_name="r",
            )  # fmt: skip
        R = mv.matrix.shape[0]
        mv.cursor = (view.step if R == trace.T else 0, view.step)

    def _whole(self, trace: Trace) -> None:
        outcome = self.whole.get(keyed(trace), trace)
        if outcome.ready and (self._shown is None or self._shown.report is not outcome.value):
            self._shown = (self._shown.add_report(outcome.value) if self._shown is not None
                           else FlowShown.of_report(trace, outcome.value))
        elif outcome.failed:
            self._error = (trace, outcome.error)

    def _in_view_first(self, trace: Trace, step: int) -> None:
        """A long trace: the blocks of rows and steps around `step` first, then the whole."""
        for block in self._blocks_wanted(trace, step):
            ranges = self._block_ranges(trace, block)
            if self._shown is not None and self._shown.covers(*ranges):
                continue
            key = keyed(trace, block)
            if self.part.result(key) is None and self.part.busy:
                return  # one window at a time; the next is asked for when this one arrives
            outcome = self.part.get(key, trace, *ranges)
            if outcome.failed:
                self._error = (trace, outcome.error)
                return
            if outcome.running:
                return
            self._merge(trace, outcome.value)
        self._whole(trace)  # what is in view is known: the rest in the background

    def _merge(self, trace: Trace, window: FlowWindow) -> None:
        if self._shown is None:
            self._shown = FlowShown.of_window(trace, window)
        else:
            self._shown.add_window(window)

    @staticmethod
    def _blocks_wanted(trace: Trace, step: int) -> list[tuple]:
        R = len(trace.targets)
        row = step if R == trace.T else 0
        r0, r1 = max(row - ROWS_IN_VIEW, 0), min(row + ROWS_IN_VIEW, R - 1)
        t0, t1 = max(step - STEPS_IN_VIEW, 0), min(step + STEPS_IN_VIEW, trace.T - 1)
        rows = {("rows", b) for b in range(r0 // ROW_BLOCK, r1 // ROW_BLOCK + 1)}
        steps = {("steps", b) for b in range(t0 // STEP_BLOCK, t1 // STEP_BLOCK + 1)}
        # nearest the step first; at equal distance the flow rows (the picture, and cheap) first
        near = lambda b: (abs(b[1] * (ROW_BLOCK if b[0] == "rows" else STEP_BLOCK) - step), b[0] != "rows")  # noqa: E731
        return sorted(rows | steps, key=near)

    @staticmethod
    def _block_ranges(trace: Trace, block: tuple) -> tuple:
        kind, b = block
        if kind == "rows":
            R = len(trace.targets)
            return (b * ROW_BLOCK, min((b + 1) * ROW_BLOCK, R)), None
        return None, (b * STEP_BLOCK, min((b + 1) * STEP_BLOCK, trace.T))

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
        self._bars_key = self._matrix_key = None

    def _draw(self) -> None:
        view, shown = self.view, self.shown_flow
        if view is None or shown is None or not self.is_mounted:
            return
        trace = view.trace
        index = view.entries.index((view.layer, view.direction))
        entry = trace.layers[index]
        with self.app.batch_update():
            self.query_one("#grad-summary", Static).update(summary(trace, entry, shown, index))
            bars = self.query_one(StepBars)
            key = keyed(trace, view.layer, view.direction, shown.version)
            if getattr(self, "_bars_key", None) != key:
                self._bars_key = key
                series = [Series("‖dL/dh_t‖", entry.dL_dh_norm, log=True)]
                if entry.dL_dc is not None:
                    series.append(Series("‖dL/dc_t‖", entry.dL_dc_norm, log=True))
                # a decoder that attends: its cell's J_t, the input [y_{t-1}; c_t] held (gradflow.ATTENTION_NOTE)
                jname = "‖J_t‖ cell" if "attention" in trace.extras else "‖J_t‖"
                series.append(Series(jname, shown.jacobian_norm[index], nan_blank=not shown.complete))
                step_norm = None if shown.report is None else shown.report.layers[index].dW_hh_step_norm
                if step_norm is not None:
                    diagonal = trace.config.cell_spec.recurrence == "diagonal"
                    series.append(Series("‖∂L/∂w_hh‖ₖ" if diagonal else "‖∂L/∂W_hh‖ₖ", step_norm, log=True))
                bars.series = tuple(series)
                bars.tokens = tuple(trace.tokens)
            bars.step = view.step
            self._draw_matrix(trace, shown, index)
            spectrum = self.query_one(SpectrumView)
            cell = trace.config.cell_spec
            spectrum.diagonal = cell.recurrence == "diagonal"
            spectrum.message = (f"no W_hh: J_t = {cell.step_jacobian}, its norm is ‖J_t‖ above"
                                if cell.recurrence == "none" else "")
            spectrum.spectra = shown.spectrum[index]

    def _draw_matrix(self, trace: Trace, shown: FlowShown, index: int) -> None:
        view = self.view
        mv = self.query_one(MatrixView)
        use_c = self.cell_flow and shown.flow_c[index] is not None
        key = keyed(trace, view.layer, view.direction, use_c, shown.version)
        if getattr(self, "_matrix_key", None) != key:
            self._matrix_key = key
            raw = shown.flow_c[index] if use_c else shown.flow[index]
            values, scale = log_matrix(raw)
            R = raw.shape[0]
            pooled = R != trace.T
            what = "c" if use_c else "h"
            rows = computed_rows(shown.rows_done, np.array([t is not None for t in trace.targets], dtype=bool))
            mv.matrix = Matrix(
                values=values,
                scale=scale,
                title=f"‖d l_r / d {what}_k‖ (log10)" + (f" · {rows} computed" if rows else "")
                + (" · through cells and attention" if "attention" in trace.extras else ""),
                row_axis="r",
                col_axis="k",
                row_labels=("y",) if pooled and R == 1 else None,
                raw=raw,
                unit_name="r",
                raw_title=f"‖d l_r / d {what}_k‖",
            )
        R = mv.matrix.shape[0] if mv.matrix is not None else 0
        row = view.step if R == trace.T else 0
        mv.cursor = (row, view.step)

    def watch_cell_flow(self) -> None:
        if self.shown_flow is not None:
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
        self.whole.forget()
        self.part.forget()
        self.conn.forget()
        self._shown = None
        self._conn = None
        self._error = self._conn_error = None
        self.refresh_analysis()

    def on_matrix_view_picked(self, message: MatrixView.Picked) -> None:
        message.stop()
        self.post_message(MoveTo(step=message.col))
