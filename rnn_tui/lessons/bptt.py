"""Lesson 2, backpropagation through time and the vanishing gradient.

One sentence, three untrained next-character models of the same width: a tanh RNN, an LSTM as
torch initialises it, and the same LSTM with its forget gate biased open (b_f = 3, as Jozefowicz et
al. 2015 recommend). For each: the gradient-flow matrix ||d l_r / d h_k|| and the fitted decay
factor gamma (||d l_r/d h_k|| ~ gamma^(r-k)), computed live from the traces.
"""

from __future__ import annotations

import math

import numpy as np

from rnn_tui.lessons._kit import trace_tokens
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, sparkline, table

TEXT = "the cat sat on the mat, and the dog sat on the log by the cat"
HIDDEN = 32
FORGET_BIAS = 3.0
LAGS = (1, 5, 10, 20, 40)


def _model(cell: str, vocab: list[str], forget_bias: float | None = None):
    import torch

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model

    V = len(vocab)
    cfg = ModelConfig(cell=cell, input_size=V, hidden_size=HIDDEN, output_size=V, vocab_size=V)
    model = build_model(cfg, seed=0)
    if forget_bias is not None:  # rows H..2H of the LSTM biases are the forget gate's
        with torch.no_grad():
            t = model.tensors()
            t["bias_ih_l0"][HIDDEN : 2 * HIDDEN] = forget_bias
            t["bias_hh_l0"][HIDDEN : 2 * HIDDEN] = 0.0
    return model


def _lag_profile(flow: np.ndarray, lags) -> dict[int, float]:
    """Median over sources r of ||d l_r/d h_{r-lag}|| relative to the lag-0 norm."""
    out = {}
    T = flow.shape[1]
    for lag in lags:
        ratios = [flow[r, r - lag] / flow[r, r] for r in range(lag, T) if np.isfinite(flow[r, r]) and flow[r, r] > 0]
        out[lag] = float(np.median(ratios)) if ratios else float("nan")
    return out


def build(ctx: Context) -> None:
    from rnn_tui.engine.gradflow import fit_decay, flow_matrix, w_hh_spectrum

    r = ctx.results
    tokens = list(TEXT)
    vocab = sorted(set(tokens))
    index = {c: k for k, c in enumerate(vocab)}
    targets = [index[c] for c in tokens[1:]] + [None]
    rows = []
    for key, cell, fb, label in (
        ("main", "rnn", None, "tanh RNN"),
        ("lstm", "lstm", None, "LSTM, torch's init"),
        ("lstm-open", "lstm", FORGET_BIAS, f"LSTM, b_f = {FORGET_BIAS:g}"),
    ):
        ctx.progress(f"tracing and back-propagating the {label}")
        tr = trace_tokens(_model(cell, vocab, fb), tokens, vocab, targets)
        ctx.traces[key] = tr
        flow, _ = flow_matrix(tr)[0]  # (T, T) ||d l_r/d h_k||
        decay = fit_decay(flow, "forward")
        name = key.replace("-", "_")
        r[f"gamma_{name}"] = float(decay.gamma)
        r[f"r2_{name}"] = float(decay.r2)
        prof = _lag_profile(flow, LAGS)
        for lag, v in prof.items():
            r[f"lag{lag}_{name}"] = v
        if "f" in tr.layers[0].gates:
            r[f"f_mean_{name}"] = float(tr.layers[0].gates["f"].mean())
        spectrum = w_hh_spectrum(tr.params["weight_hh_l0"], tr.config.gates)
        r[f"rho_{name}"] = float(max(s.spectral_radius for s in spectrum.values()))
        r[f"norm_{name}"] = float(max(s.spectral_norm for s in spectrum.values()))
        last = flow[tr.T - 2]  # the last scored source row: how far back its gradient reaches
        r[f"spark_{name}"] = sparkline([math.log10(v) if v > 0 else float("nan") for v in last[: tr.T - 1]], lo=-12, hi=0)
        rows.append([label, f"{decay.gamma:.3f}", f"{decay.r2:.2f}"] + [f"{prof[g]:.1e}" for g in LAGS])
    ctx.figures["gamma"] = table(rows, ["model", "γ", "R²"] + [f"lag {g}" for g in LAGS])
    ctx.figures["rows"] = "\n".join(
        [
            "log10 ||d l_r/d h_k|| for the last source r, k = 0 .. r   (▁ = 1e-12, █ = 1)",
            f"tanh RNN         {r['spark_main']}",
            f"LSTM             {r['spark_lstm']}",
            f"LSTM b_f = {FORGET_BIAS:g}     {r['spark_lstm_open']}",
        ]
    )
    r["T"] = len(tokens)
    r["gamma_pow_10_rnn"] = r["gamma_main"] ** 10
    r["gamma_pow_10_open"] = r["gamma_lstm_open"] ** 10
    r["q_lstm"] = 0 if r["gamma_lstm"] - r["gamma_main"] > 0.15 else 1
    r["q_open"] = 0 if r["gamma_lstm_open"] > r["gamma_lstm"] + 0.15 else 1
    r["sigma_fb"] = 1 / (1 + math.exp(-FORGET_BIAS))


