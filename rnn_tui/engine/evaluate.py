"""How good is a model: its loss in nats and bits per token, against baselines a student knows.

    base = fit_baselines(train_ids, V)                 # unigram and n-gram on the training text
    ev = evaluate_sequence(model, x, targets)          # one sequence, the state carried throughout
    ev.nats_per_token, ev.bits_per_token, ev.perplexity, base.ngram.order
    report = evaluate_task(model, task)                # fresh examples of a task, with its baselines

Language models are scored on the tokens they predict: step t reads tokens 0..t and is scored on
token t + 1, so a text of T tokens gives T - 1 scores (as `trace` scores it). The baselines score
the same T - 1 tokens, each from the tokens before it in the same text:

- unigram: p(w) = (c(w) + 1) / (N + V), add-one (Laplace) over the model's V tokens, so a token
  the training text lacks still has a probability;
- n-gram: interpolated Kneser-Ney (Chen and Goodman 1998, section 3). At the highest order n,
      p(w | h) = max(c(h w) - D_n, 0) / c(h .) + D_n N1+(h .) / c(h .) * p_lower(w | h'),
  where h' drops the oldest token of h and N1+(h .) counts the distinct tokens seen after h;
  each lower order uses continuation counts N1+(. h w) (how many distinct tokens came before
  h w) in place of c, and the lowest interpolates with the uniform 1/V. A context never seen
  backs off to the order below. One discount per order and kind of count, D = n1 / (n1 + 2 n2)
  (n1, n2: how many n-grams were seen once, twice), kept within [0.1, 0.95]. Every distribution
  sums to 1 over the vocabulary. Near the start of a text, where fewer than n - 1 tokens come
  before, the highest order used is the one the context allows.
- the order n is chosen on held-out text: fitted on the first 90% of the training text, each order
  from 1 up scores the last 10% (as a text of its own); the order with the lowest held-out loss
  is kept, and the n-gram then refitted on the whole training text.

Baselines are fitted on the text the model was trained on, never on the text being scored (the
caller says what that text is). Other tasks have their natural baselines (`evaluate_task`):
uniform chance and the class prior for classes, predicting the mean for values (an MSE of 1/6 on
the adding problem).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rnn_tui.engine.errors import EngineError

LN2 = math.log(2.0)
MAX_ORDER = 8  # the highest n-gram order tried
MAX_BASELINE_TOKENS = 2_000_000  # baselines are fitted on at most this many training tokens
HELD_OUT = 0.1  # the share of the training text that chooses the n-gram order
MIN_HELD_OUT = 8  # tokens; a shorter training text keeps the order MIN_ORDER
DEFAULT_ORDER = 3


class EvalError(EngineError):
    """A model, text or setting that cannot be evaluated; one line."""


# ---- n-gram counts -------------------------------------------------------------------------------------
def max_order_for(V: int) -> int:
    """The highest order whose n-grams fit one int64 code (V^n < 2^62), at most MAX_ORDER."""
    if V <= 1:
        return MAX_ORDER
    return max(1, min(MAX_ORDER, int(62 * LN2 / math.log(V))))


def _codes(ids: np.ndarray, V: int, M: int) -> list[np.ndarray]:
    """codes[k][i]: the k-gram ending at position i as one number, w_i the lowest digit:
    sum_j w_{i-j} V^j (j < k); -1 where i < k - 1 (no such k-gram)."""
    T = ids.shape[0]
    out = [np.zeros(T, np.int64)]
    for k in range(1, M + 1):
        code = np.full(T, -1, np.int64)
        if T >= k:
            prev = out[k - 1]
            code[k - 1 :] = (prev[k - 1 :] if k > 1 else 0) + ids[: T - k + 1] * (V ** (k - 1))
        out.append(code)
    return out


@dataclass(frozen=True)
class Table:
    """Counts of the k-grams of one level, and of their contexts (the k-gram less its last token)."""

    codes: np.ndarray  # (U,) sorted k-gram codes
    counts: np.ndarray  # (U,) their counts (raw c, or continuation N1+(. h w))
    ctx: np.ndarray  # (C,) sorted context codes
    ctx_total: np.ndarray  # (C,) sum over w of the counts of (h, w)
    ctx_types: np.ndarray  # (C,) distinct w seen after h (with a count above 0)
    discount: float


def _table(codes: np.ndarray, counts: np.ndarray, V: int) -> Table:
    ctx_all = codes // V  # w is the lowest digit: what is left is the context
    ctx, start = np.unique(ctx_all, return_index=True)
    total = np.add.reduceat(counts, start) if counts.size else np.zeros(0, np.int64)
    types = np.diff(np.append(start, counts.size))
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    D = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
    return Table(codes, counts, ctx, total, types, float(min(max(D, 0.1), 0.95)))


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == q] for each query, 0 where a query is not among the keys (or is -1)."""
    if keys.size == 0:
        return np.zeros(queries.shape, np.int64)
    at = np.searchsorted(keys, queries)
    at = np.minimum(at, keys.size - 1)
    return np.where((keys[at] == queries) & (queries >= 0), values[at], 0)


