"""A saved explorer session: what is on screen, in one small JSON file that `rnn-tui --session
FILE` opens again to the same screen.

    {
      "format": "rnn-tui-session", "version": 1,
      "model":   {"checkpoint": "/abs/run"}     the file the model comes from, one of checkpoint,
                                                scenario, weights (with vocab, prefix, map);
                                                or by name: {"demo": "recall-rnn"} a shipped
                                                demo run, {"run": "NAME"} a run in a server's
                                                runs folder (what `rnn-tui serve` writes);
                                                {} for a fresh model built from "request"
      "request": {"cell": "lstm", "activation": "tanh", "hidden": 32, "layers": 1,
                  "bidirectional": false, "task": "text", "text": "hello", "tokenize": "char",
                  "seed": 0, "checkpoint": null, "fresh": false}
      "view":    {"step": 5, "unit": 2, "layer": 0, "direction": "forward", "matrix": "h",
                  "all_maps": true}
      "tab":     "Compare"                       the open tab, by its title
      "panes":   {"Interventions": {"holds": [{"kind": "state", "name": "h", "value": 0.0,
                  "layer": 0, "direction": "forward", "unit": 3, "start": 4, "stop": null}]},
                  "Compare": {"other_cell": null, "other_activation": "tanh", "partner": "demo"}}
    }

The weights are not in the file: it points to the run directory, scenario or weights file that
holds them (paths written absolute; a relative one is read against the session file's folder),
or names them: a shipped demo by its name in `assets/models/`, and a run by its name inside a
runs folder (`serve --runs DIR`'s when the session is opened under serve, else the session
file's own folder), so a session sent to a browser carries no path of the server's.
Reading goes through `rnn_tui.engine.files` (a regular file, bounded, nesting limited) and checks
every field's type and range, so a damaged or hand-edited file is one SessionError naming the
file and the field, and a model that is gone is said before anything is built. Pure Python: the
CLI reads a session before torch is imported.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_tui.engine.cells import ACTIVATIONS, CELLS
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.files import FileError, MiB, parse_json, read_text, shown
from rnn_tui.safe_text import safe

FORMAT = "rnn-tui-session"
VERSION = 1
MAX_BYTES = 4 * MiB  # a session holds at most a 100,000-character input and a few holds
MAX_TEXT = 100_000  # characters of input (the explorer's and `rnn-tui trace`'s bound)
MAX_HOLDS = 1000
ORIGINS = ("checkpoint", "scenario", "weights")  # where a model's weights come from
NAMED = ("demo", "run")  # a run directory by its name: a shipped demo, a run in a runs folder
TOKENIZE = ("char", "word", "space")
FREE_TEXT = "text"  # the explorer's next-token model over its own input (no task)


class SessionError(EngineError):
    """A session file that cannot be read or written; the message says why, in one line."""


@dataclass(frozen=True)
class Session:
    """A session as read back: plain values, each checked (see the module docstring)."""

    model: dict = field(default_factory=dict)  # origin -> absolute path; "vocab", "prefix", "map" with weights
    request: dict = field(default_factory=dict)  # the explorer's TraceRequest fields
    view: dict = field(default_factory=dict)  # step, unit, layer, direction, matrix, all_maps
    tab: str = ""  # the open tab's title ("" : the first)
    panes: dict = field(default_factory=dict)  # tab title -> that pane's own state

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "model": self.model, "request": self.request,
                "view": self.view, "tab": self.tab, "panes": self.panes}  # fmt: skip


def session_text(session: Session) -> str:
    """The session as the JSON text a file holds (non-finite numbers are refused)."""
    import json

    try:
        return json.dumps(session.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise SessionError(f"the session cannot be written as JSON ({safe(e)})") from None


def save_session(path: str | os.PathLike, session: Session) -> Path:
    """Write the session atomically (a temporary file, then a rename): a crash leaves the old file
    or the new one. Returns the path written."""
    from rnn_tui.engine.checkpoint import atomic_write_text

    path = Path(path)
    atomic_write_text(path, session_text(session))
    return path


def read_session(path: str | os.PathLike, runs: Path | None = None) -> Session:
    """Read and check a session file; SessionError (one line) for anything wrong with it. A run
    the session names ({"run": NAME}) is looked for in `runs` (under serve, its --runs folder),
    else beside the session file."""
    where = safe(path)
    try:
        text = read_text(path, "--session", MAX_BYTES)
        doc = parse_json(text, where)
    except FileError as e:
        raise SessionError(str(e)) from None
    return check_session(doc, where, Path(path).resolve().parent, runs=runs)


def check_session(doc: Any, where: str, folder: Path | None = None, runs: Path | None = None) -> Session:
    """A Session from a parsed document; relative model paths are read against `folder`, and a
    run named by its name in `runs` (None: `folder`)."""

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise SessionError(f"{where}: {what}")

    need(isinstance(doc, dict), "expected a JSON object (an rnn-tui session)")
    need(doc.get("format") == FORMAT, f"not an rnn-tui session (format is {shown(doc.get('format'))}, expected {FORMAT!r})")
    version = doc.get("version")
    need(_whole(version), f"'version' must be a whole number, got {shown(version)}")
    need(1 <= version <= VERSION, f"version {version} is not one this rnn-tui reads (1 to {VERSION})"
         + (": update rnn-tui" if version > VERSION else ""))
    for key, kind in (("model", dict), ("request", dict), ("view", dict), ("panes", dict)):
        need(isinstance(doc.get(key, {}), kind), f"'{key}' must be an object, got {shown(doc.get(key))}")
    tab = doc.get("tab", "")
    need(isinstance(tab, str) and len(tab) <= 100, f"'tab' must be a tab's title, got {shown(tab)}")
    model = _model(doc.get("model", {}), need, folder, runs)
    request = _request(doc.get("request", {}), need)
    if model.get("checkpoint") and request.get("checkpoint"):
        request["checkpoint"] = model["checkpoint"]  # one run: the model's
    elif request.get("checkpoint"):
        request["checkpoint"] = _existing(request["checkpoint"], "request.checkpoint", need, folder, is_dir=True)
    view = _view(doc.get("view", {}), need)
    panes = doc.get("panes", {})
    for title, state in panes.items():
        need(isinstance(state, dict), f"panes.{safe(title)} must be an object")
    holds = panes.get("Interventions", {}).get("holds", [])
    need(isinstance(holds, list) and len(holds) <= MAX_HOLDS, f"panes.Interventions.holds must be a list of at most {MAX_HOLDS}")
    for k, hold in enumerate(holds):
        _hold(hold, need, f"panes.Interventions.holds[{k}]")
    compare = panes.get("Compare", {})
    other = compare.get("other_cell")
    need(other is None or _one_of(other, CELLS), f"panes.Compare.other_cell must be a cell ({', '.join(CELLS)}) or null, got {shown(other)}")
    act = compare.get("other_activation", "tanh")
    need(act in ACTIVATIONS, f"panes.Compare.other_activation must be one of {', '.join(ACTIVATIONS)}, got {shown(act)}")
    partner = compare.get("partner", "demo")
    need(partner in ("demo", "untrained"), f"panes.Compare.partner must be demo or untrained, got {shown(partner)}")
    return Session(model=model, request=request, view=view, tab=tab, panes=dict(panes))


# ---- the parts ---------------------------------------------------------------------------------
def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _existing(value: Any, name: str, need, base: Path | None, *, is_dir: bool = False) -> str:
    """An absolute path that exists now (a run directory: a folder; else a file); a relative one
    is read against `base`, the session file's folder."""
    need(isinstance(value, str) and value != "" and "\0" not in value, f"'{name}' must be a path, got {shown(value)}")
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    kind = "run directory" if is_dir else "file"
    need(p.is_dir() if is_dir else p.exists(), f"the model it points to is gone: {name} {safe(p)} is no {kind} now")
    return str(p.resolve())


