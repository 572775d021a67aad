"""Texts and tokens for the language-model task: built-in corpora, tokenizers, visible labels.

Built-in texts need no download:
- zen:       the Zen of Python, decoded from the rot13 string in the interpreter's own `this.py`
             (read as data with `ast`; the module is never imported, so nothing is printed)
- stdlib:    a fixed set of pure-Python standard-library modules, read from the running
             interpreter; characters outside printable ASCII and newline read as "?"
- rnn-notes: a short essay shipped in the repository's assets/texts/

Word tokens (`tokenize="word"`): every CJK ideograph and kana is a token of its own (those
scripts put no spaces between words), runs of other letters, digits and underscores are words
(an inner apostrophe stays: "don't"), every punctuation mark or symbol is its own token, full-width
ones included (，。「」！？), and a run of whitespace holding a line break is one newline token.
Hangul is written with spaces between words, so a run of Hangul is a word.
"""

from __future__ import annotations

import ast
import codecs
import importlib.util
import re
from collections import Counter
from pathlib import Path

from rnn_tui.engine.tasks.base import TaskError

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
ASSETS_TEXTS = Path(__file__).resolve().parents[3] / "assets" / "texts"

# ---- visible labels ------------------------------------------------------------------------
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍", "\u3000": "□"}


def visible(token: str) -> str:
    """A label that shows on one line: spaces, tabs, newlines and control characters made visible."""
    if token in VISIBLE:
        return VISIBLE[token]
    if len(token) == 1 and (not token.isprintable()):
        return repr(token)[1:-1]  # e.g. \x07
    return token


def visible_labels(tokens: list[str]) -> list[str]:
    """Visible labels for a vocabulary, kept distinct (a raw "␣" in the text stays "␣" and the
    space becomes "' '")."""
    labels = [visible(t) for t in tokens]
    raw = set(tokens)
    return [repr(t) if (lab != t and lab in raw) else lab for t, lab in zip(tokens, labels)]


# ---- tokenizers ----------------------------------------------------------------------------
CJK_RANGES = (
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005-\u3007"  # 々 〆 〇
    "\u3021-\u3029\u3038-\u303b"  # Hangzhou numerals, 〸 〹 〺 〻
    "\u3040-\u309f"  # hiragana
    "\u30a0-\u30ff"  # katakana (ー included)
    "\u3100-\u312f\u31a0-\u31bf"  # bopomofo
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
)
WORD_RE = re.compile(
    rf"[{CJK_RANGES}]"  # one CJK character
    rf"|[^\W{CJK_RANGES}]+(?:['’][^\W{CJK_RANGES}]+)*"  # a word (letters, digits, _; inner ')
    r"|\s*\n\s*"  # whitespace with a line break -> one newline token
    r"|\s+"  # other whitespace -> dropped
    r"|."  # anything else: punctuation, symbols, one character each
    ,
    re.DOTALL,
)


def word_tokens(text: str) -> list[str]:
    """Split text into word tokens (see the module docstring for the rules)."""
    out = []
    for match in WORD_RE.finditer(text):
        tok = match.group()
        if "\n" in tok and not tok.strip():
            out.append("\n")
        elif tok.strip():
            out.append(tok)
    return out


def char_tokens(text: str) -> list[str]:
    """One token per character (line endings normalised to "\\n")."""
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
    path = Path(text).expanduser()
    if not path.exists():
        raise TaskError(f"no text file {str(path)!r} (built-in texts: {', '.join(BUILTIN_TEXTS)})")
    if not path.is_file():
        raise TaskError(f"{str(path)!r} is not a file")
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise TaskError(f"{str(path)!r} is {size / 2**20:.0f} MiB; texts up to 64 MiB are read")
    data = path.read_bytes()
    if b"\x00" in data:
        raise TaskError(f"{str(path)!r} looks binary (it holds NUL bytes), not a text")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise TaskError(f"{str(path)!r} is not UTF-8 text (bad byte at offset {err.start})") from None
    return str(path), content


def build_vocab(tokens: list[str], max_vocab: int) -> list[str]:
    """The vocabulary, sorted; beyond the `max_vocab` most frequent tokens, the rest read as <unk>."""
    counts = Counter(tokens)
    if len(counts) <= max_vocab:
        return sorted(counts)
    keep = [tok for tok, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_vocab - 1]]
    return [UNK] + sorted(keep)
