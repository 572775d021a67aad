"""Backpropagation through time for the Elman RNN, in NumPy, straight from the lecture notes.

The network (one layer, one direction, a head at every step):

    z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (pre-activation, the "net input")
    h_t = f(z_t)                                       f in tanh | relu | sigmoid | identity
    y_t = V h_t + c                                    (V = head.weight, c = head.bias)
    l_t = CE(y_t, target_t)  or  mean_o (y_t - target_t)^2
    L   = (1/N) sum_{t scored} l_t                     N = number of scored steps

The delta of source step t at step k <= t is the error of l_t seen at the pre-activation z_k:

    delta_{t,t} = diag(f'(z_t)) V^T dl_t/dy_t / N
    delta_{t,k} = diag(f'(z_k)) W_hh^T delta_{t,k+1}            for k < t

and every weight gradient is a double sum over sources t and the steps k they reach back to:

    dL/dW_hh = sum_t sum_{k<=t} delta_{t,k} h_{k-1}^T
    dL/dW_ih = sum_t sum_{k<=t} delta_{t,k} x_k^T
    dL/db_ih = dL/db_hh = sum_t sum_{k<=t} delta_{t,k}
    dL/dV    = sum_t dl_t/dy_t h_t^T / N,   dL/dc = sum_t dl_t/dy_t / N

`bptt` computes exactly that double sum (O(T^2) steps: readable, and it keeps every delta_{t,k}
so the flow of each source can be inspected). `bptt_accumulated` is the same gradient after
swapping the sums, delta_k = sum_{t>=k} delta_{t,k}, which obeys one backward recursion

    delta_k = diag(f'(z_k)) (V^T dl_k/dy_k / N + W_hh^T delta_{k+1})

and costs O(T) steps: what autograd does. Both are tested equal to torch autograd in float64.

Parameters use torch's names and layouts: weight_ih_l0 (H, I), weight_hh_l0 (H, H),
bias_ih_l0 (H,), bias_hh_l0 (H,) (both optional), head.weight (O, H), head.bias (O,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.cells.rnn import activate, derivative

IGNORE = -100  # a class target of an unscored step, as torch's ignore_index


# ---- the activation f and its derivative f'(z): the Elman cell's own (rnn_tui.engine.cells.rnn)
def act(name: str, z: np.ndarray) -> np.ndarray:
    """h = f(z)."""
    return activate(name, z)


def act_prime(name: str, z: np.ndarray, h: np.ndarray) -> np.ndarray:
    """f'(z), given z and h = f(z):  tanh 1-h^2,  relu [z>0],  sigmoid h(1-h),  identity 1."""
    return derivative(name, z, h)


@dataclass(frozen=True)
class ElmanParams:
    """The tensors of a one-layer Elman network with a per-step head, by equation name."""

    W_ih: np.ndarray  # (H, I)  weight_ih_l0
    W_hh: np.ndarray  # (H, H)  weight_hh_l0
    b_ih: np.ndarray | None  # (H,)  bias_ih_l0
    b_hh: np.ndarray | None  # (H,)  bias_hh_l0
    V: np.ndarray  # (O, H)  head.weight
    c: np.ndarray | None  # (O,)  head.bias

    @classmethod
    def from_tensors(cls, tensors: dict) -> "ElmanParams":
        """From torch names (numpy arrays or tensors); missing biases mean 'no bias'."""

        def get(name: str, required: bool = True):
            if name not in tensors or tensors[name] is None:
                if required:
                    raise KeyError(f"missing tensor {name} for an Elman network")
                return None
            value = tensors[name]
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            return np.asarray(value, dtype=np.float64)

        p = cls(
            W_ih=get("weight_ih_l0"),
            W_hh=get("weight_hh_l0"),
            b_ih=get("bias_ih_l0", False),
            b_hh=get("bias_hh_l0", False),
            V=get("head.weight"),
            c=get("head.bias", False),
        )
        H = p.W_hh.shape[0]
        if p.W_hh.shape != (H, H) or p.W_ih.shape[0] != H or p.V.shape[1] != H:
            raise ValueError(
                f"inconsistent shapes: weight_ih_l0 {p.W_ih.shape}, weight_hh_l0 {p.W_hh.shape}, "
                f"head.weight {p.V.shape}"
            )
        return p

    @property
    def H(self) -> int:
        return int(self.W_hh.shape[0])


