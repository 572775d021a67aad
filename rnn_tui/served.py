"""What a browser visitor may reach under `rnn-tui serve`: nothing on the server's disk that the
operator did not name.

`rnn-tui serve` sets RNN_TUI_SERVED=1 in the environment of every visitor's process, and, with
`--runs DIR`, RNN_TUI_SERVE_RUNS to that folder. In such a process:

- a run directory a visitor types (the Time-lapse tab's `o`) is a *name* inside that folder
  (`run_directory`), never a path: no absolute paths, no `..`, nothing a symbolic link leads out
  of the folder to; with no folder named, no run can be opened at all;
- a screenshot (`s`) goes to the visitor's browser as a download (Textual's `deliver_text`),
  and nothing is written on the server.

The operator's own choices (`rnn-tui serve -- --checkpoint DIR`) are not visitors' and open as
usual. Pure Python, no heavy imports: the CLI and the UI both read it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rnn_tui.engine.errors import EngineError
from rnn_tui.safe_text import safe

SERVED_ENV = "RNN_TUI_SERVED"
RUNS_ENV = "RNN_TUI_SERVE_RUNS"


class ServedPathError(EngineError):
    """A visitor asked for something on the server that serve mode does not let them reach."""


def served() -> bool:
    """Whether this process is a browser visitor's, started by `rnn-tui serve`."""
    return os.environ.get(SERVED_ENV) == "1"


def runs_folder() -> Path | None:
    """The folder `serve --runs DIR` named (None: none, so no run can be opened)."""
    value = os.environ.get(RUNS_ENV, "")
    return Path(value) if value else None


def no_runs_message() -> str:
    return ("in the browser, runs open only from a folder the server names (rnn-tui serve --runs DIR); "
            "this server names none")  # fmt: skip


def run_names(limit: int = 50) -> list[str]:
    """The names of the run directories in the served folder (those with a config.json), sorted."""
    folder = runs_folder()
    if folder is None or not folder.is_dir():
        return []
    names = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if entry.is_dir() and os.path.lexists(os.path.join(entry.path, "config.json")) and _inside(Path(entry.path), folder):
            names.append(entry.name)
            if len(names) >= limit:
                break
    return names


def run_directory(name: str) -> Path:
    """The run directory a visitor asked for by `name`, inside the served folder.

    ServedPathError, one line, for no folder, a path instead of a name, or a name that leads out
    of the folder; the message never says whether anything outside the folder exists."""
    folder = runs_folder()
    if folder is None:
        raise ServedPathError(no_runs_message())
    name = name.strip()
    parts = Path(name).parts
    if (not name or "\x00" in name or "\\" in name or Path(name).is_absolute() or name.startswith("~")
            or any(p in (".", "..") for p in parts)):  # fmt: skip
        raise ServedPathError(f"give the name of a run in the served folder, not a path (runs: {_listing()})")
    path = folder / name
    if not _inside(path, folder) or not path.is_dir():
        raise ServedPathError(f"no run '{safe(name)}' in the served folder (runs: {_listing()})")
    return path


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path`, with every symbolic link followed, lies inside `folder`."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def _listing() -> str:
    names = run_names(limit=8)
    return ", ".join(safe(n) for n in names) if names else "none"
