"""`rnn-tui serve`: the explorer in web browsers, a process of its own for every visitor.

    rnn-tui serve                         http://127.0.0.1:8000, at most 30 visitors at once
    rnn-tui serve --port 9000 --max-sessions 8
    rnn-tui serve --lesson memory         every visitor opens that lesson
    rnn-tui serve -- --cell gru --hidden 8   explorer flags after `--`
    rnn-tui serve --runs runs/            visitors may open the runs in runs/ (Time-lapse, o)

A class arrives at once: one preloaded process has imported torch and the explorer and traced
the model (or set the lesson up) before the first visitor, and forks each visitor's explorer
from itself (`rnn_tui.serve`), so a visitor's first frame costs ~0.1 s of CPU and ~25 MiB of its
own, not a new Python that imports torch (~2.8 s, ~276 MiB). The page fetches nothing from
outside this server, so a classroom without internet works.

textual-serve has no authentication: whoever reaches the port drives a process on this machine.
So it binds 127.0.0.1 unless --host says otherwise (and then says so on stderr), and caps the
processes at --max-sessions: a visitor past the cap gets a polite page instead of a process.

No path a visitor chooses is read or written on the server (`rnn_tui.served`): runs open only by
name from the folder --runs names (none by default), and screenshots go to the visitor's browser
as downloads. Explorer flags are checked when the server starts and the model is built there,
once, so a bad flag or a damaged run is refused here, not in every visitor's browser.

Nothing heavy is imported at module level: `rnn-tui --help` lists this command for free.
"""

from __future__ import annotations

import argparse
import socket
import sys

from rnn_tui.engine.errors import EngineError
from rnn_tui.serve.errors import ServeError

DEFAULT_PORT = 8000
# measured with benchmarks/serve.py on a 2-core, 24 GiB machine (README, docs/classroom.md): 30
# visitors arriving together each saw a first frame within 5 s and the model within 30 s, and all
# the processes together took under 6 GiB
DEFAULT_MAX_SESSIONS = 30
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(sub) -> None:
    from rnn_tui.cli import int_in

    p = sub.add_parser(
        "serve",
        help="serve the explorer to web browsers (one process per visitor)",
        description="Serve the explorer to web browsers (textual-serve's page, which needs no internet). "
        "Every visitor gets an explorer of their own, forked from one process that has loaded the model "
        "before the first visitor arrives. There is no login: anyone who can reach the port can use it, so it "
        "listens on 127.0.0.1 unless --host says otherwise; reach it from elsewhere through an SSH "
        "tunnel (ssh -L 8000:localhost:8000 HOST). Explorer flags go after `--`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int_in(1, 65535), default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--max-sessions",
        type=int_in(1, 256),
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help=f"browser sessions (processes) at once; later visitors are turned away (default {DEFAULT_MAX_SESSIONS}, "
        "measured with benchmarks/serve.py on a 2-core, 24 GiB machine: 30 visitors arriving together each saw "
        "a first frame within 5 s and the model within 30 s (the last at 4.6 s and 4.7 s in the slower of two "
        "runs), in 0.9 GiB all told; at 60 the last "
        "first frame took 10.4 s, past the 5 s a class should wait)",
    )
    p.add_argument("--lesson", metavar="NAME", help="open this lesson for every visitor (see `rnn-tui lesson`)")
    p.add_argument("--theme", metavar="NAME", help="the visitors' theme (e.g. high-contrast)")
    p.add_argument("--public-url", metavar="URL", help="the URL visitors use, when a proxy sits in front")
    p.add_argument("--runs", metavar="DIR", help="a folder of run directories visitors may open by name "
                   "(the Time-lapse tab's o); without it, visitors open none")
    p.add_argument("explorer_args", nargs=argparse.REMAINDER, help="flags for the explorer, after `--`")
    p.set_defaults(run=run)


