"""The unit finder: which hidden units follow a feature of the text (Karpathy's and LSTMVis's idea).

1. A feature is one number per token of a text: 1 inside brackets, the position in the word, 1
   on a digit, 1 on the steps a person selected, ... (`FEATURES`, `feature_values`).
2. Run many sequences of a corpus through the model at once (`corpus_activations`: the corpus is
   cut into windows of `length` tokens, each window starts from a zero state, and all windows of
   a length go through the cells as one batch) and keep every unit's activation at every token:
   h, c for LSTMs, and each gate, per layer and direction.
3. Score each unit by Pearson's correlation between its activation a_j and the feature f over
   all tokens of the corpus:

       r_j = sum_t (a_jt - mean a_j)(f_t - mean f) / sqrt(sum_t (a_jt - mean a_j)^2 sum_t (f_t - mean f)^2)

   and rank by |r_j|; the sign says whether the unit rises (+) or falls (-) with the feature.
   A unit or feature with no variance scores 0.

`find_units(...)` does all three and returns a `UnitFinderResult` with the ranking and the best
units' activations over the text, for colouring the text in the UI.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.errors import EngineError

MAX_CORPUS = 200_000  # tokens: a larger corpus is refused (activations would not fit)
OPEN, CLOSE = "([{", ")]}"
QUOTES = {'"': '"', "“": "”", "«": "»"}
VOWELS = set("aeiouAEIOUàáâäèéêëìíîïòóôöùúûüÀÁÂÄÈÉÊËÌÍÎÏÒÓÔÖÙÚÛÜyY")


class UnitFinderError(EngineError):
    pass


# ---- features -------------------------------------------------------------------------------
def _char(tok: str) -> str:
    """The character a token stands for ('␣' is a drawn space)."""
    return {"␣": " ", "⏎": "\n", "⇥": "\t"}.get(tok, tok)


def inside_brackets(tokens: Sequence[str]) -> np.ndarray:
    """1 on every token between an opening bracket and its closing one (the brackets included)."""
    depth, out = 0, np.zeros(len(tokens))
    for t, tok in enumerate(map(_char, tokens)):
        if tok in OPEN:
            depth += 1
        out[t] = 1.0 if depth > 0 else 0.0
        if tok in CLOSE:
            depth = max(0, depth - 1)
    return out


def bracket_depth(tokens: Sequence[str]) -> np.ndarray:
    """The nesting depth after reading each token: ( raises it, ) lowers it."""
    depth, out = 0, np.zeros(len(tokens))
    for t, tok in enumerate(map(_char, tokens)):
        if tok in OPEN:
            depth += 1
        elif tok in CLOSE:
            depth = max(0, depth - 1)
        out[t] = depth
    return out


def inside_quotes(tokens: Sequence[str]) -> np.ndarray:
    """1 from an opening double quote to its closing one (both quotes included)."""
    closing: str | None = None
    out = np.zeros(len(tokens))
    for t, tok in enumerate(map(_char, tokens)):
        if closing is None and tok in QUOTES:
            closing = QUOTES[tok]
            out[t] = 1.0
        elif closing is not None:
            out[t] = 1.0
            if tok == closing:
                closing = None
    return out


def _is_word_char(tok: str) -> bool:
    return len(tok) > 0 and all(ch.isalnum() or ch in "'’_" for ch in tok)


def position_in_word(tokens: Sequence[str]) -> np.ndarray:
    """1 on a word's first character, 2 on its second, ...; 0 outside words."""
    out, k = np.zeros(len(tokens)), 0
    for t, tok in enumerate(map(_char, tokens)):
        k = k + 1 if _is_word_char(tok) else 0
        out[t] = k
    return out


def token_class(test: Callable[[str], bool]) -> Callable[[Sequence[str]], np.ndarray]:
    def feature(tokens: Sequence[str]) -> np.ndarray:
        return np.array([1.0 if test(_char(tok)) else 0.0 for tok in tokens])

    return feature


def _punct(tok: str) -> bool:
    return len(tok) > 0 and all(unicodedata.category(ch).startswith("P") for ch in tok)


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    fn: Callable[[Sequence[str]], np.ndarray]


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("brackets", "inside brackets ( ) [ ] { }", inside_brackets),
        Feature("depth", "bracket nesting depth", bracket_depth),
        Feature("quotes", 'inside double quotes "..."', inside_quotes),
        Feature("word-position", "position in the word (1, 2, 3, ...; 0 between words)", position_in_word),
        Feature("digit", "the token is a digit", token_class(lambda s: len(s) > 0 and s.isdigit())),
        Feature("vowel", "the token is a vowel", token_class(lambda s: len(s) == 1 and s in VOWELS)),
        Feature("space", "the token is whitespace", token_class(lambda s: len(s) > 0 and s.isspace())),
        Feature("punctuation", "the token is punctuation", token_class(_punct)),
        Feature("upper", "the token is an upper-case letter", token_class(lambda s: len(s) > 0 and s.isupper())),
    )
}