@dataclass(frozen=True)
class NGramCounts:
    """Every k-gram of a token sequence up to order M, raw and by continuation, for Kneser-Ney."""

    V: int
    max_order: int
    tokens: int
    raw: tuple  # raw[k]: Table of the k-grams' counts c, k = 1..M (raw[0] is None)
    cont: tuple  # cont[k]: Table of continuation counts N1+(. w_1..w_k), k = 1..M-1

    @classmethod
    def fit(cls, ids, V: int, max_order: int) -> "NGramCounts":
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise EvalError(f"token ids must lie in 0..{V - 1}")
        M = max(1, min(int(max_order), max_order_for(V)))
        codes = _codes(ids, V, M)
        raw: list = [None]
        uniq: list = [None]
        for k in range(1, M + 1):
            valid = codes[k][codes[k] >= 0]
            u, c = np.unique(valid, return_counts=True)
            uniq.append(u)
            raw.append(_table(u, c.astype(np.int64), V))
        cont: list = [None]
        for k in range(1, M):
            # N1+(. h w): how many distinct (k+1)-grams end in the k-gram h w
            u, c = np.unique(uniq[k + 1] % (V**k), return_counts=True)
            cont.append(_table(u, c.astype(np.int64), V))
        return cls(V, M, int(ids.size), tuple(raw), tuple(cont))


