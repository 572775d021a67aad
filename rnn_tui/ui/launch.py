"""`rnn-tui` with no subcommand: the explorer on the model and input the command line describes.

The command line's flags arrive as an engine `Spec` (the same one `rnn-tui trace` reads). What
can be checked without torch is checked here, before the terminal is taken over, so a typo gets
the CLI's one-line error and exit code 2; the model itself is built in the explorer's worker
after its first frame, and a failure there is shown in the explorer.
"""

from __future__ import annotations

from pathlib import Path

from rnn_tui.engine.subject import Spec, SubjectError
from rnn_tui.ui.themes import THEMES

# `rnn-tui` with no flags opens a trained model: the character LSTM the repository ships
DEMO = Path(__file__).resolve().parents[2] / "assets" / "models" / "chars-lstm"


def with_default_demo(spec: Spec, given: set[str] | frozenset[str] | None = None) -> Spec:
    """The demo run directory when the command line chose nothing (and the demo is there).

    given: the model flags that were typed (`cli.given_flags`); a flag typed with its default's
    value (`--hidden 16`, `--seed 0`) is a choice made, so no demo. Without it (a caller holding
    only a Spec) a spec equal to the defaults counts as nothing chosen. --device is no choice of
    model: `rnn-tui --device cuda` opens the demo too.
    """
    chosen = bool(given) if given is not None else spec.replace(device="cpu") != Spec()
    if not chosen and (DEMO / "model.safetensors").is_file():
        return spec.replace(checkpoint=str(DEMO))
    return spec


def check(spec: Spec, theme: str | None) -> None:
    """Raise SubjectError (an EngineError: one line, exit 2) for what is wrong on its face."""
    if theme is not None and theme.removeprefix("rnn-") not in THEMES:
        raise SubjectError(f"unknown theme {theme!r}: choose one of {', '.join(THEMES)}")
    given = [name for name in ("scenario", "checkpoint", "weights") if getattr(spec, name)]
    if len(given) > 1:
        raise SubjectError(f"give only one of --{' / --'.join(given)}")
    if spec.scenario:
        # a FIFO or a device is no missing file: reading names what it is
        if not Path(spec.scenario).exists():
            raise SubjectError(f"--scenario: no such file: {spec.scenario}")
        if Path(spec.scenario).is_dir():
            raise SubjectError(f"--scenario: {spec.scenario} is a folder, not a file")
    if spec.weights:  # a FIFO or a device is named as such, not "no such file"
        from rnn_tui.engine.files import check_file
        from rnn_tui.engine.weights import MAX_WEIGHTS_BYTES

        check_file(spec.weights, "--weights", MAX_WEIGHTS_BYTES)
    if spec.vocab:
        from rnn_tui.engine.vocab import load_vocab  # pure Python: a bad vocabulary is one line before the screen

        load_vocab(spec.vocab)
    if spec.device == "cuda":  # a missing GPU is one line before the screen (torch loads only for this)
        from rnn_tui.engine.device import resolve

        resolve(spec.device)
    if spec.checkpoint and not Path(spec.checkpoint).is_dir():
        raise SubjectError(f"--checkpoint: no such run directory: {spec.checkpoint}")
    if spec.task:
        from rnn_tui.engine.tasks import TASKS  # torch-free catalog

        if spec.task not in TASKS:
            raise SubjectError(f"unknown task {spec.task!r}: choose one of {', '.join(TASKS)}")
    if spec.scenario:
        from rnn_tui.engine.scenario import load_scenario  # numpy and tomllib only

        load_scenario(spec.scenario)


def launch(spec: Spec, theme: str | None = None, given: set[str] | None = None) -> int:
    """Open the explorer on `spec` (given: the model flags typed, see `with_default_demo`);
    returns the exit code when the person quits."""
    from rnn_tui.ui.app import run_explorer
    from rnn_tui.ui.source import EngineSource

    spec = with_default_demo(spec, given)
    check(spec, theme)
    source = EngineSource.from_spec(spec)
    return run_explorer(source, source.initial_request(), theme=theme or "dark")


def open_session(path: str, given: set[str], theme: str | None = None, device: str = "cpu"):
    """(spec, request, session) of a saved session (`rnn-tui --session FILE`), checked in full
    before the terminal is taken over: a bad file, a tab no explorer has or a model that is gone
    is one line (an EngineError), exit code 2."""
    from rnn_tui.engine.session import SessionError, read_session
    from rnn_tui.ui.session import request_of, spec_of, tab_of

    if given:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in sorted(given))
        raise SessionError(f"--session FILE names its own model and input: leave out {flags}")
    from rnn_tui.served import runs_folder, served

    session = read_session(path, runs=runs_folder() if served() else None)
    tab_of(session)
    spec = spec_of(session, device=device)
    check(spec, theme)
    return spec, request_of(session), session


def launch_session(opened, theme: str | None = None) -> int:
    """Open the explorer on a session read by `open_session`; returns the exit code."""
    from rnn_tui.ui.app import run_explorer
    from rnn_tui.ui.source import EngineSource

    spec, request, session = opened
    return run_explorer(EngineSource.from_spec(spec), request, theme=theme or "dark", restore=session)
