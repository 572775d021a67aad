"""The preloader: one process that has done, once, what every visitor's explorer would do on
arrival, and forks a visitor for each websocket (copy-on-write).

    python -m rnn_tui.serve.preloader FD      started by the server (rnn_tui.serve.server):
                                              FD is its end of the control socket, stdin
                                              holds the setup as JSON

Before it says "ready" it has imported torch, Textual and every explorer module; built and
traced the model the explorer flags describe (or set up the lesson: a few seconds of training,
once for the class instead of once per visitor); and run the explorer once on Textual's web
driver into /dev/null, so the caches a first frame fills (parsed styles, colours, segments) are
filled in the pages every visitor shares. Then it freezes the heap (`gc.freeze()`: a visitor's
garbage collector never walks, and so never copies, the pages of those objects) and waits.

It never starts a thread, and checks that none is running before each fork: a fork copies only
the forking thread, and a lock another thread held (torch's, the allocator's) would stay locked
in the child for ever. torch and the BLAS libraries are set to one thread before they load
(`rnn_tui.engine.threads`), so they start none.

Explorer flags and a lesson name were checked by the server already; what only building the
model finds (a damaged run, weights that do not fit) comes back as one `error` line, and the
server refuses to start, once, instead of every visitor meeting it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from rnn_tui.serve import protocol

WARM_SIZE = (120, 36)  # a browser window's terminal, about; the size the warm-up draws at
WARM_TIMEOUT = 60.0  # seconds the warm-up may take to show the model
STOP_GRACE = 3.0  # seconds visitors get to exit on SIGTERM before SIGKILL


@dataclass
class Prepared:
    """What each visitor's process starts from: a function that builds its app."""

    make_app: object  # () -> textual App
    what: str  # for the ready line: "the explorer on lstm H=128 (64 steps)", "lesson memory"
    warnings: list[str] = field(default_factory=list)


def prepare(setup: dict) -> Prepared:
    """Import, build and trace, as every visitor would; an EngineError (one line) for what fails."""
    from rnn_tui.engine import threads

    threads.apply()  # before numpy and torch load: they read the thread variables once
    import torch  # noqa: F401 - loaded once here, shared by every visitor

    threads.apply()
    import_everything()
    from rnn_tui.serve.styles import share_parsed_styles

    share_parsed_styles()  # the warm-up parses the styles once; visitors find them parsed
    theme = setup.get("theme")
    if setup.get("lesson"):
        prepared = prepare_lesson(setup["lesson"], theme or "dark")
    else:
        prepared = prepare_explorer(list(setup.get("explorer_args") or []), theme)
    return prepared


def prepare_explorer(args: list[str], theme: str | None) -> Prepared:
    from rnn_tui.cli import build_parser, spec_from_args
    from rnn_tui.ui.app import ExplorerApp
    from rnn_tui.ui.launch import check, with_default_demo

    from rnn_tui.serve.prepared import PreparedSource

    parsed = build_parser().parse_args(args)  # the server parsed these already
    theme = theme or parsed.theme or "dark"  # serve's --theme, else the explorer flags' own
    spec = with_default_demo(spec_from_args(parsed))
    warnings = []
    if spec.device != "cpu":  # auto (the server refused cuda): visitors are forks, and CUDA does not survive one
        spec = spec.replace(device="cpu")
        warnings.append("--device auto: every visitor computes on the CPU (CUDA does not survive a fork)")
    check(spec, theme)
    source = PreparedSource.from_spec(spec)
    request = source.initial_request()
    source.prepare(request)  # the model built and traced, once for everyone

    def make_app():
        return ExplorerApp(source, request, theme=theme)

    return Prepared(make_app, source.describe(), warnings)


def prepare_lesson(name: str, theme: str) -> Prepared:
    from rnn_tui.ui.lesson_app import LessonApp
    from rnn_tui.ui.screens.lesson_source import LessonSource
    from rnn_tui.ui.source import EngineSource

    lesson_source = LessonSource(EngineSource(dtype="float64"), name)
    run = lesson_source.ensure_run()  # built, trained and traced once, for the whole class

    def make_app():
        return LessonApp(lesson_source.inner, name, theme=theme, lesson_source=lesson_source)

    return Prepared(make_app, f"lesson {name}, set up in {run.elapsed:.2f} s")


