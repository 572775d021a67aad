"""The one error `rnn-tui serve` raises for what the operator can fix (pure Python)."""

from rnn_tui.engine.errors import EngineError


class ServeError(EngineError):
    """A serve setting that cannot be used (a port in use, a bad flag for the explorer, a model
    that cannot be built): one line, exit code 2."""