def span_feature(T: int, start: int, stop: int) -> np.ndarray:
    """1 on the selected steps start..stop-1, 0 elsewhere: "the behaviour happens here"."""
    if not (0 <= start < stop <= T):
        raise UnitFinderError(f"the selected span {start}..{stop - 1} must lie inside 0..{T - 1} and hold a step")
    out = np.zeros(T)
    out[start:stop] = 1.0
    return out


def feature_values(name: str, tokens: Sequence[str]) -> np.ndarray:
    """The named feature over tokens, (T,) floats."""
    if name not in FEATURES:
        raise UnitFinderError(f"unknown feature {name!r}: choose one of {', '.join(FEATURES)} (or select a span)")
    return FEATURES[name].fn(list(tokens)).astype(np.float64)


# ---- correlation ----------------------------------------------------------------------------
def pearson(A: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pearson's r between each column of A (N, H) and f (N,); 0 where either has no variance."""
    A = np.asarray(A, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if A.shape[0] != f.shape[0]:
        raise UnitFinderError(f"{A.shape[0]} activations but {f.shape[0]} feature values")
    a = A - A.mean(axis=0)
    g = f - f.mean()
    var_a = (a * a).sum(axis=0)  # (H,)
    var_g = float(g @ g)
    # a spread at the level of rounding error is no variance (a constant unit, a saturated gate)
    ok = (var_a > 1e-20 * (1.0 + (A * A).sum(axis=0))) & (var_g > 1e-20 * (1.0 + float(f @ f)))
    den = np.sqrt(np.where(ok, var_a * var_g, 1.0))
    r = np.where(ok, (g @ a) / den, 0.0)
    return np.clip(r, -1.0, 1.0)


# ---- activations over a corpus ----------------------------------------------------------------
Key = tuple[int, str, str]  # (layer, direction, matrix): matrix "h", "c" or a gate name


@dataclass(frozen=True)
class Activations:
    """Every unit's activation at every token of a corpus, windows laid end to end."""

    tokens: list[str]  # (N,) the tokens in the order of the rows below
    values: dict[Key, np.ndarray]  # (layer, direction, matrix) -> (N, H)
    window: int  # tokens per window (each starts from a zero state)


def trace_activations(trace) -> Activations:
    """The activations of one traced sequence (a `Trace`), in the same form."""
    values: dict[Key, np.ndarray] = {}
    for e in trace.layers:
        values[(e.layer, e.direction, "h")] = np.asarray(e.h, dtype=np.float64)
        if e.c is not None:
            values[(e.layer, e.direction, "c")] = np.asarray(e.c, dtype=np.float64)
        for g, v in e.gates.items():
            if g != "a":  # an Elman cell's "gate" is h itself
                values[(e.layer, e.direction, g)] = np.asarray(v, dtype=np.float64)
    return Activations(list(trace.tokens), values, trace.T)


def corpus_activations(model, ids: Sequence[int] | np.ndarray, tokens: Sequence[str], length: int = 64,
                       dtype: str = "float64", batch: int = 256) -> Activations:
    """Run a corpus (token ids) through the model in windows of `length` tokens, batched.

    Each window starts from the zero state. Every window of the same length goes through the
    cells together, (B, I) per step: the same equations `trace.py` uses, so the numbers match a
    trace of that window. A last, shorter window is run as a batch of its own.
    """
    import torch

    from rnn_tui.engine.trace import DTYPES, cell_step, layer_weights

    cfg = model.config
    if cfg.input_mode == "vectors":
        raise UnitFinderError("the unit finder reads text: this model takes raw vectors")
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    N = int(ids.shape[0])
    if N != len(tokens):
        raise UnitFinderError(f"{N} token ids but {len(tokens)} tokens")
    if N == 0:
        raise UnitFinderError("the corpus is empty")
    if N > MAX_CORPUS:
        raise UnitFinderError(f"the corpus has {N} tokens; at most {MAX_CORPUS} are scanned")
    if not isinstance(length, int) or length < 1:
        raise UnitFinderError(f"the window length must be a whole number >= 1, got {length!r}")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        raise UnitFinderError(f"token ids must lie in 0..{cfg.vocab_size - 1}")
    dt = DTYPES[dtype]
    P = {k: v.detach().to(dt) for k, v in model.tensors().items()}
    H, D = cfg.hidden_size, cfg.num_directions
    full = (N // length) * length
    pieces = []  # (start, array (B, T) of ids)
    if full:
        pieces.append((0, ids[:full].reshape(-1, length)))
    if full < N:
        pieces.append((full, ids[full:].reshape(1, -1)))
    out: dict[Key, np.ndarray] = {}

    def put(key: Key, start: int, arr: torch.Tensor) -> None:  # arr (B, T, H) -> rows start..
        flat = arr.reshape(-1, H).double().numpy()
        if key not in out:
            out[key] = np.empty((N, H))
        out[key][start : start + flat.shape[0]] = flat

    with torch.no_grad():
        for start, block in pieces:
            for b0 in range(0, block.shape[0], batch):
                chunk = torch.as_tensor(block[b0 : b0 + batch])  # (B, T)
                B, T = chunk.shape
                row0 = start + b0 * T
                if cfg.input_mode == "embedding":
                    layer_in = P["embedding.weight"][chunk]  # (B, T, I)
                else:
                    layer_in = torch.nn.functional.one_hot(chunk, cfg.vocab_size).to(dt)
                for k in range(cfg.num_layers):
                    outs = []
                    for d in range(D):
                        w = layer_weights(P, f"_l{k}" + ("_reverse" if d else ""))
                        h = torch.zeros(B, H, dtype=dt)
                        c = torch.zeros(B, H, dtype=dt) if cfg.has_cell_state else None
                        hs, cs = [None] * T, [None] * T
                        gs: dict[str, list] = {}
                        for t in reversed(range(T)) if d else range(T):
                            h, c, gates = cell_step(cfg, w, layer_in[:, t], h, c)
                            hs[t], cs[t] = h, c
                            for g, (_, act) in gates.items():
                                gs.setdefault(g, [None] * T)[t] = act
                        direction = "reverse" if d else "forward"
                        Hs = torch.stack(hs, dim=1)  # (B, T, H)
                        put((k, direction, "h"), row0, Hs)
                        if c is not None:
                            put((k, direction, "c"), row0, torch.stack(cs, dim=1))
                        for g, acts in gs.items():
                            if g != "a":
                                put((k, direction, g), row0, torch.stack(acts, dim=1))
                        outs.append(Hs)
                    layer_in = torch.cat(outs, dim=-1)  # (B, T, D*H)
    return Activations(list(tokens), out, min(length, N))


# ---- ranking ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitScore:
    layer: int
    direction: str
    matrix: str  # "h", "c" or a gate name
    unit: int
    r: float  # Pearson's r with the feature; the sign says rises (+) or falls (-) with it

    @property
    def sign(self) -> str:
        return "+" if self.r >= 0 else "-"

    @property
    def name(self) -> str:
        where = f"l{self.layer}" + ("_reverse" if self.direction == "reverse" else "")
        return f"{self.matrix}[{self.unit}] {where}"


@dataclass(frozen=True)
class UnitFinderResult:
    feature: str  # a FEATURES name or "span a..b"
    description: str
    tokens: list[str]  # (N,)
    values: np.ndarray  # (N,) the feature
    scores: list[UnitScore]  # every unit of the matrices ranked, best |r| first
    best: dict[tuple[int, str, str, int], np.ndarray]  # the top units' activations over the tokens (N,)

    def top(self, k: int = 5) -> list[UnitScore]:
        return self.scores[:k]


def rank_units(acts: Activations, values: np.ndarray, matrices: Sequence[str] | None = None) -> list[UnitScore]:
    """Every unit of the chosen matrices (default: all) ranked by |r| with the feature values."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] != len(acts.tokens):
        raise UnitFinderError(f"{values.shape[0]} feature values for {len(acts.tokens)} tokens")
    scores: list[UnitScore] = []
    for (layer, direction, matrix), A in acts.values.items():
        if matrices is not None and matrix not in matrices:
            continue
        for j, r in enumerate(pearson(A, values)):
            scores.append(UnitScore(layer, direction, matrix, j, float(r)))
    if not scores:
        raise UnitFinderError(f"the model has none of the matrices {', '.join(matrices or [])}")
    scores.sort(key=lambda s: (-abs(s.r), s.layer, s.direction, s.matrix, s.unit))
    return scores


def find_units(acts: Activations, feature: str | None = None, span: tuple[int, int] | None = None,
               matrices: Sequence[str] | None = ("h", "c"), keep: int = 5) -> UnitFinderResult:
    """Rank units by how well they follow a named feature, or a selected span of steps."""
    if (feature is None) == (span is None):
        raise UnitFinderError("give a feature name or a selected span of steps (one of them)")
    if span is not None:
        values = span_feature(len(acts.tokens), int(span[0]), int(span[1]))
        name, description = f"span {span[0]}..{span[1] - 1}", f"the selected steps {span[0]}..{span[1] - 1}"
    else:
        values = feature_values(feature, acts.tokens)
        name, description = feature, FEATURES[feature].description
    if float(values.std()) == 0.0:
        raise UnitFinderError(f"the feature {name!r} is the same at every token of this text: nothing to match")
    scores = rank_units(acts, values, matrices)
    best = {(s.layer, s.direction, s.matrix, s.unit): acts.values[(s.layer, s.direction, s.matrix)][:, s.unit].copy()
            for s in scores[:keep]}
    return UnitFinderResult(name, description, list(acts.tokens), values, scores, best)


def encode_text(text: str, vocab: Sequence[str], unknown: str | None = None) -> np.ndarray:
    """Characters -> ids in a character vocabulary; a character outside it raises (or maps to
    `unknown` when given)."""
    index = {tok: k for k, tok in enumerate(vocab)}
    out = []
    for ch in text:
        if ch in index:
            out.append(index[ch])
        elif unknown is not None and unknown in index:
            out.append(index[unknown])
        else:
            raise UnitFinderError(f"{ch!r} is not in the model's vocabulary")
    return np.asarray(out, dtype=np.int64)
