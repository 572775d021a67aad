"""One step of each recurrent cell, written as the lecture notes write it.

Every function takes one input x_t (..., I) and the previous state, and returns the new state and
a dict of gates: gate name -> (pre-activation, activation). Leading dimensions are free (a batch).

`edit(name, value) -> value`, when given, sees each gate's activation and each new state ("h",
"c") as soon as it is computed and may replace it: that is how an intervention clamps a gate or
pins a unit, and everything downstream uses the replaced value.
Weights are in torch's layout: W_ih (G*H, I), W_hh (G*H, H), b_ih and b_hh (G*H,) or None, rows
stacked in torch's gate order (LSTM i, f, g, o; GRU r, z, n).

These functions are the explicit, readable path; `model.py` trains with torch's fused modules
where torch has the cell, and the tests hold the two equal.
"""

from __future__ import annotations

import torch
from torch import Tensor

ACTIVATION = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z,
}

σ = torch.sigmoid
tanh = torch.tanh

Gates = dict[str, tuple[Tensor, Tensor]]


def affine(x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
    """W x + b, for x with any leading dimensions."""
    y = x @ W.T
    return y if b is None else y + b


def keep(name: str, value: Tensor) -> Tensor:
    """The default edit: change nothing."""
    return value


def rnn_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, activation="tanh", edit=keep) -> tuple[Tensor, Gates]:
    """Elman:  a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh ;  h_t = act(a_t)."""
    a = affine(x, W_ih, b_ih) + affine(h, W_hh, b_hh)
    h_t = edit("h", edit("a", ACTIVATION[activation](a)))
    return h_t, {"a": (a, h_t)}


def lstm_cell(x, h, c, W_ih, W_hh, b_ih=None, b_hh=None, w_ci=None, w_cf=None, w_co=None, edit=keep):
    """LSTM, with optional diagonal peepholes (w_ci, w_cf see c_{t-1}; w_co sees c_t).

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi [+ w_ci ⊙ c_{t-1}])
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf [+ w_cf ⊙ c_{t-1}])
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho [+ w_co ⊙ c_t])
        h_t = o_t ⊙ tanh(c_t)
    """
    a_i, a_f, a_g, a_o = (affine(x, W_ih, b_ih) + affine(h, W_hh, b_hh)).chunk(4, dim=-1)
    if w_ci is not None:
        a_i = a_i + w_ci * c
        a_f = a_f + w_cf * c
    i, f, g = edit("i", σ(a_i)), edit("f", σ(a_f)), edit("g", tanh(a_g))
    c_t = edit("c", f * c + i * g)
    if w_co is not None:
        a_o = a_o + w_co * c_t
    o = edit("o", σ(a_o))
    h_t = edit("h", o * tanh(c_t))
    return (h_t, c_t), {"i": (a_i, i), "f": (a_f, f), "g": (a_g, g), "o": (a_o, o)}


def gru_cell(x, h, W_ih, W_hh, b_ih=None, b_hh=None, textbook=False, edit=keep) -> tuple[Tensor, Gates]:
    """GRU. PyTorch's placement applies the reset gate after the recurrent product:

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The textbook placement (Cho et al.) resets the state before the product:

        n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)
    """
    H = h.shape[-1]
    gi_r, gi_z, gi_n = affine(x, W_ih, b_ih).chunk(3, dim=-1)
    W_hr, W_hz, W_hn = W_hh[:H], W_hh[H : 2 * H], W_hh[2 * H :]
    b_hr, b_hz, b_hn = (None, None, None) if b_hh is None else b_hh.chunk(3)
    a_r = gi_r + affine(h, W_hr, b_hr)
    a_z = gi_z + affine(h, W_hz, b_hz)
    r, z = edit("r", σ(a_r)), edit("z", σ(a_z))
    if textbook:
        a_n = gi_n + affine(r * h, W_hn, b_hn)
    else:
        a_n = gi_n + r * affine(h, W_hn, b_hn)
    n = edit("n", tanh(a_n))
    h_t = edit("h", (1 - z) * n + z * h)
    return h_t, {"r": (a_r, r), "z": (a_z, z), "n": (a_n, n)}
