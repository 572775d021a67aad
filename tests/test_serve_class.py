"""`rnn-tui serve` for a class: every visitor an explorer of its own, forked from one preloaded
process; the cap; a visitor that leaves, crashes or hangs; stopping the server; the operator's
line. Visitors here are websocket clients that speak the page's protocol (tests/serving.py);
few of them, to keep the run short (benchmarks/serve.py times thirty)."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from rnn_tui.serve import memory
from tests.serving import (
    ENTER, RIGHT, ROOT, Tab, alive, free_port, preloader_of, serving, visitors_of, wait_listening, wait_until,
)  # fmt: skip

MODEL = " · unit "  # the status bar says where the cursor is once a traced model is on screen


async def tabs(port: int, n: int, **size):
    import aiohttp

    http = aiohttp.ClientSession()
    opened = [await Tab(http, port, **size).open() for _ in range(n)]
    return http, opened


async def close(http, opened) -> None:
    for tab in opened:
        await tab.close()
    await http.close()


def new_visitor(server: int, known: list[int], timeout: float = 15.0) -> int:
    """The pid of the visitor that is not among `known` (the one just opened)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [p for p in visitors_of(server) if p not in known]
        if fresh:
            assert len(fresh) == 1, fresh
            return fresh[0]
        time.sleep(0.05)
    raise AssertionError("no new visitor process")


# ---- each visitor its own explorer ----------------------------------------------------------------
def test_one_visitors_input_and_training_never_show_for_another():
    async def visit(port: int, server: int):
        http, (a, b) = await tabs(port, 2)
        try:
            await a.wait_screen(MODEL, "t 0/63")
            screen_b = await b.wait_screen(MODEL, "t 0/63", "loss 0.0987")
            assert len(set(visitors_of(server))) == 2  # a process each
            # a types its own sequence, 16 characters, and traces it
            await a.keys("i")
            await a.wait_screen("^c")  # the box has the focus (its footer): keys typed before it would be bindings
            await a.keys(*"simple is better", ENTER)
            await a.wait_screen("t 0/15", "x   s    i    m    p")
            # a trains its model (Training is the fourth tab) for a moment, and stops
            for key, tab in (("m", "parameters"), ("m", "ρ(W_hh)"), ("m", "not training")):  # Model, Gradients, Training
                await a.keys(key)
                await a.wait_screen(tab, timeout=30)
            await a.keys("r")
            await a.wait_screen("training on", "accuracy", timeout=90)
            await a.keys("x")
            await a.wait_screen("stopped on", timeout=30)
            # b is where it was: the preloaded model on its own 64 steps, and it still answers
            await b.keys(RIGHT)
            screen_b = await b.wait_screen("t 1/63", "loss 0.0987")
            return a.text, b.text, screen_b
        finally:
            await close(http, [a, b])

    with serving("--max-sessions", "3") as (port, proc):
        raw_a, raw_b, screen_b = asyncio.run(visit(port, proc.pid))
    assert "simple is better" in raw_a and "stopped on" in raw_a
    for word in ("simple is better", "t 0/15", "stopped on"):
        assert word not in raw_b and word not in screen_b, f"{word!r} from the other visitor reached this one"


def test_every_visitor_of_a_lesson_opens_that_lesson():
    async def visit(port: int):
        http, opened = await tabs(port, 2, width=150, height=40)
        try:
            return [await t.wait_screen("Memory: how h_t carries the past", "Step 1/5", MODEL) for t in opened]
        finally:
            await close(http, opened)

    with serving("--lesson", "memory", "--max-sessions", "2") as (port, _):
        texts = asyncio.run(visit(port))
    assert len(texts) == 2


