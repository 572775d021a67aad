r"""Text from outside, made safe to show: the one sanitizer for every string that came from a file,
a run, a model or a visitor, on every path to a terminal, a Rich renderable or markup.

    safe("title" + ESC + "]0;owned" + BEL)   the text  title\x1b]0;owned\x07  (a backslash and x, 1, b)
    safe("abc" + "\u202e" + "def")           the text  abc\u202edef
    safe(text, newlines=True)                keeps line breaks; by default one reads \n
    markup("[b]x")                           the same, escaped for Rich markup as well

A terminal obeys control characters: ESC starts CSI (clear the screen), OSC (retitle the window,
write the clipboard with OSC 52) and DCS sequences; C1 bytes (U+0080-U+009F) are 8-bit forms of the
same; bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C) reorder what
follows, so a file name can show one thing and be another. Every such character is shown as a
visible escape (`\x1b`, `\u202e`) instead, so the person sees that it is there and the terminal
never acts on it. Printable text, CJK and emoji included, is left as it is.

Pure Python and no heavy imports: the engine, the CLI and the UI all use it.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["safe", "markup", "is_safe", "one_cell", "UNSAFE_CATEGORIES"]

# Unicode categories shown escaped: controls (C0, DEL, C1), format characters (the bidirectional
# controls, zero-width characters, the byte-order mark, tag characters), surrogates (undecodable
# bytes of a file name arrive as lone surrogates) and the line and paragraph separators
UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
# strict: also private-use and unassigned code points, which have no known width in a terminal
STRICT_CATEGORIES = UNSAFE_CATEGORIES | {"Co", "Cn"}
NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}

# the common case, printable ASCII (and the whitespace allowed), answered without a loop
_PLAIN = {
    (False, False): re.compile(r"[\x20-\x7e]*"),
    (True, False): re.compile(r"[\x20-\x7e\n]*"),
    (False, True): re.compile(r"[\x20-\x7e\t]*"),
    (True, True): re.compile(r"[\x20-\x7e\n\t]*"),
}


def _escape(ch: str) -> str:
    if ch in NAMED:
        return NAMED[ch]
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    if n < 0x10000:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def safe(text: object, *, newlines: bool = False, tabs: bool = False, strict: bool = False) -> str:
    """`text` with every character a terminal could act on shown as a visible escape.

    newlines / tabs: keep "\\n" / "\\t" as they are (multi-line output); by default they read
    "\\n" and "\\t", so one line stays one line. strict: also escape private-use and unassigned
    code points (token labels, which must have a known width). Anything not a str is str()-ed.
    """
    if not isinstance(text, str):
        text = str(text)
    if _PLAIN[newlines, tabs].fullmatch(text):
        return text
    categories = STRICT_CATEGORIES if strict else UNSAFE_CATEGORIES
    out = []
    for ch in text:
        if (ch == "\n" and newlines) or (ch == "\t" and tabs):
            out.append(ch)
        elif " " <= ch <= "~":
            out.append(ch)
        elif unicodedata.category(ch) in categories:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def is_safe(text: str, *, newlines: bool = False, tabs: bool = False) -> bool:
    """Whether `text` holds nothing `safe` would escape."""
    return safe(text, newlines=newlines, tabs=tabs) == text


def markup(text: object, **options) -> str:
    """`safe(text)` escaped for Rich markup too, to put inside a markup string: "[b]" stays text."""
    from rich.markup import escape

    return escape(safe(text, **options))


def one_cell(text: str) -> str:
    """`text` with each character `safe` would escape replaced by one visible character of its own
    (the control pictures ␛ ␇ ␀ for C0 controls and DEL, � for the rest), so the text keeps its
    length: for an input box, whose cursor counts characters."""
    if _PLAIN[False, False].fullmatch(text):
        return text
    out = []
    for ch in text:
        n = ord(ch)
        if " " <= ch <= "~":
            out.append(ch)
        elif n < 0x20:
            out.append(chr(0x2400 + n))
        elif n == 0x7F:
            out.append("\u2421")
        elif unicodedata.category(ch) in UNSAFE_CATEGORIES:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)
