"""The live loss curve: log10(loss) against the optimizer step, and the task metric.

textual-plotext rebuilds the whole chart on every refresh (~25 ms at 160x50), so the curve it is
handed is already downsampled (`downsample`, a few hundred points at most), it is redrawn at most
`MAX_FPS` times a second however often training reports, and the axis is linear in log10(loss):
a log-scale axis raises when the chart is rebuilt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
from textual_plotext import PlotextPlot

MAX_POINTS = 300
MAX_FPS = 4  # chart rebuilds per second


def downsample(steps: Sequence[int], values: Sequence[float], max_points: int = MAX_POINTS) -> tuple[tuple, tuple]:
    """At most `max_points` (step, value) pairs: the mean of each run of consecutive points,
    at the run's last step, non-finite values left out."""
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    s, v = s[ok], v[ok]
    n = s.size
    if n <= max_points:
        return tuple(s.tolist()), tuple(v.tolist())
    edges = np.linspace(0, n, max_points + 1).astype(int)
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            xs.append(float(s[b - 1]))
            ys.append(float(v[a:b].mean()))
    return tuple(xs), tuple(ys)


FEW_POINTS = 12  # a curve of at most this many points is drawn as dots


def log10_losses(losses: Sequence[float]) -> list[float]:
    """log10 of each loss; a non-positive or non-finite loss becomes NaN (left off the curve)."""
    return [math.log10(x) if x > 0 and math.isfinite(x) else math.nan for x in losses]


class LossPlot(PlotextPlot):
    """Draws the curve it was last given; `show` replaces it (already downsampled)."""

    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.curve: tuple[tuple, tuple] = ((), ())
        self.metric_curve: tuple[tuple, tuple] = ((), ())
        self.metric_name = ""
        self.marker_step: int | None = None  # where the run diverged
        self._drawn_at = 0.0
        self._due = None  # a timer for a draw held back by MAX_FPS

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()

    def show(self, curve: tuple[tuple, tuple], metric_curve: tuple[tuple, tuple] = ((), ()),
             metric_name: str = "", marker_step: int | None = None) -> None:
        if (curve, metric_curve, metric_name, marker_step) == (self.curve, self.metric_curve, self.metric_name,
                                                              self.marker_step):
            return
        self.curve, self.metric_curve, self.metric_name, self.marker_step = curve, metric_curve, metric_name, marker_step
        if self._due is not None:
            return  # a draw is already on its way and will show this curve
        wait = self._drawn_at + 1.0 / MAX_FPS - time.monotonic()
        if wait <= 0 or not self.is_mounted:
            self._draw()
        else:
            self._due = self.set_timer(wait, self._draw)

    def _draw(self) -> None:
        self._due = None
        self._drawn_at = time.monotonic()
        plt = self.plt
        plt.clear_figure()
        plt.title("log10(loss)" + (f" and {self.metric_name}" if self.metric_curve[0] else "")
                  + (f" · diverged at step {self.marker_step}" if self.marker_step is not None else ""))
        plt.xlabel("step")
        xs, ys = self.curve
        if xs:
            # a short run (one that diverged early) is a few points: drawn as dots a person sees,
            # where a braille line would be a speck or two
            marker = "braille" if sum(math.isfinite(y) for y in ys) > FEW_POINTS else "●"
            plt.plot(list(xs), list(ys), marker=marker, label="log10 loss")
        mx, my = self.metric_curve
        if mx:
            plt.plot(list(mx), list(my), marker="braille", label=self.metric_name, yside="right")
        if self.marker_step is not None:
            plt.vline(self.marker_step)
        if not xs and not mx:
            plt.xlim(0, 1)
            plt.ylim(0, 1)
        self.refresh()
