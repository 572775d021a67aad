"""Per-step numbers as rows of bars under the tokens: one row per series, one column per step.

    t          0    ▼    10
    x          h e l l o ␣ w o r l d
    ‖dL/dh‖ log▁▂▂▃▄▅▅▆▇█▇
    ‖J_t‖      ▅▅▆▅▅▄▅▅▆▅▅
    t=5 'o'  ‖dL/dh‖ 1.2e-03 (log 1e-05…0.31)   ‖J_t‖ 0.98 (0.21…1.4)

A bar's height (and colour) is the value's place on its series' scale; a log series places
log10 of the value, so a gradient that shrinks by a constant factor per step reads as a ramp.
The window of steps follows the current step. Zero on a log scale is drawn as the lowest bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.segment import Segment
from textual import events
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.numbers import nonfinite
from rnn_tui.ui.palette import Scale, cell_look, palette_for_theme
from rnn_tui.ui.widgets.heatmap_view import render_mode
from rnn_tui.ui.widgets.matrix_view import fit, window

LOG_MARK = " log"


def _short(v: float) -> str:
    if not math.isfinite(v):
        return nonfinite(v)
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


@dataclass(frozen=True, eq=False)
class Series:
    """One row of bars: a value per step."""

    name: str
    values: np.ndarray  # (T,)
    log: bool = False  # place log10(value) on the scale
    nan_blank: bool = False  # NaN means "no value here" (an unscored step), drawn empty, not as an error
    span: tuple[float, float] | None = None  # (lowest, highest) of a scale shared with other rows; None: its own

    def scale(self) -> tuple[Scale, float, float]:
        """(the scale the bar levels are read on, lowest and highest value shown)."""
        v = np.asarray(self.values, dtype=np.float64)
        if self.span is not None and all(math.isfinite(x) for x in self.span) and (not self.log or self.span[0] > 0):
            lo, hi = map(float, self.span)
            a, b = (math.log10(lo), math.log10(hi)) if self.log else (lo, hi)
            return Scale("sequential", a, b if b > a else a + 1.0), lo, hi
        if self.log:
            pos = v[np.isfinite(v) & (v > 0)]
            if pos.size == 0:
                return Scale("sequential", 0.0, 1.0), 0.0, 0.0
            lo, hi = float(pos.min()), float(pos.max())
            a, b = math.log10(lo), math.log10(hi)
            return Scale("sequential", a, b if b > a else a + 1.0), lo, hi
        fin = v[np.isfinite(v)]
        if fin.size == 0:
            return Scale("sequential", 0.0, 1.0), 0.0, 0.0
        lo, hi = min(float(fin.min()), 0.0), float(fin.max())
        return Scale("sequential", lo, hi if hi > lo else lo + 1.0), lo, hi

    def levels(self) -> np.ndarray:
        scale, _, _ = self.scale()
        v = np.asarray(self.values, dtype=np.float64)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                lv = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), scale.lo)
            lv = np.where(np.isfinite(v), lv, np.nan)
            levels = scale.levels(lv)
        else:
            levels = scale.levels(v)
        if self.nan_blank:
            levels = np.where(np.isnan(v), 0, levels).astype(levels.dtype)
        return levels


class StepBars(Widget):
    """Rows of per-step bars over the tokens, windowed around the current step."""

    COMPONENT_CLASSES = {"step-bars--label", "step-bars--axis", "step-bars--marker", "step-bars--current",
                         "step-bars--message"}

    DEFAULT_CSS = """
    StepBars { height: auto; }
    StepBars > .step-bars--label { color: $foreground-muted; }
    StepBars > .step-bars--axis { color: $foreground-muted; }
    StepBars > .step-bars--marker { color: $accent; text-style: bold; }
    StepBars > .step-bars--current { background: $primary; color: $background; text-style: bold; }
    StepBars > .step-bars--message { color: $foreground-muted; text-style: italic; }
    """

    series: reactive[tuple[Series, ...]] = reactive((), layout=True)
    tokens: reactive[tuple[str, ...]] = reactive(())
    step: reactive[int] = reactive(0)
    message: reactive[str] = reactive("")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._levels: list[np.ndarray] = []
        self._columns: tuple[int, int, int] = (0, 0, 1)  # start, stop, cell width

    def get_content_height(self, container, viewport, width: int) -> int:
        return 3 + len(self.series) if self.series else 1

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda *_: self.refresh(), init=False)

    def watch_series(self, series: tuple[Series, ...]) -> None:
        self._levels = [s.levels() for s in series]
        self.refresh()

    def watch_step(self) -> None:
        self.refresh()

    def watch_tokens(self) -> None:
        self.refresh()

    def watch_message(self) -> None:
        self.refresh()

    def label_width(self) -> int:
        names = [s.name + (LOG_MARK if s.log else "") for s in self.series] + ["x"]
        return min(max(cell_len(n) for n in names) + 1, 20)

    def _geometry(self) -> tuple[int, int, int]:
        T = len(self.series[0].values) if self.series else 0
        room = max(self.size.width - self.label_width(), 1)
        cw = 2 if T * 2 <= room else 1
        start, stop = window(T, self.step, room // cw)
        self._columns = (start, stop, cw)
        return start, stop, cw

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if not self.series:
            if y == 0 and self.message:
                return Strip([Segment(fit(" " + self.message, width), self.get_component_rich_style("step-bars--message"))], width)
            return Strip.blank(width, base)
        start, stop, cw = self._geometry()
        g = self.label_width()
        label = self.get_component_rich_style("step-bars--label")
        axis = self.get_component_rich_style("step-bars--axis")
        if y == 0:
            return self._axis(start, stop, cw, g, width, axis)
        if y == 1:
            current = self.get_component_rich_style("step-bars--current")
            segments = [Segment(fit("x", g), label)]
            for t in range(start, stop):
                tok = self.tokens[t] if t < len(self.tokens) else ""
                segments.append(Segment(fit(tok, cw), current if t == self.step else base))
            return Strip(segments).adjust_cell_length(width, base)
        k = y - 2
        if k < len(self.series):
            return self._bars(k, start, stop, cw, g, width, label)
        if k == len(self.series):
            return self._readout(width)
        return Strip.blank(width, base)

    def _axis(self, start, stop, cw, g, width, axis) -> Strip:
        n = stop - start
        chars = [" "] * (n * cw)
        tick = 5 if cw == 2 else 10
        for k in range(n):
            t = start + k
            if t % tick == 0:
                label = str(t)
                x = k * cw
                if x + len(label) <= len(chars) and all(c == " " for c in chars[max(x - 1, 0) : x + len(label) + 1]):
                    chars[x : x + len(label)] = label
        row = "".join(chars)
        marker = self.get_component_rich_style("step-bars--marker")
        segments = [Segment(fit("t", g), axis)]
        if start <= self.step < stop:
            x = (self.step - start) * cw
            segments += [Segment(row[:x], axis), Segment("▼" + " " * (cw - 1), marker), Segment(row[x + cw :], axis)]
        else:
            segments.append(Segment(row, axis))
        return Strip(segments).adjust_cell_length(width, self.rich_style)

    def _bars(self, k, start, stop, cw, g, width, label) -> Strip:
        base = self.rich_style
        s = self.series[k]
        palette = palette_for_theme(self.app.theme)
        mode = "glyph" if render_mode(self.app, palette) == "glyph" else "glyph+colour"
        look = cell_look(palette, "sequential", mode, cw, base)
        segments = [Segment(fit(s.name + (LOG_MARK if s.log else ""), g), label)]
        levels = self._levels[k]
        for t in range(start, stop):
            lvl = int(levels[t]) if t < len(levels) else -1
            segments.append((look.marked if t == self.step else look.plain)[lvl])
        return Strip(segments).adjust_cell_length(width, base)

    def _readout(self, width: int) -> Strip:
        t = self.step
        tok = self.tokens[t] if t < len(self.tokens) else ""
        parts = [f" t={t} {tok!r}"]
        for s in self.series:
            _, lo, hi = s.scale()
            v = float(s.values[t]) if t < len(s.values) else math.nan
            span = f"{'log ' if s.log else ''}{_short(lo)}…{_short(hi)}"
            parts.append(f"{s.name} {_short(v)} ({span})")
        return Strip([Segment(fit("   ".join(parts), width), self.rich_style)], width)

    def on_click(self, event: events.Click) -> None:
        start, stop, cw = self._columns
        g = self.label_width()
        if event.x >= g and 0 < event.y < 2 + len(self.series):
            t = start + (event.x - g) // cw
            if t < stop:
                self.post_message(MoveTo(step=t))
