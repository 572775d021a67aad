"""Gate saturation: how often a gate sits at the flat ends of its nonlinearity.

A sigmoid gate near 0 or 1 (a tanh near -1 or +1) passes almost no gradient: sigma'(a) =
sigma(a)(1 - sigma(a)) < 0.09 once sigma(a) < 0.1 or > 0.9. For a gate's values v_{t,j} over
steps t and units j, with thresholds lo < hi:

    low_j  = (1/T) #{t : v_{t,j} < lo}          the share of steps unit j spends below lo
    high_j = (1/T) #{t : v_{t,j} > hi}          ... and above hi
    low    = (1/(T H)) #{(t, j) : v_{t,j} < lo} over every unit (the mean of low_j)

Sigmoid gates (i, f, o of an LSTM; r, z of a GRU) use lo = 0.1, hi = 0.9; tanh-valued ones (the
LSTM's g, the GRU's n, an Elman tanh state) use lo = -0.9, hi = 0.9, the same distance from
their ends relative to their range. NaN values count in neither share.

Pure numpy, so the UI can call it on a trace it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.records import LayerTrace

SIGMOID_THRESHOLDS = (0.1, 0.9)
TANH_THRESHOLDS = (-0.9, 0.9)


@dataclass(frozen=True)
class GateSaturation:
    """Saturation of one gate (or bounded state) of one layer and direction."""

    gate: str
    lo: float  # values strictly below count as saturated low
    hi: float  # values strictly above count as saturated high
    low: np.ndarray  # (H,) share of steps below lo, per unit
    high: np.ndarray  # (H,) share of steps above hi, per unit
    overall_low: float  # share of all values below lo
    overall_high: float  # share of all values above hi

    @property
    def overall_saturated(self) -> float:
        return self.overall_low + self.overall_high

    @property
    def saturated(self) -> np.ndarray:
        """(H,) share of steps at either end, per unit."""
        return self.low + self.high


def saturation(values: np.ndarray, lo: float, hi: float, gate: str = "") -> GateSaturation:
    """Shares of `values` (T, H) below `lo` and above `hi`, per unit (column) and overall."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"gate values must be a (T, H) array, got shape {v.shape}")
    if not lo < hi:
        raise ValueError(f"the low threshold must be below the high one, got {lo} and {hi}")
    T, H = v.shape
    with np.errstate(invalid="ignore"):
        below = v < lo  # NaN compares False: counted in neither share
        above = v > hi
    n = max(T, 1)
    low = below.sum(axis=0) / n
    high = above.sum(axis=0) / n
    total = max(T * H, 1)
    return GateSaturation(gate, float(lo), float(hi), low, high, float(below.sum()) / total, float(above.sum()) / total)


def thresholds(config: ModelConfig, gate: str) -> tuple[float, float] | None:
    """The (lo, hi) pair for a gate of this cell, or None when the gate is unbounded (an Elman
    cell with a relu or identity activation)."""
    if gate in ("i", "f", "o", "r", "z"):
        return SIGMOID_THRESHOLDS
    if gate in ("g", "n"):
        return TANH_THRESHOLDS
    if gate == "a":  # the Elman cell: its "gate" is the activated state h_t = f(a_t)
        return {"tanh": TANH_THRESHOLDS, "sigmoid": SIGMOID_THRESHOLDS}.get(config.activation)
    raise ValueError(f"unknown gate {gate!r}")


def layer_saturation(config: ModelConfig, entry: LayerTrace) -> list[GateSaturation]:
    """Saturation of every bounded gate of one layer and direction, in the cell's gate order."""
    out = []
    for gate in config.gates:
        bounds = thresholds(config, gate)
        if bounds is None:
            continue
        out.append(saturation(entry.gates[gate], *bounds, gate=gate))
    return out