@dataclass(frozen=True)
class KneserNey:
    """Interpolated Kneser-Ney of order n over counts fitted on a training text."""

    counts: NGramCounts
    order: int

    @property
    def discounts(self) -> list[float]:
        """D of each order 1..n: the continuation counts' below n, the raw counts' at n."""
        c = self.counts
        return [c.cont[k].discount for k in range(1, self.order)] + [c.raw[self.order].discount]

    def _probs(self, words: np.ndarray, ctx_codes: list[np.ndarray], ctx_len: np.ndarray) -> np.ndarray:
        """p(w_j | context_j) for each query j. ctx_codes[k][j]: the code of the last k - 1 context
        tokens (level k reads them); ctx_len[j]: how many context tokens there are."""
        c, V = self.counts, self.counts.V
        top = np.minimum(self.order, ctx_len + 1)  # the highest level each query can use
        P = np.full(words.shape, 1.0 / V)
        for k in range(1, self.order + 1):
            active = k <= top
            if not active.any():
                break
            code = np.where(active, ctx_codes[k] * V + words, -1)
            ctx = np.where(active, ctx_codes[k], -1)
            below = c.cont[k] if k < c.max_order else None  # continuation counts, for the lower orders
            for table, use in ((c.raw[k], active & (top == k)), (below, active & (top > k))):
                if table is None or not use.any():
                    continue
                n = _lookup(table.codes, table.counts, np.where(use, code, -1)).astype(np.float64)
                total = _lookup(table.ctx, table.ctx_total, np.where(use, ctx, -1)).astype(np.float64)
                types = _lookup(table.ctx, table.ctx_types, np.where(use, ctx, -1)).astype(np.float64)
                D = table.discount
                seen = use & (total > 0)
                safe_total = np.where(seen, total, 1.0)
                P = np.where(seen, (np.maximum(n - D, 0.0) + D * types * P) / safe_total, P)
        return P

    def log_probs(self, seq) -> np.ndarray:
        """(T - 1,) log p(w_i | the tokens before it in `seq`), i = 1 .. T - 1."""
        seq = np.asarray(seq, dtype=np.int64).reshape(-1)
        T, V = seq.size, self.counts.V
        if T < 2:
            return np.zeros(0)
        pos = np.arange(1, T)
        words = seq[1:]
        codes = _codes(seq, V, max(self.order - 1, 0))
        ctx_codes = [None]  # level k reads the k - 1 tokens before w_i: the (k-1)-gram ending at i - 1
        for k in range(1, self.order + 1):
            ctx_codes.append(np.zeros(T - 1, np.int64) if k == 1 else codes[k - 1][pos - 1])
        return np.log(self._probs(words, ctx_codes, pos))

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """(V,) p(w | context) for every token w (it sums to 1)."""
        V = self.counts.V
        ctx = [int(i) for i in context][-(self.order - 1) :] if self.order > 1 else []
        words = np.arange(V, dtype=np.int64)
        ctx_codes = [None]
        for k in range(1, self.order + 1):
            need = ctx[len(ctx) - (k - 1) :] if k > 1 else []
            code = 0
            for w in need if len(need) == k - 1 else []:
                code = code * V + w
            ctx_codes.append(np.full(V, code if len(need) == k - 1 else -1, np.int64))
        return self._probs(words, ctx_codes, np.full(V, len(ctx)))

    def describe(self) -> str:
        return f"{self.order}-gram, interpolated Kneser-Ney"


@dataclass(frozen=True)
class Unigram:
    """p(w) = (c(w) + 1) / (N + V): add-one smoothing over the vocabulary."""

    counts: np.ndarray  # (V,)

    @classmethod
    def fit(cls, ids, V: int) -> "Unigram":
        return cls(np.bincount(np.asarray(ids, dtype=np.int64).reshape(-1), minlength=V).astype(np.int64))

    def distribution(self, context: Sequence[int] = ()) -> np.ndarray:
        return (self.counts + 1.0) / (self.counts.sum() + self.counts.size)

    def log_probs(self, seq) -> np.ndarray:
        seq = np.asarray(seq, dtype=np.int64).reshape(-1)
        return np.log(self.distribution()[seq[1:]])

    def describe(self) -> str:
        return "unigram, add-one"


# ---- fitting the baselines -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Baselines:
    """The unigram and the n-gram fitted on a training text, and how the n-gram's order was chosen."""

    unigram: Unigram
    ngram: KneserNey
    fitted_on: str  # what the training text was, for the person
    tokens: int  # training tokens they were fitted on
    held_out: tuple[tuple[int, float], ...] = ()  # (order, held-out nats per token) of each order tried
    note: str = ""  # what was assumed (a text cut short, a held-out part too short to choose)


