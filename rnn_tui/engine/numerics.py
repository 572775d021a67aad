"""Numbers that stay true at the extremes: a vector norm that does not overflow on the way.

`np.linalg.norm` squares before it sums, so a vector of finite entries above ~1.8e19 (float32)
or ~1.3e154 (float64) gets a norm of Inf, with a RuntimeWarning, although its norm is finite:
a run trained with a huge learning rate has such gradients. `norm` gives numpy's answer where it
is finite (bit for bit) and recomputes the others scaled by their largest entry, so only a norm
that is itself beyond the dtype's range reads Inf, and a NaN or Inf entry still gives NaN or Inf.
"""

from __future__ import annotations

import numpy as np


def norm(x, axis: int | None = None):
    """The 2-norm of `x` (of its rows along `axis`), as `np.linalg.norm(x, axis=axis)` gives it,
    without overflowing in the squares."""
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.linalg.norm(x, axis=axis)
    if x.size == 0 or bool(np.all(np.isfinite(out))):
        return out
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        wide = x.astype(np.float64) if x.dtype.kind in "fc" and x.dtype.itemsize < 8 else x
        top = np.max(np.abs(wide), axis=axis, keepdims=axis is not None)
        scale = np.where(np.isfinite(top) & (top > 0), top, 1.0)
        scaled = np.sqrt(np.sum(np.abs(wide / scale) ** 2, axis=axis, keepdims=axis is not None)) * scale
        exact = np.where(np.isfinite(top), scaled, top)  # an Inf or NaN entry keeps its Inf or NaN
        if axis is not None:
            exact = np.squeeze(exact, axis=axis)
        exact = np.asarray(exact).astype(out.dtype, copy=False)
    fixed = np.where(np.isfinite(out), out, exact)
    return fixed if np.ndim(out) else out.dtype.type(fixed)


def singular_values(a) -> np.ndarray:
    """`np.linalg.svd(a, compute_uv=False)` for a matrix or a stack of them (..., m, n), that
    neither overflows nor fails: each matrix is scaled by its largest entry first (so weights of
    1e300 give their true singular values; a power of two, so ordinary ones are unchanged), and a matrix holding NaN or Inf gives NaN, or Inf as
    its largest singular value when it holds Inf and no NaN (LAPACK does not converge on them)."""
    return _scaled(np.asarray(a, dtype=np.float64), lambda m: np.linalg.svd(m, compute_uv=False))


def eigenvalue_moduli(a) -> np.ndarray:
    """|eigenvalues| of a square matrix (or a stack), largest first, scaled as `singular_values`."""
    return _scaled(np.asarray(a, dtype=np.float64), lambda m: np.sort(np.abs(np.linalg.eigvals(m)), axis=-1)[..., ::-1])


def _scaled(a: np.ndarray, f) -> np.ndarray:
    k = min(a.shape[-2:])
    flat = a.reshape((-1,) + a.shape[-2:])
    out = np.full((flat.shape[0], k), np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        finite = np.isfinite(flat).all(axis=(1, 2))
        has_nan = np.isnan(flat).any(axis=(1, 2))
        out[~finite & ~has_nan, 0] = np.inf
        if finite.any():
            good = flat[finite]
            top = np.abs(good).max(axis=(1, 2))
            # a power of two, so the scaling itself rounds nothing
            scale = np.ldexp(1.0, np.frexp(np.where(top > 0, top, 1.0))[1])[:, None, None]
            try:
                values = f(good / scale) * scale[:, :, 0]
            except np.linalg.LinAlgError:  # one matrix LAPACK cannot do: each on its own
                values = np.full((good.shape[0], k), np.nan)
                for i, m in enumerate(good / scale):
                    try:
                        values[i] = f(m) * scale[i, 0, 0]
                    except np.linalg.LinAlgError:
                        pass
            out[finite] = values
    return out.reshape(a.shape[:-2] + (k,))
