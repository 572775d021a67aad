"""The linear recurrence h_t = a_t ⊙ h_{t-1} + b_t, run as a loop or as a chunked scan.

minGRU and minLSTM (Feng et al., 2024) drop h_{t-1} from their gates, so every a_t and b_t is
known before the recurrence runs, and the recurrence is this one linear map per step:

    minGRU:   a_t = 1 - z_t,            b_t = z_t ⊙ n_t
    minLSTM:  a_t = f_t / (f_t + i_t),  b_t = i_t / (f_t + i_t) ⊙ n_t

The pairs (a, b) compose associatively, (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2), so the
states need not be found one step after another. `scan(..., parallel=True)` cuts the sequence into
chunks of about sqrt(T) steps and runs

    1. inside every chunk at once, the recurrence from a zero state, and the running product
       P_t = a_t ... a_(chunk start) (both one step at a time, every chunk in the same operation);
    2. across the chunks, the state each chunk starts from: carry_j = local_end_(j-1) + P_end_(j-1) carry_(j-1);
    3. h_t = local_t + P_t carry_(chunk of t), one product for the whole sequence.

That is about 2 sqrt(T) small steps instead of T, each on T / sqrt(T) rows. Nothing is divided
and nothing goes through a logarithm: a_t may be 0 and b_t of either sign (n_t is not squashed),
and a long product of gates near 0 goes to 0 as it should, never to 0/0. A log-space scan needs
log|b| and the sign of b apart, and loses P_t to underflow where the chunks' products do not.

Shapes: a, b (..., T, H), time on the second-to-last axis; h0 (..., H) broadcasts against them.
numpy for the trace, torch (`LinearScan`, its own backward: the same scan run backwards) for
training.
"""

from __future__ import annotations

import functools
import math

SCANS = ("sequential", "parallel")


def chunk_size(T: int) -> int:
    """Steps per chunk: about sqrt(T), so both loops of the chunked scan are short."""
    return max(1, int(math.isqrt(max(T, 1) - 1)) + 1)


# ---- numpy ------------------------------------------------------------------------------------------
def scan(a, b, h0, parallel: bool = True):
    """Every h_t of h_t = a_t ⊙ h_{t-1} + b_t from h0: (..., T, H) numpy."""
    return _chunked(a, b, h0) if parallel else _loop(a, b, h0)


def _loop(a, b, h0):
    import numpy as np

    out = np.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b, h0))
    h = np.asarray(h0)
    for t in range(out.shape[-2]):
        h = np.multiply(a[..., t, :], h, out=out[..., t, :])
        h += b[..., t, :]
    return out


