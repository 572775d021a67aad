"""Text from a language model: prime it, then sample one token at a time, the state carried along.

    gen = generate(model, prime_ids, length=200, temperature=0.8, top_k=10, seed=1)
    gen.ids, gen.steps[0].p, gen.steps[0].entropy, gen.steps[0].top

How each token is chosen (step t reads the token chosen at t - 1 and the state h_{t-1}, c_{t-1}):

    z = model's logits for the next token            p = softmax(z)   (what `p`, `entropy`, `top` report)
    T = 0:  the argmax of z (greedy; the lowest id among equal logits); no randomness is drawn
    T > 0:  q = softmax(z / T); then top-k keeps the k largest q (ties broken towards the lower
            id), top-p keeps the fewest largest q whose sum reaches p; q is renormalised over
            what is kept and one token drawn from it with numpy's PCG64(seed), one uniform
            number per token, so the same seed repeats a sample.

Every probability reported is the model's own, softmax(z) at temperature 1, computed in float64
from the logits of `model(...)`; the probability of the chosen token under the truncated,
tempered distribution it was drawn from is `q`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.errors import EngineError

MAX_LENGTH = 10_000  # tokens generated in one call
MAX_TEMPERATURE = 100.0
TOP = 5  # candidates reported per step unless asked for more


class GenerateError(EngineError):
    """A model or setting that cannot generate; one line."""


@dataclass(frozen=True)
class Candidate:
    """One possible next token: its id and the model's probability of it."""

    id: int
    p: float


@dataclass(frozen=True)
class GenStep:
    """One generated token, and what the model thought of the choice."""

    id: int
    p: float  # the model's probability of this token, softmax(z)[id]
    q: float  # its probability in the distribution it was drawn from (temperature, top-k, top-p)
    entropy: float  # nats, of the model's distribution softmax(z)
    top: tuple[Candidate, ...]  # the most likely next tokens by the model, most likely first


@dataclass(frozen=True)
class Generation:
    """A prime and what followed it."""

    prime_ids: tuple[int, ...]
    steps: tuple[GenStep, ...]
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int | None  # None: greedy, nothing was drawn
    stopped: str = "length"  # "length" | "cancelled"

    @property
    def ids(self) -> list[int]:
        """The generated ids (the prime's are `prime_ids`)."""
        return [s.id for s in self.steps]

    @property
    def sequence(self) -> list[int]:
        """Prime and generated ids, in order."""
        return list(self.prime_ids) + self.ids


# ---- the distribution a token is drawn from --------------------------------------------------------
def softmax(z: np.ndarray) -> np.ndarray:
    """softmax(z) in float64, from the largest logit down (no overflow); -inf logits get 0."""
    z = np.asarray(z, dtype=np.float64)
    m = np.max(z)
    if not np.isfinite(m):
        raise GenerateError("the model's logits are not finite numbers (NaN or infinite): it cannot be sampled")
    e = np.exp(z - m)
    return e / e.sum()


def sampling_distribution(z: np.ndarray, temperature: float, top_k: int | None = None,
                          top_p: float | None = None, p: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """q: the distribution a token is drawn from (see the module docstring), (V,) float64, sums to 1.

    temperature 0 gives the one-hot of the argmax. p: softmax(z) when the caller has it (reused
    at temperature 1)."""
    z = np.asarray(z, dtype=np.float64)
    if np.isnan(z).any():
        raise GenerateError("the model's logits hold NaN: it cannot be sampled")
    V = z.shape[0]
    if temperature == 0:
        q = np.zeros(V)
        q[int(np.argmax(z))] = 1.0
        return q
    q = p if (p is not None and temperature == 1.0) else softmax(z / temperature)
    if top_k is not None and top_k < V:
        order = np.argsort(-q, kind="stable")  # most likely first; equal values: the lower id first
        keep = np.zeros(V, dtype=bool)
        keep[order[:top_k]] = True
        q = np.where(keep, q, 0.0)
        q /= q.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-q, kind="stable")
        cumulative = np.cumsum(q[order])
        n = int(np.searchsorted(cumulative, top_p * (1 - 1e-12))) + 1  # the fewest whose sum reaches p
        keep = np.zeros(V, dtype=bool)
        keep[order[: min(n, V)]] = True
        q = np.where(keep, q, 0.0)
        q /= q.sum()
    return q


def draw(q: np.ndarray, u: float) -> int:
    """The token whose share of [0, 1) holds u (inverse CDF over ids in order), never one of q = 0."""
    cumulative = np.cumsum(q)
    i = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
    i = min(i, len(q) - 1)
    while q[i] == 0.0 and i > 0:  # u at the very top of the range, past a run of zeros
        i -= 1
    return i


def entropy(p: np.ndarray) -> float:
    """H(p) = -sum p log p, in nats (0 log 0 = 0)."""
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def top_candidates(p: np.ndarray, k: int) -> tuple[Candidate, ...]:
    """The k most likely, most likely first (equal probabilities: the lower id first)."""
    order = np.argsort(-p, kind="stable")[:k]
    return tuple(Candidate(int(i), float(p[i])) for i in order.tolist())


# ---- which models can generate -----------------------------------------------------------------------
def not_a_language_model(config, input_labels: Sequence[str] | None = None,
                         output_labels: Sequence[str] | None = None) -> str | None:  # fmt: skip
    """Why a model does not predict its next input token at every step, or None when it does: it
    must read tokens and score each step over those same tokens."""
    if config.input_mode == "vectors":
        return "it reads vectors, not tokens"
    if config.loss != "ce":
        return "its head predicts values (a regression), not tokens"
    if config.head != "step":
        return f"its head reads the {config.head} state once per sequence (a class), not a next token per step"
    if config.output_size != config.vocab_size:
        return (f"its head has {config.output_size} outputs for {config.vocab_size} input tokens: "
                "it does not predict its next input")  # fmt: skip
    if input_labels is not None and output_labels is not None and list(input_labels) != list(output_labels):
        return "its outputs are classes of their own, not the input's tokens: it does not predict its next input"
    return None