STEPS = (
    Step(
        "Where the gradient goes",
        "Training needs d L/d θ. Backpropagation through time sends the error of each step l_r back along "
        "the recurrence: d l_r/d h_k = (∂h_r/∂h_{{r-1}})ᵀ ··· (∂h_{{k+1}}/∂h_k)ᵀ d l_r/d h_r, one Jacobian per step. "
        "The gradient-flow matrix shows ||d l_r/d h_k|| for every source step r (row) and earlier step k (column). "
        "Here: an untrained tanh RNN with {T} steps of '{text}'.",
        tries=("In the Gradients tab, the flow matrix: row r is the loss at step r, column k the step its gradient reaches.",),
        trace="main",
        pane="gradients",
    ),
    Step(
        "The fitted γ",
        "Each step back multiplies the gradient by a Jacobian J = diag(1 - h²) W_hh. If its norm is below 1, "
        "the gradient shrinks about geometrically: ||d l_r/d h_k|| ≈ γ^(r-k). The fit over every pair gives "
        "γ = {gamma_main:.3f} (R² = {r2_main:.2f}) for the tanh RNN: after 10 steps γ^10 = {gamma_pow_10_rnn:.1e}. "
        "||W_hh||₂ = {norm_main:.2f} (spectral radius {rho_main:.2f}) and tanh' <= 1, so one step can stretch the "
        "gradient by at most {norm_main:.2f}; on average here it shrinks it by γ.",
        trace="main",
        pane="gradients",
    ),
    Step(
        "Predict: the LSTM",
        "An LSTM adds a second path: c_t = f_t ⊙ c_{{t-1}} + i_t ⊙ g_t, so ∂c_t/∂c_{{t-1}} = diag(f_t) — no W_hh, no tanh'.",
        question=Question(
            "Untrained, as torch initialises it, does the LSTM's gradient reach much further back than the tanh RNN's?",
            ("yes, much further", "about the same"),
            "q_lstm",
            "γ = {gamma_lstm:.3f} against {gamma_main:.3f}. torch's init gives f ≈ σ(0) = 0.5 (mean f here {f_mean_lstm:.2f}), "
            "and multiplying by 0.5 each step vanishes as surely as the tanh RNN does.",
        ),
        trace="lstm",
        pane="gradients",
    ),
    Step(
        "Open the forget gate",
        "Set the forget gate's bias to {fb:g}: f ≈ σ({fb:g}) = {sigma_fb:.2f} (mean f here {f_mean_lstm_open:.2f}). Now the cell state "
        "carries the gradient: γ = {gamma_lstm_open:.3f} (R² {r2_lstm_open:.2f}), γ^10 = {gamma_pow_10_open:.2f}. "
        "That is why LSTMs learn long dependencies — once their forget gates learn (or are set) to stay open.",
        figure="gamma",
        trace="lstm-open",
        pane="gradients",
    ),
    Step(
        "Side by side",
        "How far back the last step's gradient reaches in each model. The ratios in the table are "
        "medians over every source of ||d l_r/d h_{{r-lag}}|| / ||d l_r/d h_r||.",
        figure="rows",
        tries=("Switch the cell in the Model tab (untrained) and compare γ in the Gradients tab.",),
        trace="lstm-open",
        pane="gradients",
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("the tanh RNN's gradient vanishes: γ < 0.8", r["gamma_main"] < 0.8),
        Check("γ stays below ||W_hh||₂", r["gamma_main"] <= r["norm_main"]),
        Check("a lag of 20 leaves the tanh RNN less than 1e-3", r["lag20_main"] < 1e-3),
        Check("torch's LSTM init vanishes too: γ < 0.8", r["gamma_lstm"] < 0.8),
        Check("an open forget gate carries it: γ > 0.9", r["gamma_lstm_open"] > 0.9),
        Check("the open LSTM keeps 100x more at lag 20", r["lag20_lstm_open"] > 100 * r["lag20_main"]),
    ]


def _build(ctx: Context) -> None:
    ctx.results["text"] = TEXT
    ctx.results["fb"] = FORGET_BIAS
    build(ctx)


LESSON = Lesson(
    name="bptt",
    title="Backpropagation through time and the vanishing gradient",
    summary="the gradient-flow matrix and fitted γ of a tanh RNN against an LSTM, same sequence",
    build=_build,
    steps=STEPS,
    checks=checks,
)
