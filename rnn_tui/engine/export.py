"""A Trace as one JSON document (the format of `rnn-tui trace --format json`, see docs/trace-format.md).

Arrays become nested lists; a value that is not finite (NaN, ±inf) becomes null, so the output is
strict JSON that any parser reads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from rnn_tui.engine.records import SCHEMA, Trace

if TYPE_CHECKING:  # pragma: no cover
    from rnn_tui.engine.gradflow import GradFlowReport


def clean(value):
    """numpy and float values -> JSON-ready Python values; non-finite floats -> None."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return np.where(np.isfinite(value), value, None).tolist()  # floats, and None where not finite
        return value.tolist() if value.dtype != object else [clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def trace_to_json(trace: Trace, grad_extra: dict | None = None, report: "GradFlowReport | None" = None) -> dict:
    """The export document. `report`, the trace's gradient-flow analysis, fills in the rest of the
    `grad` section (`gradflow.to_json`); `grad_extra` adds keys of its own."""
    cfg = trace.config
    layers = [
        {
            "layer": lt.layer,
            "direction": lt.direction,
            "h": lt.h,
            "c": lt.c,
            "gates": lt.gates,
            "preacts": lt.preacts,
        }
        for lt in trace.layers
    ]
    grad = {
        "dL_dh_norm": [lt.dL_dh_norm for lt in trace.layers],
        "dL_dc_norm": [lt.dL_dc_norm for lt in trace.layers],
    }
    doc = {
        "schema": SCHEMA,
        "config": {**cfg.to_dict(), "dtype": trace.dtype},
        "tokens": trace.tokens,
        "vocab": trace.vocab,
        "inputs": trace.inputs,
        "params": trace.params,
        "layers": layers,
        "outputs": trace.outputs,
        "targets": trace.targets,
        "step_losses": trace.step_losses,
        "loss": trace.loss,
        "grad": grad,
    }
    doc = clean(doc)
    if report is not None:  # JSON-ready already (the flow matrices alone are rows x T numbers each)
        from rnn_tui.engine.gradflow import to_json

        doc["grad"].update(to_json(report))
    doc["grad"].update(clean(grad_extra or {}))
    return doc


def attention_to_json(record) -> dict:
    """An encoder-decoder's `attention` key: the weights α (T_dec x T_enc, each row sums to 1),
    the scores they came from (null on a held row), the rows held by hand, and its mass on the
    anti-diagonal (where a reversal reads)."""
    return clean({
        "kind": record.kind,
        "weights": np.asarray(record.weights, dtype=np.float64),
        "scores": np.asarray(record.scores, dtype=np.float64),
        "encoder_tokens": list(record.encoder_tokens),
        "forced": [list(p) for p in record.forced],
        "anti_diagonal_mass": record.anti_diagonal_mass,
    })  # fmt: skip
