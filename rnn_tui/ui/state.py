"""What the explorer is looking at: one immutable record, replaced whole on every move.

The main screen owns a `View` and every pane is bound to it (`data_bind`), so a pane never sees a
new trace with an old step: trace, step, unit, layer and direction change together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rnn_tui.ui.palette import matrix_names

if TYPE_CHECKING:  # numpy's records: a View exists only once a trace has arrived
    from rnn_tui.engine.records import LayerTrace, Trace


@dataclass(frozen=True, eq=False)  # eq=False: compared by identity, each move is a new View
class View:
    trace: Trace
    step: int = 0  # current position t, 0 .. T-1
    unit: int = 0  # selected hidden unit j, 0 .. H-1
    layer: int = 0
    direction: str = "forward"
    matrix: str = "h"  # the heatmap in focus: h, c, or a gate name
    all_maps: bool = True  # every matrix side by side where they fit, or only the focused one
    equations: bool | None = None  # show the equations beside the maps; None: when there is room

    def __post_init__(self) -> None:
        trace = self.trace
        cfg = trace.config
        fix = object.__setattr__  # clamp in place: a View is always valid
        fix(self, "step", min(max(int(self.step), 0), max(trace.T - 1, 0)))
        fix(self, "unit", min(max(int(self.unit), 0), cfg.hidden_size - 1))
        if not any(e.layer == self.layer and e.direction == self.direction for e in trace.layers):
            fix(self, "layer", min(max(int(self.layer), 0), cfg.num_layers - 1))
            fix(self, "direction", "forward")
        if self.matrix not in matrix_names(cfg):
            fix(self, "matrix", "h")

    @property
    def entry(self) -> LayerTrace:
        return self.trace.layer(self.layer, self.direction)

    @property
    def entries(self) -> list[tuple[int, str]]:
        return [(e.layer, e.direction) for e in self.trace.layers]

    def moved(self, **changes) -> "View":
        return replace(self, **changes)

    def with_trace(self, trace: Trace) -> "View":
        """The same place in a new trace (clamped where the new one is smaller)."""
        return replace(self, trace=trace)
