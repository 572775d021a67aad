"""Numbers as the explorer writes them. A diverged model's NaN and inf are drawn as such, in one
spelling everywhere ("NaN", "inf", "-inf"), and never crash a format (`round(nan)` raises)."""

from __future__ import annotations

import math


def nonfinite(value: float) -> str | None:
    """"NaN", "inf" or "-inf" for a value that is not a finite number; None for one that is."""
    v = float(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def number(value: float, spec: str = ".4g") -> str:
    """`format(value, spec)`, or NaN / inf / -inf."""
    return nonfinite(value) or format(float(value), spec)


def finite_trace(trace) -> bool:
    """Every weight, state and output of a trace is a finite number (False: a diverged model)."""
    import numpy as np  # with a trace in hand, numpy is loaded already

    arrays = [trace.outputs, *trace.params.values()]
    for entry in trace.layers:
        arrays += [entry.h, *entry.gates.values()] + ([entry.c] if entry.c is not None else [])
    return all(bool(np.isfinite(np.asarray(a)).all()) for a in arrays)