def check_explorer_args(args: argparse.Namespace) -> None:
    """Refuse bad explorer flags or an unknown lesson now, not once per visitor."""
    from rnn_tui.cli import UsageError, build_parser

    extra = explorer_args(args)
    if args.theme:
        from rnn_tui.ui.themes import THEMES

        if args.theme.removeprefix("rnn-") not in THEMES:
            raise ServeError(f"unknown theme {args.theme!r}: choose one of {', '.join(THEMES)}")
    if args.lesson and extra:
        raise ServeError("--lesson sets up its own model: give either --lesson or explorer flags, not both")
    if args.lesson:
        from rnn_tui.lessons import get_lesson

        get_lesson(args.lesson)  # LessonError (an EngineError) names the lessons there are
    if not extra:
        return
    try:
        parsed = build_parser().parse_args(extra)
    except UsageError as e:
        raise ServeError(f"bad explorer flags after `--`: {e}") from None
    except SystemExit:  # --help / --version
        raise ServeError("give explorer flags after `--`, not --help or --version") from None
    if getattr(parsed, "run", None) is not None and parsed.run.__module__ != "rnn_tui.cli":
        raise ServeError("only explorer flags go after `--` (use --lesson NAME for a lesson)")
    if getattr(parsed, "device", None) == "cuda":
        raise ServeError("--device cuda: serve computes on the CPU (every visitor is forked from one preloaded "
                         "process, and CUDA does not survive a fork); leave --device out")
    from rnn_tui.cli import given_flags, spec_from_args
    from rnn_tui.ui.launch import check, with_default_demo

    try:  # a missing file or conflicting flags: said now; what only the model build finds, by the preloader
        check(with_default_demo(spec_from_args(parsed), given_flags(parsed)), parsed.theme)
    except EngineError as e:
        raise ServeError(f"bad explorer flags after `--`: {e}") from None


def explorer_args(args: argparse.Namespace) -> list[str]:
    extra = list(args.explorer_args or [])
    return extra[1:] if extra and extra[0] == "--" else extra


def check_runs(path: str | None) -> str | None:
    """The --runs folder as an absolute path (None without it); ServeError unless it is a folder."""
    from pathlib import Path

    if path is None:
        return None
    from rnn_tui.safe_text import safe

    if not path.strip():
        raise ServeError("--runs is empty: give a folder of run directories")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ServeError(f"--runs: {safe(path)} is not a folder")
    return str(folder.resolve())


def url_host(host: str) -> str:
    """A host as it goes in a URL: an IPv6 address in brackets (http://[::1]:8000)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_port_free(host: str, port: int) -> None:
    """A clear message now for a port in use or an address this machine does not have."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ServeError(f"cannot listen on {host!r}: no such address on this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise ServeError(f"port {port} is already in use: choose another with --port") from None
            raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def setup_of(args: argparse.Namespace) -> dict:
    """What every visitor opens, as the preloader is told it (JSON)."""
    return {"lesson": args.lesson, "theme": args.theme, "explorer_args": explorer_args(args)}


def run(args: argparse.Namespace) -> int:
    import os

    from rnn_tui.served import RUNS_ENV, SERVED_ENV

    runs = check_runs(args.runs)
    check_explorer_args(args)
    check_port_free(args.host, args.port)
    # every visitor's process inherits these (through the preloader): it is served, and it may
    # open runs from this folder only (none when --runs is not given)
    os.environ[SERVED_ENV] = "1"
    if runs is None:
        os.environ.pop(RUNS_ENV, None)
    else:
        os.environ[RUNS_ENV] = runs
    if not is_loopback(args.host):
        print(
            f"rnn-tui serve: warning: listening on {url_host(args.host)}:{args.port}. There is no login: anyone "
            f"who can reach this port can use it and run up to {args.max_sessions} processes on this "
            "machine. Prefer the default 127.0.0.1 and an SSH tunnel (ssh -L "
            f"{args.port}:localhost:{args.port} HOST).",
            file=sys.stderr,
            flush=True,
        )
    server = make_server(args)
    try:
        server.start_preloader()  # imports, builds and warms up once; a model that fails, fails here
    except ServeError as e:
        if args.lesson:
            raise ServeError(f"lesson {args.lesson}: {e}") from None
        raise ServeError(f"bad explorer flags after `--`: {e}") from None
    try:
        code = server.serve()
    except OSError as e:  # lost a race for the port after the check
        raise ServeError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    if server.failure:
        print(f"rnn-tui serve: {server.failure}", file=sys.stderr, flush=True)
    return code


def make_server(args: argparse.Namespace):
    from rnn_tui.serve.server import ClassServer

    return ClassServer(
        setup_of(args),
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        public_url=args.public_url,
        title="rnn-tui" + (f" · lesson {args.lesson}" if args.lesson else ""),
    )
