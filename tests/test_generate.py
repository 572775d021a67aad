"""Sampling text from a model: every probability is the model's own (torch's softmax of its logits
in float64), the state is carried token to token, temperature, top-k and top-p cut the
distribution as documented, the same seed repeats a sample; and `rnn-tui generate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.cli import main
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.generate import (
    GenerateError,
    cannot_generate,
    detokenize,
    draw,
    generate,
    sampling_distribution,
    softmax,
)
from rnn_tui.engine.model import build_model
from tests.test_cli import ROOT, run_cli

CHARS = str(ROOT / "assets/models/chars-lstm")


def lm(cell: str = "lstm", V: int = 7, hidden: int = 6, layers: int = 1, seed: int = 0, activation: str = "tanh"):
    cfg = ModelConfig(cell=cell, activation=activation, input_size=V, vocab_size=V, output_size=V, hidden_size=hidden,
                      num_layers=layers)
    model = build_model(cfg, seed=seed).double()
    with torch.no_grad():  # logits large enough that the distribution is far from uniform
        model.head.weight.mul_(4.0)
    return model.eval()


def full_softmax(model, ids) -> np.ndarray:
    """softmax of the model's logits for the token after `ids`, read from scratch in float64."""
    with torch.no_grad():
        y = model(torch.tensor([ids], dtype=torch.long))
    return torch.softmax(y[0, -1].double(), dim=-1).numpy()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(["rnn", "lstm", "gru", "lstm-peephole", "gru-textbook"]),
    V=st.integers(2, 9),
    hidden=st.integers(1, 7),
    layers=st.integers(1, 2),
    seed=st.integers(0, 10_000),
    temperature=st.sampled_from([0.0, 0.5, 1.0, 1.7]),
    top_k=st.one_of(st.none(), st.integers(1, 9)),
    top_p=st.one_of(st.none(), st.floats(0.05, 1.0)),
)
def test_every_probability_is_the_models_own_softmax_with_the_state_carried(cell, V, hidden, layers, seed,
                                                                             temperature, top_k, top_p):
    model = lm(cell, V, hidden, layers, seed)
    rng = np.random.default_rng(seed)
    prime = [int(i) for i in rng.integers(0, V, rng.integers(1, 5))]
    top_k = None if top_k is None else min(top_k, V)
    gen = generate(model, prime, 6, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, top=3)
    seq = list(prime)
    for step in gen.steps:
        p = full_softmax(model, seq)  # the whole prefix again: equals the state carried along
        assert step.p == pytest.approx(p[step.id], abs=1e-12)
        assert step.entropy == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-12)
        best = np.argsort(-p, kind="stable")[:3]
        assert [c.id for c in step.top] == best.tolist()
        assert [c.p for c in step.top] == pytest.approx(p[best].tolist(), abs=1e-12)
        logits = np.log(p)  # softmax is shift-invariant: log p reproduces q exactly enough
        q = sampling_distribution(logits, temperature, top_k, top_p)
        assert q[step.id] > 0 and step.q == pytest.approx(q[step.id], abs=1e-9)
        if temperature == 0:
            assert step.id == int(np.argmax(p))
        seq.append(step.id)
    assert gen.sequence == seq


def test_greedy_draws_nothing_and_the_same_seed_repeats_a_sample():
    model = lm("gru", V=8, seed=3)
    a = generate(model, [1, 2], 40, temperature=0)
    assert a.seed is None and a.ids == generate(model, [1, 2], 40, temperature=0, seed=99).ids
    s1 = generate(model, [1, 2], 60, temperature=1.0, seed=7)
    s2 = generate(model, [1, 2], 60, temperature=1.0, seed=7)
    s3 = generate(model, [1, 2], 60, temperature=1.0, seed=8)
    assert s1.ids == s2.ids and s1.seed == 7
    assert s1.ids != s3.ids
    assert generate(model, [1, 2], 5).seed is not None  # a fresh seed, reported so it can be repeated