# ---- the cap -----------------------------------------------------------------------------------------
def test_the_cap_holds_and_a_place_frees_when_a_tab_closes():
    import aiohttp

    async def visit(port: int):
        async with aiohttp.ClientSession() as http:
            first, second = [await Tab(http, port).open() for _ in range(2)]
            await first.wait_screen(MODEL)
            await second.wait_screen(MODEL)
            page = await http.get(f"http://127.0.0.1:{port}/")
            full_page = (page.status, await page.text())
            third = await Tab(http, port).open()
            turned_away = await third.wait_for("rnn-tui is full")
            await third.close()
            await first.close()
            for _ in range(100):  # the place frees once the first visitor's process has ended
                again = await http.get(f"http://127.0.0.1:{port}/")
                if again.status == 200:
                    break
                await asyncio.sleep(0.1)
            fourth = await Tab(http, port).open()
            await fourth.wait_screen(MODEL)
            await fourth.close()
            await second.close()
            return full_page, turned_away, again.status

    with serving("--max-sessions", "2") as (port, _):
        (status, body), turned_away, status_after = asyncio.run(visit(port))
    assert status == 503 and "All 2 sessions are in use" in body
    assert "rnn-tui is full" in turned_away and MODEL not in turned_away
    assert status_after == 200


# ---- leaving, crashing, hanging ----------------------------------------------------------------------
def test_a_visitor_that_leaves_frees_its_process_and_its_memory():
    async def visit(port: int, server: int):
        http, (tab,) = await tabs(port, 1)
        await tab.wait_for(MODEL)
        pid = visitors_of(server)[0]
        own = memory.usage(pid)
        with_visitor = memory.together(memory.tree(server))
        await close(http, [tab])
        return pid, own, with_visitor

    with serving("--max-sessions", "2") as (port, proc):
        before = memory.together(memory.tree(proc.pid))
        pid, own, with_visitor = asyncio.run(visit(port, proc.pid))
        assert wait_until(lambda: not alive(pid), 10), "the visitor's process outlived its tab"
        after = memory.together(memory.tree(proc.pid))
    assert own.uss > 4 << 20 and own.rss > 3 * own.uss  # most of its pages are the preloader's, shared
    assert with_visitor.pss - before.pss > own.uss // 2
    assert after.pss - before.pss < 8 << 20, (before, after)  # what it held is given back


def test_a_visitor_that_crashes_or_hangs_leaves_the_others_and_the_server_be():
    async def visit(port: int, server: int):
        import aiohttp

        http = aiohttp.ClientSession()
        opened, pids = [], []
        for _ in range(3):  # one at a time, so each tab's process is known
            tab = await Tab(http, port).open()
            await tab.wait_for(MODEL)
            pids.append(new_visitor(server, pids))
            opened.append(tab)
        crashed, hung, well = opened
        try:
            os.kill(pids[0], signal.SIGSEGV)  # a crash: its tab is told the session ended
            assert await crashed.wait_closed(15), "the crashed visitor's tab was left open"
            os.kill(pids[1], signal.SIGSTOP)  # a hang: it reads and answers nothing any more
            await hung.keys(RIGHT, "q")
            await hung.close()  # its tab closes; the server ends it after its grace
            t = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, wait_until, lambda: not alive(pids[1]), 20)
            ended_after = time.monotonic() - t
            await well.keys(RIGHT)
            await well.wait_screen("t 1/63")  # the third still steps
            again = await Tab(http, port).open()  # and both places are free again
            await again.wait_for(MODEL)
            opened.append(again)
            return ended_after, alive(pids[1])
        finally:
            await close(http, opened)

    with serving("--max-sessions", "3") as (port, proc):
        ended_after, hung_alive = asyncio.run(visit(port, proc.pid))
        assert proc.poll() is None, "the server went down"
    assert not hung_alive and ended_after < 15


# ---- stopping the server ------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "sigkill"])
def test_the_server_stops_with_every_visitor_and_the_preloader(how):
    """Ctrl-C in the operator's terminal (SIGINT to its process group) and SIGTERM (a service
    manager) stop cleanly, exit code 0; even SIGKILL leaves no visitor behind (each process dies
    with its parent)."""

    async def visit(port: int):
        http, opened = await tabs(port, 2)
        for tab in opened:
            await tab.wait_for(MODEL)
        return http, opened

    with serving("--max-sessions", "2") as (port, proc):
        loop = asyncio.new_event_loop()
        http, opened = loop.run_until_complete(visit(port))
        preloader = preloader_of(proc.pid)
        visitors = visitors_of(proc.pid)
        assert len(visitors) == 2
        t = time.monotonic()
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        elif how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            proc.kill()
        code = proc.wait(timeout=20)
        stopped_after = time.monotonic() - t
        everyone = [preloader, *visitors]
        assert wait_until(lambda: not any(alive(p) for p in everyone), 15), [p for p in everyone if alive(p)]
        closed = [loop.run_until_complete(tab.wait_closed(10)) for tab in opened]
        loop.run_until_complete(close(http, opened))
        loop.close()
    if how != "sigkill":
        assert code == 0 and stopped_after < 12, (code, stopped_after)
    assert all(closed), "a tab was not told the server stopped"


