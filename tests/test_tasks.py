"""Every task: the shapes the trainer relies on, hand-checked targets, repeatable seeds, clear errors."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.model import build_model
from rnn_tui.engine.tasks import IGNORE, MODES, TASKS, Batch, EncDecBatch, Example, TaskError, get_task
from rnn_tui.engine.tasks import agreement, sentiment, tagging
from rnn_tui.engine.tasks.base import set_keep_gate_bias
from rnn_tui.engine.tasks.text import (
    BUILTIN_TEXTS,
    UNK,
    build_vocab,
    load_text,
    word_tokens,
    zen_text,
)

SMALL = {  # small options so every task runs fast
    "chars": dict(seq_len=12),
    "recall": dict(distance=6),
    "adding": dict(seq_len=10),
    "brackets": dict(seq_len=12),
    "agreement": dict(clauses=2),
    "sentiment": dict(),
    "tagging": dict(seq_len=12),
    "sine": dict(seq_len=12),
    "reverse": dict(seq_len=4),
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_catalog_entry_has_small_options():
    assert set(SMALL) == set(TASKS)


# ---- the contract, for every task --------------------------------------------------------------
@pytest.mark.parametrize("name", list(TASKS))
def test_catalog_matches_class(name):
    info = TASKS[name]
    task = get_task(name, **SMALL[name])
    assert task.name == info.name == name
    assert task.mode == info.mode in MODES
    assert task.description == info.description and "\n" not in info.description
    assert set(SMALL[name]) <= set(info.options)
    assert all(isinstance(v, str) and v for v in info.options.values())


@pytest.mark.parametrize("name", list(TASKS))
def test_batch_shapes_and_dtypes(name):
    task = get_task(name, **SMALL[name])
    cfg = task.model_config()
    B = 5
    batch = task.sample(B, gen())
    assert isinstance(batch, Batch)
    x, y = batch.x, batch.y
    assert x.shape[0] == B
    if task.vocab is None:
        assert cfg.input_mode == "vectors"
        assert x.dtype == torch.float32 and x.dim() == 3 and x.shape[2] == cfg.input_size
    else:
        assert x.dtype == torch.long and x.dim() == 2
        reads = task.encoder_config(cfg) if task.mode == "encdec" else cfg  # the decoder has the head
        assert 0 <= int(x.min()) and int(x.max()) < len(task.vocab) == reads.vocab_size
    T = x.shape[1]
    if cfg.loss == "ce":
        assert task.output_labels is not None and cfg.output_size == len(task.output_labels)
        assert y.dtype == torch.long
        scored = y[y != IGNORE]
        assert scored.numel() > 0 and int(scored.min()) >= 0 and int(scored.max()) < cfg.output_size
        if task.mode == "encdec":
            assert isinstance(batch, EncDecBatch)
            assert batch.dec_x.dtype == torch.long and batch.dec_x.shape == y.shape
            assert int(batch.dec_x.max()) < len(task.dec_vocab) == cfg.vocab_size
        elif cfg.head == "step":
            assert y.shape == (B, T)
        else:
            assert y.shape == (B,)
        assert batch.mask is None
    else:
        assert task.output_labels is None
        assert y.dtype == torch.float32
        if cfg.head == "step":
            assert y.shape == (B, T, cfg.output_size)
            assert batch.mask is not None and batch.mask.shape == (B, T) and batch.mask.dtype == torch.bool
        else:
            assert y.shape == (B, cfg.output_size) and batch.mask is None
    assert batch.num_tokens == B * T


@pytest.mark.parametrize("name", list(TASKS))
def test_model_loss_metric_run_on_a_batch(name):
    task = get_task(name, **SMALL[name])
    cfg = task.model_config(cell="gru", hidden=8)
    model = task.build_model(cfg, seed=0)
    batch = task.sample(4, gen(1))
    out = task.forward(model, batch)
    if cfg.head == "step":
        assert out.shape[:2] == batch.y.shape[:2]
    else:
        assert out.shape == (4, cfg.output_size)
    loss = task.loss(out, batch)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    loss.backward()
    metric_name, value = task.metric(out.detach(), batch)
    assert metric_name == task.metric_name and isinstance(value, float) and math.isfinite(value)
    if task.higher_is_better:
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("name", list(TASKS))
def test_example_fits_the_model(name):
    task = get_task(name, **SMALL[name])
    cfg = task.model_config()
    ex = task.example(seed=3)
    assert isinstance(ex, Example)
    T = ex.x.shape[0]
    assert len(ex.tokens) == T and all(isinstance(t, str) and t for t in ex.tokens)
    rows = len(ex.dec_x) if task.mode == "encdec" else (T if cfg.head == "step" else 1)
    assert len(ex.targets) == rows
    for target in ex.targets:
        if target is None:
            continue
        if cfg.loss == "ce":
            assert isinstance(target, int) and 0 <= target < cfg.output_size
        else:
            assert isinstance(target, list) and len(target) == cfg.output_size
            assert all(isinstance(v, float) for v in target)
    assert any(t is not None for t in ex.targets)


@pytest.mark.parametrize("name", list(TASKS))
def test_seeds_repeat_and_differ(name):
    task = get_task(name, **SMALL[name])
    a, b, c = task.sample(6, gen(7)), task.sample(6, gen(7)), task.sample(6, gen(8))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not (torch.equal(a.x, c.x) and torch.equal(a.y, c.y))
    e1, e2 = task.example(5), task.example(5)
    assert e1.tokens == e2.tokens and e1.targets == e2.targets and torch.equal(e1.x, e2.x)
    # a generator advances: two draws in a row differ
    g = gen(9)
    first, second = task.sample(6, g), task.sample(6, g)
    assert not (torch.equal(first.x, second.x) and torch.equal(first.y, second.y))


@pytest.mark.parametrize("name", list(TASKS))
def test_defaults_are_sane(name):
    task = get_task(name)
    d = task.defaults
    assert d.hidden >= 1 and d.steps >= 1 and d.batch >= 1 and d.lr > 0
    assert d.optimizer in ("adam", "sgd")
    cfg = task.model_config(cell="rnn")
    assert cfg.hidden_size == d.hidden and cfg.num_layers == d.layers


# ---- recall ------------------------------------------------------------------------------------
def test_recall_target_is_the_first_symbol():
    task = get_task("recall", distance=9, symbols=5)
    batch = task.sample(64, gen())
    assert batch.x.shape == (64, 11)
    assert torch.equal(batch.y, batch.x[:, 0])
    assert (batch.x[:, 0] < 5).all()
    middle = [task.vocab[i] for i in batch.x[:, 1:-1].flatten().tolist()]
    assert set(middle) <= {"0", "1", "2", "3"}
    assert all(task.vocab[i] == "?" for i in batch.x[:, -1].tolist())
    ex = task.example(0)
    assert ex.tokens[0] == task.output_labels[ex.targets[0]] and ex.tokens[-1] == "?"
    assert task.model_config().head == "last" and task.defaults.seq_len == 11


# ---- adding ------------------------------------------------------------------------------------
def test_adding_target_is_the_sum_of_the_marked_numbers():
    task = get_task("adding", seq_len=20)
    batch = task.sample(32, gen())
    values, markers = batch.x[..., 0], batch.x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert torch.equal(markers.sum(dim=1), torch.full((32,), 2.0))
    assert (markers[:, :10].sum(dim=1) == 1).all() and (markers[:, 10:].sum(dim=1) == 1).all()
    for b in range(32):
        marked = [v for v, m in zip(values[b].tolist(), markers[b].tolist()) if m == 1.0]
        assert batch.y[b, 0].item() == pytest.approx(sum(marked), abs=1e-6)
    ex = task.example(2)
    marked = [float(t[:-1]) for t in ex.tokens if t.endswith("*")]
    assert len(marked) == 2 and ex.targets[0][0] == pytest.approx(sum(marked), abs=0.011)
    assert task.model_config().loss == "mse" and task.model_config().head == "last"


def test_adding_baseline_is_one_sixth():
    task = get_task("adding", seq_len=10)
    batch = task.sample(20000, gen())
    mse = float(((batch.y - 1.0) ** 2).mean())
    assert mse == pytest.approx(task.chance, rel=0.05)


# ---- brackets ----------------------------------------------------------------------------------
def depths_and_validity(tokens: list[str]) -> list[int]:
    opener = {"(": ")", "[": "]", "{": "}"}
    stack, out = [], []
    for tok in tokens:
        if tok in opener:
            stack.append(opener[tok])
        else:
            assert stack and stack.pop() == tok, "a closer must match the last open bracket"
        out.append(len(stack))
    return out


@pytest.mark.parametrize("kinds", [1, 2, 3])
def test_bracket_depth_is_correct(kinds):
    task = get_task("brackets", kinds=kinds, max_depth=4, seq_len=40)
    batch = task.sample(16, gen(kinds))
    for row, depth in zip(batch.x.tolist(), batch.y.tolist()):
        expected = depths_and_validity([task.vocab[i] for i in row])
        assert depth == expected
        assert max(depth) <= 4 and min(depth) >= 0
    assert task.output_labels == [str(d) for d in range(5)]
    used = {task.vocab[i] for i in batch.x.flatten().tolist()}
    assert used == set("()[]{}"[: 2 * kinds]) or len(used) > 2


def test_bracket_hand_case():
    task = get_task("brackets", kinds=1)
    tokens = list("(()(()))(")
    x = torch.tensor([task.vocab.index(t) for t in tokens])
    assert depths_and_validity(tokens) == [1, 2, 1, 2, 3, 2, 1, 0, 1]
    assert task.vocab == ["(", ")"] and x.tolist() == [0, 0, 1, 0, 0, 1, 1, 1, 0]


def test_bracket_next_target_is_the_next_character():
    task = get_task("brackets", target="next", kinds=2, seq_len=30)
    assert task.mode == "seq2seq" and task.output_labels == task.vocab and task.solved is None
    batch = task.sample(8, gen())
    assert torch.equal(batch.y[:, :-1], batch.x[:, 1:])
    for row in torch.cat([batch.x, batch.y[:, -1:]], dim=1).tolist():
        depths_and_validity([task.vocab[i] for i in row])


# ---- agreement ---------------------------------------------------------------------------------
def test_agreement_label_matches_the_subject():
    task = get_task("agreement", clauses=3)
    plural_nouns = set(agreement.PLURAL.values())
    singular_nouns = set(agreement.NOUNS)
    batch = task.sample(200, gen())
    attracted = 0
    for row, label in zip(batch.x.tolist(), batch.y.tolist()):
        words = [task.vocab[i] for i in row if task.vocab[i] != agreement.PAD]
        assert words[0] == "the"
        assert (words[1] in plural_nouns) == (label == 1) and (words[1] in singular_nouns) == (label == 0)
        assert task.output_labels[label] == ("are" if label else "is")
        others = [w for w in words[2:] if w in plural_nouns | singular_nouns]
        assert 1 <= len([w for w in words[2:] if w in agreement.PREPOSITIONS or w == "that"]) <= 3
        attracted += any((w in plural_nouns) != bool(label) for w in others)
        # a relative clause's own verb agrees with its own noun
        for i, w in enumerate(words):
            if w == "that":
                noun, verb = words[i + 2], words[i + 3]
                assert (noun in plural_nouns) == (verb in agreement.RC_VERBS)
    assert attracted > 50  # attractors of the other number are common


def test_agreement_hand_case():
    task = get_task("agreement")
    ex = task.example(3)
    assert ex.tokens == [task.vocab[i] for i in ex.x.tolist()]
    assert ex.targets == [int(ex.tokens[1] in agreement.PLURAL.values())]


# ---- sentiment ---------------------------------------------------------------------------------
def reference_polarity(words: list[str]) -> int:
    positive = set(sentiment.ADJECTIVES[1]) | {w for pair in sentiment.VERBS[1] for w in pair}
    negative = set(sentiment.ADJECTIVES[0]) | {w for pair in sentiment.VERBS[0] for w in pair}

    def clause(ws: list[str]) -> int:
        hits = [w for w in ws if w in positive | negative]
        assert len(hits) == 1
        value = int(hits[0] in positive)
        return 1 - value if "not" in ws else value

    if "but" in words:
        i = words.index("but")
        return clause(words[i + 1 :])
    if "and" in words:
        i = words.index("and")
        assert clause(words[:i]) == clause(words[i + 1 :])
        return clause(words[:i])
    return clause(words)


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_sentiment_label_follows_the_grammar(pool):
    task = get_task("sentiment", pool=pool)
    assert task.model_config().head == pool
    batch = task.sample(300, gen())
    assert batch.x.shape[1] <= task.defaults.seq_len
    for row, label in zip(batch.x.tolist(), batch.y.tolist()):
        words = [task.vocab[i] for i in row if task.vocab[i] != sentiment.PAD]
        assert reference_polarity(words) == label
    assert 0.35 < float(batch.y.float().mean()) < 0.65


def test_sentiment_hand_cases():
    assert reference_polarity("the plot was not very good but i loved the music".split()) == 1
    assert reference_polarity("i did not hate the film".split()) == 1
    assert reference_polarity("the cast was so dull".split()) == 0


# ---- tagging -----------------------------------------------------------------------------------
def test_tagging_one_tag_per_word_and_context_decides():
    task = get_task("tagging", seq_len=60)
    batch = task.sample(40, gen())
    assert batch.y.shape == batch.x.shape and (batch.y != IGNORE).all()
    fixed = {w: "DET" for w in tagging.DETS} | {w: "ADP" for w in tagging.PREPS}
    fixed |= {".": "PUNCT", "can": "AUX", "she": "PRON", "dog": "NOUN", "see": "VERB", "old": "ADJ"}
    ambiguous_seen = set()
    for row, tags in zip(batch.x.tolist(), batch.y.tolist()):
        words = [task.vocab[i] for i in row]
        labels = [task.output_labels[i] for i in tags]
        for i, (w, t) in enumerate(zip(words, labels)):
            if w in fixed:
                assert t == fixed[w], (w, t)
            if i and labels[i - 1] in ("DET", "ADJ"):
                assert t in ("ADJ", "NOUN")
            if i and labels[i - 1] in ("AUX",):
                assert t == "VERB"
            if w in ("watch", "fish", "duck"):
                ambiguous_seen.add(t)
    assert {"NOUN", "VERB"} <= ambiguous_seen


# ---- sine --------------------------------------------------------------------------------------
@pytest.mark.parametrize("horizon", [1, 3])
def test_sine_target_is_the_signal_ahead(horizon):
    task = get_task("sine", seq_len=30, horizon=horizon, waves=2)
    batch = task.sample(8, gen())
    assert torch.allclose(batch.y[:, :-horizon, 0], batch.x[:, horizon:, 0], atol=1e-6)
    assert not batch.mask[:, : task.warmup].any() and batch.mask[:, task.warmup :].all()
    assert float(batch.x.abs().max()) <= 1.0 + 1e-6
    ex = task.example(0)
    assert ex.targets[: task.warmup] == [None] * task.warmup
    assert all(t is not None for t in ex.targets[task.warmup :])


def test_sine_noise_only_touches_inputs():
    clean = get_task("sine", seq_len=20).sample(4, gen())
    noisy = get_task("sine", seq_len=20, noise=0.5).sample(4, gen())
    assert torch.equal(clean.y, noisy.y) and not torch.equal(clean.x, noisy.x)


# ---- reverse -----------------------------------------------------------------------------------
def test_reverse_targets_and_teacher_forcing():
    task = get_task("reverse", seq_len=5, symbols=4)
    batch = task.sample(10, gen())
    S = 5
    assert batch.x.shape == (10, S) and batch.y.shape == (10, S + 1)
    assert torch.equal(batch.y[:, :S], batch.x.flip(1))
    assert (batch.y[:, S] == task.stop_id).all() and task.output_labels[task.stop_id] == "</s>"
    assert (batch.dec_x[:, 0] == task.start_id).all() and task.dec_vocab[task.start_id] == "<s>"
    assert torch.equal(batch.dec_x[:, 1:], task.feed[batch.y[:, :-1]])
    for row in range(10):  # the labels agree across the three vocabularies
        dec = [task.dec_vocab[i] for i in batch.dec_x[row, 1:].tolist()]
        out = [task.output_labels[i] for i in batch.y[row, :-1].tolist()]
        assert dec == out
    ex = task.example(1)
    assert ex.dec_tokens[0] == "<s>" and ex.dec_tokens[1:] == ex.tokens[::-1]
    assert [task.output_labels[i] for i in ex.targets] == ex.tokens[::-1] + ["</s>"]


def test_reverse_refuses_bidirectional():
    with pytest.raises(TaskError, match="bidirectional"):
        get_task("reverse").model_config(bidirectional=True)


# ---- chars and texts ---------------------------------------------------------------------------
def test_chars_windows_come_from_the_text(tmp_path):
    path = tmp_path / "t.txt"
    text = "abcdefghij" * 5 + "\nxyz"
    path.write_text(text, encoding="utf-8")
    task = get_task("chars", text=str(path), seq_len=8)
    batch = task.sample(16, gen())
    assert torch.equal(batch.y[:, :-1], batch.x[:, 1:])
    for row, nxt in zip(batch.x.tolist(), batch.y[:, -1].tolist()):
        window = "".join(task.vocab[i] for i in row + [nxt])
        assert window in text
    assert "\n" in task.vocab and "⏎" in task.example(0).tokens + task.encode("a\nb").tokens
    assert task.model_config().input_mode == "onehot" and task.output_labels == task.vocab


def test_chars_short_text_shrinks_the_window(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("hello", encoding="utf-8")
    task = get_task("chars", text=path)
    assert task.seq_len == 4 and task.defaults.seq_len == 4
    assert task.sample(3, gen()).x.shape == (3, 4)


def test_chars_encode_user_text():
    task = get_task("chars", text="zen")
    ex = task.encode("Beautiful is")
    assert ex.tokens[:3] == ["B", "e", "a"] and ex.tokens[9] == "␣"
    assert ex.targets[-1] is None and ex.targets[0] == task.vocab.index("e")
    with pytest.raises(TaskError, match="not in the zen vocabulary"):
        task.encode("~")


@pytest.mark.parametrize("name", BUILTIN_TEXTS)
def test_builtin_texts_load(name, capsys):
    task = get_task("chars", text=name)
    assert task.num_tokens > 500 and len(task.vocab) > 20
    assert capsys.readouterr().out == ""  # reading the zen never imports `this` (which prints)


def test_zen_is_decoded():
    text = zen_text()
    assert text.startswith("The Zen of Python") and "Beautiful is better than ugly." in text


def test_stdlib_vocabulary_is_fixed():
    task = get_task("chars", text="stdlib")
    assert len(task.vocab) == 96 and task.vocab[0] == "\n" and task.vocab[1] == " "


def test_word_tokenizer_cjk_and_full_width():
    text = "我爱Python！今日は、いい天気ですね。\n\nHello, world — don't stop.　全角？「引用」"
    assert word_tokens(text) == [
        "我", "爱", "Python", "！", "今", "日", "は", "、", "い", "い", "天", "気", "で", "す", "ね", "。",
        "Hello", ",", "world", "—", "don't", "stop", ".", "全", "角", "？", "「", "引", "用", "」",
    ]  # fmt: skip
    assert word_tokens("a  b\t\tc \r\n d") == ["a", "b", "c", "d"]


def test_word_task_splits_like_the_explorer_input(tmp_path):
    from rnn_tui.engine.tokens import tokenize

    path = tmp_path / "mixed.txt"
    text = "東京は晴れ。It's fine, 今日も！\n（注）ＡＢＣ"
    path.write_text(text, encoding="utf-8")
    task = get_task("chars", text=str(path), tokenize="word", seq_len=4)
    assert set(task.vocab) == set(tokenize(text, "word"))
    assert {"東", "京", "。", "！", "（", "）", "It's", "fine"} <= set(task.vocab)


def test_word_level_task_on_a_cjk_file(tmp_path):
    path = tmp_path / "zh.txt"
    path.write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 3, encoding="utf-8")
    task = get_task("chars", text=str(path), tokenize="word", seq_len=6)
    assert "，" in task.vocab and "。" in task.vocab and "春" in task.vocab
    assert all(len(tok) == 1 for tok in task.vocab)
    assert task.sample(2, gen()).x.shape == (2, 6)


def test_vocab_cap_maps_rare_tokens_to_unk():
    tokens = list("aaaabbbcc d")
    vocab = build_vocab(tokens, max_vocab=3)
    assert vocab == [UNK, "a", "b"]
    assert build_vocab(tokens, max_vocab=100) == sorted(set(tokens))


def test_large_vocab_uses_an_embedding(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(chr(0x4E00 + i) for i in range(300)) * 2, encoding="utf-8")
    task = get_task("chars", text=str(path))
    cfg = task.model_config()
    assert cfg.input_mode == "embedding" and cfg.vocab_size == 300 and cfg.input_size == 64
    build_model(cfg)(task.sample(2, gen()).x)


# ---- keep-gate bias ----------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru", "lstm-peephole", "gru-textbook", "rnn"])
def test_keep_gate_bias(cell):
    task = get_task("recall", distance=5)
    cfg = task.model_config(cell=cell, hidden=6, layers=2)
    plain = build_model(cfg, seed=0).tensors()
    model = task.build_model(cfg, seed=0)
    t = model.tensors()
    H = 6
    for sfx in ("_l0", "_l1"):
        if cell == "rnn":
            assert torch.equal(t[f"bias_ih{sfx}"], plain[f"bias_ih{sfx}"])
            continue
        gate = (t[f"bias_ih{sfx}"] + t[f"bias_hh{sfx}"])[H : 2 * H]  # f (LSTM) or z (GRU)
        assert torch.allclose(gate, torch.full((H,), task.defaults.gate_bias))
        assert torch.equal(t[f"bias_ih{sfx}"][:H], plain[f"bias_ih{sfx}"][:H])  # other gates untouched
        assert torch.equal(t[f"weight_hh{sfx}"], plain[f"weight_hh{sfx}"])


def test_keep_gate_bias_zero_keeps_torch_init():
    cfg = get_task("recall").model_config(cell="lstm", hidden=4)
    model = build_model(cfg, seed=0)
    before = {k: v.clone() for k, v in model.tensors().items()}
    set_keep_gate_bias(model.tensors(), cfg, 0.0)
    assert all(torch.equal(before[k], v) for k, v in model.tensors().items())


# ---- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, options, message",
    [
        ("nope", {}, "unknown task 'nope'"),
        ("recall", {"distnce": 3}, "has no option 'distnce'"),
        ("recall", {"distance": 0}, "distance must be from 1"),
        ("recall", {"distance": "far"}, "distance must be a whole number"),
        ("recall", {"distance": 2.5}, "distance must be a whole number"),
        ("recall", {"symbols": 27}, "symbols must be from 2 to 26"),
        ("adding", {"seq_len": 1}, "seq_len must be from 2"),
        ("brackets", {"target": "width"}, "target must be one of depth, next"),
        ("brackets", {"kinds": 4}, "kinds must be from 1 to 3"),
        ("sentiment", {"pool": "max"}, "pool must be one of last, mean"),
        ("sine", {"waves": 9}, "waves must be from 1 to 4"),
        ("sine", {"noise": "loud"}, "noise must be a number"),
        ("chars", {"tokenize": "bpe"}, "tokenize must be one of char, word"),
        ("chars", {"text": "/no/such/file.txt"}, "no text file"),
    ],
)
def test_bad_options_give_one_line_errors(name, options, message):
    with pytest.raises(TaskError) as err:
        get_task(name, **options)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, EngineError) and isinstance(err.value, ValueError)


def test_none_options_mean_defaults():
    assert get_task("recall", distance=None).distance == 40


@pytest.mark.parametrize(
    "content, message",
    [(b"abc\x00def", "looks binary"), (b"\xff\xfe\xfa bad", "not UTF-8"), (b"", "holds 0 token")],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(TaskError, match=message):
        get_task("chars", text=str(path))


def test_a_directory_is_not_a_text(tmp_path):
    with pytest.raises(TaskError, match="is a folder, not a file"):
        load_text(tmp_path)


def test_listing_tasks_does_not_load_torch():
    code = "import sys; from rnn_tui.engine.tasks import TASKS; print(len(TASKS)); assert 'torch' not in sys.modules"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(len(TASKS))
