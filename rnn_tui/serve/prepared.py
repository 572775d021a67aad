"""The explorer's source with its first trace built ahead: the preloader builds and traces the
model once, and every visitor's explorer opens on that trace instead of building its own.

    source = PreparedSource.from_spec(spec)
    source.prepare(source.initial_request())   # in the preloader, before forking
    source.build(request)                       # in a visitor: that trace for that request

The trace is the one `EngineSource.build` made for the same request, so it is what the
visitor's own build would give (a build is repeatable: same spec, same seed, same numbers). It
is handed out only while the source would build it the same way: for the same request and with
the source's own weights. Once the visitor trains (`use_weights`), or asks for another model or
input, builds go through the engine as usual, in the visitor's process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rnn_tui.ui.source import EngineSource, TraceRequest


@dataclass
class PreparedSource(EngineSource):
    prepared: tuple | None = field(default=None, repr=False)  # (TraceRequest, Trace)

    def prepare(self, request: TraceRequest) -> None:
        self.prepared = None
        trace = self.build(request)
        self.prepared = (request, trace)

    def ready(self, request: TraceRequest):
        """The prepared trace when it is the one `build(request)` would make now, else None."""
        held = self.prepared
        if held is not None and request == held[0] and self._trained is None:
            return held[1]
        return None

    def build(self, request: TraceRequest):
        trace = self.ready(request)
        if trace is None:
            return super().build(request)
        self._last_vocab = trace.extras.get("token_vocab")  # the tokens now shown (see use_weights)
        return trace

    def describe(self) -> str:
        """One line on what was prepared, for the server's first lines."""
        if self.prepared is None:
            return "nothing"
        trace = self.prepared[1]
        cfg = trace.config
        shape = f"{cfg.cell} H={cfg.hidden_size}" + (f" x{cfg.num_layers}" if cfg.num_layers > 1 else "")
        return f"{shape}, {trace.T} steps"
