"""Text into tokens, and tokens into labels a terminal can draw. Pure Python (no torch).

Characters, or words: runs of letters and digits (an apostrophe inside a word stays in it), with
every CJK character and every punctuation mark, full-width included, a token of its own;
whitespace separates words and is dropped. Or `space`: split on whitespace only, as the PyTorch
examples read their corpora (a model's own vocabulary decides the rest, see `engine.vocab`).
"""

from __future__ import annotations

import unicodedata

from rnn_tui.safe_text import safe

MODES = ("char", "word", "space")
VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


def is_wide(ch: str) -> bool:
    """CJK and other East Asian wide or full-width characters (two terminal cells)."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def tokenize(text: str, mode: str = "char") -> list[str]:
    if mode not in MODES:
        raise ValueError(f"unknown tokenization {mode!r}: choose char, word or space")
    if mode == "char":
        return list(text)
    if mode == "space":
        return text.split()
    tokens: list[str] = []
    word = ""
    for ch in text:
        if (ch.isalnum() and not is_wide(ch)) or (word and ch in "'’"):
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        if not ch.isspace():
            tokens.append(ch)
    if word:
        tokens.append(word)
    return tokens


def label(token: str) -> str:
    """A token as drawn: whitespace made visible, control and format characters escaped (by the
    one sanitizer, `rnn_tui.safe_text`, in its strict form), never empty."""
    return safe("".join(VISIBLE.get(ch, ch) for ch in token), strict=True) or "∅"
