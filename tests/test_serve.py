"""`rnn-tui serve`: the explorer in a browser (headless Chromium over the DevTools protocol), the
session cap, the warning off localhost, and clear errors.

The browser test checks both ends: the text the app process sends down the page's websocket
holds the explorer's words, and a screenshot of the page shows xterm's canvas drawn in colour
(the heatmaps), not a blank or an error page. Chromium comes from Debian's package
(`.ci/install-chromium`); only its absence skips the browser tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (run .ci/install-chromium); the browser test needs it"
)
ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\x1b[=>]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
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
def serving(*args: str):
    """`rnn-tui serve --port P ARGS` in its own process group; stopped (with every visitor's
    process) on the way out."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "serve", "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_listening(port, proc)
        yield port, proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group: visitors' app processes too
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


# ---- PNG, just enough to count pixels ---------------------------------------------------------
def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB/RGBA non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, k = [], bytearray(stride), 0
    for _ in range(height):
        f, line = raw[k], bytearray(raw[k + 1 : k + 1 + stride])
        k += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    pixels = [(r[i], r[i + 1], r[i + 2]) for r in rows for i in range(0, stride, bpp)]
    return width, height, pixels


# ---- the browser --------------------------------------------------------------------------------
async def load_in_chromium(url: str, expect: list[str], timeout: float = 60.0) -> tuple[str, bytes]:
    """Open `url` in headless Chromium; wait until the text sent down the page's websocket holds
    every string of `expect`; return that text (ANSI stripped) and a PNG screenshot."""
    import aiohttp

    profile = tempfile.mkdtemp(prefix="rnn-tui-chromium-")
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1280,800", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        active = Path(profile) / "DevToolsActivePort"
        for _ in range(300):
            if active.exists() and active.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = int(active.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                try:
                    targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            page = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as cdp:
                counter = 0
                received: list[str] = []

                def take(msg: dict) -> None:
                    if msg.get("method") == "Network.webSocketFrameReceived":
                        frame = msg["params"]["response"]
                        data = frame["payloadData"]
                        if frame.get("opcode") == 2:
                            data = base64.b64decode(data).decode("utf-8", "replace")
                        received.append(data)

                async def call(method: str, **params):
                    nonlocal counter
                    counter += 1
                    me = counter
                    await cdp.send_json({"id": me, "method": method, "params": params})
                    while True:
                        msg = json.loads((await cdp.receive()).data)
                        if msg.get("id") == me:
                            return msg.get("result", {})
                        take(msg)

                await call("Network.enable")
                await call("Page.enable")
                await call("Page.navigate", url=url)
                t0 = time.monotonic()
                text = ""
                while time.monotonic() - t0 < timeout:
                    await call("Runtime.evaluate", expression="1")  # pump events
                    text = ANSI.sub("", "".join(received))
                    if all(word in text for word in expect):
                        break
                    await asyncio.sleep(0.3)
                await asyncio.sleep(1.0)  # let xterm paint the last frames
                await call("Runtime.evaluate", expression="1")
                text = ANSI.sub("", "".join(received))
                shot = await call("Page.captureScreenshot", format="png")
                return text, base64.b64decode(shot["data"])
    finally:
        try:
            os.killpg(browser.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def coloured_share(png: bytes) -> float:
    """Share of pixels with a clearly saturated colour (heatmap cells, coloured text)."""
    _, _, pixels = png_pixels(png)
    step = max(1, len(pixels) // 200_000)
    sample = pixels[::step]
    return sum(1 for r, g, b in sample if max(r, g, b) - min(r, g, b) > 60) / len(sample)


@needs_chromium
def test_the_explorer_is_drawn_in_a_browser(tmp_path):
    from rnn_tui.ui.panes import PANES

    titles = [info.title for info in PANES[:3]]
    with serving() as (port, _):
        text, png = asyncio.run(load_in_chromium(f"http://127.0.0.1:{port}/", ["rnn-tui", "params", *titles]))
    (tmp_path / "explorer.png").write_bytes(png)
    for word in ["rnn-tui", "params", *titles]:
        assert word in text, f"{word!r} never reached the browser"
    assert coloured_share(png) > 0.01, "the page shows no heatmap colours: the terminal was not drawn"


@needs_chromium
def test_a_lesson_is_served_to_the_browser(tmp_path):
    with serving("--lesson", "memory") as (port, _):
        text, png = asyncio.run(
            load_in_chromium(f"http://127.0.0.1:{port}/", ["Memory: how h_t carries the past", "Step 1/5"])
        )
    (tmp_path / "lesson.png").write_bytes(png)
    assert "Memory: how h_t carries the past" in text and "Step 1/5" in text
    assert coloured_share(png) > 0.005


def test_visitors_past_the_cap_are_turned_away_politely():
    import aiohttp

    async def visit(port: int):
        async with aiohttp.ClientSession() as http:
            first = await http.ws_connect(f"http://127.0.0.1:{port}/ws?width=80&height=24")
            await asyncio.sleep(0.5)
            page = await http.get(f"http://127.0.0.1:{port}/")
            body = await page.text()
            second = await http.ws_connect(f"http://127.0.0.1:{port}/ws?width=80&height=24")
            msg = await second.receive(timeout=10)
            await second.close()
            await first.close()
            for _ in range(100):  # the session ends when its socket closes
                again = await http.get(f"http://127.0.0.1:{port}/")
                if again.status == 200:
                    break
                await asyncio.sleep(0.1)
            return page.status, body, msg.data, again.status, await again.text()

    with serving("--max-sessions", "1") as (port, _):
        status, body, turned_away, status_after, page_after = asyncio.run(visit(port))
    assert status == 503 and "All 1 sessions are in use" in body
    assert isinstance(turned_away, bytes) and b"rnn-tui is full" in turned_away
    assert status_after == 200 and "ws://127.0.0.1:" in page_after  # the address the visitor used


def test_listening_beyond_localhost_warns_and_bad_input_is_one_line():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rnn_tui", "serve", "--host", "0.0.0.0", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = proc.stderr.readline()
        assert "warning" in line and "anyone" in line and "0.0.0.0" in line
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "rnn_tui", "serve", "--port", str(taken)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "already in use" in out.stderr
    for args, message in (
        (["--max-sessions", "0"], "must be from 1"),
        (["--lesson", "nope"], "unknown lesson"),
        (["--", "--cell", "nope"], "bad explorer flags"),
        (["--lesson", "memory", "--", "--cell", "gru"], "either --lesson or explorer flags"),
        (["--theme", "nope"], "unknown theme"),
        (["--", "trace"], "only explorer flags"),
    ):
        out = subprocess.run([sys.executable, "-m", "rnn_tui", "serve", *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1, (args, out.stderr)


def test_each_visitor_runs_this_python_with_the_flags_given():
    import argparse

    from rnn_tui.commands.serve import app_command

    cmd = app_command(argparse.Namespace(explorer_args=["--", "--input", "it's (a) test"], lesson=None, theme="mono"))
    assert cmd.startswith(sys.executable) and "-m rnn_tui --theme mono --input" in cmd
    assert "'it'\"'\"'s (a) test'" in cmd  # quoted for the shell textual-serve starts it with
    lesson = app_command(argparse.Namespace(explorer_args=[], lesson="bptt", theme=None))
    assert lesson.endswith("-m rnn_tui lesson bptt")


def test_serve_imports_nothing_heavy():
    code = "import sys, rnn_tui.commands.serve; print('torch' in sys.modules, 'aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
