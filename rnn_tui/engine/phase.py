"""The phase portrait of a two-unit Elman RNN: where the state goes, and where it would rest.

With the input held fixed at x, one step is a map of the plane into itself:

    h_t = F(h_{t-1}) = act(W_hh h_{t-1} + u),     u = W_ih x + b_ih + b_hh   (the drive)

- A fixed point h* = F(h*) is where the state would stay if the input stayed x. They are found by
  Newton's method on G(h) = F(h) - h from a grid of starting points (damped: a step is halved
  until |G| falls), kept when |G(h*)| < 1e-10, and merged when closer than 1e-6.
- Its stability comes from the Jacobian of the map there, J = diag(act'(a*)) W_hh with
  a* = W_hh h* + u: every |eigenvalue| < 1 -> "stable" (nearby states fall in: a memory);
  every |eigenvalue| > 1 -> "unstable"; some of each -> "saddle"; |eigenvalue| = 1 -> "marginal".
- The path is the state's actual trajectory h_0, h_1, ... (from a trace, or by iterating F).
- The vector field is F(h) - h on a grid: where one step moves each state.

Plain numpy (the weights come as arrays): no torch, so the UI can recompute it freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.errors import EngineError

RESIDUAL = 1e-10  # |F(h) - h| below this is a fixed point
MERGE = 1e-6  # fixed points closer than this are one
UNIT_TOL = 1e-9  # |eigenvalue| within this of 1 is "marginal"


class PhaseError(EngineError):
    pass


def act(name: str, a: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(a)
    if name == "relu":
        return np.maximum(a, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if name == "identity":
        return a
    raise PhaseError(f"unknown activation {name!r}")


def act_prime(name: str, a: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return 1.0 - np.tanh(a) ** 2
    if name == "relu":
        return (a > 0).astype(np.float64)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-a))
        return s * (1.0 - s)
    if name == "identity":
        return np.ones_like(a)
    raise PhaseError(f"unknown activation {name!r}")


@dataclass(frozen=True)
class FixedPoint:
    h: np.ndarray  # (2,) h* = act(W h* + u)
    eigenvalues: np.ndarray  # (2,) complex, of J = diag(act'(a*)) W at h*
    kind: str  # "stable" | "unstable" | "saddle" | "marginal"

    @property
    def radius(self) -> float:
        return float(np.abs(self.eigenvalues).max())


@dataclass(frozen=True)
class Field:
    xs: np.ndarray  # (nx,) h_1 grid
    ys: np.ndarray  # (ny,) h_2 grid
    U: np.ndarray  # (ny, nx) F(h)_1 - h_1
    V: np.ndarray  # (ny, nx) F(h)_2 - h_2


@dataclass(frozen=True)
class PhasePortrait:
    activation: str
    W: np.ndarray  # (2, 2) W_hh
    u: np.ndarray  # (2,) the drive of the fixed input
    input_label: str  # which input is held fixed
    fixed_points: list[FixedPoint]
    path: np.ndarray  # (n, 2) the state's trajectory
    bounds: tuple[float, float, float, float]  # x min, x max, y min, y max
    field: Field


def step_map(W: np.ndarray, u: np.ndarray, activation: str, h: np.ndarray) -> np.ndarray:
    """F(h) = act(W h + u), for h of shape (..., 2)."""
    return act(activation, h @ W.T + u)


def iterate(W, u, activation: str, h0, steps: int) -> np.ndarray:
    """(steps + 1, 2): h0, F(h0), F(F(h0)), ..."""
    W, u = np.asarray(W, np.float64), np.asarray(u, np.float64)
    out = np.empty((steps + 1, 2))
    out[0] = h0
    for t in range(steps):
        out[t + 1] = step_map(W, u, activation, out[t])
    return out


def classify(eigenvalues: np.ndarray) -> str:
    m = np.abs(eigenvalues)
    if np.any(np.abs(m - 1.0) <= UNIT_TOL):
        return "marginal"
    if np.all(m < 1.0):
        return "stable"
    if np.all(m > 1.0):
        return "unstable"
    return "saddle"


def jacobian(W, u, activation: str, h) -> np.ndarray:
    """dF/dh = diag(act'(W h + u)) W, (2, 2)."""
    a = W @ h + u
    return act_prime(activation, a)[:, None] * W


def _newton(W, u, activation, h, iters=60) -> np.ndarray | None:
    I = np.eye(2)
    g = step_map(W, u, activation, h) - h
    for _ in range(iters):
        norm = float(np.linalg.norm(g))
        if norm < RESIDUAL * 1e-2:
            break
        J = jacobian(W, u, activation, h) - I
        try:
            delta = np.linalg.solve(J, -g)
        except np.linalg.LinAlgError:
            return None
        step = 1.0
        while step > 1e-4:
            cand = h + step * delta
            g_c = step_map(W, u, activation, cand) - cand
            if np.linalg.norm(g_c) < norm:
                h, g = cand, g_c
                break
            step /= 2
        else:
            break
    return h if float(np.linalg.norm(g)) < RESIDUAL else None


def fixed_points(W, u, activation: str, box: tuple[float, float, float, float] | None = None,
                 starts: int = 9) -> list[FixedPoint]:
    """Every fixed point Newton reaches from a starts x starts grid over `box` (default: the
    activation's range, a wide square for relu and identity), sorted by position."""
    W, u = np.asarray(W, np.float64), np.asarray(u, np.float64)
    if W.shape != (2, 2) or u.shape != (2,):
        raise PhaseError(f"a phase portrait needs a 2x2 W_hh and a drive of 2, got {W.shape} and {u.shape}")
    if box is None:
        box = {"tanh": (-1, 1, -1, 1), "sigmoid": (0, 1, 0, 1)}.get(activation, (-5, 5, -5, 5))
    found: list[np.ndarray] = []
    for x in np.linspace(box[0], box[1], starts):
        for y in np.linspace(box[2], box[3], starts):
            h = _newton(W, u, activation, np.array([x, y], dtype=np.float64))
            if h is None or not np.all(np.isfinite(h)):
                continue
            if all(np.linalg.norm(h - f) > MERGE for f in found):
                found.append(h)
    found.sort(key=lambda h: (round(h[0], 6), round(h[1], 6)))
    out = []
    for h in found:
        h = np.where(np.abs(h) < 1e-12, 0.0, h)  # rounding noise around an exact zero
        ev = np.linalg.eigvals(jacobian(W, u, activation, h))
        out.append(FixedPoint(h, ev, classify(ev)))
    return out


def vector_field(W, u, activation: str, bounds, nx: int = 15, ny: int = 9) -> Field:
    xs = np.linspace(bounds[0], bounds[1], nx)
    ys = np.linspace(bounds[2], bounds[3], ny)
    X, Y = np.meshgrid(xs, ys)  # (ny, nx)
    P = np.stack([X, Y], axis=-1)
    D = step_map(np.asarray(W, np.float64), np.asarray(u, np.float64), activation, P) - P
    return Field(xs, ys, D[..., 0], D[..., 1])


def _bounds(points: np.ndarray, activation: str) -> tuple[float, float, float, float]:
    base = {"tanh": (-1.05, 1.05, -1.05, 1.05), "sigmoid": (-0.05, 1.05, -0.05, 1.05)}.get(activation)
    finite = points[np.all(np.isfinite(points), axis=1)] if len(points) else points
    if base is not None and (not len(finite) or np.all(np.abs(finite) <= 1.05)):
        return base
    lo = finite.min(axis=0) if len(finite) else np.array([-1.0, -1.0])
    hi = finite.max(axis=0) if len(finite) else np.array([1.0, 1.0])
    pad = np.maximum((hi - lo) * 0.1, 0.1)
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))


