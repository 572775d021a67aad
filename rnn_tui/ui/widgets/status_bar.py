"""One line at the top: the model, its size, the loss, where we are, and what is running."""

from __future__ import annotations

from textual.reactive import reactive

from rnn_tui.ui.numbers import number
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.lines_view import Line, LinesView


def status_line(view: View | None, busy: str, error: str, playing: bool, speed: float) -> Line:
    pieces: list[tuple[str, str]] = [(" rnn-tui ", "bold reverse")]
    if view is not None:
        trace = view.trace
        cfg = trace.config
        name = f"rnn-{cfg.activation}" if cfg.cell == "rnn" else cfg.cell
        params = sum(int(v.size) for v in trace.params.values())
        shape = f" {name} · H {cfg.hidden_size} · {cfg.num_layers} layer{'s' * (cfg.num_layers > 1)}"
        shape += " · bi" if cfg.bidirectional else ""
        pieces.append((shape, "bold"))
        pieces.append((f" · {params:,} params · loss {number(trace.loss, '.4f')}", ""))
        pieces.append((f" │ t {view.step}/{trace.T - 1} · unit {view.unit} · {view.entry.name}", ""))
        pieces.append((f" │ {'▶' if playing else '‖'} {speed:g}/s", ""))
        title = trace.extras.get("title")
        if title:
            pieces.append((f" │ {title}", "dim"))
    if busy:
        pieces.append((f" │ {busy}", "italic"))
    if error:
        pieces.append((f" │ {error}", "bold reverse"))
    return tuple(pieces)


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
            self.set_lines([status_line(self.view, self.busy, self.error, self.playing, self.speed)])

    def on_mount(self) -> None:
        self._update()

    watch_view = watch_busy = watch_playing = watch_speed = watch_error = _update