def fit_baselines(train_ids, V: int, fitted_on: str = "the training text", max_order: int = MAX_ORDER) -> Baselines:
    """The unigram and the n-gram (order chosen on held-out text, see the module docstring)."""
    ids = np.asarray(train_ids, dtype=np.int64).reshape(-1)
    if ids.size < 2:
        raise EvalError(f"{fitted_on} has {ids.size} token(s): baselines need at least 2")
    notes = []
    if ids.size > MAX_BASELINE_TOKENS:
        notes.append(f"fitted on its first {MAX_BASELINE_TOKENS:,} of {ids.size:,} tokens")
        ids = ids[:MAX_BASELINE_TOKENS]
    M = max(1, min(max_order, max_order_for(V)))
    n_held = int(round(ids.size * HELD_OUT))
    tried: list[tuple[int, float]] = []
    if n_held >= MIN_HELD_OUT and ids.size - n_held >= 2:
        fit, held = ids[:-n_held], ids[-n_held:]
        counts = NGramCounts.fit(fit, V, M)
        worse = 0
        best = (math.inf, 1)
        for n in range(1, M + 1):
            nats = float(-KneserNey(counts, n).log_probs(held).mean())
            tried.append((n, nats))
            if nats < best[0]:
                best, worse = (nats, n), 0
            else:
                worse += 1
                if worse >= 2:  # two orders in a row no better: higher ones only overfit more
                    break
        order = best[1]
    else:
        order = min(DEFAULT_ORDER, M)
        notes.append(f"the training text is too short to hold out {MIN_HELD_OUT} tokens: order {order} assumed")
    counts = NGramCounts.fit(ids, V, order)
    return Baselines(Unigram.fit(ids, V), KneserNey(counts, order), fitted_on, int(ids.size), tuple(tried),
                     "; ".join(notes))  # fmt: skip


# ---- scoring a model -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """Mean negative log-likelihood per scored token."""

    name: str
    nats_per_token: float
    tokens: int  # tokens scored
    detail: str = ""
    losses: np.ndarray | None = field(default=None, compare=False, repr=False)  # (tokens,) nats each

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token) if self.nats_per_token < 700 else math.inf

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "detail": self.detail,
            "nats_per_token": _finite(self.nats_per_token),
            "bits_per_token": _finite(self.bits_per_token),
            "perplexity": _finite(self.perplexity),
            "tokens": self.tokens,
        }


def _finite(v: float):
    return float(v) if math.isfinite(v) else None


@dataclass(frozen=True)
class Comparison:
    """The model against one baseline on the same scored items: the mean of (model loss - baseline
    loss) and its standard error; "beats" when the model is lower by more than two standard
    errors, "worse" when higher by more, else "level" (no difference these items can show)."""

    baseline: str
    difference: float
    standard_error: float

    @property
    def verdict(self) -> str:
        margin = 2 * self.standard_error
        if self.difference < -margin and self.difference < 0:
            return "beats"
        if self.difference > margin and self.difference > 0:
            return "worse"
        return "level"

    def to_dict(self) -> dict:
        return {"baseline": self.baseline, "difference": _finite(self.difference),
                "standard_error": _finite(self.standard_error), "verdict": self.verdict}  # fmt: skip


def compare(model_losses: np.ndarray, baseline_losses: np.ndarray, name: str) -> Comparison:
    """Paired: the same items scored by both."""
    d = np.asarray(model_losses, np.float64) - np.asarray(baseline_losses, np.float64)
    if d.size == 0:
        return Comparison(name, math.nan, math.nan)
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else math.inf
    return Comparison(name, float(d.mean()), se)


def verdict_line(comparisons: Sequence[Comparison], unit: str, scale: float = 1.0) -> str:
    """One sentence: which baselines the model beats, by how much (± two standard errors)."""
    if not comparisons:
        return ""
    parts = []
    for c in comparisons:
        amount = f"{abs(c.difference) * scale:.4g} ± {2 * c.standard_error * scale:.2g} {unit}"
        word = {"beats": "beats", "worse": "is worse than", "level": "is level with"}[c.verdict]
        parts.append(f"{word} {baseline_phrase(c.baseline)} ({'by ' if c.verdict != 'level' else 'difference '}{amount})")
    return "the model " + "; ".join(parts)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def baseline_phrase(name: str) -> str:
    """A baseline's name in a sentence: "the unigram", "chance", "predicting the mean"."""
    return {"chance": "chance", "mean": "predicting the mean"}.get(name, f"the {name}")


