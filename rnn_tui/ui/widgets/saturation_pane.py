"""Gate saturation: how often each gate sits at the flat ends of its nonlinearity.

    gate  range       < lo    > hi    saturated
    i     0.1 / 0.9   12.5%   3.1%    15.6%  ███▏
    ...
    per unit: one row per unit, two columns per gate (↓ share below lo, ↑ share above hi)

    w   the whole sequence, or only the steps up to the current one
    o   units in index order, or the most saturated first

A sigmoid gate below 0.1 or above 0.9 (a tanh beyond ±0.9) passes little gradient: its
derivative is under 0.09 (0.19). The shares come from `engine.saturation` (numpy, on the
trace the explorer holds), for the layer and direction in view.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Static

from rnn_tui.engine.records import LayerTrace, Trace
from rnn_tui.engine.saturation import GateSaturation, layer_saturation
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.palette import Scale
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.matrix_view import Matrix, MatrixView
from rnn_tui.ui.work import Job, keyed

BAR = 12  # cells of the overall bar


def up_to(entry: LayerTrace, step: int) -> LayerTrace:
    """The layer's record cut to the steps read so far: t <= step forward, t >= step in reverse."""
    sl = slice(0, step + 1) if entry.direction == "forward" else slice(step, None)
    return LayerTrace(
        layer=entry.layer, direction=entry.direction, h=entry.h[sl], c=None if entry.c is None else entry.c[sl],
        gates={k: v[sl] for k, v in entry.gates.items()}, preacts={k: v[sl] for k, v in entry.preacts.items()},
        dL_dh=entry.dL_dh[sl], dL_dc=None if entry.dL_dc is None else entry.dL_dc[sl], dL_dpre=entry.dL_dpre[sl],
        h0=entry.h0, c0=entry.c0,
    )


def saturation(trace: Trace, layer: int, direction: str, step: int | None) -> list[GateSaturation]:
    """The gates' saturation in one layer and direction: over the whole sequence (step None) or
    the steps read up to `step`."""
    entry = trace.layer(layer, direction)
    return layer_saturation(trace.config, entry if step is None else up_to(entry, step))


def per_unit(stats: list[GateSaturation]) -> tuple[np.ndarray, tuple[str, ...]]:
    """(H, 2G) shares, columns gate by gate: below lo, above hi; and their labels."""
    cols, labels = [], []
    for s in stats:
        cols += [s.low, s.high]
        labels += [f"{s.gate}↓", f"{s.gate}↑"]
    return np.stack(cols, axis=1), tuple(labels)


def overall_table(stats: list[GateSaturation]) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for name, justify in (("gate", "left"), ("lo / hi", "left"), ("< lo", "right"), ("> hi", "right"),
                          ("saturated", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    for s in stats:
        share = s.overall_saturated
        full = int(round(share * BAR))
        table.add_row(
            "a (h)" if s.gate == "a" else s.gate, f"{s.lo:g} / {s.hi:g}", f"{100 * s.overall_low:.1f}%",
            f"{100 * s.overall_high:.1f}%", f"{100 * share:.1f}%", "█" * full + "·" * (BAR - full),
        )
    return table


class SaturationPane(AnalysisPane):
    TITLE = "Saturation"
    DESCRIPTION = "the share of each gate's values below 0.1 and above 0.9, per unit and overall"

    BINDINGS = [
        Binding("w", "toggle_window", "whole/so far", tooltip="the whole sequence, or the steps up to this one"),
        Binding("o", "toggle_order", "order units", tooltip="units by index, or the most saturated first"),
    ]

    DEFAULT_CSS = """
    SaturationPane #sat-head { height: 1; padding: 0 1; }
    SaturationPane #sat-overall { height: auto; padding: 0 1; }
    SaturationPane #sat-units { height: 1fr; }
    """

    so_far: reactive[bool] = reactive(False)  # only the steps read up to the current one
    by_saturation: reactive[bool] = reactive(False)  # rows ordered by saturation, most first

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key: tuple | None = None  # what is drawn
        self.stats: list[GateSaturation] = []
        self.order: np.ndarray | None = None
        self.shares = Job(self, "saturation", saturation, keep=16)

    def compose(self) -> ComposeResult:
        yield Static(id="sat-head")
        yield Static(id="sat-overall")
        yield MatrixView(id="sat-units")

    def refresh_analysis(self) -> None:
        if not self.is_mounted:
            return
        view = self.view
        units = self.query_one(MatrixView)
        if view is None:
            self.query_one("#sat-head", Static).update(Text(self.busy or "no trace yet", style="dim italic"))
            self.query_one("#sat-overall", Static).update("")
            units.matrix = None
            return
        trace: Trace = view.trace
        step = view.step if self.so_far else None
        wanted = keyed(trace, view.layer, view.direction, step)
        outcome = self.shares.get(wanted, trace, view.layer, view.direction, step)
        if outcome.failed:
            self._key = None
            self.query_one("#sat-head", Static).update(Text(f"no saturation: {outcome.error}", style="dim italic"))
            self.query_one("#sat-overall", Static).update("")
            units.matrix = None
            return
        if outcome.running:  # the shares drawn stay until the new ones arrive (a step in "so far" mode)
            if self._key is None:
                self.query_one("#sat-head", Static).update(Text("counting saturated gates…", style="dim italic"))
            return
        key = wanted + (self.by_saturation,)
        if key != self._key:
            self._key = key
            self.stats = outcome.value
            self._draw(trace, view)
        if self.order is not None and units.matrix is not None:
            row = int(np.flatnonzero(self.order == view.unit)[0]) if view.unit in self.order else None
            units.cursor = (row, None)

    def _draw(self, trace: Trace, view) -> None:
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f" {view.entry.name} ", style="bold reverse")
        span = f"steps 0…{view.step}" if self.so_far and view.direction == "forward" else (
            f"steps {view.step}…{trace.T - 1}" if self.so_far else f"all {trace.T} steps")
        head.append(f"  {span}   ")
        units = self.query_one(MatrixView)
        with self.app.batch_update():
            if not self.stats:
                head.append(f"the {trace.config.cell} cell with a {trace.config.activation} activation has no "
                            "bounded gate: nothing saturates", style="dim")
                self.query_one("#sat-head", Static).update(head)
                self.query_one("#sat-overall", Static).update("")
                units.matrix = None
                units.message = "no bounded gate"
                self.order = None
                return
            head.append("w: whole sequence / so far   o: order by saturation", style="dim")
            self.query_one("#sat-head", Static).update(head)
            self.query_one("#sat-overall", Static).update(overall_table(self.stats))
            values, labels = per_unit(self.stats)
            H = values.shape[0]
            if self.by_saturation:
                order = np.argsort(-values.sum(axis=1), kind="stable")
            else:
                order = np.arange(H)
            self.order = order
            units.matrix = Matrix(
                values=values[order], scale=Scale("sequential", 0.0, 1.0), title="share of steps per unit",
                row_axis="unit", col_axis="gate", row_labels=tuple(str(u) for u in order), col_labels=labels,
                cell=3, value_format="{:.1%}", unit_name="unit",
            )

    def action_toggle_window(self) -> None:
        self.so_far = not self.so_far

    def action_toggle_order(self) -> None:
        self.by_saturation = not self.by_saturation

    def watch_so_far(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def watch_by_saturation(self) -> None:
        if self.shown:
            self.refresh_analysis()

    def on_matrix_view_picked(self, message: MatrixView.Picked) -> None:
        message.stop()
        if self.order is not None:
            self.post_message(MoveTo(unit=int(self.order[message.row])))
