"""Real-time recurrent learning (Williams & Zipser, 1989) for a small Elman network, in NumPy.

BPTT runs the error backwards after the whole sequence; RTRL carries the sensitivity of the
state to every recurrent parameter forwards, so the gradient is ready at every step:

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh,    h_t = f(z_t)

    P_t = dh_t/dθ = diag(f'(z_t)) ( dz_t/dθ|_direct + W_hh P_{t-1} ),    P_{-1} = 0

with the direct (immediate) terms, for unit m of z_t:

    dz_t[m]/dW_hh[i, j] = [m = i] h_{t-1}[j]
    dz_t[m]/dW_ih[i, j] = [m = i] x_t[j]
    dz_t[m]/db[i]       = [m = i]

and the gradient accumulated forward, step by step:

    dL/dθ += (dL/dh_t)_direct P_t        with (dL/dh_t)_direct = V^T dl_t/dy_t / N.

The price: P_t holds H x (H^2 + H I + 2H) numbers and updating it costs ~2 H^2 (H^2 + H I)
multiply-adds per step (O(H^4)), against BPTT's O(T H) memory and O(H^2) work per step.
`cost_comparison` puts the two side by side, estimated and measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.bptt_numpy import ElmanParams, act_prime, bptt_accumulated, forward

BYTES = 8  # float64


@dataclass(frozen=True)
class RTRLResult:
    loss: float
    grads: dict[str, np.ndarray]  # by torch name, as bptt_numpy returns them (plus "h0")
    sensitivity_numbers: int  # numbers held in P_t (the memory RTRL carries forward)


def rtrl(params, x, targets, activation: str = "tanh", loss: str = "ce", h0=None) -> RTRLResult:
    """The gradient of L by forward-mode sensitivities; equal to BPTT's.

    Sensitivities, one array per parameter, indexed [unit m of h_t, parameter index ...]:
        P_hh (H, H, H) = dh_t/dW_hh,   P_ih (H, H, I) = dh_t/dW_ih,   P_b (H, H) = dh_t/db,
        P_0  (H, H)    = dh_t/dh_{-1}  (the initial state, so "h0" is reported too).
    """
    p = params if isinstance(params, ElmanParams) else ElmanParams.from_tensors(params)
    fw = forward(p, x, targets, activation, loss, h0)  # states, outputs and the errors at y_t
    T, H = fw.h.shape
    I = fw.x.shape[1]
    fprime = act_prime(activation, fw.z, fw.h)
    eye = np.eye(H)
    P_hh = np.zeros((H, H, H))  # dh_{t-1}/dW_hh, starts at 0
    P_ih = np.zeros((H, H, I))
    P_b = np.zeros((H, H))
    P_0 = eye.copy()  # dh_{-1}/dh_{-1} = I
    g_hh = np.zeros((H, H))
    g_ih = np.zeros((H, I))
    g_b = np.zeros(H)
    g_0 = np.zeros(H)
    h_prev = fw.h0
    for t in range(T):
        D = fprime[t]  # diag(f'(z_t)) as a vector
        # P_t = diag(f'(z_t)) (direct + W_hh P_{t-1}); the contraction runs over the unit index
        P_hh = D[:, None, None] * (np.tensordot(p.W_hh, P_hh, axes=1) + eye[:, :, None] * h_prev[None, None, :])
        P_ih = D[:, None, None] * (np.tensordot(p.W_hh, P_ih, axes=1) + eye[:, :, None] * fw.x[t][None, None, :])
        P_b = D[:, None] * (p.W_hh @ P_b + eye)
        P_0 = D[:, None] * (p.W_hh @ P_0)
        # the error injected at h_t by l_t alone (zero for an unscored step)
        e = p.V.T @ fw.dl_dy[t]  # (H,)
        g_hh += np.tensordot(e, P_hh, axes=1)
        g_ih += np.tensordot(e, P_ih, axes=1)
        g_b += e @ P_b
        g_0 += e @ P_0
        h_prev = fw.h[t]
    grads = {
        "weight_ih_l0": g_ih,
        "weight_hh_l0": g_hh,
        "head.weight": fw.dl_dy.T @ fw.h,  # the head is not recurrent: no sensitivity needed
        "h0": g_0,
    }
    if p.b_ih is not None:
        grads["bias_ih_l0"] = g_b.copy()
    if p.b_hh is not None:
        grads["bias_hh_l0"] = g_b.copy()
    if p.c is not None:
        grads["head.bias"] = fw.dl_dy.sum(axis=0)
    numbers = P_hh.size + P_ih.size + P_b.size + P_0.size
    return RTRLResult(loss=fw.loss, grads=grads, sensitivity_numbers=int(numbers))


@dataclass(frozen=True)
class CostRecord:
    """What one way of computing the gradient costs, estimated and measured."""

    method: str  # "bptt" | "rtrl"
    flops: int  # multiply-adds x 2, the recurrent part (forward + gradient)
    bytes: int  # float64 bytes the method holds beyond the parameters and their gradients
    seconds: float  # measured wall time of one gradient (best of `repeats`)
    memory_scales_with: str  # how the held memory grows, in words


@dataclass(frozen=True)
class CostComparison:
    T: int
    H: int
    I: int
    O: int
    bptt: CostRecord
    rtrl: CostRecord
    max_abs_diff: float  # largest difference between the two gradients (they must agree)


def bptt_cost(T: int, H: int, I: int, O: int) -> tuple[int, int]:
    """(flops, bytes) of BPTT: forward, one backward sweep, outer-product gradients.

    forward per step: W_ih x (2HI) + W_hh h (2H^2) + head (2OH);  backward per step: W_hh^T delta
    (2H^2), V^T e (2OH), outer products delta h^T, delta x^T (2H^2 + 2HI).
    Memory: z_t and h_t for every step, 2 T H numbers.
    """
    flops = T * (2 * H * I + 2 * H * H + 2 * O * H) + T * (2 * H * H + 2 * O * H + 2 * H * H + 2 * H * I)
    return int(flops), int(2 * T * H * BYTES)


def rtrl_cost(T: int, H: int, I: int, O: int) -> tuple[int, int]:
    """(flops, bytes) of RTRL: the forward pass plus the sensitivity update and read-out per step.

    The update W_hh P_{t-1} multiplies (H, H) by (H, n) with n = H^2 + H I + 2H sensitivities per
    unit: 2 H^2 n flops; reading the gradient out, e^T P_t: 2 H n. Memory: P_t, H n numbers,
    independent of T.
    """
    n = H * H + H * I + 2 * H
    flops = T * (2 * H * I + 2 * H * H + 2 * O * H) + T * (2 * H * H * n + 2 * H * n + 2 * O * H)
    return int(flops), int(H * n * BYTES)


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def cost_comparison(
    params, x, targets, activation: str = "tanh", loss: str = "ce", h0=None, repeats: int = 3
) -> CostComparison:
    """Run both methods on the same sequence: estimated flops and bytes, measured seconds."""
    p = params if isinstance(params, ElmanParams) else ElmanParams.from_tensors(params)
    x = np.asarray(x, dtype=np.float64)
    T, I = x.shape
    H, O = p.H, p.V.shape[0]
    t_b, b = _best_time(lambda: bptt_accumulated(p, x, targets, activation, loss, h0), repeats)
    t_r, r = _best_time(lambda: rtrl(p, x, targets, activation, loss, h0), repeats)
    diff = max(float(np.max(np.abs(b.grads[k] - r.grads[k]))) for k in b.grads)
    fb, mb = bptt_cost(T, H, I, O)
    fr, mr = rtrl_cost(T, H, I, O)
    return CostComparison(
        T=T,
        H=H,
        I=I,
        O=O,
        bptt=CostRecord("bptt", fb, mb, t_b, "T x H (every state is kept for the backward pass)"),
        rtrl=CostRecord("rtrl", fr, mr, t_r, "H x (H^2 + H I + 2H), independent of T"),
        max_abs_diff=diff,
    )