@dataclass(frozen=True)
class TextEval:
    """A model scored on one text, and the baselines on the same tokens."""

    model: Score
    baselines: tuple[Score, ...] = ()
    fitted_on: str | None = None  # what the baselines were fitted on; None: no baselines
    why_none: str = ""  # why there are no baselines
    baseline_detail: dict = field(default_factory=dict)  # order chosen, held-out losses, discounts
    notes: tuple[str, ...] = ()

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        return tuple(compare(self.model.losses, b.losses, b.name) for b in self.baselines
                     if self.model.losses is not None and b.losses is not None)  # fmt: skip

    @property
    def beats(self) -> list[str]:
        return [c.baseline for c in self.comparisons if c.verdict == "beats"]


def sequence_log_probs(model, x, dtype: str | None = None) -> np.ndarray:
    """(T, V) log softmax of the model's logits over one sequence, read in one pass with the state
    carried from the first token to the last; float64 from the model's own precision (dtype
    "float64": a float64 copy of the model)."""
    import torch

    from rnn_tui.engine.generate import _in_dtype

    m = _in_dtype(model, dtype)
    was = m.training
    m.eval()
    try:
        with torch.no_grad():
            xt = torch.as_tensor(np.asarray(x), dtype=torch.long)[None]  # (1, T)
            y = m(xt)[0]  # (T, V)
            return torch.log_softmax(y.to(torch.float64), dim=-1).cpu().numpy()
    finally:
        m.train(was)


def evaluate_sequence(model, x, targets: Sequence, dtype: str | None = None, name: str = "model") -> Score:
    """The model's mean loss over the scored steps of one sequence (targets: an id, or None)."""
    cfg = model.config
    if cfg.loss != "ce" or cfg.head != "step" or cfg.input_mode == "vectors":
        raise EvalError("only a model that predicts a token at every step is scored per token")
    logp = sequence_log_probs(model, x, dtype)
    rows = [t for t, y in enumerate(targets) if y is not None]
    if not rows:
        raise EvalError("no step of the text is scored: it needs at least two tokens")
    picked = logp[rows, [int(targets[t]) for t in rows]]
    return Score(name, float(-picked.mean()), len(rows), losses=-picked)


def score_baselines(base: Baselines, x, targets: Sequence) -> tuple[Score, Score]:
    """The unigram and n-gram on the same scored tokens as the model: target t is token t + 1 of x."""
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    rows = [t for t in range(min(len(targets), len(x) - 1)) if targets[t] is not None]
    if any(int(targets[t]) != int(x[t + 1]) for t in rows) or any(y is not None for y in targets[len(x) - 1 :]):
        raise EvalError("the baselines score next tokens; these targets are not the text's next tokens")
    out = []
    for name, m in (("unigram", base.unigram), (f"{base.ngram.order}-gram", base.ngram)):
        lp = m.log_probs(x)[rows]  # log_probs[t]: token t + 1 from the tokens before it
        out.append(Score(name, float(-lp.mean()), len(rows), m.describe(), losses=-lp))
    return out[0], out[1]


def baseline_detail(base: Baselines) -> dict:
    return {
        "fitted_on": base.fitted_on,
        "training_tokens": base.tokens,
        "order": base.ngram.order,
        "smoothing": "interpolated Kneser-Ney",
        "discounts": [round(d, 6) for d in base.ngram.discounts],
        "held_out_nats_per_token": {str(n): round(v, 6) for n, v in base.held_out},
        "note": base.note,
    }


# ---- tasks: fresh examples and their natural baselines ------------------------------------------------------
@dataclass(frozen=True)
class TaskBaseline:
    name: str
    loss: float  # in the task's loss: nats per scored output (ce) or mean squared error (mse)
    metric: float | None  # the task's metric for the baseline (accuracy), where it has one
    detail: str = ""
    losses: np.ndarray | None = field(default=None, compare=False, repr=False)  # per scored output


