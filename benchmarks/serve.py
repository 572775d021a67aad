"""A class arriving at once: N browser visitors open `rnn-tui serve` together.

Each visitor does what textual-serve's page does in a browser: it loads the page and what the
page loads from the server (script, styles, font), opens the websocket with its terminal's size,
sends its size and a ping, and reads the terminal output. Two moments are timed from the
visitor's first request:

- first frame: the explorer's first screen has arrived (its status bar reads "loading the model"
  or already shows the model);
- model: the screen with the traced model (the status bar says where the cursor is: t, unit).

When every visitor has its model (or the time is up), the memory of all the server's processes
together is read (PSS from /proc/PID/smaps_rollup: pages shared by forked processes are split
between them, not counted in each), with the CPU seconds the visitors and the server used. With
--keys K every visitor then steps K times (→), and the time from a key to its redraw is
reported. Then the visitors leave and the server is stopped with SIGINT; both must end cleanly.

--baseline M runs the same arrival of M visitors side by side against textual-serve's own
launch (a new `python -m rnn_tui` per visitor, as `rnn-tui serve` did before the preloader).

Bounded: at most 256 visitors, every wait has a limit (--timeout), and everything started is
stopped on the way out.

    python benchmarks/serve.py                        # 30 visitors, 120x36, the default explorer
    python benchmarks/serve.py --visitors 10 --size 80x24 --keys 5
    python benchmarks/serve.py --lesson memory        # every visitor on the same lesson
    python benchmarks/serve.py --baseline 5           # and 5 visitors the old way, for comparison
    python benchmarks/serve.py -- --cell gru --hidden 64   # explorer flags after --
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnn_tui.serve import memory  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>]")
FIRST = ("loading the model", " · unit ")  # either in the status bar: the first screen is there
MODEL = " · unit "  # the status bar's cursor (t, unit), shown once a traced model is drawn
RIGHT = "\x1b[C"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Visitor:
    """One browser tab, as textual-serve's page drives it (its static/js/textual.js)."""

    def __init__(self, k: int, base: str, cols: int, rows: int) -> None:
        self.k, self.base, self.cols, self.rows = k, base, cols, rows
        self.first: float | None = None
        self.model: float | None = None
        self.text = ""
        self.turned_away = False
        self.error = ""
        self.latencies: list[float] = []
        self.ws = None
        self._got = asyncio.Event()

    async def arrive(self, http, t0: float, timeout: float) -> None:
        try:
            page = await http.get(self.base + "/")
            body = await page.text()
            if page.status != 200:
                self.turned_away = True
                return
            for asset in re.findall(r'(?:href|src)="([^"]+)"', body):  # script, styles, font
                if asset.startswith(self.base):
                    await (await http.get(asset)).read()
            url = self.base.replace("http", "ws", 1) + f"/ws?width={self.cols}&height={self.rows}"
            self.ws = await http.ws_connect(url, max_msg_size=0)
            await self.ws.send_json(["resize", {"width": self.cols, "height": self.rows}])
            await self.ws.send_json(["ping", str(int(time.time() * 1000))])
            await asyncio.wait_for(self._read_until_model(t0), timeout)
        except asyncio.TimeoutError:
            self.error = "no model within the time limit"
        except Exception as e:  # noqa: BLE001 - reported per visitor
            self.error = f"{type(e).__name__}: {e}"

    async def _read_until_model(self, t0: float) -> None:
        async for msg in self.ws:
            if msg.type.name != "BINARY":
                continue
            now = time.perf_counter() - t0
            self.text = (self.text + ANSI.sub("", msg.data.decode("utf-8", "replace")))[-200_000:]
            if "is full" in self.text:
                self.turned_away = True
                return
            if self.first is None and any(m in self.text for m in FIRST):
                self.first = now
            if MODEL in self.text:
                self.model = now
                return

    async def step(self, keys: int, timeout: float = 10.0) -> None:
        """Press → `keys` times, each after the previous redraw; the latency of each."""
        for _ in range(keys):
            t = time.perf_counter()
            await self.ws.send_json(["stdin", RIGHT])
            try:
                while True:
                    msg = await asyncio.wait_for(self.ws.receive(), timeout)
                    if msg.type.name == "BINARY":
                        break
                    if msg.type.name in ("CLOSE", "CLOSED", "ERROR"):
                        return
            except asyncio.TimeoutError:
                self.error = "a step drew nothing"
                return
            self.latencies.append(time.perf_counter() - t)
            await asyncio.sleep(0.05)  # the rest of that frame, if it came in pieces
            while True:
                try:
                    await asyncio.wait_for(self.ws.receive(), 0.05)
                except asyncio.TimeoutError:
                    break


