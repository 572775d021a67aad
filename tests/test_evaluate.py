"""Scoring a model against baselines: eval's loss is trace's loss, the n-gram is Kneser-Ney as
written (a worked example, distributions that sum to one, the order chosen on held-out text),
the task baselines are what they say, and `rnn-tui eval` never fits its baselines on the text it
scores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.cli import main
from rnn_tui.engine.evaluate import (
    Comparison,
    KneserNey,
    NGramCounts,
    Unigram,
    compare,
    contains,
    evaluate_sequence,
    evaluate_task,
    fit_baselines,
)
from tests.test_cli import ROOT, run_cli

CHARS = str(ROOT / "assets/models/chars-lstm")


# ---- Kneser-Ney -------------------------------------------------------------------------------------
def test_kneser_ney_worked_example():
    """a b a b c b (ids 0 1 0 1 2 1), V = 3, order 2, by hand:
    bigram counts ab 2, ba 1, bc 1, cb 1: n1 = 3, n2 = 1, D2 = 3 / (3 + 2) = 0.6;
    continuation counts N1+(. a) = 1 (b), N1+(. b) = 2 (a, c), N1+(. c) = 1 (b): n1 = 2, n2 = 1,
    D1 = 2 / 4 = 0.5, total 4, 3 types; p1(w) = (max(N1+ - 0.5, 0) + 0.5 * 3 / 3) / 4:
    p1(a) = 0.25, p1(b) = 0.5, p1(c) = 0.25.
    after b (seen twice, before a and c): p(a|b) = (0.4 + 0.6 * 2 * 0.25) / 2 = 0.35,
    p(b|b) = (0 + 1.2 * 0.5) / 2 = 0.3, p(c|b) = 0.35;
    after a (twice, always before b): p(b|a) = (1.4 + 0.6 * 0.5) / 2 = 0.85, p(a|a) = p(c|a) = 0.075.
    With no context the unigram is the highest order used, so it reads raw counts a 2, b 3, c 1:
    n1 = 1, n2 = 1, D = 1/3, p(w) = (c(w) - 1/3 + 1/3 * 3 / 3) / 6 = c(w) / 6."""
    kn = KneserNey(NGramCounts.fit([0, 1, 0, 1, 2, 1], 3, 2), 2)
    assert kn.discounts == pytest.approx([0.5, 0.6])
    assert kn.distribution([1]) == pytest.approx([0.35, 0.3, 0.35])
    assert kn.distribution([0]) == pytest.approx([0.075, 0.85, 0.075])
    assert kn.distribution([]) == pytest.approx([2 / 6, 3 / 6, 1 / 6])
    assert np.exp(kn.log_probs([0, 1, 2])) == pytest.approx([0.85, 0.35])
    # a context never seen (c c) backs off whole to the order below, which reads continuation
    # counts there: N1+(. c w) is 1 for c b only, so p(w | c) = (max(N1+ - D, 0) + D p1(w)) / 1
    kn3 = KneserNey(NGramCounts.fit([0, 1, 0, 1, 2, 1], 3, 3), 3)
    D = kn3.counts.cont[2].discount
    assert kn3.distribution([2, 2]) == pytest.approx([D * 0.25, 1 - D + D * 0.5, D * 0.25])


def _reference_kn(train: list[int], V: int, n: int, context: list[int], w: int) -> float:
    """Interpolated Kneser-Ney written plainly with dictionaries, from the formula."""
    from collections import Counter

    def grams(k):
        return Counter(tuple(train[i : i + k]) for i in range(len(train) - k + 1))

    def discount(counts):
        n1 = sum(1 for v in counts.values() if v == 1)
        n2 = sum(1 for v in counts.values() if v == 2)
        D = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
        return min(max(D, 0.1), 0.95)

    raw = {k: grams(k) for k in range(1, n + 1)}
    cont = {}
    for k in range(1, n):
        c = Counter()
        for g in raw[k + 1]:
            c[g[1:]] += 1
        cont[k] = c
    ctx = context[-(n - 1) :] if n > 1 and context else []
    top = min(n, len(ctx) + 1)

    def p(k, h):
        if k == 0:
            return 1.0 / V
        counts = raw[k] if k == top else cont[k]
        D = discount(counts)
        total = sum(v for g, v in counts.items() if g[:-1] == tuple(h))
        types = sum(1 for g, v in counts.items() if g[:-1] == tuple(h) and v > 0)
        lower = p(k - 1, h[1:])
        if total == 0:
            return lower
        return (max(counts.get(tuple(h) + (w,), 0) - D, 0) + D * types * lower) / total

    return p(top, ctx[len(ctx) - (top - 1) :] if top > 1 else [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(V=st.integers(1, 6), n=st.integers(1, 4), data=st.data())
def test_kneser_ney_sums_to_one_and_matches_the_formula(V, n, data):
    train = data.draw(st.lists(st.integers(0, V - 1), min_size=2, max_size=40))
    context = data.draw(st.lists(st.integers(0, V - 1), max_size=5))
    kn = KneserNey(NGramCounts.fit(train, V, n), n)
    d = kn.distribution(context)
    assert d.sum() == pytest.approx(1.0, abs=1e-12) and (d > 0).all()
    for w in range(V):
        assert d[w] == pytest.approx(_reference_kn(train, V, n, context, w), abs=1e-12)
    seq = data.draw(st.lists(st.integers(0, V - 1), min_size=2, max_size=12))
    lp = kn.log_probs(seq)
    for i in range(1, len(seq)):  # each scored token from the tokens before it in the same text
        assert lp[i - 1] == pytest.approx(np.log(kn.distribution(seq[max(0, i - n + 1) : i])[seq[i]]), abs=1e-12)


def test_unigram_is_add_one():
    u = Unigram.fit([0, 0, 1], 4)
    assert u.distribution() == pytest.approx([3 / 7, 2 / 7, 1 / 7, 1 / 7])
    assert np.exp(u.log_probs([3, 0, 2])) == pytest.approx([3 / 7, 1 / 7])


def test_the_order_is_chosen_on_held_out_text():
    rng = np.random.default_rng(0)
    iid = rng.integers(0, 6, 4000)
    assert fit_baselines(iid, 6).ngram.order == 1  # nothing to learn from context
    # each token a function of the two before it, plus a little noise: order 3 (two of context)
    seq = [0, 1]
    for _ in range(4000):
        seq.append((seq[-1] * 3 + seq[-2] + (rng.random() < 0.05)) % 6)
    base = fit_baselines(seq, 6)
    assert base.ngram.order == 3, base.held_out
    held = dict(base.held_out)
    assert held[3] < held[2] < held[1]
    assert base.tokens == len(seq) and base.note == ""
    short = fit_baselines([0, 1, 0, 1, 0], 2)
    assert short.ngram.order == 3 and "too short" in short.note


def test_comparison_verdicts():
    assert Comparison("x", -1.0, 0.1).verdict == "beats"
    assert Comparison("x", -0.1, 0.1).verdict == "level"
    assert Comparison("x", 0.5, 0.1).verdict == "worse"
    c = compare(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0]), "u")
    assert c.difference == -1.0 and c.standard_error == 0.0 and c.verdict == "beats"


def test_contains():
    a = np.array([5, 1, 2, 3, 256])
    assert contains(a, np.array([1, 2, 3])) and not contains(a, np.array([2, 1]))
    assert not contains(np.array([1 << 8, 0]), np.array([1]))  # bytes inside a number do not count


# ---- the model's score is trace's loss ------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["--checkpoint", CHARS, "--input", "Beautiful is better than ugly.\nExplicit is"],
    ["--cell", "gru-textbook", "--hidden", "5", "--input", "abracadabra"],
    ["--cell", "lstm", "--layers", "2", "--hidden", "4", "--input", "the cat sat on the mat", "--tokenize", "word"],
    ["--cell", "rnn", "--activation", "relu", "--hidden", "3", "--input", "xyzzy"],
])
def test_eval_equals_trace_on_the_same_text_in_float64(capsys, argv):
    code, out, err = run_cli(capsys, "eval", *argv, "--dtype", "float64", "--format", "json")
    assert code == 0, err
    ev = json.loads(out)
    code, out, err = run_cli(capsys, "trace", *argv, "--dtype", "float64", "--format", "json")
    assert code == 0, err
    tr = json.loads(out)
    assert abs(ev["nats_per_token"] - tr["loss"]) < 1e-12
    assert ev["tokens"] == sum(t is not None for t in tr["targets"]) and ev["read"] == len(tr["tokens"])
    assert ev["bits_per_token"] == pytest.approx(ev["nats_per_token"] / math.log(2))
    assert ev["perplexity"] == pytest.approx(math.exp(ev["nats_per_token"]))


def test_eval_scores_against_the_models_own_softmax():
    import torch

    from rnn_tui.engine.checkpoint import load_model, read_config

    model, _ = load_model(CHARS, metrics=False)
    vocab = read_config(CHARS).vocab
    x = [vocab.index(c) for c in "Simple is better than complex."]
    targets = x[1:] + [None]
    score = evaluate_sequence(model, x, targets, dtype="float64")
    m64 = model.double()
    with torch.no_grad():
        logp = torch.log_softmax(m64(torch.tensor([x]))[0], dim=-1).numpy()
    assert score.losses == pytest.approx(-logp[np.arange(len(x) - 1), x[1:]], abs=1e-12)
    assert score.nats_per_token == pytest.approx(float(score.losses.mean()), abs=1e-15)


# ---- baselines: fitted on the training text only ------------------------------------------------------------
def test_eval_of_a_run_fits_the_baselines_on_its_training_text(capsys, tmp_path):
    text = tmp_path / "zen.txt"
    from rnn_tui.engine.tasks.text import zen_text

    text.write_text(zen_text())
    code, out, err = run_cli(capsys, "eval", "--checkpoint", CHARS, "--text", str(text), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert [b["name"] for b in doc["baselines"]] == ["unigram", f"{doc['ngram']['order']}-gram"]
    assert "the run's training text (zen)" in doc["baselines_fitted_on"]
    assert any("in-sample" in n for n in doc["notes"])
    assert doc["beats"] == ["unigram", f"{doc['ngram']['order']}-gram"]
    base = fit_baselines(np.array([read_vocab_ids(zen_text())]).ravel(), 45)
    assert doc["ngram"]["order"] == base.ngram.order
    assert doc["baselines"][0]["nats_per_token"] == pytest.approx(float(-base.unigram.log_probs(read_vocab_ids(zen_text())).mean()))
    code, out, err = run_cli(capsys, "eval", "--checkpoint", CHARS, "--text", str(text))
    assert code == 0 and "the model beats the unigram" in out and "bits/token" in out


def read_vocab_ids(text: str) -> np.ndarray:
    from rnn_tui.engine.checkpoint import read_config

    vocab = read_config(CHARS).vocab
    return np.array([vocab.index(c) for c in text])


def test_a_model_without_a_known_training_text_gets_no_baselines_unless_given_one(capsys, tmp_path):
    scored = tmp_path / "scored.txt"
    scored.write_text("abcabcabd")
    code, out, err = run_cli(capsys, "eval", "--text", str(scored), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["baselines"] == [] and "--baseline-text" in doc["baselines_left_out"]
    code, out, err = run_cli(capsys, "eval", "--text", str(scored))
    assert "baselines left out" in out
    train = tmp_path / "train.txt"
    train.write_text("abcdabcdabcdabcd")
    code, out, err = run_cli(capsys, "eval", "--text", str(scored), "--baseline-text", str(train), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert str(train) in doc["baselines_fitted_on"] and "16 tokens" in doc["baselines_fitted_on"]
    assert not any("in-sample" in n for n in doc["notes"])
    train.write_text("abcz")
    code, out, err = run_cli(capsys, "eval", "--text", str(scored), "--baseline-text", str(train))
    assert code == 2 and "'z' is not in the model's vocabulary" in err and len(err.strip().splitlines()) == 1


def test_task_eval_has_the_tasks_natural_baselines():
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.tasks import get_task

    adding = get_task("adding")
    model = build_model(adding.model_config(hidden=4), seed=0)
    report = evaluate_task(model, adding, batches=8)
    (mean,) = report.baselines
    assert mean.name == "mean" and abs(mean.loss - 1 / 6) < 0.05  # predicting the mean: MSE 1/6
    recall = get_task("recall")
    model = build_model(recall.model_config(hidden=4), seed=0)
    report = evaluate_task(model, recall, batches=4)
    chance, prior = report.baselines
    assert chance.loss == pytest.approx(math.log(recall.symbols)) and chance.metric == pytest.approx(1 / recall.symbols)
    assert report.losses.mean() == pytest.approx(report.loss)
    assert report.scored == 4 * 32 == report.losses.size
    assert "vs baselines: model" in report.line()


def test_eval_of_task_runs_and_bad_flags(capsys):
    code, out, err = run_cli(capsys, "eval", "--checkpoint", str(ROOT / "assets/models/recall-rnn"), "--batches", "4")
    assert code == 0, err
    assert "chance" in out and "class prior" in out and "level with chance" in out  # the tanh RNN did not learn
    code, out, err = run_cli(capsys, "eval", "--checkpoint", str(ROOT / "assets/models/recall-lstm"), "--format", "json")
    doc = json.loads(out)
    assert doc["beats"] == ["chance", "class prior"] and doc["metric"] > 0.95
    for argv, message in (
        (["--checkpoint", str(ROOT / "assets/models/recall-lstm"), "--input", "a"], "recall run cannot be scored per token"),
        ([], "say what to score"),
        (["--checkpoint", CHARS, "--input", "Now", "--batches", "3"], "--batches"),
        (["--checkpoint", CHARS, "--baseline-text", "x"], "--baseline-text"),
        (["--checkpoint", CHARS, "--text", "/nonexistent/file"], "/nonexistent/file"),
        (["--checkpoint", CHARS, "--input", "Now~"], "'~' is not in the model's vocabulary"),
    ):
        code, out, err = run_cli(capsys, "eval", *argv)
        assert code == 2 and out == "", (argv, out)
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_train_summary_says_whether_the_model_beats_its_baselines(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--task", "chars", "--cell", "lstm", "--hidden", "8", "--steps", "20",
                             "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    line = next(l for l in out.splitlines() if l.startswith("vs baselines:"))
    assert "bits/token" in line and "unigram" in line and "-gram" in line
    code, out, err = run_cli(capsys, "train", "--task", "adding", "--cell", "lstm", "--hidden", "4", "--steps", "5",
                             "--out", str(tmp_path / "run2"), "--quiet")
    assert code == 0, err
    assert "vs baselines: model" in out and "mean" in out


# ---- nothing raw reaches the terminal ---------------------------------------------------------------
from tests.test_injection import assert_clean, hostile_run  # noqa: E402,F401  (a fixture, used by name)


def test_generate_and_eval_on_a_model_trained_on_terminal_controls(capsys, hostile_run):
    """The run's vocabulary holds ESC, OSC and bidi characters: what the model writes, what eval
    prints and the errors that quote a prime are all escaped (JSON writes them as \\u escapes)."""
    capsys.readouterr()
    for argv in (
        ["generate", "--checkpoint", hostile_run, "--prime", "the cat", "--length", "200", "--seed", "1",
         "--temperature", "2"],
        ["generate", "--checkpoint", hostile_run, "--prime", "the \x1b[2J", "--length", "50", "--format", "json"],
        ["generate", "--checkpoint", hostile_run, "--prime", "the \x1b]0;x\x07 q"],
        ["eval", "--checkpoint", hostile_run, "--input", "the cat sat \x1b]0;owned\x07 the cat"],
        ["eval", "--checkpoint", hostile_run, "--input", "the cat sat", "--format", "json"],
        ["eval", "--checkpoint", hostile_run, "--batches", "2"],
    ):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert code in (0, 2), (argv, err)
        assert_clean(out + err, " ".join(map(str, argv[:2])))
    code = main(["generate", "--checkpoint", str(hostile_run), "--prime", "the cat", "--length", "300", "--seed", "2",
                 "--temperature", "3", "--format", "json"])
    out, _ = capsys.readouterr()
    tokens = json.loads(out)["tokens"]
    assert any(t in ("\x1b", "\u202e", "\x07") for t in tokens)  # it wrote controls, and they came out escaped
