"""Reading a user's file safely: a regular file, of bounded size, read with a bound.

Every file rnn-tui reads (a scenario, a text, a run's config and metrics, weights, a vocabulary)
goes through `check_file` before it is opened, so a FIFO, a device such as /dev/zero, a folder or a
file too large is refused in one line instead of hanging or filling memory. `read_bytes` then reads
at most `limit` bytes from the opened descriptor, so a file that grows after the check cannot get
past the limit either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from rnn_tui.engine.errors import EngineError

MiB = 1 << 20


class FileError(EngineError):
    """A file that cannot be read as asked: missing, not a regular file, or too large."""


def size_text(n: int) -> str:
    """A byte count for a message: in MiB or KiB when that is exact, else in bytes, so that
    64 MiB + 10 B is never written as '64 MiB'."""
    for unit, scale in (("MiB", MiB), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n:,} bytes"


def check_file(path: str | os.PathLike, what: str, limit: int) -> int:
    """The size of `path`, after checking it is an existing regular file of at most `limit` bytes.

    Raises FileError naming `what` (e.g. "--text", "scenario") and the path otherwise. Follows
    symbolic links, as opening would."""
    p = Path(path)
    shown_path = _path(path)
    if str(path) == "":
        raise FileError(f"{what}: an empty path was given")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise FileError(f"{what}: {shown_path} does not exist") from None
    except NotADirectoryError:
        raise FileError(f"{what}: {shown_path} does not exist (a part of the path is not a folder)") from None
    except PermissionError:
        raise FileError(f"{what}: {shown_path} cannot be read (permission denied)") from None
    except OSError as e:
        raise FileError(f"{what}: {shown_path} cannot be read ({e.strerror or type(e).__name__})") from None
    except ValueError:  # a NUL byte in the path
        raise FileError(f"{what}: {shown_path} is not a possible path (it holds a NUL character)") from None
    if stat.S_ISDIR(st.st_mode):
        raise FileError(f"{what}: {shown_path} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise FileError(f"{what}: {shown_path} is not a regular file ({_kind(st.st_mode)})")
    if st.st_size > limit:
        raise FileError(f"{what}: {shown_path} is {size_text(st.st_size)}; at most {_limit_text(limit)} is read")
    return st.st_size


def read_bytes(path: str | os.PathLike, what: str, limit: int) -> bytes:
    """The whole of a regular file of at most `limit` bytes (see `check_file`)."""
    check_file(path, what, limit)
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open does not wait
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise FileError(f"{what}: {_path(path)} cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileError(f"{what}: {_path(path)} is not a regular file ({_kind(st.st_mode)})")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(MiB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileError(f"{what}: {_path(path)} is larger than {_limit_text(limit)}, which is all that is read")
        return b"".join(chunks)
    except OSError as e:
        raise FileError(f"{what}: {_path(path)} cannot be read ({e.strerror or type(e).__name__})") from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, what: str, limit: int) -> str:
    """A UTF-8 text file of at most `limit` bytes; a leading byte-order mark is dropped."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileError(f"{what}: {_path(path)} is not UTF-8 text (byte {e.start})") from None


# nesting deeper than this is no rnn-tui file (a run's config is 4 deep, a scenario's weights 3)
MAX_DEPTH = 64


def parse_json(text: str | bytes, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """JSON text as Python values, or one FileError naming `what`: invalid JSON, numbers too long
    to convert, or nesting deeper than `max_depth` (which would otherwise end in RecursionError,
    here or in the code that walks the result)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise FileError(f"{what} is not valid JSON ({e.msg} at line {e.lineno}): the file is damaged") from None
    except RecursionError:
        raise FileError(f"{what} is nested too deeply (at most {max_depth} levels are read)") from None
    except (ValueError, UnicodeDecodeError) as e:  # e.g. an integer of more than 4300 digits
        raise FileError(f"{what} is not valid JSON ({_first_line(e)})") from None
    check_depth(value, what, max_depth)
    return value


def parse_toml(text: str, what: str, max_depth: int = MAX_DEPTH) -> dict:
    """TOML text as a dict, or one FileError naming `what` (see `parse_json`)."""
    import tomllib

    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise FileError(f"{what}: not valid TOML: {e}") from None
    except RecursionError:
        raise FileError(f"{what}: nested too deeply (at most {max_depth} levels are read)") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits
        raise FileError(f"{what}: not valid TOML ({_first_line(e)})") from None
    check_depth(value, what, max_depth)
    return value


def check_depth(value: Any, what: str, max_depth: int = MAX_DEPTH) -> None:
    """FileError when lists and dicts nest deeper than `max_depth` (an iterative walk)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > max_depth:
            raise FileError(f"{what} is nested too deeply (at most {max_depth} levels are read)")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))


def shown(value: Any, width: int = 40) -> str:
    """A value from a file, for a message: what it is (a string '1', the number 3, null), its repr
    cut to `width` characters, control characters escaped."""
    from rnn_tui.safe_text import safe

    if isinstance(value, bool) or value is None:
        text = "null" if value is None else ("true" if value else "false")
        return text
    if isinstance(value, int):
        if abs(value) < 10**width:
            return str(value)
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    kind = {str: "the string ", list: "the list ", dict: "the object "}.get(type(value), "")
    return kind + safe(text)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _path(path: str | os.PathLike) -> str:
    """A path for a message: its control characters escaped (a file name is text from outside)."""
    from rnn_tui.safe_text import safe

    return safe(os.fsdecode(path))


def _limit_text(limit: int) -> str:
    exact = size_text(limit)
    return exact if exact.endswith("bytes") else f"{exact} ({limit:,} bytes)"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"