@dataclass(frozen=True)
class TaskEval:
    """A model scored on fresh examples of its task, against the task's natural baselines."""

    task: str
    loss_name: str  # "nats per token" / "nats per output" / "MSE"
    loss: float
    metric_name: str
    metric: float | None
    scored: int  # outputs scored
    baselines: tuple[TaskBaseline, ...]
    bits: bool = False  # the loss is per token of a text: also shown in bits
    fitted_on: str = ""
    losses: np.ndarray | None = field(default=None, compare=False, repr=False)  # the model's, per output

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        return tuple(compare(self.losses, b.losses, b.name) for b in self.baselines
                     if self.losses is not None and b.losses is not None)  # fmt: skip

    @property
    def beats(self) -> list[str]:
        return [c.baseline for c in self.comparisons if c.verdict == "beats"]

    def show(self, value: float) -> str:
        return f"{value / LN2:.3f}" if self.bits else f"{value:.4g}"

    def line(self) -> str:
        """One line: the model against each baseline, and whether it beats them."""
        unit = "bits/token" if self.bits else self.loss_name
        parts = [f"model {self.show(self.loss)}"] + [f"{b.name} {self.show(b.loss)}" for b in self.baselines]
        verdicts = [c.verdict for c in self.comparisons]
        if not verdicts:
            verdict = ""
        elif all(v == "beats" for v in verdicts):
            verdict = "beats " + ("it" if len(verdicts) == 1 else "both" if len(verdicts) == 2 else "all")
        elif any(v == "beats" for v in verdicts):
            verdict = "beats " + _and([baseline_phrase(b) for b in self.beats]) + " only"
        elif all(v == "level" for v in verdicts):
            verdict = "no better than " + ("it" if len(verdicts) == 1 else "them")
        else:
            verdict = "worse than " + _and([baseline_phrase(c.baseline) for c in self.comparisons
                                            if c.verdict == "worse"])  # fmt: skip
        return f"vs baselines: {' · '.join(parts)} {unit}" + (f": {verdict}" if verdict else "")


EVAL_BATCHES = 8
EVAL_SEED = 104_729  # fresh examples, apart from any training seed's stream
FIT_SEED = 7_919


def _scored_mask(batch, loss_name: str):
    import torch

    from rnn_tui.engine.tasks.base import IGNORE

    if loss_name == "ce":
        return batch.y != IGNORE
    if batch.mask is not None:
        return batch.mask
    return torch.ones(batch.y.shape[:-1], dtype=torch.bool)


def _per_output(out, batch, loss_name: str):
    """(scored outputs,) each scored output's loss, as the task's own loss averages them: cross-entropy
    in nats, or the squared error averaged over the output's values."""
    import torch

    mask = _scored_mask(batch, loss_name)
    if loss_name == "ce":
        logp = torch.log_softmax(out.to(torch.float64), dim=-1)  # (..., C)
        y = torch.where(mask, batch.y, torch.zeros_like(batch.y))
        nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        return nll[mask].numpy()
    row = ((out.to(torch.float64) - batch.y.to(torch.float64)) ** 2).mean(dim=-1)
    return row[mask].numpy()


