"""Time-lapse: the same sequence through the weights of each snapshot a training run saved.

    , / .   the previous / next snapshot          y   play through them (again: stop)
    r       reload the snapshots of training in the explorer
    o       open a run directory (`rnn-tui train --out DIR` with snapshots), Enter loads it
            (in a browser, under `rnn-tui serve`: a run's name in the folder `serve --runs DIR`
            names, and none without it; see rnn_tui.served)

The Training tab keeps ~20 snapshots of every run (step 0 included); a run directory keeps
its own (`snapshots/step_000100.safetensors`). When the explorer was opened on a run directory
(`rnn-tui --checkpoint DIR`, the source's `run_directory`), the tab opens that run's snapshots by
itself the first time it is shown. Each snapshot's weights trace the explorer's
sequence in a thread worker (`lab.retrace`), and the tab shows that trace's heatmaps at the
current step, unit, layer and map, and its per-step gradient norms and losses, so stepping
through the snapshots shows the states and gradients change as the model learns.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Input, Label, Static

from rnn_tui import served
from rnn_tui.engine.records import Trace
from rnn_tui.safe_text import safe
from rnn_tui.ui.lab import SnapshotRecord, load_run_snapshots, retrace
from rnn_tui.ui.messages import MoveTo, ShowTrace
from rnn_tui.ui.state import View
from rnn_tui.ui.visible_input import OrderedInput, VisibleControls
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.step_bars import Series, StepBars
from rnn_tui.ui.work import Job, keyed

PLAY_EVERY = 0.6  # seconds per snapshot when playing


def sequence_key(trace: Trace) -> tuple:
    """What makes two traces the same sequence through the same kind of model."""
    return (trace.config, tuple(trace.tokens), trace.inputs.shape, trace.inputs.tobytes().__hash__())


def config_difference(theirs, ours) -> str:
    """What sets two model configs apart, shortest first: "cell rnn, not lstm; hidden 64, not 128"."""
    names = {"hidden_size": "hidden", "num_layers": "layers", "input_size": "inputs", "output_size": "outputs"}
    parts = []
    for field in ("cell", "hidden_size", "num_layers", "bidirectional", "activation", "input_size",
                  "output_size", "input_mode", "head"):
        a, b = getattr(theirs, field, None), getattr(ours, field, None)
        if a != b:
            parts.append(f"{names.get(field, field)} {a}, not {b}")
    return "; ".join(parts[:2]) or "other settings"


def scrubber(records: list[SnapshotRecord], index: int, width: int) -> Text:
    """One line: a mark per snapshot, the current one bold, the first and last steps at the ends."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if not records:
        return out
    first, last = f"{records[0].step} ", f" {records[-1].step}"
    room = max(width - len(first) - len(last), len(records))
    out.append(first, style="dim")
    n = len(records)
    cells = ["─"] * room
    marks = {}
    for k in range(n):
        x = 0 if n == 1 else round(k * (room - 1) / (n - 1))
        marks[x] = k
    for x in range(room):
        k = marks.get(x)
        if k is None:
            out.append(cells[x], style="dim")
        elif k == index:
            out.append("◉", style="bold reverse")
        else:
            out.append("●" if k < index else "○")
    out.append(last, style="dim")
    return out


