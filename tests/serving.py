"""Helpers for the `rnn-tui serve` tests: a server in its own process group, browser tabs as the
page drives them (websocket packets, as textual-serve's static/js/textual.js sends them), and the
server's processes read from /proc."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start listening")


@contextmanager
def serving(*args: str, stdout=subprocess.DEVNULL):
    """`rnn-tui serve --port P ARGS` in its own process group; stopped on the way out (Ctrl-C,
    then SIGKILL to the group and every process under the server)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "serve", "--port", str(port), *args],
        cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        wait_listening(port, proc)
        yield port, proc
    finally:
        under = processes_under(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        for pid in [proc.pid, *under]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)


# ---- processes -----------------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    from rnn_tui.serve.memory import children_of

    return sorted(children_of().get(pid, []))


def preloader_of(server: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(server)
        if kids:
            return kids[0]
        time.sleep(0.05)
    raise AssertionError("the server has no preloader")


def visitors_of(server: int) -> list[int]:
    """The visitors' processes (the preloader's children), live ones only."""
    kids = children(server)
    return [v for k in kids for v in children(k) if alive(v)]


def processes_under(pid: int) -> list[int]:
    from rnn_tui.serve.memory import tree

    return [p for p in tree(pid) if p != pid]


def alive(pid: int) -> bool:
    """Running (a zombie, ended but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# ---- what a tab's terminal shows ------------------------------------------------------------------
CSI = re.compile(r"\x1b\[([0-9;?<>=$]*)([ -/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>78]")


class Screen:
    """Just enough of a terminal to read what Textual drew: it positions the cursor (CSI row;col H)
    and writes text; colours are ignored, wide characters take two cells. A frame after a step
    redraws only the cells that changed, so the stream alone cannot be read as screens."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[" "] * width for _ in range(height)]
        self.x = self.y = 0

    def feed(self, data: str) -> None:
        from rich.cells import cell_len

        pos = 0
        for m in CSI.finditer(data):
            self._text(data[pos : m.start()], cell_len)
            pos = m.end()
            if m.group(3) == "H" and not m.group(2):
                parts = [int(p) if p.isdigit() else 1 for p in (m.group(1) or "").split(";")] + [1, 1]
                self.y, self.x = min(self.height, parts[0]) - 1, min(self.width, parts[1]) - 1
            elif m.group(3) == "J" and m.group(1) in ("2", "3"):
                self.cells = [[" "] * self.width for _ in range(self.height)]
        self._text(data[pos:], cell_len)

    def _text(self, text: str, cell_len) -> None:
        for ch in text:
            if ch == "\n":
                self.y, self.x = min(self.y + 1, self.height - 1), 0
            elif ch == "\r":
                self.x = 0
            elif ch >= " ":
                w = cell_len(ch)
                if self.x + w <= self.width and w:
                    self.cells[self.y][self.x] = ch
                    if w == 2:
                        self.cells[self.y][self.x + 1] = ""
                self.x = min(self.x + w, self.width)

    @property
    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.cells]

    def __str__(self) -> str:
        return "\n".join(self.lines)


# ---- a browser tab ---------------------------------------------------------------------------------
class Tab:
    """One browser tab on the served page: its websocket, and the text that has come down it."""

    def __init__(self, http, port: int, width: int = 100, height: int = 30) -> None:
        self.http, self.port, self.width, self.height = http, port, width, height
        self.raw = ""  # as it came (escape sequences and all)
        self.ws = None
        self.closed = False
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Event()
        self.screen = Screen(width, height)

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw)

    async def open(self) -> "Tab":
        url = f"ws://127.0.0.1:{self.port}/ws?width={self.width}&height={self.height}"
        self.ws = await self.http.ws_connect(url, max_msg_size=0)
        await self.ws.send_json(["resize", {"width": self.width, "height": self.height}])
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type.name == "BINARY":
                data = msg.data.decode("utf-8", "replace")
                self.raw += data
                self.screen.feed(data)
                self._changed.set()
        self.closed = True
        self._changed.set()

    async def wait_for(self, *words: str, timeout: float = 60.0, since: int = 0) -> str:
        """Until every word has come down (after `since` characters of text); the text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text[since:]
            if all(w in text for w in words):
                return text
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(f"{words!r} never reached the tab (closed: {self.closed}); "
                                     f"last text: {text[-600:]!r}")  # fmt: skip
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def wait_screen(self, *words: str, timeout: float = 60.0) -> str:
        """Until the screen shows every word; the screen's text."""
        deadline = time.monotonic() + timeout
        while True:
            shown = str(self.screen)
            if all(w in shown for w in words):
                return shown
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(f"the screen never showed {words!r} (closed: {self.closed}):\n{shown}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def wait_closed(self, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
        return self.closed

    async def keys(self, *keys: str, pause: float = 0.15) -> None:
        """Type: each item as the browser's terminal sends it (text, or an escape sequence)."""
        for key in keys:
            await self.ws.send_json(["stdin", key])
            await asyncio.sleep(pause)

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait({self._reader}, timeout=5)


RIGHT = "\x1b[C"
ENTER = "\r"
