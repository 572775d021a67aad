"""Errors the engine raises for bad input. Each message is one line that says what to change.

The CLI turns any `EngineError` into that line on stderr and exit code 2; the UI shows it.
"""


class EngineError(ValueError):
    """Bad input from the user: a setting, a file, a sequence. Never a bug."""
