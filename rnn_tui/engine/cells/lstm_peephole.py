"""The LSTM with peepholes (Gers & Schmidhuber, 2000): the gates also look at the cell state.

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi + w_ci ⊙ c_{t-1})
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf + w_cf ⊙ c_{t-1})
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho + w_co ⊙ c_t)

The peephole weights are vectors (one per unit), weight_ci_l{k}, weight_cf_l{k}, weight_co_l{k}.
torch has no such module, so every step runs through the equations; the maths is the LSTM's
(`lstm.py`), whose every formula carries the peephole terms where these vectors are present.
"""

from __future__ import annotations

from rnn_tui.engine.cells.base import STANDARD_WEIGHTS
from rnn_tui.engine.cells.lstm import LSTM, PEEPHOLES

CELL = LSTM(
    name="lstm-peephole",
    summary="LSTM with peepholes: the gates also look at the cell state",
    gates=("i", "f", "g", "o"),
    gate_fns=("σ", "σ", "tanh", "σ"),
    states=("h", "c"),
    keep_gates=(("f", 1),),
    presets=(("forget", "f", 1.0), ("input", "i", 0.0)),
    equations=(
        "i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi + w_ci ⊙ c_{t-1})",
        "f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf + w_cf ⊙ c_{t-1})",
        "g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)",
        "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t",
        "o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho + w_co ⊙ c_t)",
        "h_t = o_t ⊙ tanh(c_t)",
    ),
    tensors="as lstm, plus weight_ci_l{k}, weight_cf_l{k}, weight_co_l{k} (H)",
    weights=STANDARD_WEIGHTS + PEEPHOLES,
)
