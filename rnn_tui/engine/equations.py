"""The equations of each cell, as text, for `rnn-tui cells`, the help screen and the lessons:
a view of the cell registry (`rnn_tui.engine.cells`), where each cell writes its own.

No numpy, no torch here: the UI and CLI import this at start-up.
"""

from __future__ import annotations

from rnn_tui.engine.cells import REGISTRY

SUMMARY = {name: cell.summary for name, cell in REGISTRY.items()}
EQUATIONS = {name: list(cell.equations) for name, cell in REGISTRY.items()}
PARAMETERS = {name: cell.tensors for name, cell in REGISTRY.items()}
