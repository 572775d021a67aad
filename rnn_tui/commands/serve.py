"""`rnn-tui serve`: the explorer in a web browser, one process per visitor (textual-serve).

    rnn-tui serve                         http://127.0.0.1:8000, at most 4 visitors at once
    rnn-tui serve --port 9000 --max-sessions 8
    rnn-tui serve --lesson memory         every visitor opens that lesson
    rnn-tui serve -- --cell gru --hidden 8   explorer flags after `--`
    rnn-tui serve --runs runs/            visitors may open the runs in runs/ (Time-lapse, o)

textual-serve has no authentication: whoever reaches the port drives a process on this machine.
So it binds 127.0.0.1 unless --host says otherwise (and then says so on stderr), and caps the
processes at --max-sessions: a visitor past the cap gets a polite page instead of a process.

No path a visitor chooses is read or written on the server (`rnn_tui.served`): runs open only by
name from the folder --runs names (none by default), and screenshots go to the visitor's browser
as downloads. Explorer flags are checked in full when the server starts (the model is built
once), so a bad one is refused here, not in every visitor's browser.

Nothing heavy is imported at module level: `rnn-tui --help` lists this command for free.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import sys

from rnn_tui.engine.errors import EngineError

DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 4
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FULL_TITLE = "rnn-tui is full"


class ServeError(EngineError):
    """A serve setting that cannot be used (a port in use, a bad flag for the explorer)."""


def add_parser(sub) -> None:
    from rnn_tui.cli import int_in

    p = sub.add_parser(
        "serve",
        help="serve the explorer to web browsers (one process per visitor)",
        description="Serve the explorer to web browsers with textual-serve. Every visitor gets a "
        "process of their own. There is no login: anyone who can reach the port can use it, so it "
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
        help=f"browser sessions (processes) at once; later visitors are turned away (default {DEFAULT_MAX_SESSIONS})",
    )
    p.add_argument("--lesson", metavar="NAME", help="open this lesson for every visitor (see `rnn-tui lesson`)")
    p.add_argument("--theme", metavar="NAME", help="the visitors' theme (e.g. high-contrast)")
    p.add_argument("--public-url", metavar="URL", help="the URL visitors use, when a proxy sits in front")
    p.add_argument("--runs", metavar="DIR", help="a folder of run directories visitors may open by name "
                   "(the Time-lapse tab's o); without it, visitors open none")
    p.add_argument("explorer_args", nargs=argparse.REMAINDER, help="flags for the explorer, after `--`")
    p.set_defaults(run=run)


def app_command(args: argparse.Namespace) -> str:
    """The shell command each visitor's process runs: this Python, this package, the flags given."""
    extra = list(args.explorer_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    theme = ["--theme", args.theme] if args.theme else []
    if args.lesson:
        return shlex.join([sys.executable, "-m", "rnn_tui", "lesson", args.lesson, *theme])
    return shlex.join([sys.executable, "-m", "rnn_tui", *theme, *extra])


def check_explorer_args(args: argparse.Namespace) -> None:
    """Refuse bad explorer flags or an unknown lesson now, not once per visitor."""
    from rnn_tui.cli import UsageError, build_parser

    extra = list(args.explorer_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
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
    from rnn_tui.cli import given_flags, spec_from_args
    from rnn_tui.ui.launch import check, with_default_demo

    try:  # a missing file, a damaged run or conflicting flags: say so now, not in every visitor's browser
        spec = with_default_demo(spec_from_args(parsed), given_flags(parsed))
        check(spec, parsed.theme)
        open_explorer_subject(spec)
    except EngineError as e:
        raise ServeError(f"bad explorer flags after `--`: {e}") from None


def open_explorer_subject(spec) -> None:
    """Build what the explorer would open (model, sequence) and size its trace, as every visitor's
    process will: the whole check, so no visitor meets an error the server could have found."""
    from rnn_tui.engine.subject import check_trace_size, open_subject

    subject = open_subject(spec)
    if subject.encdec_task is None:
        check_trace_size(subject.config, len(subject.x), subject.dtype)


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


def run(args: argparse.Namespace) -> int:
    import os

    from rnn_tui.served import RUNS_ENV, SERVED_ENV

    runs = check_runs(args.runs)
    check_explorer_args(args)
    check_port_free(args.host, args.port)
    # every visitor's process inherits these (textual-serve copies this environment): it is served,
    # and it may open runs from this folder only (none when --runs is not given)
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
        server.serve()
    except OSError as e:  # lost a race for the port after the check
        raise ServeError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0


def make_server(args: argparse.Namespace):
    return server_class()(
        app_command(args),
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        public_url=args.public_url,
        title="rnn-tui" + (f" · lesson {args.lesson}" if args.lesson else ""),
    )


# ---- the server: textual-serve's, with a cap on sessions -------------------------------------
FULL_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="20">
<title>{title}</title>
<style>body{{background:#0c181f;color:#eee;font-family:monospace;display:flex;height:90vh;
align-items:center;justify-content:center;text-align:center}}</style></head>
<body><div><h1>{title}</h1><p>All {cap} sessions are in use.</p>
<p>This page tries again by itself every 20 seconds; a place opens when someone closes their tab.</p>
</div></body></html>
"""


def full_message(cap: int) -> str:
    return (
        f"{FULL_TITLE}: all {cap} sessions are in use. "
        "Reload this page in a minute; a place opens when someone closes their tab."
    )


def server_class():
    """textual-serve's Server with a cap on concurrent sessions (built on demand: importing
    textual-serve pulls in aiohttp, which `rnn-tui --help` should not pay for).

    Public hooks only: `handle_index` (the page) and `handle_websocket` (one visitor's process).
    """
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.server import Server, to_int

    class CappedServer(Server):
        def __init__(self, command: str, *, max_sessions: int, public_url: str | None = None, **kwargs):
            super().__init__(command, public_url=public_url, **kwargs)
            self.max_sessions = max_sessions
            self.sessions = 0  # visitors with a process right now
            self.turned_away = 0
            self.fixed_public_url = public_url  # None: each page uses the address its visitor typed

        @property
        def full(self) -> bool:
            return self.sessions >= self.max_sessions

        def base_url(self, request: web.Request) -> str:
            """The address the visitor used (so an SSH tunnel on another port works), unless
            --public-url fixes it."""
            if self.fixed_public_url:
                return self.fixed_public_url.rstrip("/")
            return f"{request.scheme}://{request.host}"

        async def handle_index(self, request: web.Request) -> web.Response:
            if self.full:
                self.turned_away += 1
                page = FULL_PAGE.format(title=FULL_TITLE, cap=self.max_sessions)
                return web.Response(text=page, status=503, content_type="text/html", headers={"Retry-After": "20"})
            base = self.base_url(request)
            router = request.app.router
            ws = "wss:" if base.startswith("https") else "ws:"
            context = {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": ws + (base + str(router["websocket"].url_for())).split(":", 1)[1],
                "config": {"static": {"url": base + str(router["static"].url_for(filename="/")).rstrip("/") + "/"}},
                "application": {"name": self.title},
            }
            return aiohttp_jinja2.render_template("app_index.html", request, context)

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            if not self.full:
                self.sessions += 1
                try:
                    return await super().handle_websocket(request)
                finally:
                    self.sessions -= 1
            # past the cap: say so in the visitor's terminal and start nothing
            self.turned_away += 1
            websocket = web.WebSocketResponse(heartbeat=15)
            await websocket.prepare(request)
            text = "\r\n  " + full_message(self.max_sessions).replace(". ", ".\r\n  ") + "\r\n"
            await websocket.send_bytes(text.encode("utf-8"))
            async for _ in websocket:  # keep the message on screen until the tab closes
                pass
            return websocket

        async def on_startup(self, app: web.Application) -> None:
            from rich.markup import escape

            from rnn_tui.safe_text import safe

            where = escape(safe(self.fixed_public_url or f"http://{url_host(self.host)}:{self.port}"))  # an address is text
            self.console.print(f"rnn-tui: serving the explorer on {where}  (at most {self.max_sessions} sessions)")
            self.console.print("[cyan]Press Ctrl+C to quit")

    return CappedServer