@settings(max_examples=200, deadline=None)
@given(
    z=st.lists(st.floats(-20, 20, allow_nan=False), min_size=1, max_size=30),
    temperature=st.floats(0.05, 5.0),
    k=st.integers(1, 30),
    p=st.floats(0.01, 1.0),
)
def test_top_k_and_top_p_truncation(z, temperature, k, p):
    z = np.array(z)
    V = z.size
    k = min(k, V)
    soft = softmax(z / temperature)
    q = sampling_distribution(z, temperature, top_k=k)
    assert q.sum() == pytest.approx(1.0)
    kept = np.flatnonzero(q)
    # the kept ones are the k most likely (all of them but those whose probability underflows to 0)
    top = np.argsort(-soft, kind="stable")[:k]
    assert set(kept) == {int(i) for i in top if soft[i] > 0}
    assert q[kept] == pytest.approx(soft[kept] / soft[kept].sum())
    q = sampling_distribution(z, temperature, top_p=p)
    kept = np.flatnonzero(q)
    order = np.argsort(-soft, kind="stable")
    n = kept.size
    assert set(kept) == set(order[:n].tolist())
    assert soft[order[:n]].sum() >= p * (1 - 1e-9)  # reaches p ...
    assert p == 1.0 or n == 1 or soft[order[: n - 1]].sum() < p + 1e-12  # ... with as few as can (1: all)
    assert q[kept] == pytest.approx(soft[kept] / soft[kept].sum())
    assert sampling_distribution(z, 0.0)[int(np.argmax(z))] == 1.0


def test_draw_is_the_inverse_cdf_and_never_picks_a_zero():
    q = np.array([0.0, 0.25, 0.0, 0.5, 0.25, 0.0])
    us = (np.arange(10_000) + 0.5) / 10_000
    counts = np.bincount([draw(q, u) for u in us], minlength=q.size)
    assert counts.tolist() == [0, 2500, 0, 5000, 2500, 0]
    assert draw(q, 0.9999999999999999) == 4


def test_temperature_sharpens_and_flattens():
    z = np.array([2.0, 1.0, 0.0])
    assert sampling_distribution(z, 0.5) == pytest.approx(softmax(z / 0.5))
    assert sampling_distribution(z, 0.5)[0] > softmax(z)[0] > sampling_distribution(z, 2.0)[0]


def test_models_that_do_not_predict_tokens_are_refused():
    base = dict(cell="lstm", input_size=4, vocab_size=4, output_size=4, hidden_size=3)
    assert cannot_generate(ModelConfig(**base)) is None
    assert "regression" in cannot_generate(ModelConfig(**{**base, "loss": "mse"}))
    assert "once per sequence" in cannot_generate(ModelConfig(**{**base, "head": "last"}))
    assert "bidirectional" in cannot_generate(ModelConfig(**base, bidirectional=True))
    assert "vectors" in cannot_generate(ModelConfig(cell="lstm", input_size=3, hidden_size=3, output_size=3,
                                                    input_mode="vectors"))  # fmt: skip
    assert "outputs" in cannot_generate(ModelConfig(**{**base, "output_size": 2}))
    assert "classes" in cannot_generate(ModelConfig(**base), list("abcd"), list("0123"))
    with pytest.raises(GenerateError, match="bidirectional"):
        generate(build_model(ModelConfig(**base, bidirectional=True)), [1], 3)


def test_settings_are_checked():
    model = lm(V=5)
    for kwargs, match in (({"top_k": 6}, "more than the model's 5"), ({"top_p": 0.0}, "top-p"),
                          ({"temperature": -1.0}, "temperature"), ({"temperature": float("nan")}, "temperature")):
        with pytest.raises(GenerateError, match=match):
            generate(model, [1], 3, **kwargs)
    with pytest.raises(GenerateError, match="length"):
        generate(model, [1], 0)
    with pytest.raises(GenerateError, match="out of range"):
        generate(model, [5], 3)
    with pytest.raises(GenerateError, match="empty"):
        generate(model, [], 3)


