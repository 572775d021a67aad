"""The equations of each cell, as text: for `rnn-tui cells`, the help screen and the lessons.

No torch here: the UI and CLI import this at start-up.
"""

from __future__ import annotations

SUMMARY = {
    "rnn": "Elman RNN: one affine map of x_t and h_{t-1}, through an activation",
    "lstm": "LSTM: input, forget and output gates around an additive cell state c_t",
    "lstm-peephole": "LSTM with peepholes: the gates also look at the cell state",
    "gru": "GRU, PyTorch's placement: reset gate applied after the recurrent product",
    "gru-textbook": "GRU, textbook placement: reset gate applied to h_{t-1} before the product",
}

EQUATIONS = {
    "rnn": [
        "a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh",
        "h_t = act(a_t)          act in tanh | relu | sigmoid | identity",
    ],
    "lstm": [
        "i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)",
        "f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)",
        "g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)",
        "o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)",
        "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t",
        "h_t = o_t ⊙ tanh(c_t)",
    ],
    "lstm-peephole": [
        "i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi + w_ci ⊙ c_{t-1})",
        "f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf + w_cf ⊙ c_{t-1})",
        "g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)",
        "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t",
        "o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho + w_co ⊙ c_t)",
        "h_t = o_t ⊙ tanh(c_t)",
    ],
    "gru": [
        "r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)",
        "z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)",
        "n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))",
        "h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}",
    ],
    "gru-textbook": [
        "r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)",
        "z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)",
        "n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)",
        "h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}",
    ],
}

PARAMETERS = {
    "rnn": "weight_ih_l{k} (H, I), weight_hh_l{k} (H, H), bias_ih_l{k}, bias_hh_l{k} (H)",
    "lstm": "weight_ih_l{k} (4H, I), weight_hh_l{k} (4H, H), biases (4H); rows i, f, g, o",
    "lstm-peephole": "as lstm, plus weight_ci_l{k}, weight_cf_l{k}, weight_co_l{k} (H)",
    "gru": "weight_ih_l{k} (3H, I), weight_hh_l{k} (3H, H), biases (3H); rows r, z, n",
    "gru-textbook": "as gru (same tensors, so the same weights run under both placements)",
}
