"""Under the heatmaps: the colour scale of each kind of matrix, and the exact value under the
mouse (or, when the mouse is elsewhere, under the cursor: current step, selected unit)."""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.ui.palette import Scale, legend_cells, matrix, matrix_names, palette_for_theme, scale_for
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.heatmap_view import render_mode


def exact(value: float, dtype: str) -> str:
    """The shortest decimal that reads back as the stored number: nothing rounded away."""
    return str(np.float32(value) if dtype == "float32" else np.float64(value))


class HeatmapLegend(Widget):
    DEFAULT_CSS = """
    HeatmapLegend { height: 2; }
    """

    view: reactive[View | None] = reactive(None)
    hover: reactive[tuple[str, int, int] | None] = reactive(None)  # (matrix, step, unit)

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda *_: self.refresh(), init=False)

    def readout(self) -> Text:
        view = self.view
        if view is None:
            return Text("")
        name, t, unit = self.hover or (view.matrix, view.step, view.unit)
        trace = view.trace
        if name not in matrix_names(trace.config) or not (0 <= t < trace.T):
            name, t, unit = view.matrix, view.step, view.unit
        value = matrix(view.entry, name)[t, unit]
        source = "mouse" if self.hover else "cursor"
        token = trace.tokens[t] if t < len(trace.tokens) else ""
        out = Text()
        out.append(f"{name}", style="bold")
        out.append(f"[t={t} {token!r}, unit {unit}] = ")
        out.append(exact(value, trace.dtype), style="bold")
        out.append(f"   ({source}; {view.entry.name})", style="dim")
        return out

    def groups(self, view: View) -> list[tuple[list[str], "Scale"]]:
        """Matrices that share a scale, grouped, for this trace and layer (cached)."""
        cached = getattr(self, "_groups", None)
        if cached is not None and cached[0] is view.trace and cached[1] == (view.layer, view.direction):
            return cached[2]
        cfg = view.trace.config
        groups: dict[tuple, tuple[list[str], Scale]] = {}
        for name in matrix_names(cfg):
            scale = scale_for(name, cfg, matrix(view.entry, name))
            groups.setdefault((scale.kind, scale.lo, scale.hi), ([], scale))[0].append(name)
        result = list(groups.values())
        self._groups = (view.trace, (view.layer, view.direction), result)
        return result

    def scales(self) -> Text:
        view = self.view
        out = Text()
        if view is None:
            return out
        palette = palette_for_theme(self.app.theme)
        mode = render_mode(self.app, palette)
        groups = sorted(self.groups(view), key=lambda g: view.matrix not in g[0])  # focused first
        cells = 12 if self.size.width >= 100 else 6
        for names, scale in groups:
            lo, hi = scale.label().split(" … ")
            out.append(f"{','.join(names)} ", style="bold")
            out.append(f"{lo} ")
            for text, style in legend_cells(palette, scale.kind, mode, self.rich_style, cells):
                out.append(text, style=style)
            out.append(f" {hi}  ")
        return out

    def render(self) -> Text:
        scales, readout = self.scales(), self.readout()
        for line in (scales, readout):
            line.no_wrap, line.overflow = True, "ellipsis"
        return Text("\n", no_wrap=True, overflow="ellipsis").join([scales, readout])

    def watch_view(self) -> None:
        self.refresh()