def test_cancel_keeps_what_was_made():
    model = lm(V=5)
    seen = []
    gen = generate(model, [1], 50, seed=1, on_step=lambda i, s: seen.append(i), cancel=lambda: len(seen) >= 4)
    assert gen.stopped == "cancelled" and len(gen.steps) == 4 == len(seen)


def test_detokenize():
    assert detokenize(list("ab c"), "char") == "ab c"
    assert detokenize(["the", "cat", "<eos>", "sat", "."], "space") == "the cat\nsat ."


# ---- the command ---------------------------------------------------------------------------------
def test_generate_text_prints_prime_and_continuation_and_json_reports_the_models_numbers(capsys):
    code, out, err = run_cli(capsys, "generate", "--checkpoint", CHARS, "--prime", "Beautiful is", "--length", "40",
                             "--temperature", "0")
    assert code == 0, err
    assert out.startswith("Beautiful is better than ugly.")
    assert "greedy" in err and "tokens/s" in err
    code, out, err = run_cli(capsys, "generate", "--checkpoint", CHARS, "--prime", "Now", "--length", "25",
                             "--temperature", "0.9", "--top-k", "4", "--seed", "5", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["prime_tokens"] == list("Now") and len(doc["tokens"]) == 25 == len(doc["p"]) == len(doc["top"])
    assert all(len(t) == 4 for t in doc["top"]) and doc["seed"] == 5 and doc["top_k"] == 4
    from rnn_tui.engine.checkpoint import load_model, read_config

    model, _ = load_model(CHARS, metrics=False)
    model = model.double()
    vocab = read_config(CHARS).vocab
    assert "".join(doc["tokens"]) == doc["text"]
    seq = doc["prime_ids"]
    for tok, p, top in zip(doc["ids"], doc["p"], doc["top"]):
        probs = full_softmax(model, seq)
        assert p == pytest.approx(probs[tok], abs=2e-6)  # the float32 model against float64
        assert [c["id"] for c in top] == np.argsort(-probs, kind="stable")[:4].tolist()
        assert tok in [c["id"] for c in top]  # top-k 4: drawn among the four most likely
        assert [c["token"] for c in top] == [vocab[c["id"]] for c in top]
        seq = seq + [tok]
    again = json.loads(run_cli(capsys, "generate", "--checkpoint", CHARS, "--prime", "Now", "--length", "25",
                               "--temperature", "0.9", "--top-k", "4", "--seed", "5", "--format", "json")[1])
    assert again["ids"] == doc["ids"]


def test_generate_on_a_fresh_model_and_on_ids(capsys, tmp_path):
    code, out, err = run_cli(capsys, "generate", "--prime", "hello", "--length", "12", "--seed", "2")
    assert code == 0, err
    assert out.startswith("hello") and len(out.rstrip("\n")) == 17
    assert set(out.rstrip("\n")) <= set("helo")


@pytest.mark.parametrize("argv, message", [
    (["--prime", "Now", "--top-k", "0"], "--top-k"),
    (["--prime", "Now", "--top-p", "0"], "--top-p"),
    (["--prime", "Now", "--top-p", "1.5"], "--top-p"),
    (["--prime", "Now", "--temperature", "-1"], "--temperature"),
    (["--prime", "Now", "--temperature", "nan"], "--temperature"),
    (["--prime", "Now", "--length", "0"], "--length"),
    (["--prime", "Now", "--length", "10001"], "--length"),
    (["--prime", "Now", "--top-k", "46"], "top-k 46 is more than the model's 45"),
    ([], "--prime"),
    (["--prime", ""], "empty"),
    (["--prime", "Now~"], "'~' is not in the model's vocabulary"),
    (["--input", "Now"], "--prime"),
    (["--prime", "Now", "--input-ids", "1 2"], "not both"),
])
def test_generate_refuses_bad_flags_in_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "generate", "--checkpoint", CHARS, *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", str(ROOT / "assets/models/recall-lstm")], "the recall run cannot generate text: its head reads the last state"),
    (["--task", "adding"], "reads vectors"),
    (["--task", "reverse"], "encoder-decoder"),
    (["--bidirectional"], "bidirectional"),
])
def test_models_that_do_not_predict_tokens_are_refused_in_one_line(capsys, argv, message):
    code, out, err = run_cli(capsys, "generate", *argv, "--prime", "a")
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_generate_help_documents_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = capsys.readouterr().out
    for flag in ("--prime", "--length", "--temperature", "--top-k", "--top-p", "--seed", "--format", "--checkpoint",
                 "--weights", "--vocab"):
        assert flag in out
    assert "the sample's seed" in out