def import_everything() -> None:
    """Every module a visitor may reach (each tab, the palette, help, lessons, training): in a
    process of its own the explorer imports them when first needed; here they are imported once,
    in the pages every visitor shares."""
    import importlib
    import pkgutil

    import rnn_tui

    skip = ("rnn_tui.commands", "rnn_tui.serve.server", "rnn_tui.__main__")
    for info in pkgutil.walk_packages(rnn_tui.__path__, "rnn_tui."):
        if info.name.startswith(skip):
            continue
        importlib.import_module(info.name)
    for name in ("plotext", "textual_plotext", "textual.widgets._tabbed_content", "textual.command"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a visitor that needs it imports it, and says so if it cannot


def warm_up(make_app, size: tuple[int, int] = WARM_SIZE) -> None:
    """Run the visitor's app once, on the web driver, into /dev/null, until the model is drawn.

    Raises ServeError when the app stops with an error: every visitor would meet the same."""
    import asyncio

    from rnn_tui.serve.errors import ServeError

    saved = dict(os.environ)  # Textual takes NO_COLOR out of the environment; visitors keep it
    os.environ["COLUMNS"], os.environ["ROWS"] = str(size[0]), str(size[1])
    app = make_app()

    async def until_drawn(pilot) -> None:
        deadline = time.monotonic() + WARM_TIMEOUT
        while getattr(pilot.app.screen, "view", None) is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        pilot.app.exit()

    loop = asyncio.new_event_loop()
    try:
        app.run(loop=loop, auto_pilot=until_drawn)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        os.environ.clear()
        os.environ.update(saved)
    if app.return_code:
        raise ServeError("the explorer stopped with an error while drawing its first frame "
                         "(run the same flags as `rnn-tui ...` in a terminal to see it)")
    join_threads()


def join_threads(timeout: float = 30.0) -> None:
    """Wait for the threads the warm-up started (its workers) to end."""
    import threading

    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def thread_count() -> int:
    """Threads in this process, native ones included (/proc/self/task)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


# ---- the loop ------------------------------------------------------------------------------
class Preloader:
    """Forks visitors on request, reaps them, tells the server; single-threaded, blocking."""

    def __init__(self, sock, prepared: Prepared, environ: dict[str, str]) -> None:
        import selectors

        self.sock = sock
        self.prepared = prepared
        self.environ = environ  # every visitor's environment (COLUMNS and ROWS added per visitor)
        self.visitors: dict[int, int] = {}  # pid -> visitor id
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select through the pipe
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to act on

    def _on_term(self, *_) -> None:
        self.stopping = True

    def serve(self) -> None:
        server = os.getppid()
        while not self.stopping and os.getppid() == server:
            for key, _ in self.selector.select(1.0):
                if key.fileobj is self.sock:
                    self.handle_messages()
                else:
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
            self.reap()
        self.stop_all()

    def handle_messages(self) -> None:
        try:
            message, fds = protocol.receive(self.sock)
        except BlockingIOError:
            return
        except (protocol.ProtocolError, OSError):
            self.stopping = True
            return
        if message is None:  # the server is gone
            self.stopping = True
            return
        op = message.get("op")
        if op == "open" and len(fds) == 3:
            self.open_visitor(message, fds)
        elif op == "kill":
            self.kill_visitor(message.get("id"))
        elif op == "stop":
            self.stopping = True
        protocol.close_all(fds)

    def open_visitor(self, message: dict, fds: list[int]) -> None:
        vid = message.get("id")
        width, height = clamp_size(message.get("width"), message.get("height"))
        wait_single_threaded()
        pid = os.fork()
        if pid == 0:  # the visitor
            try:
                self.selector.close()
                self.sock.detach()  # its descriptor is closed with the others, not by this object
                from rnn_tui.serve.visitor import become_visitor, run_visitor

                become_visitor(fds, width, height, self.environ)
                run_visitor(self.prepared.make_app)
            except BaseException:  # noqa: BLE001 - on the visitor's stderr, for the server's log
                import traceback

                traceback.print_exc()
            finally:
                os._exit(1)  # run_visitor exits itself; this is for a failure before it
        self.visitors[pid] = vid
        self.tell({"op": "opened", "id": vid, "pid": pid})

    def kill_visitor(self, vid) -> None:
        for pid, v in self.visitors.items():
            if v == vid:
                kill_group(pid, signal.SIGKILL)

    def reap(self) -> None:
        while self.visitors:
            try:  # look first (WNOWAIT): while the visitor is a zombie its pid is not reused
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            kill_group(pid, signal.SIGKILL)  # anything the visitor left behind in its group
            _, status = os.waitpid(pid, 0)
            vid = self.visitors.pop(pid, None)
            self.tell({"op": "exited", "id": vid, "pid": pid, "status": os.waitstatus_to_exitcode(status)})

    def tell(self, message: dict) -> None:
        if self.stopping:
            return
        try:
            protocol.send(self.sock, message)
        except OSError:  # the server is gone
            self.stopping = True

    def stop_all(self) -> None:
        """SIGTERM to every visitor (Textual exits cleanly on it), SIGKILL to those still there
        after STOP_GRACE, and wait for them all."""
        for pid in list(self.visitors):
            kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while self.visitors and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.05)
        for pid in list(self.visitors):
            kill_group(pid, signal.SIGKILL)
        while self.visitors:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self.visitors.pop(pid, None)


def clamp_size(width, height) -> tuple[int, int]:
    """A terminal size from the visitor's query string, kept to what a screen can be."""
    def one(value, default: int) -> int:
        return min(1000, max(10, value)) if isinstance(value, int) and not isinstance(value, bool) else default

    return one(width, 80), one(height, 24)


def kill_group(pid: int, sig: int) -> None:
    """`sig` to the visitor's process group (its own: it called setsid), else to the process."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_single_threaded(timeout: float = 10.0) -> None:
    """Forking with another thread alive copies none of it but all of its locks: wait for it."""
    deadline = time.monotonic() + timeout
    while thread_count() > 1 and time.monotonic() < deadline:
        join_threads(0.1)


def error_line(error: BaseException) -> str:
    """One line for the operator: a user error's own message, else its type and message."""
    from rnn_tui.cli import UsageError
    from rnn_tui.engine.errors import EngineError
    from rnn_tui.safe_text import safe

    text = str(error).strip()
    text = safe(text.splitlines()[0]) if text else ""
    if isinstance(error, (EngineError, UsageError)) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def main(argv: list[str] | None = None) -> int:
    import gc
    import socket

    from rnn_tui.engine.errors import EngineError
    from rnn_tui.safe_text import safe
    from rnn_tui.serve.errors import ServeError
    from rnn_tui.serve.visitor import die_with_parent, set_name

    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    set_name(b"rnn-tui preload")
    server = os.getppid()
    die_with_parent(signal.SIGTERM)  # the server gone, whatever the way: end the visitors too
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    t0 = time.perf_counter()
    try:
        setup = json.loads(sys.stdin.read() or "{}")
        quiet, held = os.pipe()  # the warm-up's web driver reads stdin: a pipe nobody writes to
        os.dup2(quiet, 0)  # (epoll takes no /dev/null; at its end the visitor driver would quit)
        os.close(quiet)
        prepared = prepare(setup)
        environ = dict(os.environ)
        warm_up(prepared.make_app)
        os.close(held)
        if os.getppid() != server:  # the server went while the warm-up held its signals
            return 1
        gc.collect()
        gc.freeze()  # out of the collector's sight: a visitor never walks (and copies) these pages
    except BaseException as e:  # noqa: BLE001 - one line for the operator, never a traceback
        protocol.send(sock, {"op": "error", "message": error_line(e)})
        return 2
    wait_single_threaded()
    threads = thread_count()
    warnings = list(prepared.warnings)
    if threads != 1:
        warnings.append(f"{threads} threads in the preloader: forking may copy a held lock")
    warning = "; ".join(warnings)
    preloader = Preloader(sock, prepared, environ)
    preloader.install_signals()
    protocol.send(sock, {"op": "ready", "pid": os.getpid(), "seconds": round(time.perf_counter() - t0, 2),
                         "threads": threads, "warning": warning, "what": prepared.what})
    preloader.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