def evaluate_task(model, task, batches: int = EVAL_BATCHES, batch_size: int = 32, seed: int = EVAL_SEED) -> TaskEval:
    """The model's loss and metric on `batches` fresh batches of the task, and the baselines:
    a language model (a text task) against the unigram and n-gram fitted on its training text,
    scored on the same windows (each read from its start, as the model reads it); classes against
    uniform chance and the class prior, values against predicting the mean (both fitted on
    examples drawn with another seed)."""
    import torch

    if batches < 1:
        raise EvalError("give at least one batch")
    g = torch.Generator().manual_seed(seed)
    was = model.training
    model.eval()
    loss_name = task.loss_name
    losses, metric_sum, metric_n = [], 0.0, 0
    kept = []
    try:
        with torch.no_grad():
            for _ in range(batches):
                batch = task.sample(batch_size, g)
                out = task.forward(model, batch)
                each = _per_output(out, batch, loss_name)
                if each.size == 0:
                    continue
                losses.append(each)
                _, value = task.metric(out, batch)
                metric_sum += value * each.size
                metric_n += each.size
                kept.append(batch)
    finally:
        model.train(was)
    if not losses:
        raise EvalError(f"the {task.name} task's examples have nothing scored")
    model_losses = np.concatenate(losses)
    loss = float(model_losses.mean())
    metric = metric_sum / metric_n
    lm = getattr(task, "mode", "") == "lm" and getattr(task, "ids", None) is not None
    if lm:
        ids = np.asarray(task.ids, dtype=np.int64)
        text_name = getattr(task, "text_name", "")
        fitted_on = f"the {task.name} task's text{f' ({text_name})' if text_name else ''}, {ids.size:,} tokens"
        base = fit_baselines(ids, len(task.vocab), fitted_on=fitted_on)
        per = {"unigram": [], "ngram": []}
        for batch in kept:
            rows = torch.cat([batch.x[:, :1], batch.y], dim=1).numpy()  # (B, T + 1) each window whole
            for row in rows:
                per["unigram"].append(-base.unigram.log_probs(row))
                per["ngram"].append(-base.ngram.log_probs(row))
        uni, ngr = np.concatenate(per["unigram"]), np.concatenate(per["ngram"])
        baselines = (
            TaskBaseline("unigram", float(uni.mean()), None, base.unigram.describe(), uni),
            TaskBaseline(f"{base.ngram.order}-gram", float(ngr.mean()), None, base.ngram.describe(), ngr),
        )
        return TaskEval(task.name, "nats per token", loss, task.metric_name, metric, model_losses.size, baselines,
                        bits=True, fitted_on=base.fitted_on, losses=model_losses)  # fmt: skip
    fit = [task.sample(batch_size, torch.Generator().manual_seed(FIT_SEED + k)) for k in range(batches)]
    if loss_name == "ce":
        baselines = _class_baselines(task, fit, kept)
        name = "nats per output"
    else:
        baselines = _mean_baseline(fit, kept)
        name = "MSE"
    return TaskEval(task.name, name, loss, task.metric_name, metric, model_losses.size, baselines,
                    fitted_on=f"{batches} batches of the {task.name} task drawn with another seed",
                    losses=model_losses)  # fmt: skip


def _class_baselines(task, fit, kept) -> tuple[TaskBaseline, ...]:
    import torch

    C = len(task.output_labels or [])
    if C < 1:
        return ()

    def targets(batches):
        return torch.cat([b.y[_scored_mask(b, "ce")].reshape(-1) for b in batches]).numpy()

    train, test = targets(fit), targets(kept)
    prior = (np.bincount(train, minlength=C) + 1.0) / (train.size + C)  # add-one: no class has 0
    majority = int(np.argmax(prior))
    prior_losses = -np.log(prior[test])
    return (
        TaskBaseline("chance", math.log(C), 1.0 / C, f"uniform over {C} classes", np.full(test.size, math.log(C))),
        TaskBaseline("class prior", float(prior_losses.mean()), float((test == majority).mean()),
                     "the classes' frequencies; the most frequent class as the guess", prior_losses),
    )


def _mean_baseline(fit, kept) -> tuple[TaskBaseline, ...]:
    def rows(batches):
        return np.concatenate([b.y[_scored_mask(b, "mse")].reshape(-1, b.y.shape[-1]).numpy() for b in batches])

    train, test = rows(fit), rows(kept)
    mean = train.mean(axis=0)
    each = ((test - mean) ** 2).mean(axis=1)
    return (TaskBaseline("mean", float(each.mean()), float(each.mean()),
                         "the mean target of other examples, always", each),)  # fmt: skip


