"""Texts and tokens for the language-model task: built-in corpora, tokenizers, visible labels.

Built-in texts need no download:
- zen:       the Zen of Python, decoded from the rot13 string in the interpreter's own `this.py`
             (read as data with `ast`; the module is never imported, so nothing is printed)
- stdlib:    a fixed set of pure-Python standard-library modules, read from the running
             interpreter; characters outside printable ASCII and newline read as "?"
- rnn-notes: a short essay shipped in the repository's assets/texts/

Word tokens (`tokenize="word"`) come from `rnn_tui.engine.tokens`, the one tokenizer the CLI
and the explorer also use: runs of letters and digits are words (an inner apostrophe stays:
"don't"); every CJK character, every other wide character and every punctuation mark, full-width
ones included (，。「」！？), is a token of its own; whitespace separates words and is dropped.
Vocabularies hold the raw tokens; `rnn_tui.engine.tokens.label` makes them visible for display.
"""

from __future__ import annotations

import ast
import codecs
import importlib.util
import os
from collections import Counter
from pathlib import Path

from rnn_tui.engine.assets import TEXTS
from rnn_tui.engine.files import FileError, read_bytes
from rnn_tui.engine.tasks.base import TaskError
from rnn_tui.engine.tokens import tokenize
from rnn_tui.safe_text import safe

BUILTIN_TEXTS = ("zen", "stdlib", "rnn-notes")
STDLIB_MODULES = (
    "textwrap",
    "string",
    "fractions",
    "heapq",
    "bisect",
    "shlex",
    "colorsys",
    "queue",
    "sched",
    "graphlib",
    "contextlib",
    "functools",
)
ASCII_VOCAB = ["\n"] + [chr(c) for c in range(32, 127)]  # the stdlib text's fixed characters
MAX_TEXT_BYTES = 64 * 1024 * 1024
UNK = "<unk>"
ASSETS_TEXTS = TEXTS  # rnn-notes and other shipped texts

# ---- tokenizers ----------------------------------------------------------------------------
def word_tokens(text: str) -> list[str]:
    """Word tokens by the engine's one tokenizer (`rnn_tui.engine.tokens`), so text typed into
    the explorer splits exactly as the training text did."""
    return tokenize(text, "word")


def char_tokens(text: str) -> list[str]:
    """One token per character (line endings normalised to "\n")."""
    return list(normalise_newlines(text))


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---- texts ---------------------------------------------------------------------------------
def zen_text() -> str:
    """The Zen of Python: `this.s` read as a literal from this.py and rot13-decoded."""
    source = module_source("this")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "s" for t in node.targets):
            return codecs.decode(ast.literal_eval(node.value), "rot13")
    raise TaskError("the zen text is not in this Python's this.py: use --text FILE")


def stdlib_text() -> str:
    """Source of a fixed set of standard-library modules, mapped onto printable ASCII."""
    parts = []
    for name in STDLIB_MODULES:
        try:
            parts.append(module_source(name))
        except TaskError:
            continue
    if not parts:
        raise TaskError("this Python ships no readable standard-library sources: use --text FILE")
    allowed = set(ASCII_VOCAB)
    text = normalise_newlines("\n\n".join(parts)).replace("\t", "    ")
    return "".join(ch if ch in allowed else "?" for ch in text)


def module_source(name: str) -> str:
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py") or not Path(origin).is_file():
        raise TaskError(f"no source file for the standard-library module {name}")
    return Path(origin).read_text(encoding="utf-8")


def asset_text(name: str) -> str:
    path = ASSETS_TEXTS / f"{name}.txt"
    if not path.is_file():
        raise TaskError(f"the built-in text {name!r} is not installed here ({path}): use --text FILE")
    return path.read_text(encoding="utf-8")


def load_text(text: str | Path) -> tuple[str, str]:
    """(name, content) for a built-in text name or a path to a UTF-8 text file."""
    if isinstance(text, str) and text in BUILTIN_TEXTS and not Path(text).exists():
        if text == "zen":
            return text, zen_text()
        if text == "stdlib":
            return text, stdlib_text()
        return text, asset_text(text)
    if str(text) == "":
        raise TaskError(f"the text is empty: give a text file, or a built-in text: {', '.join(BUILTIN_TEXTS)}")
    path = Path(text).expanduser()
    if not os.path.lexists(path):
        raise TaskError(f"no text file '{safe(path)}' (built-in texts: {', '.join(BUILTIN_TEXTS)})")
    try:  # a regular file of at most 64 MiB, read with that bound (a FIFO or /dev/zero is refused)
        data = read_bytes(path, "text file", MAX_TEXT_BYTES)
    except FileError as e:
        raise TaskError(str(e)) from None
    if b"\x00" in data:
        raise TaskError(f"'{safe(path)}' looks binary (it holds NUL bytes), not a text")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TaskError(f"'{safe(path)}' is not UTF-8 text (bad byte at offset {err.start})") from None
    return str(path), content


def build_vocab(tokens: list[str], max_vocab: int) -> list[str]:
    """The vocabulary, sorted; beyond the `max_vocab` most frequent tokens, the rest read as <unk>."""
    counts = Counter(tokens)
    if len(counts) <= max_vocab:
        return sorted(counts)
    keep = [tok for tok, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_vocab - 1]]
    return [UNK] + sorted(keep)
