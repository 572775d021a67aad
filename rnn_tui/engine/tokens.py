"""Text into tokens, and tokens into labels a terminal can draw. Pure Python (no torch).

Characters, or words: runs of letters and digits (an apostrophe inside a word stays in it), with
every punctuation mark, full-width included, a token of its own; whitespace separates words and
is dropped. CJK characters follow the writer, line by line: on a line where two CJK characters
have a space between them the words were separated by hand (`南开 大学 很 好 ， 我 爱 南开 大学`, nine
words), so a run of them is one word, as a run of letters is; on a line without such a space
(Chinese as it is usually written, `南开大学很好`) each CJK character is a token of its own. Or
`space`: split on whitespace only, as the PyTorch examples read their corpora (a model's own
vocabulary decides the rest, see `engine.vocab`).
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
    for line in text.splitlines():
        tokens += _words(line, spaced_by_hand(line))
    return tokens


def spaced_by_hand(line: str) -> bool:
    """Two CJK letters (wide and alphanumeric) with only whitespace between them somewhere on the
    line: its writer separated the words (see the module doc). A space after punctuation (the
    ideographic space after a full stop) is no word boundary drawn by hand."""
    last = None  # the last character that is not whitespace, and whether whitespace followed it
    gap = False
    for ch in line:
        if ch.isspace():
            gap = last is not None
            continue
        if gap and _cjk_letter(last) and _cjk_letter(ch):
            return True
        last, gap = ch, False
    return False


def _cjk_letter(ch: str | None) -> bool:
    return ch is not None and ch.isalnum() and is_wide(ch)


def _words(line: str, spaced: bool) -> list[str]:
    tokens: list[str] = []
    word = ""
    for ch in line:
        if (ch.isalnum() and (spaced or not is_wide(ch))) or (word and ch in "'’"):
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
