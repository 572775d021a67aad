"""Compare: the model on screen beside another cell on the same input, step for step.

    c / C   the other cell: next / previous, in the order `rnn-tui cells` lists them
    n       the other rnn's activation (tanh, relu, sigmoid, identity)
    o       the other model: the shipped demo trained on this task, or an untrained one
    r       train the untrained one here, on the same task with the task's defaults
    g       the classic picture: the recall-rnn and recall-lstm demos side by side

Both sides show the same heatmaps at the same step, unit, layer and map, on one colour scale (a
map whose range comes from the data takes the wider range of the two sides), and the per-step
gradient norms ‖dL/dh_t‖ (and ‖dL/dc_t‖) of both on one log scale, so a vanishing gradient in one
and not the other is plain to see. Each side's numbers are the engine's trace of its own model:
the other model is built by the explorer's trace source on the same input and seed, in a thread
worker, either fresh (same hidden size, layers, task and seed) or, where the repository ships a
run of that cell trained on the same task (`assets/models/`), that run; or the fresh one is
trained here (`r`, the engine's Trainer with the task's defaults, in a worker) and traced again.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.engine.config import ACTIVATIONS, CELLS
from rnn_tui.engine.records import Trace
from rnn_tui.safe_text import safe
from rnn_tui.ui.lab import train_copy
from rnn_tui.ui.messages import MoveTo, RequestChange
from rnn_tui.ui.numbers import number
from rnn_tui.ui.palette import Scale, matrix, matrix_names, scale_for
from rnn_tui.ui.source import FREE_TEXT, TraceRequest, run_request
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.step_bars import Series, StepBars
from rnn_tui.ui.work import Job, keyed

PARTNERS = ("demo", "untrained")  # the other model: the shipped run of its cell on this task, or a fresh one
TRAINED = "trained"  # the fresh one, trained here (`r`)
CLASSIC = ("recall-rnn", "recall-lstm")  # the classic picture: left, right


def cancelled() -> bool:
    """Whether the worker running this (a Compare training) was cancelled: the app quits."""
    from textual.worker import get_current_worker

    return get_current_worker().is_cancelled


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


def first_norm(entry) -> float:
    """‖dL/dh‖ at the step the sequence starts from (the last step of a reverse direction)."""
    norms = np.asarray(entry.dL_dh_norm, dtype=np.float64)
    if not norms.size:
        return math.nan
    return float(norms[0] if entry.direction == "forward" else norms[-1])


def demo_for(task: str, cell: str, activation: str) -> Path | None:
    from rnn_tui.engine.assets import demo_for as find  # reads the demos' config.json once asked

    return find(task, cell, activation)


def shared_scale(name: str, a: Trace, b: Trace, layer: int, direction: str) -> Scale | None:
    """One scale for matrix `name` on both sides: the same fixed range where the nonlinearity
    fixes it, else the wider of the two data ranges; None when the two are of different kinds
    (a relu RNN's h, 0…max, beside an LSTM's, ±1) or one side has no such matrix."""
    scales = []
    for trace in (a, b):
        if name not in matrix_names(trace.config):
            return None
        entry = trace.layer(layer, direction)
        scales.append(scale_for(name, trace.config, matrix(entry, name)))
    s, t = scales
    if s.kind != t.kind:
        return None
    return Scale(s.kind, min(s.lo, t.lo), max(s.hi, t.hi))


def gradient_span(series: list[Series]) -> tuple[float, float] | None:
    """(lowest positive, highest) finite value over every series: one log scale for all of them."""
    values = [np.asarray(s.values, dtype=np.float64) for s in series]
    pos = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values]) if values else np.zeros(0)
    if not pos.size:
        return None
    return float(pos.min()), float(pos.max())


def grad_series(view: View) -> list[Series]:
    entry = view.entry
    out = [Series("‖dL/dh_t‖", entry.dL_dh_norm, log=True)]
    if entry.dL_dc is not None:
        out.append(Series("‖dL/dc_t‖", entry.dL_dc_norm, log=True))
    return out


def origin_text(trace: Trace, request: TraceRequest | None) -> str:
    """Where a side's model comes from, in a few words: the run it was trained in, or untrained."""
    title = str(trace.extras.get("title") or "")
    if request is not None and request.checkpoint and not title:
        return Path(request.checkpoint).name
    return title