@dataclass(frozen=True)
class ElmanForward:
    """Everything the forward pass leaves for the backward pass."""

    x: np.ndarray  # (T, I)
    h0: np.ndarray  # (H,)
    z: np.ndarray  # (T, H) pre-activations z_t
    h: np.ndarray  # (T, H) states h_t
    y: np.ndarray  # (T, O) outputs y_t
    step_losses: np.ndarray  # (T,) l_t, nan where unscored
    dl_dy: np.ndarray  # (T, O) dl_t/dy_t / N, zero where unscored (the error injected at y_t)
    scored: np.ndarray  # (T,) bool
    loss: float  # L

    @property
    def h_prev(self) -> np.ndarray:
        """(T, H) h_{t-1} for each step: h0, h_0, ..., h_{T-2}."""
        return np.concatenate([self.h0[None], self.h[:-1]], axis=0)


@dataclass(frozen=True)
class BPTTResult:
    loss: float
    grads: dict[str, np.ndarray]  # by torch name, plus "h0" (dL/dh_{-1})
    delta: np.ndarray  # (T, H) delta_k = sum_t delta_{t,k} = dL/dz_k
    delta_norm: np.ndarray | None  # (T, T) ||delta_{t,k}||, row = source t; nan for k > t or unscored t


def _scored_errors(y: np.ndarray, targets, loss: str):
    """Per-step losses l_t and errors dl_t/dy_t for the scored steps (before dividing by N).

    ce:  targets is a sequence of class indices (None or negative = unscored);
         l_t = -log softmax(y_t)[target],  dl_t/dy_t = softmax(y_t) - onehot(target).
    mse: targets is a sequence of vectors (None = unscored) or a (T, O) array;
         l_t = mean_o (y_t - target_t)^2,  dl_t/dy_t = 2 (y_t - target_t) / O.
    """
    T, O = y.shape
    if len(targets) != T:
        raise ValueError(f"{len(targets)} targets for {T} steps")
    l = np.full(T, np.nan)
    e = np.zeros_like(y)
    scored = np.zeros(T, dtype=bool)
    for t, target in enumerate(targets):
        if target is None:
            continue
        if loss == "ce":
            k = int(target)
            if k < 0:
                continue
            m = y[t].max()
            p = np.exp(y[t] - m)
            p /= p.sum()
            l[t] = -(y[t, k] - m - np.log(np.exp(y[t] - m).sum()))
            e[t] = p
            e[t, k] -= 1.0
        elif loss == "mse":
            d = y[t] - np.asarray(target, dtype=y.dtype)
            l[t] = float(np.mean(d * d))
            e[t] = 2.0 * d / O
        else:
            raise ValueError(f"unknown loss {loss!r}: choose ce or mse")
        scored[t] = True
    if not scored.any():
        raise ValueError("no scored step: give at least one target")
    return l, e, scored


def forward(params: ElmanParams, x, targets, activation: str = "tanh", loss: str = "ce", h0=None) -> ElmanForward:
    """z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh;  h_t = f(z_t);  y_t = V h_t + c;  L = mean l_t."""
    p = params
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    h_prev = np.zeros(p.H) if h0 is None else np.asarray(h0, dtype=np.float64)
    start = h_prev
    z = np.empty((T, p.H))
    h = np.empty((T, p.H))
    for t in range(T):
        z[t] = p.W_ih @ x[t] + p.W_hh @ h_prev
        if p.b_ih is not None:
            z[t] += p.b_ih
        if p.b_hh is not None:
            z[t] += p.b_hh
        h[t] = act(activation, z[t])
        h_prev = h[t]
    y = h @ p.V.T  # (T, O)
    if p.c is not None:
        y = y + p.c
    l, e, scored = _scored_errors(y, targets, loss)
    N = int(scored.sum())
    return ElmanForward(
        x=x, h0=start, z=z, h=h, y=y, step_losses=l, dl_dy=e / N, scored=scored, loss=float(np.nansum(l) / N)
    )