def start(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)  # fmt: skip


def wait_listening(proc: subprocess.Popen, port: int, timeout: float) -> list[str]:
    """The server's lines until it listens on the port."""
    lines: list[str] = []
    os.set_blocking(proc.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = proc.stdout.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            lines += chunk.splitlines()
        if proc.poll() is not None:
            raise SystemExit("the server exited: " + " / ".join(lines[-5:]))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return lines
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not listen within {timeout:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> tuple[int | None, float]:
    """SIGINT (Ctrl-C) to the server alone; its exit code and how long it took (None: killed)."""
    t = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if code is None:
        proc.wait(10)
    return code, time.perf_counter() - t


async def arrive_together(port: int, n: int, cols: int, rows: int, timeout: float, keys: int) -> list[Visitor]:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    visitors = [Visitor(k, base, cols, rows) for k in range(n)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(v.arrive(http, t0, timeout) for v in visitors))
        arrived = [v for v in visitors if v.model is not None]
        visitors_measured.append(measure_all(SERVER_PID[0]))
        if keys:
            await asyncio.gather(*(v.step(keys) for v in arrived))
        for v in visitors:
            if v.ws is not None:
                await v.ws.close()
    return visitors


SERVER_PID: list[int] = [0]
FORKED: list[bool] = [True]
visitors_measured: list[dict] = []


def measure_all(server_pid: int) -> dict:
    """Memory and CPU of the server and every process under it: the server's own children (the
    preloader, or the baseline's visitors) and theirs (the forked visitors)."""
    kids = memory.children_of()
    children = kids.get(server_pid, [])
    grandchildren = [g for c in children for g in memory.tree(c) if g != c]
    visitors = grandchildren if grandchildren or FORKED[0] else children
    helpers = [c for c in children if c not in visitors]
    pids = [server_pid, *helpers, *visitors]
    cpu = {pid: memory.cpu_seconds(pid) or 0.0 for pid in pids}
    return {"pids": pids, "server": memory.usage(server_pid) or memory.Usage(), "helpers": memory.together(helpers),
            "visitors": visitors, "visitor_usage": memory.together(visitors), "cpu": cpu,
            "total": memory.together(pids)}


def remaining(server_pid: int, timeout: float) -> tuple[int, float]:
    """Processes under the server besides the preloader, polled until none is left; (count, s)."""
    t = time.perf_counter()
    while True:
        left = len(memory.tree(server_pid)) - 2  # the server and the preloader stay
        if left <= 0 or time.perf_counter() - t > timeout:
            return max(left, 0), time.perf_counter() - t
        time.sleep(0.05)


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<13} none arrived"
    return f"{name:<13} max {max(values):.2f} s, median {statistics.median(values):.2f} s"


def run_one(title: str, argv: list[str], env: dict, port: int, n: int, cols: int, rows: int, timeout: float,
            keys: int, forked: bool) -> None:
    t = time.perf_counter()
    proc = start(argv, env)
    try:
        lines = wait_listening(proc, port, timeout)
        ready = time.perf_counter() - t
        SERVER_PID[0] = proc.pid
        FORKED[0] = forked
        visitors_measured.clear()
        visitors = asyncio.run(arrive_together(port, n, cols, rows, timeout, keys))
        after = visitors_measured[0]
        time.sleep(0.3)
        left, took = remaining(proc.pid, 15.0) if forked else (0, 0.0)
        code, stop_took = stop(proc)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    firsts = [v.first for v in visitors if v.first is not None]
    models = [v.model for v in visitors if v.model is not None]
    away = sum(v.turned_away for v in visitors)
    errors = [v.error for v in visitors if v.error]
    print(title)
    said = next((line for line in lines if "ready for visitors" in line), "")
    print(f"  server listening after {ready:.1f} s" + (f" ({said.split(': ', 1)[-1]})" if said else ""))
    print("  " + summary("first frame", firsts) + "   (goal: every one within 5 s)")
    print("  " + summary("model", models) + "   (goal: every one within 30 s)")
    if len(models) < n:
        print(f"  only {len(models)} of {n} visitors got the model" + (f"; {away} turned away" if away else "")
              + (f"; {errors[0]}" if errors else ""))
    total = after["total"]
    pids, visitor_pids = after["pids"], after["visitors"]
    v_usage = after["visitor_usage"]
    n_v = max(len(visitor_pids), 1)
    print(f"  memory        {memory.human(total.pss)} PSS, all {len(pids)} processes together (goal: under 6 GiB);"
          f" RSS summed would say {memory.human(total.rss)}")
    print(f"                server {memory.human(after['server'].pss)}"
          + (f", preloader {memory.human(after['helpers'].pss)}" if forked else "")
          + f", {len(visitor_pids)} visitors {memory.human(v_usage.pss)}"
          f" ({memory.human(v_usage.uss // n_v)} of their own each, on average)")
    v_cpu = [after["cpu"].get(p, 0.0) for p in visitor_pids]
    if v_cpu:
        print(f"  CPU           {statistics.mean(v_cpu):.2f} s per visitor process up to its model (max {max(v_cpu):.2f} s),"
              f" server {after['cpu'].get(proc.pid, 0.0):.2f} s")
    lat = sorted(x for v in visitors for x in v.latencies)
    if lat:
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        print(f"  a step (→)    median {1000 * statistics.median(lat):.0f} ms, p95 {1000 * p95:.0f} ms from key to redraw,"
              f" {len(lat)} steps, all {len(models)} visitors stepping at once")
    if forked:
        print(f"  leaving       {len(visitor_pids)} visitors closed their tabs: "
              + ("every visitor process ended" if left == 0 else f"{left} processes still there") + f" within {took:.1f} s")
    print(f"  Ctrl-C        the server " + (f"exited with code {code}" if code is not None else "had to be killed")
          + f" after {stop_took:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=30, help="visitors arriving together (default 30, at most 256)")
    parser.add_argument("--size", default="120x36", help="each visitor's terminal, COLSxROWS (default 120x36)")
    parser.add_argument("--lesson", metavar="NAME", help="serve this lesson to every visitor")
    parser.add_argument("--keys", type=int, default=0, help="→ presses per visitor once all are in (default 0)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any one wait may take (default 120)")
    parser.add_argument("--baseline", type=int, default=0, metavar="M",
                        help="also time M visitors against textual-serve's own launch, one new Python each")
    parser.add_argument("explorer_args", nargs=argparse.REMAINDER, help="explorer flags, after --")
    args = parser.parse_args()
    n = max(1, min(args.visitors, 256))
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    extra = [a for a in args.explorer_args if a != "--"] if args.explorer_args[:1] == ["--"] else args.explorer_args
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    load = os.getloadavg()[0]
    port = free_port()
    argv = [sys.executable, "-m", "rnn_tui", "serve", "--port", str(port), "--max-sessions", str(n)]
    argv += ["--lesson", args.lesson] if args.lesson else (["--", *extra] if extra else [])
    what = f"lesson {args.lesson}" if args.lesson else ("the explorer" + (f" {' '.join(extra)}" if extra else ""))
    print(f"rnn-tui serve: {n} visitors arriving together at {cols}x{rows}, {what}"
          f"   ({os.cpu_count()} cores, load average {load:.2f} before)")
    run_one("this checkout (preloaded, a fork per visitor)", argv, env, port, n, cols, rows, args.timeout, args.keys,
            forked=True)
    if args.baseline:
        m = max(1, min(args.baseline, 64))
        port = free_port()
        command = " ".join([sys.executable, "-m", "rnn_tui", *(["lesson", args.lesson] if args.lesson else extra)])
        code = ("import sys; from textual_serve.server import Server; "
                f"Server({command!r}, host='127.0.0.1', port={port}).serve()")
        base_env = dict(env, RNN_TUI_SERVED="1")
        print(f"baseline: {m} visitors, textual-serve starting `python -m rnn_tui` for each (as before the preloader)")
        run_one("  (the same arrival)", [sys.executable, "-c", code], base_env, port, m, cols, rows, args.timeout,
                0, forked=False)


if __name__ == "__main__":
    main()