def _chunked(a, b, h0):
    import numpy as np

    shape = np.broadcast_shapes(a.shape, b.shape)
    dt = np.result_type(a, b, h0)
    T, H = shape[-2], shape[-1]
    lead = shape[:-2]
    C = chunk_size(T)
    n = -(-T // C)  # chunks
    pad = n * C - T
    a_ = np.broadcast_to(a, shape).astype(dt, copy=True)
    b_ = np.broadcast_to(b, shape).astype(dt, copy=True)
    if pad:  # a = 1, b = 0: the padded steps keep the state
        a_ = np.concatenate([a_, np.ones(lead + (pad, H), dt)], axis=-2)
        b_ = np.concatenate([b_, np.zeros(lead + (pad, H), dt)], axis=-2)
    A = a_.reshape(lead + (n, C, H))  # (..., chunk, step, H)
    B = b_.reshape(lead + (n, C, H))
    # 1. inside each chunk, from a zero state: local_c = a_c local_(c-1) + b_c, P_c = a_c P_(c-1)
    local, P = B, A  # written in place: B and A are our own copies
    for c in range(1, C):
        local[..., c, :] += A[..., c, :] * local[..., c - 1, :]
        P[..., c, :] *= P[..., c - 1, :]
    # 2. the state entering each chunk
    carry = np.empty(lead + (n, H), dt)
    h = np.broadcast_to(np.asarray(h0, dt), lead + (H,))
    for j in range(n):
        carry[..., j, :] = h
        h = local[..., j, C - 1, :] + P[..., j, C - 1, :] * h
    # 3. every state
    out = local + P * carry[..., :, None, :]
    return out.reshape(lead + (n * C, H))[..., :T, :]


def scan_back(a, u, parallel: bool = True):
    """The adjoint of the scan: g_t = u_t + a_{t+1} ⊙ g_{t+1} (g_{T-1} = u_{T-1}), (..., T, H).

    g_t is dL/dh_t in full when u_t is the gradient reaching h_t from outside the recurrence; then
    dL/db_t = g_t, dL/da_t = g_t ⊙ h_{t-1} and dL/dh0 = a_0 ⊙ g_0."""
    import numpy as np

    a_next = np.concatenate([a[..., 1:, :], np.zeros_like(a[..., :1, :])], axis=-2)  # a_{t+1}, 0 past the end
    g = scan(np.flip(a_next, -2), np.flip(u, -2), np.zeros(u.shape[-1], np.result_type(a, u)), parallel)
    return np.flip(g, -2)


# ---- torch --------------------------------------------------------------------------------------------
def torch_scan(a, b, h0, parallel: bool = True):
    """h (B, T, H) from a, b (B, T, H) and h0 (B, H), differentiable in all three. The parallel form
    runs the chunked scan forward and backward (`LinearScan`); the sequential one is the loop,
    which autograd differentiates step by step."""
    if parallel:
        return _linear_scan_function().apply(a, b, h0)
    import torch

    h, out = h0, []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, dim=1)


def _torch_chunked(a, b, h0):
    """The chunked scan in torch, without autograd (the forward of `LinearScan`)."""
    import torch

    Bn, T, H = a.shape
    C = chunk_size(T)
    n = -(-T // C)
    pad = n * C - T
    if pad:
        a = torch.cat([a, a.new_ones(Bn, pad, H)], 1)
        b = torch.cat([b, b.new_zeros(Bn, pad, H)], 1)
    P = a.reshape(Bn, n, C, H).clone()
    local = b.reshape(Bn, n, C, H).clone()
    for c in range(1, C):
        local[:, :, c].addcmul_(P[:, :, c], local[:, :, c - 1])
        P[:, :, c].mul_(P[:, :, c - 1])
    carry = a.new_empty(Bn, n, H)
    h = h0
    for j in range(n):
        carry[:, j] = h
        h = torch.addcmul(local[:, j, C - 1], P[:, j, C - 1], h)
    out = torch.addcmul(local, P, carry[:, :, None, :])
    return out.reshape(Bn, n * C, H)[:, :T]


@functools.cache
def _linear_scan_function():
    """torch.autograd.Function for the chunked scan, made on first use (torch loads lazily)."""
    import torch

    class LinearScan(torch.autograd.Function):
        """h_t = a_t h_{t-1} + b_t. Backward: g = the scan run backwards over dL/dh,
        dL/db = g, dL/da_t = g_t h_{t-1}, dL/dh0 = a_0 g_0 (only a and h are kept)."""

        @staticmethod
        def forward(ctx, a, b, h0):
            h = _torch_chunked(a, b, h0)
            ctx.save_for_backward(a, h, h0)
            return h

        @staticmethod
        def backward(ctx, grad):
            a, h, h0 = ctx.saved_tensors
            a_next = torch.cat([a[:, 1:], a.new_zeros(a.shape[0], 1, a.shape[2])], 1)
            g = _torch_chunked(a_next.flip(1), grad.flip(1), grad.new_zeros(grad.shape[0], grad.shape[2])).flip(1)
            h_prev = torch.cat([h0[:, None], h[:, :-1]], 1)
            return g * h_prev, g, a[:, 0] * g[:, 0]

    return LinearScan
