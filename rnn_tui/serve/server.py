"""The web side of `rnn-tui serve`: textual-serve's page and websocket protocol, with a visitor's
process forked by the preloader instead of a new Python started per visitor.

    server = ClassServer(setup, host=..., port=..., max_sessions=30, title="rnn-tui")
    server.start_preloader()        # blocking: imports, builds, warms up; ServeError on failure
    server.serve()                  # until SIGINT or SIGTERM; then every visitor is ended

Per visitor (`VisitorService`, textual-serve's AppService with another launch): three pipes;
their far ends go to the preloader with an `open` message; the preloader forks, and the visitor
speaks Textual's web-driver packets on them exactly as textual-serve's own subprocess would. The
server adds what a class needs:

- a cap (`max_sessions`): the page and the websocket past it say politely that the places are
  taken; a place frees when a visitor's tab closes and its process has ended;
- a visitor that does not answer the quit asked of it when its tab closes (an endless loop, a
  hang) is ended by the preloader after QUIT_GRACE seconds; one that crashes closes its own tab's
  session ("Session ended", Restart) and is named in the log with its last error line;
- the operator's status line (visitors connected, memory of all the processes together);
- a page that fetches nothing from outside this server (templates/app_index.html);
- on SIGINT or SIGTERM every visitor is ended and the preloader with them before the server exits.

Imports aiohttp and textual-serve, never torch or the explorer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from rnn_tui.safe_text import safe
from rnn_tui.serve import memory, protocol
from rnn_tui.serve.errors import ServeError

log = logging.getLogger("rnn-tui.serve")

TEMPLATES = Path(__file__).resolve().parent / "templates"
FULL_TITLE = "rnn-tui is full"
READY_TIMEOUT = 300.0  # seconds the preloader may take to build, train (a lesson) and warm up
OPEN_TIMEOUT = 15.0  # seconds from asking for a visitor's process to hearing its pid
QUIT_GRACE = 3.0  # seconds a visitor has to exit after its tab closes before it is killed
SEND_TIMEOUT = 10.0  # seconds a write to a visitor's stdin may wait before the visitor counts as hung
STOP_TIMEOUT = 8.0  # seconds for every visitor and the preloader to end when the server stops
STATUS_EVERY = 2.0  # seconds between two looks at the visitors and their memory
STDERR_KEPT = 16 * 1024  # bytes of a visitor's stderr kept for the log line when it fails

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


def url_host(host: str) -> str:
    """A host as it goes in a URL: an IPv6 address in brackets (http://[::1]:8000)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def visitor_environment() -> dict[str, str]:
    """What textual-serve puts in its app processes' environment (AppService._build_environment),
    given to the preloader, which must have it before Textual is imported (Textual reads these
    once). The driver is the web driver, with an end-of-input rule (rnn_tui.serve.visitor)."""
    from importlib.metadata import version

    env = dict(os.environ)
    env.update(
        TEXTUAL_DRIVER="rnn_tui.serve.visitor:VisitorDriver",
        TEXTUAL_FPS="60",
        TEXTUAL_COLOR_SYSTEM="truecolor",
        TERM_PROGRAM="textual",
        TERM_PROGRAM_VERSION=version("textual-serve"),
        PYTHONUNBUFFERED="1",
    )
    return env


# ---- the preloader, from the server's side ---------------------------------------------------
class PreloaderClient:
    """Starts the preloader, asks it for visitors, hears when they end."""

    def __init__(self, setup: dict) -> None:
        self.setup = setup
        self.sock, self._far = protocol.pair()
        self.proc: subprocess.Popen | None = None
        self.ready: dict = {}
        self.opened: dict[int, asyncio.Future] = {}  # visitor id -> future of its pid
        self.exited: dict[int, asyncio.Future] = {}  # visitor id -> future of its exit status
        self.pids: dict[int, int] = {}  # visitor id -> pid, while it runs
        self.gone = False
        self.on_gone = None  # called once when the preloader ends on its own

    def start(self, timeout: float = READY_TIMEOUT) -> dict:
        """Start it and wait until it is ready (blocking: before the server listens).
        ServeError with its one line when it cannot prepare what visitors need."""
        import json
        import select

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnn_tui.serve.preloader", str(self._far.fileno())],
            pass_fds=(self._far.fileno(),), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=visitor_environment(), start_new_session=True,
        )  # fmt: skip
        self._far.close()
        self.proc.stdin.write(json.dumps(self.setup).encode("utf-8"))
        self.proc.stdin.close()
        self._stderr = self.proc.stderr.fileno()
        os.set_blocking(self._stderr, False)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.terminate()
                raise ServeError(f"the explorer was not ready for visitors within {timeout:.0f} s")
            ready, _, _ = select.select([self.sock, self._stderr], [], [], min(left, 1.0))
            if self._stderr in ready:
                self.drain_stderr()
            if self.sock in ready:
                try:
                    message, fds = protocol.receive(self.sock)
                except protocol.ProtocolError as e:
                    self.terminate()
                    raise ServeError(f"the preloader sent {e}") from None
                protocol.close_all(fds)
                if message is None or message.get("op") == "error":
                    self.wait(5.0)  # it exits after saying why
                    self.terminate()
                    why = (message or {}).get("message") or f"it exited with code {self.proc.poll()}"
                    raise ServeError(safe(why))
                if message.get("op") == "ready":
                    self.ready = message
                    self.sock.setblocking(False)
                    return message
            elif self.proc.poll() is not None:
                self.drain_stderr()
                raise ServeError(f"the preloader exited with code {self.proc.returncode} before it was ready")

    def drain_stderr(self) -> None:
        """What the preloader wrote on stderr (nothing, normally), to the log, made safe."""
        try:
            data = os.read(self._stderr, 65536)
        except (BlockingIOError, OSError):
            return
        for line in data.decode("utf-8", "replace").splitlines():
            if line.strip():
                log.warning("preloader: %s", safe(line))

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.sock.fileno(), self._readable)
        loop.add_reader(self._stderr, self.drain_stderr)

    def detach(self, loop: asyncio.AbstractEventLoop) -> None:
        for fd in (self.sock.fileno(), self._stderr):
            try:
                loop.remove_reader(fd)
            except (ValueError, OSError):
                pass

    def _readable(self) -> None:
        while True:
            try:
                message, fds = protocol.receive(self.sock)
            except BlockingIOError:
                return
            except (protocol.ProtocolError, OSError):
                message, fds = None, []
            protocol.close_all(fds)
            if message is None:
                self._lost()
                return
            vid = message.get("id")
            if message.get("op") == "opened":
                self.pids[vid] = message.get("pid")
                future = self.opened.pop(vid, None)
                if future is not None and not future.done():
                    future.set_result(message.get("pid"))
            elif message.get("op") == "exited":
                self.pids.pop(vid, None)
                future = self.exited.get(vid)
                if future is not None and not future.done():
                    future.set_result(message.get("status"))

    def _lost(self) -> None:
        """The preloader is gone (it ends only when told to): every visitor went with it."""
        loop = asyncio.get_running_loop()
        self.detach(loop)
        if self.gone:
            return
        self.gone = True
        for futures in (self.opened, self.exited):
            for future in futures.values():
                if not future.done():
                    future.set_exception(ServeError("the preloader has stopped"))
        if self.on_gone is not None:
            self.on_gone()

    async def open(self, vid: int, width: int, height: int, fds: list[int]) -> int:
        """Ask for visitor `vid`'s process on these pipe ends; its pid."""
        if self.gone:
            raise ServeError("the preloader has stopped")
        loop = asyncio.get_running_loop()
        future = self.opened[vid] = loop.create_future()
        self.exited[vid] = loop.create_future()
        await self._send({"op": "open", "id": vid, "width": width, "height": height}, fds)
        try:
            return await asyncio.wait_for(future, OPEN_TIMEOUT)
        finally:
            self.opened.pop(vid, None)

    def kill(self, vid: int) -> None:
        if not self.gone:
            try:
                protocol.send(self.sock, {"op": "kill", "id": vid})
            except OSError:
                pass

    async def wait_exited(self, vid: int, timeout: float) -> int | None:
        """Visitor `vid`'s exit status once the preloader has reaped it (None: not heard)."""
        future = self.exited.get(vid)
        if future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except (asyncio.TimeoutError, ServeError):
            return None
        finally:
            if future.done():
                self.exited.pop(vid, None)

    async def _send(self, message: dict, fds: list[int] = ()) -> None:
        for _ in range(200):  # the socket is non-blocking: a full buffer is a moment's wait
            try:
                protocol.send(self.sock, message, fds)
                return
            except BlockingIOError:
                await asyncio.sleep(0.01)
        raise ServeError("the preloader does not answer")

    def stop(self) -> None:
        """Ask it to end every visitor and exit (closing the socket says the same)."""
        if not self.gone:
            try:
                protocol.send(self.sock, {"op": "stop"})
            except OSError:
                pass

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        """End it now, with its visitors (it ends them on SIGTERM; SIGKILL if it will not)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        if self.wait(STOP_TIMEOUT) is None:
            self.proc.kill()
            self.proc.wait()


# ---- one visitor -----------------------------------------------------------------------------
class VisitorProcess:
    """What textual-serve's AppService reads of a subprocess: stdin, stdout, stderr streams."""

    def __init__(self, pid: int, stdin, stdout, stderr) -> None:
        self.pid, self.stdin, self.stdout, self.stderr = pid, stdin, stdout, stderr