# ---- what a model was trained on -------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingText:
    """The token ids of a model's training text, read with its vocabulary, or why there are none."""

    ids: np.ndarray | None
    fitted_on: str = ""  # what it is, for the person
    why_none: str = ""


def training_text(spec, subject) -> TrainingText:
    """The text the subject's model was trained on, when rnn-tui knows it: a run's task text (read
    again from where config.json says), or the text of the task it was opened on. A model whose
    text is unknown here (imported weights, a fresh model over the input's own tokens, a scenario)
    has none: its baselines need the text given (`encode_training_text`), never the scored one."""
    from rnn_tui.engine.tasks import get_task

    if spec.checkpoint:
        from rnn_tui.engine.checkpoint import read_config

        info = read_config(spec.checkpoint)
        where, name, options = "the run's training text", info.task, info.task_options
    elif spec.task and not spec.weights:
        where, name, options = f"the {spec.task} task's text", spec.task, spec.task_options
    else:
        what = ("a model from --weights" if spec.weights else "a scenario's model" if spec.scenario
                else "a fresh model over its input's own tokens")  # fmt: skip
        return TrainingText(None, why_none=f"{what} has no training text that rnn-tui knows: give the text it was "
                                           "trained on as --baseline-text FILE")  # fmt: skip
    try:
        task = get_task(name, **options)
    except EngineError as e:
        return TrainingText(None, why_none=f"{where} cannot be read now ({e})")
    ids = getattr(task, "ids", None)
    if getattr(task, "mode", "") != "lm" or ids is None:
        return TrainingText(None, why_none=f"the {name} task is not a text")
    if subject.token_vocab is not None and list(task.vocab) != list(subject.token_vocab):
        return TrainingText(None, why_none=f"{where} no longer reads as the model's vocabulary (was it changed?)")
    ids = np.asarray(ids, dtype=np.int64)
    text_name = getattr(task, "text_name", "")
    return TrainingText(ids, f"{where}{f' ({text_name})' if text_name else ''}, {ids.size:,} tokens")


def encode_training_text(text: str, subject, tokenize: str, vocab_file: str | None, where: str) -> TrainingText:
    """A text given as the model's training text, read with the model's own vocabulary: its
    --vocab file's rules (<unk>, <eos>), or its token list; a token the vocabulary lacks is read
    as <unk> where it has one, else refused."""
    from rnn_tui.engine.tokens import label
    from rnn_tui.engine.vocab import VocabError, encode_text, load_vocab, split_text

    if vocab_file:
        try:
            enc = encode_text(text, load_vocab(vocab_file), tokenize)
        except VocabError as e:
            raise EvalError(f"{where}: {e}") from None
        ids = np.asarray(enc.ids, dtype=np.int64)
    else:
        vocab = subject.token_vocab
        if vocab is None:
            raise EvalError(f"{where}: the model's tokens have no text here (give its --vocab FILE)")
        index = {tok: i for i, tok in enumerate(vocab)}
        unk = index.get("<unk>")
        raw = split_text(text, tokenize, eos="<eos>" in index)
        out = []
        for tok in raw:
            i = index.get(tok, unk)
            if i is None:
                raise EvalError(f"{where}: {label(tok)!r} is not in the model's vocabulary (which has no <unk>)")
            out.append(i)
        ids = np.asarray(out, dtype=np.int64)
    return TrainingText(ids, f"{where}, {ids.size:,} tokens")


def contains(haystack: np.ndarray, needle: np.ndarray) -> bool:
    """Whether `needle` occurs in `haystack` as a run of consecutive tokens."""
    if needle.size == 0 or needle.size > haystack.size:
        return needle.size == 0
    h, n = haystack.astype("<i8").tobytes(), needle.astype("<i8").tobytes()
    at = h.find(n)
    while at != -1:
        if at % 8 == 0:
            return True
        at = h.find(n, at + 1)
    return False
