"""Over the heatmaps: the colour scale of each kind of matrix, and the exact value under the
mouse (or, when the mouse is elsewhere, under the cursor: current step, selected unit)."""

from __future__ import annotations

from textual.reactive import reactive

from rnn_tui.ui.numbers import nonfinite
from rnn_tui.ui.palette import Scale, legend_cells, matrix, matrix_names, palette_for_theme, scale_for
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.heatmap_view import render_mode
from rnn_tui.ui.widgets.lines_view import Line, LinesView


def exact(value: float, dtype: str) -> str:
    """The shortest decimal that reads back as the stored number: nothing rounded away."""
    import numpy as np  # with a trace in hand, numpy is loaded already

    return nonfinite(value) or str(np.float32(value) if dtype == "float32" else np.float64(value))


class HeatmapLegend(LinesView):
    DEFAULT_CSS = """
    HeatmapLegend { height: 2; overflow: hidden hidden; }
    """

    view: reactive[View | None] = reactive(None, repaint=False)
    hover: reactive[tuple[str, int, int] | None] = reactive(None, repaint=False)  # (matrix, step, unit)

    def on_mount(self) -> None:
        self.watch(self.app, "theme", lambda *_: self._update(), init=False)
        self._update()

    def watch_view(self) -> None:
        self._update()

    def watch_hover(self) -> None:
        self._update()

    def on_resize(self) -> None:
        self._update()

    def _update(self) -> None:
        if self.is_mounted:
            self.set_lines([self.scales(), self.readout()])

    def readout(self) -> Line:
        view = self.view
        if view is None:
            return ()
        name, t, unit = self.hover or (view.matrix, view.step, view.unit)
        trace = view.trace
        if name not in matrix_names(trace.config) or not (0 <= t < trace.T):
            name, t, unit = view.matrix, view.step, view.unit
        value = matrix(view.entry, name)[t, unit]
        source = "mouse" if self.hover else "cursor"
        token = trace.tokens[t] if t < len(trace.tokens) else ""
        return (
            (name, "bold"),
            (f"[t={t} {token!r}, unit {unit}] = ", ""),
            (exact(value, trace.dtype), "bold"),
            (f"   ({source}; {view.entry.name})", "dim"),
        )

    def groups(self, view: View) -> list[tuple[list[str], Scale]]:
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

    def scales(self) -> Line:
        view = self.view
        if view is None:
            return ()
        key = (view.layer, view.direction, view.matrix, self.app.theme, self.size.width)
        cached = getattr(self, "_scales_line", None)  # (trace, key, line); traces compare by identity
        if cached is not None and cached[0] is view.trace and cached[1] == key:
            return cached[2]
        line = self._scales(view)
        self._scales_line = (view.trace, key, line)
        return line

    def _scales(self, view: View) -> Line:
        palette = palette_for_theme(self.app.theme)
        mode = render_mode(self.app, palette)
        groups = sorted(self.groups(view), key=lambda g: view.matrix not in g[0])  # focused first
        cells = 12 if self.size.width >= 100 else 6
        pieces = []
        for names, scale in groups:
            lo, hi = scale.ends()
            pieces.append((f"{','.join(names)} ", "bold"))
            pieces.append((f"{lo} ", ""))
            pieces.extend(legend_cells(palette, scale.kind, mode, self.rich_style, cells))
            pieces.append((f" {hi}+  " if scale.clipped else f" {hi}  ", ""))  # +: values lie beyond (as the title)
        return tuple(pieces)