class TimelapsePane(AnalysisPane):
    TITLE = "Time-lapse"
    DESCRIPTION = "scrub through training snapshots: the same sequence's states and gradients as the model learns"

    BINDINGS = [
        Binding("comma", "move(-1)", "earlier", key_display=",", tooltip="the previous snapshot"),
        Binding("full_stop", "move(1)", "later", key_display=".", tooltip="the next snapshot"),
        Binding("y", "play", "play", tooltip="play through the snapshots (again: stop)"),
        Binding("r", "reload", "reload", tooltip="the snapshots of training in the explorer"),
        Binding("o", "open_run", "open run", tooltip="load the snapshots of a run directory"),
    ]

    DEFAULT_CSS = """
    TimelapsePane #lapse-open { height: 1; }
    TimelapsePane #lapse-open Label { width: auto; padding: 0 1; }
    TimelapsePane #lapse-open Input { width: 1fr; }
    TimelapsePane #lapse-head { height: 1; padding: 0 1; }
    TimelapsePane #lapse-scrub { height: 1; padding: 0 1; }
    TimelapsePane StepBars { height: auto; }
    """

    index: reactive[int] = reactive(-1)  # the snapshot shown (-1: the last one)
    playing: reactive[bool] = reactive(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.records: list[SnapshotRecord] = []
        self.config = None
        self.label = ""
        # the explorer's sequence through a snapshot's weights, by (sequence, run, snapshot step)
        self.snapshot = Job(self, "timelapse", lambda base, snap: retrace(base, snap.tensors), keep=64)
        self.loader = Job(self, "timelapse-load", load_run_snapshots, keep=2)  # a run directory's snapshots
        self._timer: Timer | None = None
        self._from_disk = False  # the snapshots were loaded from a run directory: keep them on reload
        self._loading = ""  # the run directory being read
        self._opened_run = False  # the source's own run directory has been opened (or tried)
        self._note = ""  # why the source's run directory shows no snapshots

    def compose(self) -> ComposeResult:
        with Horizontal(id="lapse-open"):
            yield Label("run directory")
            yield OrderedInput(id="lapse-path", placeholder="o, then a run directory and Enter (blank: training here)",
                        compact=True, highlighter=VisibleControls())
        yield Static(id="lapse-head")
        yield Static(id="lapse-scrub")
        yield HeatmapView(id="lapse-map")
        yield StepBars(id="lapse-bars")

    # ---- snapshots ------------------------------------------------------------------------------------
    def _reload_from_lab(self) -> None:
        config, records, label = self.lab.current_snapshots()
        if label != self.label or len(records) != len(self.records) or config != self.config:
            at_end = self.index < 0 or self.index >= len(self.records) - 1
            self.config, self.records, self.label = config, records, label
            if at_end:
                self.index = len(records) - 1

    @property
    def current(self) -> SnapshotRecord | None:
        if not self.records:
            return None
        return self.records[min(max(self.index, 0), len(self.records) - 1)]

    def snapshot_trace(self) -> Trace | None:
        """The explorer's sequence through the current snapshot's weights, once traced."""
        view, snap = self.view, self.current
        if view is None or snap is None:
            return None
        outcome = self.snapshot.result((sequence_key(view.trace), self.label, snap.step))
        return outcome.value if outcome is not None and outcome.ready else None

    def refresh_analysis(self) -> None:
        if not self.is_mounted:
            return
        if not self._opened_run and self.shown:
            self._opened_run = True
            run = getattr(self.source, "run_directory", None)
            if run:  # the operator's own choice (a command-line flag), also under serve
                self.query_one("#lapse-path", Input).value = run
                self._read(run)
                return
        if self._loading:
            self._message(f"reading the snapshots of {safe(self._loading)}…")
            return
        if not self._from_disk:
            self._reload_from_lab()
        view = self.view
        if view is None:
            self._message(self.busy or "no trace yet")
            return
        snap = self.current
        if snap is None:
            if self._note:
                self._message(f"{self._note}: train in the Training tab (r), or open a run directory (o)")
            else:
                self._message("no snapshots yet: train in the Training tab (r), or open a run directory (o)")
            return
        if self.config is not None and self.config != view.trace.config:
            name = safe(Path(self.label).name if self._from_disk else self.label)
            self._message(f"{name}: snapshots of another model ({config_difference(self.config, view.trace.config)})")
            return
        outcome = self.snapshot.get((sequence_key(view.trace), self.label, snap.step), view.trace, snap)
        if outcome.ready:
            self._draw(outcome.value)
        elif outcome.failed:
            self._message(f"snapshot at step {snap.step} cannot be traced: {outcome.error}")
        else:
            self._draw_head(None)

    # ---- a run directory ---------------------------------------------------------------------------------
    def action_open_run(self) -> None:
        box = self.query_one("#lapse-path", Input)
        if served.served():  # a browser visitor: only names inside the folder the server names
            if served.runs_folder() is None:
                self.notify(served.no_runs_message(), title="open a run", timeout=6, markup=False)
                self._message(served.no_runs_message())
                return
            names = served.run_names(limit=8)
            box.placeholder = f"a run's name, then Enter (runs: {', '.join(safe(n) for n in names) or 'none'})"
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        self.focus()
        if not path:
            self._from_disk = False
            self.label = ""
            self.refresh_analysis()
            return
        if served.served():
            try:
                path = str(served.run_directory(path))
            except served.ServedPathError as error:
                self.notify(str(error), title="could not open the run", severity="error", timeout=6, markup=False)
                self._message(str(error))
                return
        self._read(path)

    def _read(self, path: str) -> None:
        self._loading = path
        self._message(f"reading the snapshots of {safe(path)}…")
        self.loader.forget()  # read the directory afresh: it may have changed since
        self.loader.get(path, path)

    def computed(self, job, key) -> None:
        if job is self.loader:
            outcome = job.result(key)
            self._loading = ""
            if outcome.ready:
                self._run_loaded(key, *outcome.value)
            else:
                self._run_failed(key, outcome.error)
            return
        super().computed(job, key)

    def _run_loaded(self, path: str, config, records: list) -> None:
        self._note = ""
        self._from_disk = True
        self.config, self.records, self.label = config, records, path
        self.index = len(self.records) - 1
        self.notify(f"{len(self.records)} snapshots from {safe(path)}", timeout=3, markup=False)
        if self.shown:
            self.refresh_analysis()

    def _run_failed(self, path: str, error: str) -> None:
        if path == getattr(self.source, "run_directory", None) and not self._from_disk:
            # the run the explorer was opened on, read unasked: a run saved without snapshots is
            # no error; the tab says so and shows training here, as it would without the run
            no_snapshots = "no snapshots" in error
            name = safe(Path(path).name or path)
            self._note = f"run {name} saved no snapshots" if no_snapshots else safe(error)
            self.query_one("#lapse-path", Input).value = ""
            if self.shown:
                self.refresh_analysis()
            return
        self.notify(safe(error), title="could not open the run", severity="error", timeout=6, markup=False)
        self._message(f"could not open {safe(path)}: {safe(error)}")

    # ---- actions ------------------------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        if not self.records:
            return
        current = self.index if self.index >= 0 else len(self.records) - 1
        self.index = min(max(current + delta, 0), len(self.records) - 1)

    def action_reload(self) -> None:
        self._from_disk = False
        self.query_one("#lapse-path", Input).value = ""
        self.label = ""
        self.records = []
        self.index = -1
        self.refresh_analysis()

    def action_play(self) -> None:
        self.playing = not self.playing

    def watch_playing(self, playing: bool) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if playing:
            if self.records and self.index >= len(self.records) - 1:
                self.index = 0
            self._timer = self.set_interval(PLAY_EVERY, self._tick)

    def _tick(self) -> None:
        if not self.records or self.index >= len(self.records) - 1:
            self.playing = False
            return
        self.index += 1

    def watch_index(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def on_heatmap_view_picked(self, message: HeatmapView.Picked) -> None:
        message.stop()
        self.post_message(MoveTo(step=message.step, unit=message.unit, matrix=message.matrix))

    def on_heatmap_view_hover(self, message: HeatmapView.Hover) -> None:
        message.stop()

    # ---- drawing ------------------------------------------------------------------------------------------------
    def _message(self, text: str) -> None:
        self._show_in_header(None)
        self.query_one("#lapse-head", Static).update(Text(text, style="dim italic"))
        self.query_one("#lapse-scrub", Static).update("")
        heatmap = self.query_one(HeatmapView)
        heatmap.view = None
        heatmap.busy = text
        self.query_one(StepBars).series = ()

    def _draw_head(self, trace: Trace | None) -> None:
        snap = self.current
        head = Text(no_wrap=True, overflow="ellipsis")
        k = min(max(self.index, 0), len(self.records) - 1)
        head.append(f" snapshot {k + 1}/{len(self.records)} ", style="bold reverse")
        head.append(f"  step {snap.step}  ")
        if math.isfinite(snap.loss):
            head.append(f"training loss {snap.loss:.4g}  ")
        if snap.metric is not None:
            head.append(f"metric {snap.metric:.3g}  ")
        if trace is None:
            head.append("tracing…", style="dim italic")
        else:
            head.append("loss on this sequence ", style="dim")
            head.append(f"{trace.loss:.4g}", style="bold")
        head.append(f"   ({safe(self.label)})", style="dim")
        self.query_one("#lapse-head", Static).update(head)
        self.query_one("#lapse-scrub", Static).update(scrubber(self.records, k, max(self.size.width - 2, 10)))

    def _show_in_header(self, trace: Trace | None) -> None:
        """The status line and the token strip follow the snapshot on screen (its loss, its
        predictions), titled with its step; None: the explorer's own trace again."""
        if trace is not None:
            snap = self.current
            key = (id(trace), snap.step if snap is not None else None)
            if getattr(self, "_header_key", None) == key:
                return
            self._header_key = key
            from dataclasses import replace

            title = f"Time-lapse: snapshot at step {snap.step}" if snap is not None else "Time-lapse snapshot"
            trace = replace(trace, extras={**trace.extras, "title": title})
        else:
            if getattr(self, "_header_key", None) is None:
                return
            self._header_key = None
        self.post_message(ShowTrace(trace))

    def _draw(self, trace: Trace) -> None:
        v = self.view
        with self.app.batch_update():
            self._show_in_header(trace)
            self._draw_head(trace)
            heatmap = self.query_one(HeatmapView)
            heatmap.view = View(trace, step=v.step, unit=v.unit, layer=v.layer, direction=v.direction,
                                matrix=v.matrix, all_maps=v.all_maps)
            bars = self.query_one(StepBars)
            key = keyed(trace, v.layer, v.direction)
            if getattr(self, "_bars_key", None) != key:
                self._bars_key = key
                entry = heatmap.view.entry
                series = [Series("‖dL/dh_t‖", entry.dL_dh_norm, log=True)]
                if entry.dL_dc is not None:
                    series.append(Series("‖dL/dc_t‖", entry.dL_dc_norm, log=True))
                if trace.step_losses.shape[0] == trace.T:
                    series.append(Series("loss_t", trace.step_losses, log=True, nan_blank=True))
                bars.series = tuple(series)
                bars.tokens = tuple(trace.tokens)
            bars.step = v.step
