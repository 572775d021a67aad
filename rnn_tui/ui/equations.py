"""One step of a cell, for one unit, written out with its numbers — as a student works it by hand.

    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        = σ(0.5200 + 0.1000 − 0.3100 + 0.0200) = σ(0.3300) = 0.5818

Each cell writes its own equations' terms (`Cell.equations_at` in `rnn_tui.engine.cells`): the
pieces of each pre-activation recomputed from the trace's weights (float64 dot products of the
stored tensors), with the trace's own pre-activation and value after them, so what is on screen
is what the model computed, and the tests check that the terms add up to it. This module turns
them into text. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isfinite

import numpy as np

from rnn_tui.engine.records import LayerTrace, Trace
from rnn_tui.ui.numbers import nonfinite


@dataclass(frozen=True)
class Term:
    symbol: str  # "W_if x_t"
    value: float  # its contribution to unit j's pre-activation
    detail: str = ""  # how it is formed, when it is a product: "0.58·(0.31 + 0.02)"


@dataclass(frozen=True)
class Equation:
    lhs: str  # "f_t"
    fn: str | None  # the nonlinearity: "σ", "tanh", "relu", "sigmoid", "" for identity; None for a sum
    terms: tuple[Term, ...]  # the pieces of the pre-activation (or of the sum, for c_t and GRU's h_t)
    pre: float | None  # the trace's pre-activation
    value: float  # the trace's value of lhs

    @property
    def symbolic(self) -> str:
        inner = " + ".join(t.symbol for t in self.terms)
        return f"{self.fn}({inner})" if self.fn else inner


@dataclass(frozen=True)
class StepEquations:
    """Everything one step of one unit reads and writes."""

    cell: str
    t: int
    unit: int
    token: str
    prev: str  # "t-1" forward, "t+1" for a reverse direction
    reads: tuple[tuple[str, float], ...]  # h_{t-1}[j], c_{t-1}[j]
    equations: tuple[Equation, ...]


def layer_input(trace: Trace, entry: LayerTrace) -> np.ndarray:
    """(T, I) what this layer reads: the inputs for layer 0, else the layer below's output
    (forward and reverse states side by side, as torch concatenates them)."""
    if entry.layer == 0:
        return trace.inputs
    below = [e.h for e in trace.layers if e.layer == entry.layer - 1]
    return np.concatenate(below, axis=1)  # (T, D*H)


def layer_input_at(trace: Trace, entry: LayerTrace, t: int) -> np.ndarray:
    """(I,) float64: row t of `layer_input`, without building the whole matrix."""
    if entry.layer == 0:
        return np.asarray(trace.inputs[t], dtype=np.float64)
    return np.concatenate([np.asarray(e.h[t], dtype=np.float64) for e in trace.layers if e.layer == entry.layer - 1])


def layer_input_symbol(cfg, layer: int) -> str:
    """What a layer reads at step t, as its equations write it: x_t for the first layer; above
    it, the output of the layer below, h⁽ˡ⁻¹⁾_t (both directions' side by side when bidirectional)."""
    if layer == 0:
        return "x_t"
    below = "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in str(layer - 1))
    return f"[h→;h←]⁽{below}⁾_t" if cfg.bidirectional else f"h⁽{below}⁾_t"


def step_equations(trace: Trace, entry: LayerTrace, t: int, unit: int) -> StepEquations:
    cfg = trace.config
    cell = cfg.cell_spec
    prev = "t-1" if entry.direction == "forward" else "t+1"
    w = cell.layer_weights(trace.params, "_" + entry.name)  # "_l0", "_l1_reverse"
    reads, eqs = cell.equations_at(w, layer_input_at(trace, entry, t), entry, t, unit, prev, cfg.activation)
    token = trace.tokens[t] if t < len(trace.tokens) else ""
    x = layer_input_symbol(cfg, entry.layer)
    shown = tuple(
        Equation(e.lhs, e.fn, tuple(Term(m.symbol.replace("x_t", x), m.value, detail(m.factors)) for m in e.terms),
                 e.pre, e.value)
        for e in eqs
    )
    return StepEquations(cfg.cell, t, unit, token, prev, tuple(reads), shown)


def detail(factors) -> str:
    """A product term's factors as the equations print them: "0.5000·(-0.3100)", "(1 - 0.2000)·0.5000",
    "0.6000·tanh(0.3000)", "0.5800·(0.3100 + 0.0200)"; "" for a term that is no product."""
    parts = []
    for f in factors:
        if f.kind == "value":
            parts.append(fac(f.values[0]))
        elif f.kind == "one_minus":
            parts.append(f"(1 - {num(f.values[0])})")
        elif f.kind == "tanh":
            parts.append(f"tanh({num(f.values[0])})")
        else:  # a sum in parentheses
            parts.append("(" + " ".join([num(f.values[0])] + [signed(v) for v in f.values[1:]]) + ")")
    return "·".join(parts)


def num(v: float) -> str:
    """A number as the equations print it: 4 decimals, or scientific where that would hide it."""
    v = float(v)
    if not isfinite(v):  # math's: numpy's costs a microsecond on a Python float, ~40 a step
        return nonfinite(v)
    if v != 0 and (abs(v) >= 1e4 or abs(v) < 5e-5):
        return f"{v:.3e}"
    s = f"{v:.4f}"
    return "0.0000" if s == "-0.0000" else s


def fac(v: float) -> str:
    """A factor of a product: negative numbers in parentheses, "0.5000·(-0.3100)"."""
    s = num(v)
    return f"({s})" if s.startswith("-") else s


def signed(v: float) -> str:
    """A term after the first: "+ 0.0230" or "− 0.0178"."""
    s = num(v)
    return f"− {s[1:]}" if s.startswith("-") else f"+ {s}"


def numeric(eq: Equation) -> str:
    """The equation with numbers: "σ(0.5200 + 0.1000 − 0.3100) = σ(0.3300) = 0.5818"."""
    parts = []
    for k, term in enumerate(eq.terms):
        shown = term.detail or num(term.value)
        if k == 0:
            parts.append(shown)
        elif not term.detail and term.value < 0:
            parts.append(f"− {num(-term.value)}")
        else:
            parts.append(f"+ {shown}")
    inner = " ".join(parts)
    if eq.fn is None:
        if len(eq.terms) == 1 and not eq.terms[0].detail:
            return num(eq.value)
        return f"{inner} = {num(eq.value)}"
    fn = eq.fn
    assert eq.pre is not None
    if fn == "":
        return f"{inner} = {num(eq.value)}"
    return f"{fn}({inner}) = {fn}({num(eq.pre)}) = {num(eq.value)}"