def empty_reader() -> asyncio.StreamReader:
    """A stream at its end (AppService copies a process's stderr to the server's stdout raw; a
    visitor's stderr is read here instead, and logged made safe)."""
    reader = asyncio.StreamReader()
    reader.feed_eof()
    return reader


async def read_pipe(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    return reader


async def write_pipe(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.connect_write_pipe(lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
                                                     os.fdopen(fd, "wb", buffering=0))  # fmt: skip
    return asyncio.StreamWriter(transport, proto, None, loop)


class VisitorService(AppService):
    """textual-serve's AppService for one visitor, launched by the preloader's fork."""

    def __init__(self, server: "ClassServer", vid: int, **kwargs) -> None:
        super().__init__("rnn-tui visitor", **kwargs)
        self.server = server
        self.vid = vid
        self.pid: int | None = None
        self.stderr_tail = b""
        self._stderr_task: asyncio.Task | None = None
        self.killed = False

    async def _open_app_process(self, width: int = 80, height: int = 24) -> VisitorProcess:
        pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr: (read end, write end)
        far = [pipes[0][0], pipes[1][1], pipes[2][1]]
        near = [pipes[0][1], pipes[1][0], pipes[2][0]]
        try:
            self.pid = await self.server.preloader.open(self.vid, width, height, far)
        except BaseException:
            protocol.close_all(near)
            raise
        finally:
            protocol.close_all(far)
        stdin = await write_pipe(near[0])
        stdout = await read_pipe(near[1])
        stderr = await read_pipe(near[2])
        self._stderr_task = asyncio.create_task(self._keep_stderr(stderr))
        self._process = VisitorProcess(self.pid, stdin, stdout, empty_reader())
        self._stdin = stdin
        return self._process

    async def _keep_stderr(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(4096):
            self.stderr_tail = (self.stderr_tail + data)[-STDERR_KEPT:]

    async def start(self, width: int, height: int) -> None:
        await self._open_app_process(width, height)
        self._task = asyncio.create_task(self.run())
        # the visitor's process gone (crashed, killed, or quit from inside): close its websocket,
        # so the page says "Session ended" instead of showing a screen that no longer answers
        self._task.add_done_callback(lambda _: asyncio.ensure_future(self.remote_close()))

    async def _write(self, packet: bytes) -> bool:
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(packet)
            await asyncio.wait_for(stdin.drain(), SEND_TIMEOUT)
        except asyncio.TimeoutError:  # it reads nothing: hung; end it
            self.kill()
            return False
        except (ConnectionError, RuntimeError, OSError):
            return False
        return True

    async def send_bytes(self, data: bytes) -> bool:
        return await self._write(self.encode_packet(b"D", data))

    async def send_meta(self, data: dict) -> bool:
        import json

        return await self._write(self.encode_packet(b"M", json.dumps(data).encode("utf-8")))

    def kill(self) -> None:
        if not self.killed:
            self.killed = True
            self.server.preloader.kill(self.vid)

    async def stop(self) -> None:
        """Ask the visitor to quit; if it has not ended within QUIT_GRACE, end it. Returns once
        its process is gone (reaped by the preloader)."""
        task, self._task = self._task, None
        if task is None:
            return
        await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
        await self.send_meta({"type": "quit"})
        done, _ = await asyncio.wait({task}, timeout=QUIT_GRACE)
        if not done:
            self.kill()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if self._stdin is not None:
            self._stdin.close()
        status = await self.server.preloader.wait_exited(self.vid, STOP_TIMEOUT)
        if self._stderr_task is not None:
            await asyncio.wait({self._stderr_task}, timeout=1.0)
        self.server.visitor_ended(self, status)

    def last_error(self) -> str:
        """The last line the visitor wrote on stderr (a traceback's last line), made safe."""
        lines = [line for line in self.stderr_tail.decode("utf-8", "replace").splitlines() if line.strip()]
        return safe(lines[-1].strip())[:300] if lines else ""


# ---- the server ------------------------------------------------------------------------------
class ClassServer(Server):
    """textual-serve's Server with forked visitors, a cap, an offline page and a status line."""

    def __init__(self, setup: dict, *, host: str, port: int, max_sessions: int, title: str,
                 public_url: str | None = None) -> None:
        super().__init__("rnn-tui", host=host, port=port, title=title, public_url=public_url,
                         templates_path=TEMPLATES)  # fmt: skip
        self.setup = setup
        self.max_sessions = max_sessions
        self.fixed_public_url = public_url  # None: each page uses the address its visitor typed
        self.preloader = PreloaderClient(setup)
        self.sessions = 0  # visitors holding a place (from their websocket to their process's end)
        self.turned_away = 0
        self.served = 0
        self.next_id = 0
        self.services: dict[int, VisitorService] = {}
        self.sockets: set[web.WebSocketResponse] = set()
        self.status = StatusLine(self)
        self.stopping = False
        self.exit_code = 0
        self.failure = ""  # why the server stopped by itself, for the operator

    # the preloader
    def start_preloader(self) -> dict:
        t0 = time.perf_counter()
        ready = self.preloader.start()
        self.console.print(f"rnn-tui serve: ready for visitors in {time.perf_counter() - t0:.1f} s "
                           f"({safe(ready.get('what', ''))})", markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        if ready.get("warning"):
            self.console.print(f"rnn-tui serve: warning: {safe(ready['warning'])}", markup=False, highlight=False,
                               soft_wrap=True)  # one line, however narrow the terminal
        return ready

    @property
    def full(self) -> bool:
        return self.sessions >= self.max_sessions

    def base_url(self, request: web.Request) -> str:
        """The address the visitor used (so an SSH tunnel on another port works), unless
        --public-url fixes it."""
        if self.fixed_public_url:
            return self.fixed_public_url.rstrip("/")
        return f"{request.scheme}://{request.host}"

    def initialize_logging(self) -> None:
        super().initialize_logging()
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # no line per request

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
        websocket = web.WebSocketResponse(heartbeat=15)
        if self.full or self.stopping:
            # past the cap: say so in the visitor's terminal and start nothing
            self.turned_away += 1
            await websocket.prepare(request)
            text = "\r\n  " + full_message(self.max_sessions).replace(". ", ".\r\n  ") + "\r\n"
            await websocket.send_bytes(text.encode("utf-8"))
            async for _ in websocket:  # keep the message on screen until the tab closes
                pass
            return websocket
        self.sessions += 1
        self.next_id += 1
        vid = self.next_id
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        service: VisitorService | None = None
        self.sockets.add(websocket)
        try:
            await websocket.prepare(request)
            service = VisitorService(self, vid, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                                     close=websocket.close, download_manager=self.download_manager)  # fmt: skip
            self.services[vid] = service
            try:
                await service.start(width, height)
            except (ServeError, asyncio.TimeoutError) as e:
                log.error("visitor %d: no explorer could be started: %s", vid, safe(str(e) or "no answer"))
                await websocket.send_bytes(b"\r\n  rnn-tui: the server could not start an explorer for you; "
                                           b"try again in a minute.\r\n")  # fmt: skip
                await websocket.close()
                return websocket
            self.served += 1
            try:
                await self._process_messages(websocket, service)
            finally:
                await service.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # noqa: BLE001 - one visitor's trouble is logged, not raised
            log.error("visitor %d: %s", vid, safe(f"{type(error).__name__}: {error}"))
        finally:
            self.sockets.discard(websocket)
            if service is not None:
                await service.stop()
            self.services.pop(vid, None)
            self.sessions -= 1
        return websocket

    def visitor_ended(self, service: VisitorService, status: int | None) -> None:
        """Log a visitor that did not end as asked (it crashed, or had to be killed)."""
        if service.killed:
            log.warning("visitor %d did not answer and was ended", service.vid)
        elif status not in (0, None):
            why = service.last_error()
            how = f"signal {-status}" if status < 0 else f"exit code {status}"
            log.warning("visitor %d's explorer stopped (%s)%s", service.vid, how, f": {why}" if why else "")

    async def on_startup(self, app: web.Application) -> None:
        from rich.markup import escape

        loop = asyncio.get_running_loop()
        self.preloader.attach(loop)
        self.preloader.on_gone = self._preloader_gone
        where = escape(safe(self.fixed_public_url or f"http://{url_host(self.host)}:{self.port}"))  # an address is text
        self.console.print(f"rnn-tui: serving the explorer on {where}  (at most {self.max_sessions} sessions)")
        self.console.print("[cyan]Press Ctrl+C to quit")
        self.status.start(loop)

    def _preloader_gone(self) -> None:
        """Every visitor went with the preloader, and no new one can come: stop, and say why."""
        if not self.stopping:
            code = self.preloader.proc.poll() if self.preloader.proc else None
            self.failure = (f"the preloader stopped (exit code {code}) and every visitor's explorer with it; "
                            "start `rnn-tui serve` again")  # fmt: skip
            self.exit_code = 1
            os.kill(os.getpid(), signal.SIGTERM)  # the way a stop asked for goes

    async def on_shutdown(self, app: web.Application) -> None:
        """Stop taking visitors, close every websocket (each ends its visitor's process), then
        let the preloader end whatever is left and exit."""
        self.stopping = True
        sockets = list(self.sockets)
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped") for ws in sockets),
                             return_exceptions=True)  # fmt: skip
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.services and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.preloader.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.preloader.wait, STOP_TIMEOUT)
        self.preloader.terminate()
        self.status.stop()
        self.console.print(f"rnn-tui serve: stopped ({self.served} visitor{'s' if self.served != 1 else ''} "
                           "served, every explorer closed)", highlight=False)  # fmt: skip

    def serve(self, debug: bool = False) -> int:
        """Serve until SIGINT or SIGTERM; the exit code (0 for a stop asked for)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_exit)
        try:
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                        print=lambda *args: None, access_log=None, shutdown_timeout=STOP_TIMEOUT)  # fmt: skip
        finally:
            self.preloader.terminate()  # whatever happened, no visitor outlives the server
        return self.exit_code


# ---- the operator's line -----------------------------------------------------------------------
def measure(preloader_pid: int | None, visitors: list[int]) -> dict:
    """The memory of the server, the preloader and the visitors (each a memory.Usage)."""
    return {
        "server": memory.usage(os.getpid()) or memory.Usage(),
        "preloader": (memory.usage(preloader_pid) if preloader_pid else None) or memory.Usage(),
        "visitors": memory.together(visitors),
        "count": len(visitors),
    }


class StatusLine:
    """How many visitors are connected and the memory of all the server's processes together
    (PSS: shared pages split between their sharers, so forked visitors are not counted 30 times).
    Updated in place on a terminal (Rich Live); elsewhere one plain line each time the number of
    visitors changes."""

    def __init__(self, server: ClassServer) -> None:
        self.server = server
        self.live = None
        self.task: asyncio.Task | None = None
        self.last_printed: tuple | None = None

    def start(self, loop) -> None:
        if self.server.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.server.console, auto_refresh=False, transient=False,
                             redirect_stdout=False, redirect_stderr=False)  # fmt: skip
            self.live.start()
        self.task = loop.create_task(self.run())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.live is not None:
            self.live.stop()
            self.live = None

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            counts = (self.server.sessions, self.server.turned_away)
            visitors = [pid for pid in self.server.preloader.pids.values() if pid]  # read here, on the loop
            snapshot = await loop.run_in_executor(None, measure, self.server.preloader.pid, visitors)
            self.show(self.text(snapshot), counts)
            await asyncio.sleep(STATUS_EVERY)

    def text(self, m: dict) -> str:
        """One line, the count first: it must fit 80 columns (a longer one ends in … there)."""
        server = self.server
        total = m["server"].pss + m["preloader"].pss + m["visitors"].pss
        mib = lambda u: f"{u.pss / (1 << 20):.0f}"  # noqa: E731
        line = (f"visitors {server.sessions}/{server.max_sessions} · {memory.human(total)} memory (MiB: server "
                f"{mib(m['server'])}, preloaded {mib(m['preloader'])}, visitors {mib(m['visitors'])})")  # fmt: skip
        if server.turned_away:
            line += f" · {server.turned_away} turned away"
        return line

    def show(self, line: str, counts: tuple) -> None:
        if self.live is not None:
            from rich.text import Text

            self.live.update(Text(line, no_wrap=True, overflow="ellipsis"), refresh=True)
        elif counts != self.last_printed:
            self.last_printed = counts
            print(f"rnn-tui serve: {line}", flush=True)
