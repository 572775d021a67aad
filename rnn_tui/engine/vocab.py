"""A model's own vocabulary, read from a file, and text read into that model's token ids.

    vocab = load_vocab("vocab.json")                 # the tokens in id order
    enc = encode_text(text, vocab, "space")          # enc.ids, enc.tokens, enc.unknown

Pure Python (no torch, no numpy): the CLI checks a vocabulary before any model is built.

Files, told apart by their suffix:
- `.json`: a list of tokens in id order, `["<unk>", "the", ...]`, or an object token -> id,
  `{"the": 0, "<eos>": 1, ...}`, whose ids are 0..N-1, each given once;
- any other suffix: text, one token per line, line i (counting from 0) is id i. A newline or an
  empty token cannot be written this way: use a JSON list for those.

How text becomes tokens (`--tokenize`):
- `char`:  one token per character (line ends read as "\\n"; as <eos> where the vocabulary has
  <eos> and no "\\n");
- `word`:  rnn-tui's word tokenizer (`engine.tokens`: punctuation marks are tokens of their own;
  CJK characters are too, except on a line whose writer separated them by spaces, where a run of
  them is one word), each line then ending in <eos> where the vocabulary has it;
- `space`: split on whitespace only, each line ending in <eos> where the vocabulary has it. This
  is the PyTorch examples' corpus convention (word_language_model/data.py reads
  `line.split() + ['<eos>']` for every line, so its vocabulary always holds <eos>).

A token the vocabulary lacks reads as <unk> where the vocabulary has <unk>, and is refused
otherwise: a text is never read against ids the model did not learn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.files import MiB, read_text

UNK = "<unk>"
EOS = "<eos>"
TOKENIZERS = ("char", "word", "space")
MAX_VOCAB_BYTES = 64 * MiB
MAX_TOKENS = 10_000_000  # ModelConfig's largest vocabulary


class VocabError(EngineError):
    """A vocabulary file that cannot be used, or text it cannot read; one line, names the file."""


@dataclass(frozen=True)
class Vocab:
    """Tokens in id order (token i has id i), and where they were read from."""

    tokens: tuple[str, ...]
    source: str = "the vocabulary"
    index: dict = field(default_factory=dict, compare=False, repr=False)  # token -> id, filled on creation

    def __post_init__(self) -> None:
        if not self.index:
            self.index.update({tok: i for i, tok in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def unk(self) -> int | None:
        return self.index.get(UNK)

    @property
    def eos(self) -> int | None:
        return self.index.get(EOS)

    def describe(self) -> str:
        return f"{self.source} ({len(self.tokens)} tokens)"


@dataclass(frozen=True)
class Encoded:
    """A text read with a vocabulary: one id per token, and what had to be assumed."""

    ids: list[int]
    tokens: list[str]  # the token each id stands for ("<unk>" where the text had an unknown one)
    unknown: int  # tokens of the text that read as <unk>
    first_unknown: str | None  # the first of them, for the note


# ---- reading a vocabulary file -----------------------------------------------------------------
def load_vocab(path: str | Path) -> Vocab:
    """The vocabulary in `path` (JSON list, JSON object token -> id, or one token per line)."""
    where = str(path)
    text = read_text(path, "--vocab", MAX_VOCAB_BYTES)
    if Path(path).suffix.lower() == ".json":
        tokens = _from_json(text, where)
    else:
        tokens = _from_lines(text, where)
    if not tokens:
        raise VocabError(f"--vocab: {where} holds no tokens")
    if len(tokens) > MAX_TOKENS:
        raise VocabError(f"--vocab: {where} holds {len(tokens):,} tokens; at most {MAX_TOKENS:,} are read")
    return Vocab(tuple(tokens), where)


def _from_json(text: str, where: str) -> list[str]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise VocabError(f"--vocab: {where} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise VocabError(f"--vocab: {where} is nested too deeply to be a vocabulary") from None
    if isinstance(doc, list):
        seen: dict[str, int] = {}
        for i, tok in enumerate(doc):
            if not isinstance(tok, str):
                raise VocabError(f"--vocab: {where}: entry {i} is {_kind(tok)}, not a token (a JSON list holds strings)")
            if tok in seen:
                raise VocabError(f"--vocab: {where}: token {tok!r} is listed twice (ids {seen[tok]} and {i})")
            seen[tok] = i
        return list(doc)
    if isinstance(doc, dict):
        by_id: dict[int, str] = {}
        for tok, i in doc.items():
            if isinstance(i, bool) or not isinstance(i, int):
                raise VocabError(f"--vocab: {where}: the id of {tok!r} is {_kind(i)}, not a whole number")
            if not 0 <= i < len(doc):
                raise VocabError(f"--vocab: {where}: {tok!r} has id {i}; the ids of {len(doc)} tokens are 0..{len(doc) - 1}")
            if i in by_id:
                raise VocabError(f"--vocab: {where}: id {i} is given to both {by_id[i]!r} and {tok!r}")
            by_id[i] = tok
        return [by_id[i] for i in range(len(doc))]  # every id 0..N-1 once: N distinct ids in range
    raise VocabError(f"--vocab: {where} holds {_kind(doc)}: give a JSON list of tokens or an object token -> id")


def _from_lines(text: str, where: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final line end
    tokens: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        tok = line[:-1] if line.endswith("\r") else line
        if tok == "":
            raise VocabError(
                f"--vocab: {where}: line {n} is empty; a text vocabulary has one token per line "
                "(write a newline or an empty token in a .json list)"
            )
        if tok in seen:
            raise VocabError(f"--vocab: {where}: line {n} repeats {tok!r} (line {seen[tok]})")
        seen[tok] = n
        tokens.append(tok)
    return tokens


def _kind(value) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---- reading text with a vocabulary ------------------------------------------------------------
def split_text(text: str, mode: str, eos: bool) -> list[str]:
    """`text` as tokens; `eos`: each line of `word`/`space` text ends in <eos> (see the module doc)."""
    from rnn_tui.engine.tokens import tokenize

    if mode not in TOKENIZERS:
        raise VocabError(f"unknown tokenization {mode!r}: choose {', '.join(TOKENIZERS)}")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if mode == "char":
        return list(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # "a\nb\n" is two lines, as a file read line by line
    tokens: list[str] = []
    for line in lines:
        tokens += line.split() if mode == "space" else tokenize(line, "word")
        if eos:
            tokens.append(EOS)
    return tokens


def encode_text(text: str, vocab: Vocab, mode: str = "char") -> Encoded:
    """The ids of `text`'s tokens in `vocab`; unknown tokens read as <unk>, or VocabError."""
    raw = split_text(text, mode, eos=vocab.eos is not None)
    if mode == "char" and "\n" not in vocab.index and vocab.eos is not None:
        raw = [EOS if tok == "\n" else tok for tok in raw]
    if not raw:
        raise VocabError("the text has no tokens" + (" (word and space tokens skip whitespace)" if mode != "char" else ""))
    ids, tokens, unknown, first = [], [], 0, None
    unk = vocab.unk
    for n, tok in enumerate(raw):
        i = vocab.index.get(tok)
        if i is None:
            if unk is None:
                from rnn_tui.engine.tokens import label

                raise VocabError(
                    f"token {n} of the text, {label(tok)!r}, is not in {vocab.describe()}, which has no {UNK} "
                    f"to read it as" + ("" if mode != "char" else " (is --tokenize right?)")
                )
            unknown += 1
            first = first if first is not None else tok
            i, tok = unk, UNK
        ids.append(i)
        tokens.append(tok)
    return Encoded(ids, tokens, unknown, first)


def parse_ids(text: str) -> list[int]:
    """Token ids as typed: whole numbers separated by spaces or commas ("3 17 5", "3,17,5")."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise VocabError("--input-ids is empty: give token ids such as \"3 17 5\"")
    ids = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise VocabError(f"--input-ids: {part!r} is not a token id (give whole numbers such as \"3 17 5\")") from None
        if value < 0:
            raise VocabError(f"--input-ids: {value} is negative; token ids count from 0")
        ids.append(value)
    return ids