def side_title(trace: Trace, view: View, origin: str = "", note: str = "") -> Text:
    """Two lines: the cell and where it comes from; its size, loss and how much gradient reaches
    the first step (‖dL/dh_0‖, and as a share of the largest ‖dL/dh_t‖)."""
    params = sum(int(v.size) for v in trace.params.values())
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f" {cell_name(trace)} ", style="bold reverse")
    if origin:
        out.append(f" {safe(origin)}", style="dim")
    out.append("\n")
    entry = trace.layer(view.layer, view.direction)
    first = first_norm(entry)
    if math.isfinite(first):
        out.append(" ‖dL/dh_0‖ ", style="dim")
        out.append(f"{first:.2g}", style="bold")
        r = reach(entry)
        if math.isfinite(r):
            out.append(f" ({r:.2g} of peak)", style="dim")
    out.append(f"  loss {number(trace.loss)}  {params:,} params")
    if note:
        out.append(f"  {note}", style="bold")
    return out


class SharedMap(HeatmapView):
    """A heatmap whose scales are shared with the other side (`shared(view, name)`; None: its own)."""

    shared = None  # callable (View, name) -> Scale | None, set by the pane

    def scale(self, view: View, name: str) -> Scale:
        shared = self.shared(view, name) if self.shared is not None else None
        return shared if shared is not None else super().scale(view, name)