def _weight_grads(p: ElmanParams, fw: ElmanForward, delta: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of every tensor from delta_k = dL/dz_k (T, H) and the head's error."""
    grads = {
        "weight_ih_l0": delta.T @ fw.x,  # sum_k delta_k x_k^T
        "weight_hh_l0": delta.T @ fw.h_prev,  # sum_k delta_k h_{k-1}^T
        "head.weight": fw.dl_dy.T @ fw.h,  # sum_t dL/dy_t h_t^T
        "h0": p.W_hh.T @ delta[0],  # dL/dh_{-1} = W_hh^T delta_0
    }
    if p.b_ih is not None:
        grads["bias_ih_l0"] = delta.sum(axis=0)
    if p.b_hh is not None:
        grads["bias_hh_l0"] = delta.sum(axis=0)
    if p.c is not None:
        grads["head.bias"] = fw.dl_dy.sum(axis=0)
    return grads


def bptt(params, x, targets, activation: str = "tanh", loss: str = "ce", h0=None) -> BPTTResult:
    """The textbook double sum: for each scored source t, run delta_{t,k} back from k=t to 0.

        delta_{t,t} = diag(f'(z_t)) V^T dl_t/dy_t / N
        delta_{t,k} = diag(f'(z_k)) W_hh^T delta_{t,k+1}
        dL/dW_hh    = sum_t sum_k delta_{t,k} h_{k-1}^T     (and likewise for W_ih, biases)

    O(T^2 H^2): for teaching and small sequences. `params` is an ElmanParams or a dict of
    tensors by torch name.
    """
    p = params if isinstance(params, ElmanParams) else ElmanParams.from_tensors(params)
    fw = forward(p, x, targets, activation, loss, h0)
    T, H = fw.h.shape
    fprime = act_prime(activation, fw.z, fw.h)  # (T, H) f'(z_k)
    h_prev = fw.h_prev
    dW_hh = np.zeros((H, H))
    dW_ih = np.zeros_like(p.W_ih)
    db = np.zeros(H)
    delta_sum = np.zeros((T, H))
    delta_norm = np.full((T, T), np.nan)
    for t in range(T):  # source step t: the loss l_t
        if not fw.scored[t]:
            continue
        delta_tk = fprime[t] * (p.V.T @ fw.dl_dy[t])  # delta_{t,t}
        for k in range(t, -1, -1):  # back through k = t, t-1, ..., 0
            if k < t:
                delta_tk = fprime[k] * (p.W_hh.T @ delta_tk)  # delta_{t,k} = diag(f'(z_k)) W_hh^T delta_{t,k+1}
            delta_norm[t, k] = np.linalg.norm(delta_tk)
            dW_hh += np.outer(delta_tk, h_prev[k])  # delta_{t,k} h_{k-1}^T
            dW_ih += np.outer(delta_tk, fw.x[k])  # delta_{t,k} x_k^T
            db += delta_tk
            delta_sum[k] += delta_tk
    grads = _weight_grads(p, fw, delta_sum)
    # the double sums themselves, not the swapped-sum shortcut in _weight_grads:
    grads["weight_hh_l0"] = dW_hh
    grads["weight_ih_l0"] = dW_ih
    if p.b_ih is not None:
        grads["bias_ih_l0"] = db.copy()
    if p.b_hh is not None:
        grads["bias_hh_l0"] = db.copy()
    return BPTTResult(loss=fw.loss, grads=grads, delta=delta_sum, delta_norm=delta_norm)


def bptt_accumulated(params, x, targets, activation: str = "tanh", loss: str = "ce", h0=None) -> BPTTResult:
    """The same gradient with the sums swapped: one backward sweep, O(T H^2).

        delta_k = diag(f'(z_k)) (V^T dL/dy_k + W_hh^T delta_{k+1}),   delta_T = 0
        dL/dW_hh = sum_k delta_k h_{k-1}^T
    """
    p = params if isinstance(params, ElmanParams) else ElmanParams.from_tensors(params)
    fw = forward(p, x, targets, activation, loss, h0)
    T, H = fw.h.shape
    fprime = act_prime(activation, fw.z, fw.h)
    delta = np.zeros((T, H))
    after = np.zeros(H)  # delta_{k+1}
    for k in range(T - 1, -1, -1):
        delta[k] = fprime[k] * (p.V.T @ fw.dl_dy[k] + p.W_hh.T @ after)
        after = delta[k]
    return BPTTResult(loss=fw.loss, grads=_weight_grads(p, fw, delta), delta=delta, delta_norm=None)
