"""One step of a cell, for one unit, written out with its numbers — as a student works it by hand.

    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        = σ(0.5200 + 0.1000 − 0.3100 + 0.0200) = σ(0.3300) = 0.5818

The terms of each pre-activation are recomputed here from the trace's weights (float64 dot
products of the stored float32 tensors); the pre-activation and the gate value shown after them
are the trace's own numbers, so what is on screen is what the model computed, and the tests
check that the terms add up to it. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _act_name(activation: str) -> str:
    return {"tanh": "tanh", "relu": "relu", "sigmoid": "σ", "identity": ""}[activation]


def layer_input(trace: Trace, entry: LayerTrace) -> np.ndarray:
    """(T, I) what this layer reads: the inputs for layer 0, else the layer below's output
    (forward and reverse states side by side, as torch concatenates them)."""
    if entry.layer == 0:
        return trace.inputs
    below = [e.h for e in trace.layers if e.layer == entry.layer - 1]
    return np.concatenate(below, axis=1)  # (T, D*H)


def _prev(states: np.ndarray, initial: np.ndarray, direction: str, t: int) -> np.ndarray:
    """The state step t reads: h_{t-1} going forward, h_{t+1} in reverse (the initial state at
    the first step read) — one row of LayerTrace.h_prev, without building the whole matrix."""
    if direction == "forward":
        return initial if t == 0 else states[t - 1]
    return initial if t == len(states) - 1 else states[t + 1]


def _row(params: dict, name: str, rows: slice | int) -> np.ndarray | None:
    w = params.get(name)
    return None if w is None else np.asarray(w[rows], dtype=np.float64)  # pick, then widen


def step_equations(trace: Trace, entry: LayerTrace, t: int, unit: int) -> StepEquations:
    cfg = trace.config
    H = cfg.hidden_size
    j = unit
    suffix = "_" + entry.name  # "_l0", "_l1_reverse"
    p = trace.params
    x = np.asarray(layer_input(trace, entry)[t], dtype=np.float64)  # (I,)
    h_prev = np.asarray(_prev(entry.h, entry.h0, entry.direction, t), dtype=np.float64)  # (H,)
    prev = "t-1" if entry.direction == "forward" else "t+1"
    hp = f"h_{{{prev}}}"
    token = trace.tokens[t] if t < len(trace.tokens) else ""

    def dot(name: str, gate_index: int, vec: np.ndarray) -> float:
        row = _row(p, name + suffix, gate_index * H + j)  # (I,) or (H,)
        return float(row @ vec)

    def bias(name: str, gate_index: int) -> float | None:
        b = _row(p, name + suffix, gate_index * H + j)
        return None if b is None else float(b)

    def affine_terms(g: str, k: int) -> list[Term]:
        """W_i{g} x_t + b_i{g} + W_h{g} h_prev + b_h{g}, for gate g at chunk k (the Elman cell,
        which has no gate name, reads W_ih x_t + b_ih + W_hh h_prev + b_hh)."""
        ig, hg = (f"i{g}", f"h{g}") if g else ("ih", "hh")
        terms = [Term(f"W_{ig} x_t", dot("weight_ih", k, x))]
        b = bias("bias_ih", k)
        if b is not None:
            terms.append(Term(f"b_{ig}", b))
        terms.append(Term(f"W_{hg} {hp}", dot("weight_hh", k, h_prev)))
        b = bias("bias_hh", k)
        if b is not None:
            terms.append(Term(f"b_{hg}", b))
        return terms

    def gate_eq(g: str, fn: str, terms: list[Term]) -> Equation:
        return Equation(
            f"{g}_t", fn, tuple(terms), float(entry.preacts[g][t, j]), float(entry.gates[g][t, j])
        )

    reads = [(f"{hp}", float(h_prev[j]))]
    eqs: list[Equation] = []

    if cfg.cell == "rnn":
        eqs.append(Equation(
            "h_t", _act_name(cfg.activation), tuple(affine_terms("", 0)),
            float(entry.preacts["a"][t, j]), float(entry.h[t, j]),
        ))

    elif cfg.cell.startswith("lstm"):
        peep = cfg.cell == "lstm-peephole"
        c_prev = np.asarray(_prev(entry.c, entry.c0, entry.direction, t), dtype=np.float64)
        c_t = float(entry.c[t, j])
        reads.append((f"c_{{{prev}}}", float(c_prev[j])))
        for k, g in enumerate(("i", "f", "g", "o")):
            terms = affine_terms(g, k)
            if peep and g in ("i", "f"):
                w = float(np.asarray(p[f"weight_c{g}{suffix}"], dtype=np.float64)[j])
                terms.append(Term(f"w_c{g} c_{{{prev}}}", w * c_prev[j], f"{fac(w)}·{fac(c_prev[j])}"))
            if peep and g == "o":
                w = float(np.asarray(p[f"weight_co{suffix}"], dtype=np.float64)[j])
                terms.append(Term("w_co c_t", w * c_t, f"{fac(w)}·{fac(c_t)}"))
            eqs.append(gate_eq(g, "tanh" if g == "g" else "σ", terms))
        i, f, g_, o = (float(entry.gates[n][t, j]) for n in ("i", "f", "g", "o"))
        eqs.append(Equation("c_t", None, (
            Term(f"f_t c_{{{prev}}}", f * c_prev[j], f"{fac(f)}·{fac(c_prev[j])}"),
            Term("i_t g_t", i * g_, f"{fac(i)}·{fac(g_)}"),
        ), None, c_t))
        eqs.append(Equation("h_t", None, (
            Term("o_t tanh(c_t)", o * np.tanh(c_t), f"{fac(o)}·tanh({num(c_t)})"),
        ), None, float(entry.h[t, j])))

    else:  # gru, gru-textbook
        textbook = cfg.cell == "gru-textbook"
        eqs.append(gate_eq("r", "σ", affine_terms("r", 0)))
        eqs.append(gate_eq("z", "σ", affine_terms("z", 1)))
        r_vec = np.asarray(entry.gates["r"][t], dtype=np.float64)  # (H,)
        r = float(r_vec[j])
        terms = [Term("W_in x_t", dot("weight_ih", 2, x))]
        b_in, b_hn = bias("bias_ih", 2), bias("bias_hh", 2)
        if b_in is not None:
            terms.append(Term("b_in", b_in))
        if textbook:
            terms.append(Term(f"W_hn (r_t ⊙ {hp})", dot("weight_hh", 2, r_vec * h_prev)))
            if b_hn is not None:
                terms.append(Term("b_hn", b_hn))
        else:
            wh = dot("weight_hh", 2, h_prev)
            inner = wh + (b_hn or 0.0)
            symbol = f"r_t (W_hn {hp} + b_hn)" if b_hn is not None else f"r_t (W_hn {hp})"
            detail = f"{fac(r)}·({num(wh)} {signed(b_hn)})" if b_hn is not None else f"{fac(r)}·{fac(wh)}"
            terms.append(Term(symbol, r * inner, detail))
        eqs.append(gate_eq("n", "tanh", terms))
        z = float(entry.gates["z"][t, j])
        n = float(entry.gates["n"][t, j])
        eqs.append(Equation("h_t", None, (
            Term("(1 - z_t) n_t", (1 - z) * n, f"(1 - {num(z)})·{fac(n)}"),
            Term(f"z_t {hp}", z * h_prev[j], f"{fac(z)}·{fac(h_prev[j])}"),
        ), None, float(entry.h[t, j])))

    return StepEquations(cfg.cell, t, j, token, prev, tuple(reads), tuple(eqs))


def num(v: float) -> str:
    """A number as the equations print it: 4 decimals, or scientific where that would hide it."""
    v = float(v)
    if not np.isfinite(v):
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
