"""One line at the top: the model, its size, the loss, where we are, and what is running."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive

from rnn_tui.ui.widgets.pane import Pane


class StatusBar(Pane):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; }
    """

    playing: reactive[bool] = reactive(False)
    speed: reactive[float] = reactive(4.0)
    error: reactive[str] = reactive("")

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" rnn-tui ", style="bold reverse")
        view = self.view
        if view is not None:
            trace = view.trace
            cfg = trace.config
            name = f"rnn-{cfg.activation}" if cfg.cell == "rnn" else cfg.cell
            params = sum(int(v.size) for v in trace.params.values())
            shape = f" {name} · H {cfg.hidden_size} · {cfg.num_layers} layer{'s' * (cfg.num_layers > 1)}"
            shape += " · bi" if cfg.bidirectional else ""
            out.append(shape, style="bold")
            out.append(f" · {params:,} params · loss {trace.loss:.4f}")
            out.append(f" │ t {view.step}/{trace.T - 1} · unit {view.unit} · {view.entry.name}")
            out.append(f" │ {'▶' if self.playing else '⏸'} {self.speed:g}/s")
        if self.busy:
            out.append(f" │ {self.busy}", style="italic")
        if self.error:
            out.append(f" │ {self.error}", style="bold reverse")
        return out

    def watch_view(self) -> None:
        self.refresh()

    def watch_busy(self) -> None:
        self.refresh()
