"""Saving the explorer's session, and opening one again (`rnn-tui --session FILE`).

    gather(screen)        the Session of what is on screen (engine.session: the file format)
    spec_of(session)      the engine Spec that builds its model (the run, scenario or weights it names)
    request_of(session)   the TraceRequest it was on

A pane keeps its own part of a session by two methods, both optional: `session_state()` (a dict
of plain values, or None) and `restore(state)`, called once when the pane is built; a third,
`session_note()`, says in one line what the session does not keep of it (said as it is saved). The weights
are never in the file: a model trained in the explorer is in a session once it is saved as a run
(the Training tab's `w`), which the session then names.
"""

from __future__ import annotations

from pathlib import Path

from rnn_tui.engine.session import Session, SessionError
from rnn_tui.ui.source import TraceRequest

REQUEST_FIELDS = tuple(TraceRequest.__dataclass_fields__)


def weights_on_screen(weights: dict | None, trace) -> bool:
    """Whether the trace on screen was made with these weights (the ones trained here)."""
    import numpy as np

    if not weights or trace is None:
        return False
    params = trace.params
    return all(name in params and np.array_equal(params[name], value) for name, value in weights.items())


def served_model(model: dict) -> dict:
    """A model as a session sent to a browser names it (`rnn-tui serve`): a shipped demo by its
    name in assets/models, a run in the served runs folder by its name there, never a path of
    the server's. SessionError for any other file (the operator's own, named on the command line)."""
    from rnn_tui.engine.assets import MODELS
    from rnn_tui.served import runs_folder

    if not model:
        return model
    run = model.get("checkpoint")
    if run:
        path = Path(run).resolve()
        for key, folder in (("demo", MODELS), ("run", runs_folder())):
            if folder is not None and path.parent == Path(folder).resolve():
                return {key: path.name}
    raise SessionError("the model on screen is a file on the server, which a session in the browser cannot name "
                       "(it names the shipped demos and the runs of the served folder)")  # fmt: skip


def model_of(source, request: TraceRequest, saved_runs: dict, trace=None) -> dict:
    """Where the model on screen comes from, as a session names it ({} for a fresh model); under
    `rnn-tui serve`, by name (`served_model`).

    Raises SessionError when its weights are in no file (trained here and not saved)."""
    from rnn_tui.served import served

    model = _model_of(source, request, saved_runs, trace)
    return served_model(model) if served() else model


def _model_of(source, request: TraceRequest, saved_runs: dict, trace=None) -> dict:
    weights = getattr(source, "weights", None)
    if weights_on_screen(weights, trace):  # trained here: in a file only once saved as a run (w)
        saved = saved_runs.get(id(weights))
        if saved is None or saved[0] is not weights:
            from rnn_tui.served import served

            if served():  # w sends the run to the browser: no file here that a session could name
                raise SessionError("the weights on screen were trained here and are in no file a session can name: "
                                   "w sends them to you as a run, which rnn-tui --checkpoint opens")  # fmt: skip
            raise SessionError("the weights on screen were trained here and are in no file yet: save them as a run "
                               "first (Training tab, w), then save the session")  # fmt: skip
        return {"checkpoint": str(Path(saved[1]).resolve())}
    if request.checkpoint:
        return {"checkpoint": str(Path(request.checkpoint).resolve())}
    spec_for = getattr(source, "spec_for", None)
    if spec_for is None:  # a source without files (a test's)
        return {}
    spec = spec_for(request)
    for origin in ("checkpoint", "scenario", "weights"):
        path = getattr(spec, origin, None)
        if path:
            model = {origin: str(Path(path).resolve())}
            if origin == "weights":
                if spec.vocab:
                    model["vocab"] = str(Path(spec.vocab).resolve())
                if spec.prefix:
                    model["prefix"] = spec.prefix
                if spec.mapping:
                    model["map"] = [list(m) for m in spec.mapping]
            return model
    return {}


