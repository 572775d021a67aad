"""One line at the top: the model, its size, the loss, where we are, and what is running.

On a narrow terminal the less urgent pieces go first (the run's title, the parameter count, the
play speed, the layer count), so where the cursor is (t, unit, layer) is never cut off."""

from __future__ import annotations

from rich.cells import cell_len
from textual.reactive import reactive

from rnn_tui.safe_text import safe
from rnn_tui.ui.numbers import number
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.lines_view import Line, LinesView

# pieces dropped, in this order, until the line fits
OPTIONAL = ("title", "params", "speed", "layers")


def status_line(view: View | None, busy: str, error: str, playing: bool, speed: float,
                width: int | None = None) -> Line:
    pieces: list[tuple[str, str, str]] = [(" rnn-tui ", "bold reverse", "")]  # (text, style, optional name)
    if view is not None:
        trace = view.trace
        cfg = trace.config
        name = f"rnn-{cfg.activation}" if cfg.cell == "rnn" else cfg.cell
        params = sum(int(v.size) for v in trace.params.values())
        pieces.append((f" {name} · H {cfg.hidden_size}", "bold", ""))
        pieces.append((f" · {cfg.num_layers} layer{'s' * (cfg.num_layers > 1)}", "bold", "layers"))
        if cfg.bidirectional:
            pieces.append((" · bi", "bold", ""))
        pieces.append((f" · {params:,} params", "", "params"))
        pieces.append((f" · loss {number(trace.loss, '.4f')}" if scored(trace) else " · no targets, no loss", "", ""))
        pieces.append((f" │ t {view.step}/{trace.T - 1} · unit {view.unit} · {view.entry.name}", "", ""))
        pieces.append((f" │ {'▶' if playing else '‖'}", "", ""))
        pieces.append((f" {speed:g}/s", "", "speed"))
        title = trace.extras.get("title")
        if title:  # a scenario's or a run's own words: shown, never obeyed (rnn_tui.safe_text)
            pieces.append((f" │ {safe(title)}", "dim", "title"))
    if busy:
        pieces.append((f" │ {safe(busy)}", "italic", ""))
    if error:
        pieces.append((f" │ {safe(error)}", "bold reverse", ""))
    if width is not None:
        for drop in OPTIONAL:
            if sum(cell_len(text) for text, _, _ in pieces) <= width:
                break
            pieces = [p for p in pieces if p[2] != drop]
    return tuple((text, style) for text, style, _ in pieces)


def scored(trace) -> bool:
    """Some row has a target: without one the trace's loss is a mean of nothing (kept in the
    trace's extras, so a step does not walk the targets again)."""
    known = trace.extras.get("scored")
    if known is None:
        known = trace.extras["scored"] = any(t is not None for t in trace.targets)
    return known


class StatusBar(LinesView):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; overflow: hidden hidden; }
    """

    view: reactive[View | None] = reactive(None, repaint=False)
    busy: reactive[str] = reactive("", repaint=False)
    request: reactive[TraceRequest | None] = reactive(None, repaint=False)
    playing: reactive[bool] = reactive(False, repaint=False)
    speed: reactive[float] = reactive(4.0, repaint=False)
    error: reactive[str] = reactive("", repaint=False)

    def _update(self) -> None:
        if self.is_mounted:
            line = status_line(self.view, self.busy, self.error, self.playing, self.speed, self.size.width or None)
            self.set_lines([line])

    def on_mount(self) -> None:
        self._update()

    def on_resize(self) -> None:
        self._update()

    watch_view = watch_busy = watch_playing = watch_speed = watch_error = _update
