"""The unit finder: features, Pearson's r against numpy, batched activations against traces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_tui.engine.unitfinder import (
    Activations,
    UnitFinderError,
    feature_values,
    find_units,
    pearson,
    rank_units,
    span_feature,
)


def test_features_on_a_known_text():
    toks = list('ab (c[d]) "e f" 12.')
    assert feature_values("brackets", toks).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert feature_values("depth", toks).tolist() == [0, 0, 0, 1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert feature_values("quotes", toks).tolist() == [0] * 10 + [1, 1, 1, 1, 1] + [0] * 4
    assert feature_values("word-position", toks).tolist() == [1, 2, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 2, 0]
    assert feature_values("digit", toks).tolist() == [0] * 16 + [1, 1, 0]
    assert feature_values("space", toks)[2] == 1.0
    assert feature_values("vowel", list("bead")).tolist() == [0, 1, 1, 0]
    assert feature_values("punctuation", list("a,(.")).tolist() == [0, 1, 1, 1]
    # drawn whitespace labels count as whitespace
    assert feature_values("space", ["a", "␣", "b"]).tolist() == [0, 1, 0]
    assert span_feature(5, 1, 3).tolist() == [0, 1, 1, 0, 0]
    with pytest.raises(UnitFinderError, match="unknown feature"):
        feature_values("nope", toks)
    with pytest.raises(UnitFinderError, match="span"):
        span_feature(5, 3, 3)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 60), st.integers(1, 6), st.integers(0, 10_000))
def test_pearson_matches_numpy(N, H, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, H))
    f = rng.normal(size=N)
    r = pearson(A, f)
    for j in range(H):
        assert r[j] == pytest.approx(np.corrcoef(A[:, j], f)[0, 1], abs=1e-12)


def test_pearson_constant_columns_score_zero_and_signs():
    f = np.array([0.0, 1.0, 0.0, 1.0])
    A = np.stack([f, -2 * f + 3, np.full(4, 0.7), np.array([0.1, 0.2, 0.3, 0.4])], axis=1)
    r = pearson(A, f)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0) and r[2] == 0.0
    assert pearson(A, np.ones(4)).tolist() == [0.0] * 4


def test_ranking_finds_the_planted_unit():
    rng = np.random.default_rng(0)
    toks = list("x (yy) z ((w)) v " * 20)
    f = feature_values("brackets", toks)
    A = rng.normal(size=(len(toks), 6)) * 0.5
    A[:, 4] = -f + 0.1 * rng.normal(size=len(toks))  # falls inside brackets
    acts = Activations(toks, {(0, "forward", "h"): A, (0, "forward", "i"): rng.normal(size=(len(toks), 6))}, len(toks))
    res = find_units(acts, "brackets")
    best = res.scores[0]
    assert (best.matrix, best.unit, best.sign) == ("h", 4, "-") and best.r < -0.9
    assert all(s.matrix in ("h", "c") for s in res.scores)  # gates only when asked
    assert (0, "forward", "h", 4) in res.best
    assert len(rank_units(acts, f, None)) == 12
    # a span selected by hand
    res_span = find_units(acts, span=(2, 6))
    assert res_span.feature == "span 2..5" and len(res_span.scores) == 6
    with pytest.raises(UnitFinderError, match="same at every token"):
        find_units(Activations(list("abc"), {(0, "forward", "h"): np.eye(3)}, 3), "digit")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "lstm-peephole", "gru-textbook"])
def test_batched_activations_equal_the_trace_of_each_window(cell):
    torch = pytest.importorskip("torch")
    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace
    from rnn_tui.engine.unitfinder import corpus_activations, trace_activations

    V = 7
    cfg = ModelConfig(cell=cell, input_size=V, hidden_size=5, output_size=V, vocab_size=V, num_layers=2,
                      bidirectional=(cell in ("lstm", "gru-textbook")))
    model = build_model(cfg, seed=3)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, size=23)
    toks = [str(i) for i in ids]
    acts = corpus_activations(model, ids, toks, length=8)
    assert set(k[2] for k in acts.values) >= {"h"} and acts.values[(1, "forward", "h")].shape == (23, 5)
    for start in (0, 8, 16):  # two full windows and the short last one
        stop = min(start + 8, 23)
        tr = run_trace(model, torch.as_tensor(ids[start:stop]), None, dtype="float64")
        ref = trace_activations(tr)
        for key, A in ref.values.items():
            np.testing.assert_allclose(acts.values[key][start:stop], A, atol=1e-12, rtol=0)


def test_corpus_errors():
    pytest.importorskip("torch")
    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.unitfinder import corpus_activations, encode_text

    model = build_model(ModelConfig(cell="gru", input_size=3, hidden_size=2, output_size=3, vocab_size=3), seed=0)
    with pytest.raises(UnitFinderError, match="vocabulary"):
        encode_text("abz", ["a", "b", "c"])
    assert encode_text("abz", ["a", "b", "?"], unknown="?").tolist() == [0, 1, 2]
    with pytest.raises(UnitFinderError, match="0..2"):
        corpus_activations(model, [0, 5], ["a", "b"])
    with pytest.raises(UnitFinderError, match="empty"):
        corpus_activations(model, [], [])