def portrait(W, u, activation: str, path=None, input_label: str = "x", nx: int = 15, ny: int = 9) -> PhasePortrait:
    """Fixed points, field and bounds for the map with drive u; `path` (n, 2) is drawn as given
    (default: 30 steps from the origin)."""
    W, u = np.asarray(W, np.float64), np.asarray(u, np.float64)
    path = iterate(W, u, activation, np.zeros(2), 30) if path is None else np.asarray(path, np.float64)
    fps = fixed_points(W, u, activation)
    pts = np.concatenate([path.reshape(-1, 2)] + [f.h[None] for f in fps])
    bounds = _bounds(pts, activation)
    return PhasePortrait(activation, W, u, input_label, fps, path, bounds, vector_field(W, u, activation, bounds, nx, ny))


def drive(params: dict, x: np.ndarray) -> np.ndarray:
    """u = W_ih x + b_ih + b_hh of layer 0 (zeros where there is no bias)."""
    u = np.asarray(params["weight_ih_l0"], np.float64) @ np.asarray(x, np.float64)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        if name in params:
            u = u + np.asarray(params[name], np.float64)
    return u


def check_two_unit(config) -> None:
    if config.cell != "rnn" or config.hidden_size != 2 or config.num_layers != 1 or config.bidirectional:
        raise PhaseError(
            "a phase portrait needs a one-layer, one-direction Elman rnn with 2 hidden units "
            f"(this model: {config.cell}, hidden {config.hidden_size}, {config.num_layers} layer(s))"
        )


def portrait_from_trace(trace, step: int) -> PhasePortrait:
    """The map with the input of `step` held fixed; the path is the trace's own states h_0..h_T
    (with the initial state first)."""
    cfg = trace.config
    check_two_unit(cfg)
    if not 0 <= step < trace.T:
        raise PhaseError(f"step {step} is outside the sequence (0..{trace.T - 1})")
    e = trace.layer(0, "forward")
    path = np.concatenate([np.asarray(e.h0, np.float64)[None], np.asarray(e.h, np.float64)])
    u = drive(trace.params, trace.inputs[step])
    label = trace.tokens[step] if step < len(trace.tokens) else str(step)
    return portrait(trace.params["weight_hh_l0"], u, cfg.activation, path=path, input_label=label)