def test_a_server_that_loses_its_preloader_says_so_and_stops():
    with serving("--max-sessions", "2") as (port, proc):
        os.kill(preloader_of(proc.pid), signal.SIGKILL)
        code = proc.wait(timeout=20)
        err = proc.stderr.read()
    assert code == 1
    assert "the preloader stopped" in err


# ---- what the server knows and shows ---------------------------------------------------------------
def test_the_preloader_runs_one_thread_and_visitors_share_its_pages():
    async def visit(port: int):
        http, opened = await tabs(port, 2)
        for tab in opened:
            await tab.wait_for(MODEL)
        return http, opened

    with serving("--max-sessions", "2") as (port, proc):
        loop = asyncio.new_event_loop()
        http, opened = loop.run_until_complete(visit(port))
        preloader = preloader_of(proc.pid)
        threads = os.listdir(f"/proc/{preloader}/task")
        visitors = [memory.usage(p) for p in visitors_of(proc.pid)]
        server = memory.usage(proc.pid)
        torch_in_server = "torch" in open(f"/proc/{proc.pid}/maps").read()
        loop.run_until_complete(close(http, opened))
        loop.close()
    assert len(threads) == 1  # a fork copies the forking thread only: there must be no other
    for v in visitors:  # each maps the preloader's ~250 MiB but holds little of its own
        assert v.uss < 80 << 20 and v.rss > 150 << 20, v
    assert not torch_in_server and server.rss < 150 << 20  # the web server never loads torch


def run_server_with_output(port: int, stdout_fd: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnn_tui", "serve", "--port", str(port), "--max-sessions", "2"],
                            cwd=ROOT, stdout=stdout_fd, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"})  # fmt: skip


def test_the_operators_line_counts_visitors_and_their_memory_plain_when_piped():
    port = free_port()
    proc = run_server_with_output(port, subprocess.PIPE)
    try:
        wait_listening(port, proc)

        async def visit():
            http, (tab,) = await tabs(port, 1)
            await tab.wait_for(MODEL)
            await asyncio.sleep(3)  # a look at the visitors every 2 s
            await close(http, [tab])
            await asyncio.sleep(3)

        asyncio.run(visit())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    lines = [line for line in out.splitlines() if line.startswith("rnn-tui serve: visitors ")]
    assert any(line.startswith("rnn-tui serve: visitors 0/2 · ") for line in lines), out
    assert any(line.startswith("rnn-tui serve: visitors 1/2 · ") and " memory (MiB: server " in line for line in lines), out
    assert len(lines) <= 4, lines  # a line when the count changes, not one every look
    assert "stopped (1 visitor served" in out


def test_the_operators_line_updates_in_place_on_a_terminal():
    port = free_port()
    master, slave = pty.openpty()
    proc = run_server_with_output(port, slave)
    os.close(slave)
    out = b""
    try:
        wait_listening(port, proc)

        async def visit():
            http, (tab,) = await tabs(port, 1)
            await tab.wait_for(MODEL)
            await asyncio.sleep(4.5)
            await close(http, [tab])

        asyncio.run(visit())
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
        try:
            while select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 65536)
        except OSError:
            pass
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert "visitors 1/2 · " in text
    redraws = text.count(" memory (MiB: ")
    assert redraws >= 3  # redrawn every look ...
    after = text[text.index("visitors 0/2 · ") :]
    assert after.count("\n") <= 3 and "\r" in after  # ... over the same line, not a new one each time
