"""An independent answer key for traces: a plain autograd loop over the cell equations.

Every h_t (and c_t) gets a zero "probe" added to it; the gradient of the loss with respect to the
probe is the total derivative dL/dh_t, through every later step. Nothing here shares code with
`trace.py`'s delta recursion, and the loop itself is checked against torch.nn modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnn_tui.engine import cells


def reference(model, X, targets, h0=None, c0=None):
    """X: (T, I) float64 vectors fed to layer 0. Returns a dict of tensors (float64)."""
    cfg = model.config
    P = {k: v.detach().double() for k, v in model.tensors().items()}
    T, H, D = X.shape[0], cfg.hidden_size, cfg.num_directions
    LD = cfg.num_layers * D
    h0 = torch.zeros(LD, H, dtype=torch.float64) if h0 is None else h0.double()
    c0 = torch.zeros(LD, H, dtype=torch.float64) if c0 is None else c0.double()
    h0 = h0.clone().requires_grad_(True)
    c0 = c0.clone().requires_grad_(True)
    X = X.double().clone().requires_grad_(True)
    probes_h = torch.zeros(LD, T, H, dtype=torch.float64, requires_grad=True)
    probes_c = torch.zeros(LD, T, H, dtype=torch.float64, requires_grad=True)
    layer_in = X
    states = {}
    for k in range(cfg.num_layers):
        outs = []
        for d in range(D):
            idx = k * D + d
            sfx = f"_l{k}" + ("_reverse" if d else "")
            W_ih, W_hh = P[f"weight_ih{sfx}"], P[f"weight_hh{sfx}"]
            b_ih, b_hh = P.get(f"bias_ih{sfx}"), P.get(f"bias_hh{sfx}")
            h, c = h0[idx], c0[idx]
            hs, cs, gate_rows = [None] * T, [None] * T, [None] * T
            for t in reversed(range(T)) if d else range(T):
                x = layer_in[t]
                if cfg.cell == "rnn":
                    h, g = cells.rnn_cell(x, h, W_ih, W_hh, b_ih, b_hh, cfg.activation)
                elif cfg.cell.startswith("lstm"):
                    # written out here, not through cells.lstm_cell, so the c_t probe sits
                    # between c_t and everything that reads it (o_t's peephole, h_t, c_{t+1})
                    a = x @ W_ih.T + h @ W_hh.T
                    if b_ih is not None:
                        a = a + b_ih + b_hh
                    a_i, a_f, a_g, a_o = a.chunk(4)
                    if cfg.cell == "lstm-peephole":
                        a_i = a_i + P[f"weight_ci{sfx}"] * c
                        a_f = a_f + P[f"weight_cf{sfx}"] * c
                    i, f, gg = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
                    c = f * c + i * gg + probes_c[idx, t]
                    if cfg.cell == "lstm-peephole":
                        a_o = a_o + P[f"weight_co{sfx}"] * c
                    o = torch.sigmoid(a_o)
                    h = o * torch.tanh(c)
                    g = {"i": (a_i, i), "f": (a_f, f), "g": (a_g, gg), "o": (a_o, o)}
                    cs[t] = c
                else:
                    h, g = cells.gru_cell(x, h, W_ih, W_hh, b_ih, b_hh, cfg.cell == "gru-textbook")
                h = h + probes_h[idx, t]
                hs[t] = h
                gate_rows[t] = {name: act for name, (pre, act) in g.items()}
            states[idx] = (torch.stack(hs), torch.stack(cs) if cfg.cell.startswith("lstm") else None, gate_rows)
            outs.append(torch.stack(hs))
        layer_in = torch.cat(outs, dim=-1)
    out = layer_in
    if cfg.head == "step":
        pooled = out
    elif cfg.head == "mean":
        pooled = out.mean(0, keepdim=True)
    else:
        last = out[-1, :H]
        if cfg.bidirectional:
            last = torch.cat([last, out[0, H:]])
        pooled = last[None]
    Y = pooled @ P["head.weight"].T + P["head.bias"]
    scored = [t is not None for t in targets]
    if cfg.loss == "ce":
        tgt = torch.tensor([t if t is not None else -100 for t in targets])
        loss = F.cross_entropy(Y, tgt, ignore_index=-100) if any(scored) else Y.sum() * 0
    else:
        tgt = torch.tensor([t if t is not None else [0.0] * cfg.output_size for t in targets], dtype=torch.float64)
        mask = torch.tensor(scored)
        loss = ((Y - tgt) ** 2).mean(-1)[mask].mean() if any(scored) else Y.sum() * 0
    loss.backward()
    return {
        "loss": loss.detach(),
        "Y": Y.detach(),
        "states": states,
        "dL_dh": probes_h.grad,
        "dL_dc": probes_c.grad,
        "dL_dh0": h0.grad,
        "dL_dc0": c0.grad,
        "dL_dX": X.grad,
    }
