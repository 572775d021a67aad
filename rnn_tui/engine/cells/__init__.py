"""The recurrent cells, one module each, and the one registry every other part reads.

    from rnn_tui.engine.cells import get_cell, CELLS
    get_cell("lstm").gates            # ("i", "f", "g", "o"), torch's row order
    get_cell("gru").torch_native()    # True: torch.nn.GRU computes exactly this cell

A cell module holds the cell's facts (its registry entry) and its maths side by side: the
readable forward step, the fast forward pass, the backward step of BPTT, the step Jacobian and the
terms of its equations (see `base.Cell`). Adding a cell is one module here, named in REGISTRY
below, and its tests. Nothing in this package imports numpy or torch until its maths runs.

The readable steps of the classic cells keep their names, so `from rnn_tui.engine.cells import
rnn_cell, lstm_cell, gru_cell` reads as it always has. Each takes one input x_t (..., I) and the
previous state and returns the new state and the gates {name: (pre-activation, activation)};
weights are in torch's layout: W_ih (G*H, I), W_hh (G*H, H), b_ih and b_hh (G*H,) or None, rows in
torch's gate order (LSTM i, f, g, o; GRU r, z, n). `model.py` trains with torch's fused modules
where torch has the cell, and the tests hold the two equal.
"""

from __future__ import annotations

from rnn_tui.engine.cells import gru, gru_textbook, indrnn, lstm, lstm_peephole, mingru, minlstm, rnn
from rnn_tui.engine.cells.base import (  # noqa: F401  the readable path's helpers
    ACTIVATION, Cell, Equation, Factor, LayerForward, LayerGrads, LayerWeights, Steps, Term, Weight, affine, keep,
    σ, tanh,
)
from rnn_tui.engine.cells.gru import gru_cell  # noqa: F401
from rnn_tui.engine.cells.lstm import lstm_cell  # noqa: F401
from rnn_tui.engine.cells.rnn import rnn_cell  # noqa: F401
from rnn_tui.engine.errors import EngineError

Gates = dict  # gate name -> (pre-activation, activation)

# every cell, in the order `rnn-tui cells`, --cell and the explorer list them
REGISTRY: dict[str, Cell] = {
    m.CELL.name: m.CELL for m in (rnn, lstm, lstm_peephole, gru, gru_textbook, indrnn, mingru, minlstm)
}
SCANS: tuple[str, ...] = ("sequential", "parallel")  # --scan, for the cells that list them (Cell.scans)

CELLS: tuple[str, ...] = tuple(REGISTRY)
ACTIVATIONS: tuple[str, ...] = tuple(dict.fromkeys(a for c in REGISTRY.values() for a in c.activations))


class UnknownCell(EngineError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def get_cell(name: str) -> Cell:
    """The registry entry of a cell by its name; UnknownCell (one line) when there is none."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownCell(f"unknown cell {name!r}: choose one of {', '.join(CELLS)}") from None