def _named_run(value: Any, name: str, need, folder: Path | None, where_told: str) -> str:
    """The run directory a session names by `value`, a name inside `folder` (never a path)."""
    need(isinstance(value, str) and 0 < len(value) <= 200, f"'{name}' must be a run's name, got {shown(value)}")
    plain = ("/" not in value and "\\" not in value and "\0" not in value and value not in (".", "..")
             and not value.startswith("~"))  # fmt: skip
    need(plain, f"'{name}' must be a run's name, not a path, got {shown(value)}")
    path = (folder / value) if folder is not None else None
    try:
        inside = path is not None and path.resolve().is_relative_to(folder.resolve()) and path.is_dir()
    except (OSError, RuntimeError):  # a loop of links
        inside = False
    need(inside, f"the session names the run {safe(value)!r} ({name}), and there is no such run {where_told}")
    return str(path.resolve())


def _model(model: dict, need, folder: Path | None, runs: Path | None = None) -> dict:
    origins = [k for k in (*ORIGINS, *NAMED) if model.get(k) is not None]
    unknown = sorted(set(model) - set(ORIGINS) - set(NAMED) - {"vocab", "prefix", "map"})
    need(not unknown, f"model: unknown entry {shown(unknown[0]) if unknown else ''}")
    need(len(origins) <= 1, f"model: give one of {', '.join((*ORIGINS, *NAMED))}, not {' and '.join(origins)}")
    out: dict = {}
    for k in origins:
        if k == "demo":  # a shipped demo, by its folder's name in assets/models
            from rnn_tui.engine.assets import MODELS

            out["checkpoint"] = _named_run(model[k], "model.demo", need, MODELS,
                                           "among the shipped demos (rnn-tui's assets/models)")
        elif k == "run":  # a run in a runs folder, by its name there
            base = runs if runs is not None else folder
            told = "in the served runs folder" if runs is not None else f"beside the session file (in {safe(base)})"
            out["checkpoint"] = _named_run(model[k], "model.run", need, base, told)
        else:
            out[k] = _existing(model[k], f"model.{k}", need, folder, is_dir=(k == "checkpoint"))
    if model.get("vocab") is not None:
        need("weights" in out, "model.vocab goes with model.weights")
        out["vocab"] = _existing(model["vocab"], "model.vocab", need, folder)
    prefix = model.get("prefix")
    need(prefix is None or (isinstance(prefix, str) and len(prefix) <= 200), f"model.prefix must be text, got {shown(prefix)}")
    if prefix is not None:
        out["prefix"] = prefix
    mapping = model.get("map", [])
    need(isinstance(mapping, list) and all(isinstance(m, list) and len(m) == 2 and all(isinstance(s, str) for s in m)
                                           for m in mapping), "model.map must be a list of [name, role] pairs")  # fmt: skip
    if mapping:
        out["map"] = [list(m) for m in mapping]
    return out