def cannot_generate(config, input_labels: Sequence[str] | None = None,
                    output_labels: Sequence[str] | None = None) -> str | None:  # fmt: skip
    """Why a model cannot write text one token at a time, or None when it can: a language model
    (`not_a_language_model`) that reads only the past."""
    reason = not_a_language_model(config, input_labels, output_labels)
    if reason is None and config.bidirectional:
        reason = "it is bidirectional: each output reads the tokens after it too, so it cannot write one token at a time"
    return reason


# ---- generating ------------------------------------------------------------------------------------------
def check_settings(length: int, temperature: float, top_k: int | None, top_p: float | None, vocab_size: int) -> None:
    if not 1 <= length <= MAX_LENGTH:
        raise GenerateError(f"the length must be from 1 to {MAX_LENGTH} tokens, got {length}")
    if not (math.isfinite(temperature) and 0 <= temperature <= MAX_TEMPERATURE):
        raise GenerateError(f"the temperature must be from 0 (greedy) to {MAX_TEMPERATURE:g}, got {temperature}")
    if top_k is not None and not 1 <= top_k:
        raise GenerateError(f"top-k must be at least 1, got {top_k}")
    if top_k is not None and top_k > vocab_size:
        raise GenerateError(f"top-k {top_k} is more than the model's {vocab_size} tokens")
    if top_p is not None and not (0 < top_p <= 1):
        raise GenerateError(f"top-p must be above 0 and at most 1, got {top_p}")


def new_seed() -> int:
    """A seed for a sample nobody asked to repeat (reported, so it can be)."""
    return int(np.random.SeedSequence().entropy % (2**31))


def generate(
    model,
    prime_ids: Sequence[int],
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    top: int = TOP,
    dtype: str | None = None,
    on_step: Callable[[int, GenStep], object] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Generation:
    """Feed the prime through `model` (an `RNNModel`), then `length` tokens, each drawn from the
    logits of the step before and fed back in with the state (see the module docstring).

    dtype: "float64" runs a float64 copy of the model; None the model as it is. on_step(i, step)
    is called after each token; cancel() returning True stops after the current one (the
    Generation says stopped="cancelled" and holds what was made).
    """
    import torch

    cfg = model.config
    reason = cannot_generate(cfg)
    if reason is not None:
        raise GenerateError(f"this model cannot generate text: {reason}")
    prime = [int(i) for i in prime_ids]
    if not prime:
        raise GenerateError("the prime is empty: give at least one token to start from")
    V = cfg.vocab_size
    bad = [i for i in prime if not 0 <= i < V]
    if bad:
        raise GenerateError(f"prime id {bad[0]} is out of range: the model reads ids 0..{V - 1}")
    check_settings(length, temperature, top_k, top_p, V)
    if temperature > 0 and seed is None:
        seed = new_seed()
    rng = np.random.Generator(np.random.PCG64(seed)) if temperature > 0 else None
    top = max(1, min(int(top), V))
    model = _in_dtype(model, dtype)
    was_training = model.training
    model.eval()
    steps: list[GenStep] = []
    stopped = "length"
    try:
        with torch.no_grad():
            x = torch.tensor([prime], dtype=torch.long)  # (1, T) the prime in one call
            y, state = model(x, None, return_state=True)  # (1, T, V)
            for i in range(length):
                z = y[0, -1].detach().to(dtype=torch.float64).cpu().numpy()  # (V,) logits of the next token
                p = softmax(z)
                q = sampling_distribution(z, temperature, top_k, top_p, p=p)
                chosen = int(np.argmax(q)) if rng is None else draw(q, float(rng.random()))
                step = GenStep(chosen, float(p[chosen]), float(q[chosen]), entropy(p), top_candidates(p, top))
                steps.append(step)
                if on_step is not None:
                    on_step(i, step)
                if i + 1 == length:
                    break
                if cancel is not None and cancel():
                    stopped = "cancelled"
                    break
                y, state = model(torch.tensor([[chosen]], dtype=torch.long), state, return_state=True)
    finally:
        model.train(was_training)
    return Generation(tuple(prime), tuple(steps), float(temperature), top_k, top_p,
                      seed if temperature > 0 else None, stopped)  # fmt: skip


def _in_dtype(model, dtype: str | None):
    """The model, or a copy of it in float64."""
    import copy

    import torch

    if dtype is None:
        return model
    want = {"float32": torch.float32, "float64": torch.float64}.get(dtype)
    if want is None:
        raise GenerateError(f"unknown dtype {dtype!r}: choose float32 or float64")
    if model.head.weight.dtype == want:
        return model
    return copy.deepcopy(model).to(want)


# ---- tokens back into text -------------------------------------------------------------------------------
def detokenize(tokens: Sequence[str], mode: str) -> str:
    """Tokens as the text they read from: characters run together; word and space tokens with a
    space between them, <eos> as a line end."""
    if mode == "char":
        return "".join(tokens)
    out: list[str] = []
    for tok in tokens:
        if tok == "<eos>":
            out.append("\n")
            continue
        if out and not out[-1].endswith("\n"):
            out.append(" ")
        out.append(tok)
    return "".join(out)
