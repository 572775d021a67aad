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

from tests.serving import ANSI, free_port, wait_listening

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (run .ci/install-chromium); the browser test needs it"
)
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
async def load_in_chromium(url: str, expect: list[str], timeout: float = 60.0, raw: list | None = None,
                           then=None, requests: list | None = None, offline: bool = False) -> tuple[str, bytes]:
    """Open `url` in headless Chromium; wait until the text sent down the page's websocket holds
    every string of `expect`; return that text (ANSI stripped) and a PNG screenshot. `raw`, if
    given, gets the text as it came (escape sequences and all); `then(call, targets)`, if given,
    runs once the page is ready, with the DevTools call and a coroutine listing the browser's
    pages (their URLs). `requests`, if given, gets the URL of every request the page made (its
    websocket's too), and ("failed", url) for those that failed; `offline`: no host name
    resolves but this machine's, as in a classroom without internet."""
    import aiohttp

    profile = tempfile.mkdtemp(prefix="rnn-tui-chromium-")
    no_network = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"] if offline else []
    browser = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", *no_network,
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
                    if requests is not None:
                        method = msg.get("method")
                        if method == "Network.requestWillBeSent":
                            requests.append(msg["params"]["request"]["url"])
                        elif method == "Network.webSocketCreated":
                            requests.append(msg["params"]["url"])
                        elif method == "Network.loadingFailed":
                            requests.append(("failed", msg["params"].get("errorText", "")))
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
                if then is not None:

                    async def targets() -> list[str]:
                        return [t["url"] for t in await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()]

                    await then(call, targets)
                text = ANSI.sub("", "".join(received))
                shot = await call("Page.captureScreenshot", format="png")
                if raw is not None:
                    raw.append("".join(received))
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
def test_the_page_needs_nothing_from_outside_this_server():
    """A classroom may have no internet: with no host name resolving but this machine's, the page
    loads, every request it makes (script, styles, font, websocket) goes to this server, none
    fails, and the terminal's font is the server's own copy of Roboto Mono, loaded."""
    requests: list = []
    fonts: dict = {}

    async def read_fonts(call, targets):
        script = ("document.fonts.ready.then(() => JSON.stringify(Array.from(document.fonts)"
                  ".map(f => [f.family.replace(/[\"']/g, ''), f.style, f.status])))")  # fmt: skip
        result = await call("Runtime.evaluate", expression=script, awaitPromise=True)
        fonts["faces"] = json.loads(result["result"]["value"])

    with serving() as (port, _):
        text, png = asyncio.run(load_in_chromium(f"http://127.0.0.1:{port}/", ["rnn-tui", " · unit "],
                                                 then=read_fonts, requests=requests, offline=True))  # fmt: skip
    assert " · unit " in text and coloured_share(png) > 0.01  # the explorer, drawn
    here = (f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/")
    urls = [r for r in requests if isinstance(r, str)]
    assert any(u.endswith(".ttf") for u in urls) and any(u.startswith(here[1]) for u in urls), urls
    assert all(u.startswith(here) for u in urls), [u for u in urls if not u.startswith(here)]
    assert not [r for r in requests if isinstance(r, tuple)], requests
    assert ["Roboto Mono", "normal", "loaded"] in fonts["faces"], fonts


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


def test_every_visitor_opens_what_the_flags_say():
    import argparse

    from rnn_tui.commands.serve import setup_of

    setup = setup_of(argparse.Namespace(explorer_args=["--", "--input", "it's (a) test"], lesson=None, theme="mono"))
    assert setup == {"lesson": None, "theme": "mono", "explorer_args": ["--input", "it's (a) test"]}
    assert setup_of(argparse.Namespace(explorer_args=[], lesson="bptt", theme=None))["lesson"] == "bptt"


def test_serve_imports_nothing_heavy():
    code = "import sys, rnn_tui.commands.serve; print('torch' in sys.modules, 'aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]


# ---- what a visitor can reach, checked when the server starts -----------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        (["--", "--checkpoint", "/etc"], "/etc has no config.json"),
        (["--", "--checkpoint", str(ROOT / "assets" / "scenarios")], "no config.json"),
        (["--runs", "/nonexistent/runs"], "--runs: /nonexistent/runs is not a folder"),
        (["--runs", ""], "--runs is empty"),
        (["--", "--device", "cuda"], "--device cuda: serve computes on the CPU"),
    ],
)
def test_bad_explorer_flags_and_runs_folders_are_refused_when_the_server_starts(args, words):
    out = subprocess.run([sys.executable, "-m", "rnn_tui", "serve", "--port", str(free_port()), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2 and words in out.stderr and out.stderr.count("\n") == 1, out.stderr


def test_a_damaged_run_is_refused_when_the_server_starts_not_per_visitor(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(ROOT / "assets" / "models" / "recall-lstm", run)
    doc = json.loads((run / "config.json").read_text())
    doc["model"]["hidden_size"] = 7  # the weights are 32 wide
    (run / "config.json").write_text(json.dumps(doc))
    out = subprocess.run([sys.executable, "-m", "rnn_tui", "serve", "--port", str(free_port()), "--",
                          "--checkpoint", str(run)], cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2 and "bad explorer flags" in out.stderr and "hidden" not in out.stdout
    assert out.stderr.count("\n") == 1, out.stderr


def test_every_visitor_process_knows_it_is_served_and_which_runs_it_may_open(tmp_path, monkeypatch):
    import argparse

    from rnn_tui.commands import serve
    from rnn_tui.served import RUNS_ENV, SERVED_ENV

    seen = {}

    class Fake:
        failure = ""

        def start_preloader(self):  # the preloader is started with this environment
            seen.update({k: os.environ.get(k) for k in (SERVED_ENV, RUNS_ENV)})

        def serve(self):
            return 0

    monkeypatch.setattr(serve, "make_server", lambda args: Fake())
    monkeypatch.setattr(serve, "check_port_free", lambda host, port: None)
    monkeypatch.setenv(RUNS_ENV, "/somewhere/else")  # an inherited value is never used
    monkeypatch.setenv(SERVED_ENV, "0")  # recorded, so the value serve.run sets is undone after the test
    base = dict(host="127.0.0.1", port=1, max_sessions=1, lesson=None, theme=None, public_url=None, explorer_args=[])
    serve.run(argparse.Namespace(**base, runs=None))
    assert seen == {SERVED_ENV: "1", RUNS_ENV: None}
    serve.run(argparse.Namespace(**base, runs=str(tmp_path)))
    assert seen == {SERVED_ENV: "1", RUNS_ENV: str(tmp_path.resolve())}


def test_an_ipv6_address_is_printed_in_brackets():
    from rnn_tui.commands.serve import url_host

    assert url_host("::1") == "[::1]" and url_host("127.0.0.1") == "127.0.0.1" and url_host("[::1]") == "[::1]"
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    proc = subprocess.Popen([sys.executable, "-m", "rnn_tui", "serve", "--host", "::1", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})  # fmt: skip
    try:
        line = ""
        deadline = time.monotonic() + 60
        while "serving" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert f"http://[::1]:{port}" in line, line
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@needs_chromium
def test_a_hostile_scenario_reaches_the_browser_escaped(tmp_path):
    """A scenario whose title would retitle the window and clear the screen: in the browser the
    title arrives as visible text (\\x1b...), and no such sequence from the file is sent."""
    title = "\x1b]0;owned\x07\x1b[2J\u202eevil"
    path = tmp_path / "hostile.toml"
    path.write_text(f"title = {json.dumps(title)}\n[model]\ncell = \"rnn\"\nhidden_size = 2\n"
                    "[input]\nvectors = [[1.0], [0.5]]\n", encoding="utf-8")  # fmt: skip
    raw: list[str] = []
    with serving("--", "--scenario", str(path)) as (port, _):
        text, _ = asyncio.run(load_in_chromium(f"http://127.0.0.1:{port}/", ["]0;owned"], raw=raw))
    assert "\\x1b]0;owned\\x07\\x1b[2J\\u202eevil" in text
    assert "\x1b]0;owned" not in raw[0] and "\u202e" not in raw[0]


@needs_chromium
def test_a_screenshot_in_the_browser_is_a_download_not_a_file_on_the_server(tmp_path):
    """`s` in the browser: the page is handed a one-time /download/ address, which serves the SVG
    of the screen, and nothing is written in the server's folder. (The page's window.open is
    caught, as a headless browser may block the pop-up it would open.)"""
    import aiohttp

    got: dict = {}

    async def press_s(call, targets):
        catch = "window.__opened = []; window.open = (url) => { window.__opened.push(url); return null; }"
        await call("Runtime.evaluate", expression=catch)
        focus = "document.querySelector('textarea') && document.querySelector('textarea').focus()"
        for _ in range(5):  # a busy machine may take a while to start the app's key handling
            await call("Runtime.evaluate", expression=focus)  # xterm's input
            for kind in ("keyDown", "keyUp"):
                await call("Input.dispatchKeyEvent", type=kind, key="s", code="KeyS", text="s" if kind == "keyDown" else "",
                           windowsVirtualKeyCode=83)  # fmt: skip
            for _ in range(50):
                result = await call("Runtime.evaluate", expression="JSON.stringify(window.__opened)")
                opened = json.loads(result["result"]["value"])
                if opened:
                    async with aiohttp.ClientSession() as http:
                        response = await http.get(opened[0])
                        got.update(url=opened[0], status=response.status, body=await response.text(),
                                   kind=response.headers.get("Content-Type", ""))  # fmt: skip
                    return
                await asyncio.sleep(0.2)

    before = set(ROOT.iterdir())
    with serving() as (port, _):
        asyncio.run(load_in_chromium(f"http://127.0.0.1:{port}/", ["params"], then=press_s))
    assert got, "the page was given no download"
    assert got["url"].startswith(f"http://127.0.0.1:{port}/download/") and got["status"] == 200
    assert got["kind"].startswith("image/svg+xml") and got["body"].lstrip().startswith("<svg")
    assert "params" in got["body"]  # the screen itself
    assert set(ROOT.iterdir()) == before, "a screenshot was written on the server"