def _one_of(value, names) -> bool:
    """A name among `names`; any other JSON value (a list or an object cannot even be looked up) is not."""
    return isinstance(value, str) and value in names


def _request(req: dict, need) -> dict:
    from rnn_tui.engine.tasks import TASKS  # torch-free catalog

    def one(key, ok, what, default):
        value = req.get(key, default)
        need(ok(value), f"request.{key} must be {what}, got {shown(value)}")
        return value

    ranged = lambda lo, hi: (lambda v: _whole(v) and lo <= v <= hi)  # noqa: E731
    out = {
        "cell": one("cell", lambda v: _one_of(v, CELLS), f"one of {', '.join(CELLS)}", "lstm"),
        "activation": one("activation", lambda v: _one_of(v, ACTIVATIONS), f"one of {', '.join(ACTIVATIONS)}", "tanh"),
        "hidden": one("hidden", ranged(1, 4096), "a whole number from 1 to 4096", 32),
        "layers": one("layers", ranged(1, 16), "a whole number from 1 to 16", 1),
        "bidirectional": one("bidirectional", lambda v: isinstance(v, bool), "true or false", False),
        "task": one("task", lambda v: v == FREE_TEXT or _one_of(v, TASKS), f"{FREE_TEXT!r} or a task ({', '.join(TASKS)})", FREE_TEXT),
        "text": one("text", lambda v: isinstance(v, str) and len(v) <= MAX_TEXT, f"text of at most {MAX_TEXT:,} characters", ""),
        "tokenize": one("tokenize", lambda v: _one_of(v, TOKENIZE), f"one of {', '.join(TOKENIZE)}", "char"),
        "seed": one("seed", ranged(0, 2**31 - 1), "a whole number from 0 to 2147483647", 0),
        "checkpoint": one("checkpoint", lambda v: v is None or isinstance(v, str), "a run directory or null", None),
        "fresh": one("fresh", lambda v: isinstance(v, bool), "true or false", False),
    }
    unknown = sorted(set(req) - set(out))
    need(not unknown, f"request: unknown entry {shown(unknown[0]) if unknown else ''}")
    return out


def _view(view: dict, need) -> dict:
    def one(key, ok, what, default):
        value = view.get(key, default)
        need(ok(value), f"view.{key} must be {what}, got {shown(value)}")
        return value

    count = lambda v: _whole(v) and 0 <= v <= 10**9  # noqa: E731
    return {
        "step": one("step", count, "a whole number from 0", 0),
        "unit": one("unit", count, "a whole number from 0", 0),
        "layer": one("layer", lambda v: _whole(v) and 0 <= v < 16, "a whole number from 0 to 15", 0),
        "direction": one("direction", lambda v: _one_of(v, ("forward", "reverse")), "forward or reverse", "forward"),
        "matrix": one("matrix", lambda v: isinstance(v, str) and 0 < len(v) <= 8, "a heatmap's name (h, c, a gate)", "h"),
        "all_maps": one("all_maps", lambda v: isinstance(v, bool), "true or false", True),
    }


def _hold(hold: Any, need, where: str) -> None:
    need(isinstance(hold, dict), f"{where} must be an object")
    need(hold.get("kind") in ("gate", "state"), f"{where}.kind must be gate or state, got {shown(hold.get('kind'))}")
    need(isinstance(hold.get("name"), str) and 0 < len(hold["name"]) <= 8, f"{where}.name must be a gate or state name")
    value = hold.get("value")
    need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
         f"{where}.value must be a finite number, got {shown(value)}")
    for key, none_ok in (("layer", False), ("unit", True), ("start", False), ("stop", True)):
        v = hold.get(key, 0 if not none_ok else None)
        need((none_ok and v is None) or (_whole(v) and 0 <= v <= 10**9), f"{where}.{key} must be a whole number from 0, got {shown(v)}")
    need(hold.get("direction", "forward") in ("forward", "reverse"), f"{where}.direction must be forward or reverse")