class ComparePane(AnalysisPane):
    TITLE = "Compare"
    DESCRIPTION = "two cells side by side on the same input: heatmaps and gradient norms, step for step"

    BINDINGS = [
        Binding("c", "other_cell(1)", "other cell", tooltip="compare with the next cell"),
        Binding("C", "other_cell(-1)", "previous cell", show=False, tooltip="compare with the previous cell"),
        Binding("n", "other_activation", "rnn activation", show=False, tooltip="the other rnn's activation"),
        Binding("o", "partner", "demo/fresh",
                tooltip="the other model: the shipped demo trained on this task, or an untrained one"),
        Binding("r", "train_other", "train",
                tooltip="train the other model here on the same task (the task's default steps), then compare"),
        Binding("g", "classic", "classic",
                tooltip="the recall-rnn and recall-lstm demos side by side, ‖dL/dh_t‖ on one log scale"),
    ]

    DEFAULT_CSS = """
    ComparePane > Horizontal { height: 1fr; }
    ComparePane .compare-side { width: 1fr; height: 1fr; }
    ComparePane #compare-right { border-left: vkey $panel; }
    ComparePane .compare-title { height: 2; text-wrap: nowrap; text-overflow: ellipsis; }
    ComparePane .compare-bars { height: auto; }
    """

    other_cell: reactive[str | None] = reactive(None)  # None: the default partner of the cell on screen
    other_activation: reactive[str] = reactive("tanh")
    partner: reactive[str] = reactive("demo")  # one of PARTNERS; "demo" falls back to untrained where none is shipped

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        # the other model's trace, by its request (a new input or seed makes them stale)
        self.other = Job(self, "compare", lambda source, request: source.build(request), keep=8)
        # the fresh other model trained here, by its request
        self.trained = Job(self, "compare-train", lambda trace, request: train_copy(trace, request, cancel=cancelled),
                           keep=4)
        self._scales: dict[tuple, Scale | None] = {}  # shared scales, by (left, right, layer, direction, name)
        self._drawn: tuple | None = None  # (left trace, right trace) whose shared scales are drawn
        self._demos: dict[tuple, Path | None] = {}  # (task, cell, activation) -> the shipped run
        self._demo_request: tuple | None = None  # (what it was made of, the request for the shipped run)

    def compose(self) -> ComposeResult:
        with Horizontal():
            for side in ("left", "right"):
                with Vertical(id=f"compare-{side}", classes="compare-side"):
                    yield Static(classes="compare-title", id=f"compare-{side}-title")
                    heatmap = SharedMap(id=f"compare-{side}-map")
                    heatmap.shared = self._shared
                    yield heatmap
                    yield StepBars(id=f"compare-{side}-bars", classes="compare-bars")

    # ---- the other model ---------------------------------------------------------------------------
    def other_choice(self) -> tuple[str, str]:
        """(cell, activation) of the other model."""
        request = self.request
        cell = self.other_cell or default_other(request.cell if request else "lstm")
        return cell, (self.other_activation if cell == "rnn" else "tanh")

    def task(self) -> str:
        """The task of the model on screen: its run's own (a run opened with --checkpoint is on
        its task's example while the request says only "text"), else the request's."""
        view = self.view
        task = view.trace.extras.get("task") if view is not None else None
        return task or (self.request.task if self.request is not None else FREE_TEXT)

    def demo(self) -> Path | None:
        """The shipped run of the other cell trained on the task on screen (None: there is none)."""
        if self.request is None:
            return None
        cell, activation = self.other_choice()
        key = (self.task(), cell, activation)
        if key not in self._demos:  # read from the demos' config.json once, not on every step
            self._demos[key] = demo_for(*key)
        return self._demos[key]

    def other_request(self) -> TraceRequest | None:
        request = self.request
        if request is None:
            return None
        cell, activation = self.other_choice()
        demo = self.demo() if self.partner == "demo" else None  # (trained: the fresh one, trained)
        if demo is not None:  # the trained run, on the same input (its task's example when the input is)
            key = (demo, request.text, request.tokenize, request.seed)
            if self._demo_request is None or self._demo_request[0] != key:
                self._demo_request = (key, run_request(str(demo), text=request.text, tokenize=request.tokenize,
                                                       seed=request.seed))  # fmt: skip
            return self._demo_request[1]
        # a fresh model of this cell on the same task and input (and seed)
        return request.replace(cell=cell, activation=activation, checkpoint=None, task=self.task(), fresh=True)

    @property
    def other_trace(self) -> Trace | None:
        req = self.other_request()
        outcome = None if req is None else self.other.result(req)
        return outcome.value if outcome is not None and outcome.ready else None

    def refresh_analysis(self) -> None:
        if not self.is_mounted:
            return
        req = self.other_request()
        other = None
        if req is None or self.view is None:
            message = self.busy or "no trace yet"
        else:
            outcome = self.other.get(req, self.source, req)
            if outcome.ready:
                other, message = outcome.value, ""
                if self.partner == TRAINED:
                    trained = self.trained.result(req)
                    if trained is not None and trained.ready:
                        other = trained.value
            elif outcome.failed:
                message = f"could not build {req.cell}: {outcome.error}"
            else:
                message = f"building {req.cell}…"
        left = self.view.trace if self.view is not None else None
        pair = (left, other)
        if self._drawn is None or any(a is not b for a, b in zip(pair, self._drawn)):
            self._drawn = pair  # another pair: the maps read their shared scales again
            self._scales.clear()
            for side in ("left", "right"):
                self.query_one(f"#compare-{side}-map", SharedMap).rescale()
        note = ""
        if other is not None and list(other.tokens) != list(left.tokens):
            note = "reads the input as other tokens"
        self._draw_side("left", self.view, origin=origin_text(left, self.request) if left is not None else "",
                        other=other)
        if other is None:
            self._draw_side("right", None, message)
        else:
            self._draw_side("right", self._other_view(other), origin=self._other_origin(other, req), note=note,
                            other=left)

    def _other_origin(self, trace: Trace, req: TraceRequest) -> str:
        if req.checkpoint:
            return origin_text(trace, req)
        if self.partner == TRAINED:
            trained = self.trained.result(req)
            if trained is None:
                return f"untrained, seed {req.seed}: r trains it here"
            if trained.running:
                return f"untrained, training here on {req.task}…"
            if trained.failed:
                return f"untrained: {trained.error}"
            return str(trace.extras.get("title", "trained here"))
        if self.partner == "demo":  # asked for a trained one, and none is shipped: say so
            return f"untrained (no shipped demo for {req.task})"
        return f"untrained, seed {req.seed}"  # (a fresh model: never the file's weights nor those trained here)

    def _other_view(self, trace: Trace) -> View:
        v = self.view
        return View(trace, step=v.step, unit=v.unit, layer=v.layer, direction=v.direction, matrix=v.matrix,
                    all_maps=v.all_maps)

    def _shared(self, view: View, name: str) -> Scale | None:
        left, right = self._drawn or (None, None)
        if left is None or right is None:
            return None
        key = (keyed(left, right), view.layer, view.direction, name)
        if key not in self._scales:
            self._scales[key] = shared_scale(name, left, right, view.layer, view.direction)
        return self._scales[key]

    def watch_request(self) -> None:
        self.other.forget()  # another input or seed: the other model's traces are stale
        self.trained.forget()

    # ---- drawing ------------------------------------------------------------------------------------
    def _draw_side(self, side: str, view: View | None, message: str = "", *, origin: str = "", note: str = "",
                   other: Trace | None = None) -> None:
        title = self.query_one(f"#compare-{side}-title", Static)
        heatmap = self.query_one(f"#compare-{side}-map", SharedMap)
        bars = self.query_one(f"#compare-{side}-bars", StepBars)
        if view is None:
            title.update(Text(message or self.busy, style="dim italic"))
            heatmap.busy = message or self.busy
            heatmap.view = None
            bars.series = ()
            return
        trace = view.trace
        with self.app.batch_update():
            title.update(side_title(trace, view, origin, note))
            heatmap.view = view
            key = keyed(trace, other, view.layer, view.direction)
            if getattr(bars, "_compare_key", None) != key:
                bars._compare_key = key
                series = grad_series(view)
                if other is not None:  # the other side's rows too: one log scale for both sides
                    both = series + grad_series(View(other, layer=view.layer, direction=view.direction))
                else:
                    both = series
                span = gradient_span(both)
                bars.series = tuple(Series(s.name, s.values, log=True, span=span) for s in series)
                bars.tokens = tuple(trace.tokens)
            bars.step = view.step

    # ---- actions and mouse ----------------------------------------------------------------------------
    def action_other_cell(self, delta: int) -> None:
        current, _ = self.other_choice()
        self.other_cell = CELLS[(CELLS.index(current) + delta) % len(CELLS)]

    def action_other_activation(self) -> None:
        self.other_activation = ACTIVATIONS[(ACTIVATIONS.index(self.other_activation) + 1) % len(ACTIVATIONS)]
        if self.other_choice()[0] != "rnn":
            self.other_cell = "rnn"

    def action_train_other(self) -> None:
        """Train the fresh other model here (in a worker), and show it trained."""
        if self.partner == "demo" and self.demo() is not None:
            self.notify("the other model is the shipped trained demo: o for an untrained one, then r trains it",
                        timeout=5, markup=False)
            return
        if self.partner == TRAINED and self.trained.busy:
            return
        self.partner = TRAINED
        req = self.other_request()
        outcome = self.other.result(req) if req is not None else None
        if outcome is None or not outcome.ready:
            self.notify("the other model is still being built: r again once it is on screen", timeout=4, markup=False)
            return
        self.trained.get(req, outcome.value, req)
        self.refresh_analysis()

    def action_partner(self) -> None:
        if self.partner == TRAINED:
            self.partner = "untrained"
            return
        if self.partner == "untrained" and self.demo() is None:
            cell, _ = self.other_choice()
            self.notify(f"no shipped demo of {cell} trained on {self.task()}: the other model stays untrained",
                        timeout=4, markup=False)
            return
        self.partner = PARTNERS[(PARTNERS.index(self.partner) + 1) % len(PARTNERS)]

    def action_classic(self) -> None:
        """The recall-rnn demo on screen, the recall-lstm demo beside it, both trained on recall."""
        from rnn_tui.engine.assets import MODELS

        left, right = (MODELS / name for name in CLASSIC)
        try:
            request = run_request(str(left))
            run_request(str(right))
        except (ValueError, OSError) as error:
            self.notify(f"the classic picture needs the shipped demos: {safe(error)}", severity="error",
                        timeout=6, markup=False)
            return
        self.other_cell, self.other_activation, self.partner = "lstm", "tanh", "demo"
        changes = {f: getattr(request, f) for f in request.__dataclass_fields__}
        self.post_message(RequestChange(changes))
        self.notify("recall-rnn beside recall-lstm: watch ‖dL/dh_t‖ towards t=0", timeout=4, markup=False)

    def watch_other_cell(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def watch_other_activation(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def watch_partner(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def on_heatmap_view_picked(self, message: HeatmapView.Picked) -> None:
        message.stop()
        self.post_message(MoveTo(step=message.step, unit=message.unit))

    def on_heatmap_view_hover(self, message: HeatmapView.Hover) -> None:
        message.stop()

    # ---- the session -------------------------------------------------------------------------------------
    def session_state(self) -> dict:
        """What a saved session keeps of this tab (see rnn_tui.engine.session)."""
        partner = "untrained" if self.partner == TRAINED else self.partner  # weights trained here are in no file
        return {"other_cell": self.other_cell, "other_activation": self.other_activation, "partner": partner}

    def session_note(self) -> str | None:
        """What a saved session does not keep of this tab, said as it is saved (None: nothing)."""
        if self.partner == TRAINED:  # the weights trained here (r) are in no file
            return "the compared model's training is not kept: the session reopens it untrained (r trains it again)"
        return None

    def restore(self, state: dict) -> None:
        self.other_cell = state.get("other_cell")
        self.other_activation = state.get("other_activation", "tanh")
        self.partner = state.get("partner", "demo")