def gather(screen, saved_runs: dict) -> Session:
    """The session of the main screen: model, input, step, tab and what each pane keeps."""
    from textual.widgets import TabbedContent

    from rnn_tui.ui.panes import info_of_tab

    request = screen.request
    if request is None:
        raise SessionError("nothing to save yet: wait for the model")
    view = screen.view
    model = model_of(screen.source, request, saved_runs, view.trace if view is not None else None)
    fields = {name: getattr(request, name) for name in REQUEST_FIELDS}
    fields["checkpoint"] = None  # a run is the session's model (above), opened as the explorer's own
    if view is not None:
        where = dict(step=view.step, unit=view.unit, layer=view.layer, direction=view.direction,
                     matrix=view.matrix, all_maps=view.all_maps)  # fmt: skip
    else:
        where = {}
    info = info_of_tab(screen.query_one(TabbedContent).active or "")
    panes = {}
    for pane in screen.panes:
        state = pane.session_state() if hasattr(pane, "session_state") else None
        if state:
            panes[pane.TITLE] = state
    return Session(model=model, request=fields, view=where, tab=info.title if info else "", panes=panes)


def notes_of(screen) -> list[str]:
    """What the panes say a session of them does not keep (said when it is saved)."""
    notes = []
    for pane in screen.panes:
        note = pane.session_note() if hasattr(pane, "session_note") else None
        if note:
            notes.append(note)
    return notes


def spec_of(session: Session, dtype: str = "float32", device: str = "cpu"):
    """The engine Spec that opens the session's model (its file, or a fresh model of its request)."""
    from rnn_tui.engine.subject import Spec

    req, model = session.request, session.model
    return Spec(
        cell=req["cell"], activation=req["activation"], hidden=req["hidden"], layers=req["layers"],
        bidirectional=req["bidirectional"], seed=req["seed"], dtype=dtype, device=device,
        input=req["text"] or None, tokenize=req["tokenize"], task=None if req["task"] == "text" else req["task"],
        checkpoint=model.get("checkpoint"), scenario=model.get("scenario"), weights=model.get("weights"),
        vocab=model.get("vocab"), prefix=model.get("prefix"),
        mapping=tuple(tuple(m) for m in model.get("map", ())),
    )  # fmt: skip


def request_of(session: Session) -> TraceRequest:
    """The request the explorer opens on (a run the session names is the source's own model)."""
    fields = dict(session.request)
    if session.model.get("checkpoint"):
        fields["checkpoint"] = None
    return TraceRequest(**fields)


def tab_of(session: Session) -> str | None:
    """The id of the session's open tab; SessionError for a title no tab has."""
    from rnn_tui.ui.panes import PANES

    if not session.tab:
        return None
    for info in PANES:
        if info.title == session.tab:
            return info.tab_id
    raise SessionError(f"the session's tab {session.tab!r} is not one of {', '.join(p.title for p in PANES)}")


def unique_path(folder: Path, name: str) -> Path:
    """`folder/name`, or with a counter where that is taken: a save never overwrites a file."""
    path = folder / name
    n = 1
    while path.exists():
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return path


def save_action(screen) -> None:
    """The main screen's `S`: write the session beside the screenshots (never over a file), or,
    in a browser (`rnn-tui serve`), send it as a download and write nothing on the server."""
    import io
    import os
    import time

    from rnn_tui.engine.session import save_session, session_text
    from rnn_tui.safe_text import safe
    from rnn_tui.served import served
    from rnn_tui.ui.lab import lab_for

    try:
        session = gather(screen, lab_for(screen).saved_runs)
        text = session_text(session)
    except SessionError as error:
        screen.notify(safe(str(error)), title="session not saved", severity="error", timeout=6, markup=False)
        return
    notes = "".join(f"; {note}" for note in notes_of(screen))
    name = f"rnn-tui-session-{time.strftime('%Y%m%d-%H%M%S')}.json"
    app = screen.app
    if served() or app.is_web:
        if not app.is_web:  # served, yet not drawn in a browser: nowhere to send it
            screen.notify("sessions are sent to the browser, and this is not one", severity="error", markup=False)
            return
        app.deliver_text(io.StringIO(text), save_filename=name, open_method="download", mime_type="application/json")
        screen.notify(f"{name}: sent to your browser as a download{notes}", title="session",
                      timeout=8 if notes else 4, markup=False)
        return
    try:
        folder = Path(screen.screenshot_dir or os.getcwd()).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        path = save_session(unique_path(folder, name), session)
    except (OSError, SessionError) as error:
        screen.notify(safe(f"could not save the session: {error}"), severity="error", timeout=6, markup=False)
        return
    screen.notify(safe(f"saved {path}: rnn-tui --session {path} reopens it{notes}"), title="session",
                  timeout=10 if notes else 6, markup=False)


__all__ = ["Session", "SessionError", "gather", "model_of", "request_of", "spec_of", "tab_of"]