def test_generate_and_eval_on_your_own_word_model(capsys, tmp_path):
    """The PyTorch examples' word language model, saved from torch: generate reads the prime with
    its vocabulary (<eos> per line) and reports the original model's probabilities; eval leaves
    the baselines out until it is given the text the model was trained on."""
    from tests.test_own_model import TEXT, WordLM

    idx2word = list(dict.fromkeys(w for line in TEXT.splitlines() for w in line.split() + ["<eos>"]))
    torch.manual_seed(0)
    theirs = WordLM(len(idx2word)).double()
    torch.save(theirs.state_dict(), tmp_path / "model.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(idx2word))
    (tmp_path / "corpus.txt").write_text(TEXT)
    own = ["--weights", str(tmp_path / "model.pt"), "--vocab", str(tmp_path / "vocab.json"), "--tokenize", "space"]
    code, out, err = run_cli(capsys, "generate", *own, "--prime", "the cat", "--length", "6", "--seed", "4",
                             "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["prime_tokens"] == ["the", "cat", "<eos>"]  # each line ends in <eos>, as the corpus reader does
    seq = [idx2word.index(w) for w in doc["prime_tokens"]]
    with torch.no_grad():
        for tok, p in zip(doc["ids"], doc["p"]):
            out_, _ = theirs.rnn(theirs.encoder(torch.tensor(seq)[:, None]))  # (T, 1, H) time first
            probs = torch.softmax(theirs.decoder(out_[-1, 0]), dim=-1)
            assert p == pytest.approx(float(probs[tok]), abs=1e-6)
            seq.append(tok)
    assert doc["tokens"] == [idx2word[i] for i in doc["ids"]]
    code, out, err = run_cli(capsys, "eval", *own, "--text", str(tmp_path / "corpus.txt"))
    assert code == 0, err
    assert "baselines left out: a model from --weights has no training text" in out.replace("\n", " ")
    code, out, err = run_cli(capsys, "eval", *own, "--text", str(tmp_path / "corpus.txt"), "--baseline-text",
                             str(tmp_path / "corpus.txt"), "--format", "json")
    doc = json.loads(out)
    assert len(doc["baselines"]) == 2 and any("in-sample" in n for n in doc["notes"])


def test_a_scenarios_own_sequence_is_its_prime(capsys):
    scenario = str(ROOT / "assets/scenarios/gru-two-placements.toml")
    code, out, err = run_cli(capsys, "generate", "--scenario", scenario, "--length", "5", "--seed", "1")
    assert code == 0, err
    assert out.startswith("abcabcab") and len(out.rstrip("\n")) == 8 + 5  # the scenario reads abcabcab
    code, out, err = run_cli(capsys, "generate", "--scenario", scenario, "--prime", "ab")
    assert code == 2 and "drop --prime" in err
    code, out, err = run_cli(capsys, "generate", "--scenario", str(ROOT / "assets/scenarios/identity-rnn.toml"))
    assert code == 2 and "reads vectors" in err


def test_the_commands_bounds_are_the_engines():
    import rnn_tui.commands.generate as command
    import rnn_tui.engine.generate as engine

    assert (command.MAX_LENGTH, command.MAX_TEMPERATURE) == (engine.MAX_LENGTH, engine.MAX_TEMPERATURE)
