"""A model's own vocabulary: the three file forms, the PyTorch corpus convention (<eos> at every
line end), <unk> where the vocabulary has it, and one clear line for every bad file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.inputs import read_targets, read_vectors
from rnn_tui.engine.vocab import VocabError, encode_text, load_vocab, parse_ids, split_text


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_the_three_forms_give_the_same_vocabulary(tmp_path):
    tokens = ["<unk>", "the", "cat", "<eos>"]
    as_list = load_vocab(write(tmp_path, "a.json", tokens))
    as_object = load_vocab(write(tmp_path, "b.json", {"cat": 2, "<eos>": 3, "<unk>": 0, "the": 1}))
    as_lines = load_vocab(write(tmp_path, "c.txt", "<unk>\nthe\r\ncat\n<eos>\n"))
    assert as_list.tokens == as_object.tokens == as_lines.tokens == tuple(tokens)
    assert (as_list.unk, as_list.eos, len(as_list)) == (0, 3, 4)


def test_space_tokens_follow_the_pytorch_corpus_convention(tmp_path):
    """word_language_model/data.py reads `line.split() + ['<eos>']` for every line, empty ones too."""
    text = "the cat  sat\n\nthe dog\n"
    corpus = [w for line in text.splitlines() for w in line.split() + ["<eos>"]]
    idx2word = list(dict.fromkeys(corpus))  # Dictionary.add_word: first come, first numbered
    vocab = load_vocab(write(tmp_path, "v.json", idx2word))
    enc = encode_text(text, vocab, "space")
    assert enc.ids == [idx2word.index(w) for w in corpus] and enc.unknown == 0
    assert split_text("a b", "space", eos=False) == ["a", "b"]


def test_unknown_tokens_read_as_unk_or_are_refused(tmp_path):
    with_unk = load_vocab(write(tmp_path, "u.json", ["<unk>", "a", "b"]))
    enc = encode_text("abz", with_unk, "char")
    assert enc.ids == [1, 2, 0] and enc.tokens == ["a", "b", "<unk>"] and (enc.unknown, enc.first_unknown) == (1, "z")
    without = load_vocab(write(tmp_path, "n.json", ["a", "b"]))
    with pytest.raises(VocabError, match=r"token 2 of the text, 'z', is not in .*n.json \(2 tokens\), which has no <unk>"):
        encode_text("abz", without, "char")


def test_a_char_vocabulary_with_eos_reads_line_ends_as_eos(tmp_path):
    vocab = load_vocab(write(tmp_path, "v.json", ["a", "<eos>"]))
    assert encode_text("a\na", vocab, "char").ids == [0, 1, 0]
    newline = load_vocab(write(tmp_path, "w.json", ["a", "\n", "<eos>"]))
    assert encode_text("a\r\na", newline, "char").ids == [0, 1, 0]  # the vocabulary's own newline


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("dup.json", ["a", "b", "a"], "token 'a' is listed twice (ids 0 and 2)"),
        ("num.json", ["a", 3], "entry 1 is a number, not a token"),
        ("gap.json", {"a": 0, "b": 2}, "'b' has id 2; the ids of 2 tokens are 0..1"),
        ("twice.json", {"a": 0, "b": 0}, "id 0 is given to both 'a' and 'b'"),
        ("float.json", {"a": 0.5}, "the id of 'a' is a number, not a whole number"),
        ("str.json", '"abc"', "holds a string: give a JSON list of tokens or an object token -> id"),
        ("bad.json", "[1, 2", "is not valid JSON"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("empty.json", [], "holds no tokens"),
        ("blank.txt", "a\n\nb\n", "line 2 is empty"),
        ("rep.txt", "a\nb\na\n", "line 3 repeats 'a' (line 1)"),
        ("latin1.txt", None, "is not UTF-8 text"),
    ],
)
def test_bad_vocabularies_say_what_is_wrong(tmp_path, name, content, words):
    path = tmp_path / name
    if content is None:
        path.write_bytes(b"caf\xe9\n")
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    with pytest.raises(EngineError) as e:
        load_vocab(path)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_special_files_are_not_read_as_vocabularies(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(EngineError, match="is not a regular file \\(a FIFO\\)"):
        load_vocab(fifo)
    with pytest.raises(EngineError, match="does not exist"):
        load_vocab(tmp_path / "missing.json")


def test_ids_as_typed():
    assert parse_ids("3 17 5") == parse_ids("3,17, 5") == [3, 17, 5]
    for text, words in (("", "empty"), ("3 x", "'x' is not a token id"), ("-1", "negative")):
        with pytest.raises(VocabError, match=words):
            parse_ids(text)


def test_vectors_and_targets_from_npy_and_csv(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "x.csv").write_text("# t, a, b, c\n0,1,2\n3 4 5\n6,7,8\n9,10,11\n")
    np.testing.assert_array_equal(read_vectors(tmp_path / "x.npy", 3), x)
    np.testing.assert_array_equal(read_vectors(tmp_path / "x.csv", 3), x)
    (tmp_path / "y.csv").write_text("1\n0\n-1\n2\n")
    assert read_targets(tmp_path / "y.csv", 4, outputs=3) == ([1, 0, None, 2], "ce")
    np.save(tmp_path / "y.npy", np.array([[0.5, 1.0], [np.nan, 0], [1, 1], [2, 2]]))
    assert read_targets(tmp_path / "y.npy", 4, outputs=2) == ([[0.5, 1.0], None, [1.0, 1.0], [2.0, 2.0]], "mse")


@pytest.mark.parametrize(
    "make, call, words",
    [
        (lambda p: np.save(p / "v.npy", np.zeros((4, 2))), lambda p: read_vectors(p / "v.npy", 3),
         "has 2 numbers per step but the model reads 3"),
        (lambda p: np.save(p / "v.npy", np.array([[1, np.inf, 0]])), lambda p: read_vectors(p / "v.npy", 3), "NaN or infinite"),
        (lambda p: np.save(p / "v.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True),
         lambda p: read_vectors(p / "v.npy", 1), "refused without running it"),
        (lambda p: (p / "v.csv").write_text("1,2\n3\n"), lambda p: read_vectors(p / "v.csv", 2), "different counts"),
        (lambda p: (p / "v.csv").write_text("1,a\n"), lambda p: read_vectors(p / "v.csv", 2), "line 1 is not numbers"),
        (lambda p: (p / "y.csv").write_text("0\n1\n"), lambda p: read_targets(p / "y.csv", 3, 4), "2 targets for 3 steps"),
        (lambda p: (p / "y.csv").write_text("0\n7\n"), lambda p: read_targets(p / "y.csv", 2, 4), "7 is not a class"),
    ],
)
def test_bad_vectors_and_targets(tmp_path, make, call, words):
    make(tmp_path)
    with pytest.raises(EngineError, match=words):
        call(tmp_path)


def test_a_npy_whose_header_claims_more_than_it_holds_is_refused_before_allocating(tmp_path):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**7, 1000)})
    (tmp_path / "huge.npy").write_bytes(buffer.getvalue() + b"\0" * 64)
    with pytest.raises(EngineError, match="cut short"):
        read_vectors(tmp_path / "huge.npy", 1000)
