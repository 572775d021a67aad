"""Explorer speed, measured end to end in a pseudo-terminal, as a person sees it.

- first frame: from starting the process to the first complete frame on the terminal (the
  explorer draws a "loading the model" state before torch is imported);
- model ready: from starting the process to the frame with the traced model;
- step latency: from writing the → key to the terminal to the end of the frame it causes
  (Textual brackets each frame in synchronized-output markers, which this terminal accepts).

The explorer is started as a person starts it, through the `rnn-tui` command (the one installed
next to this Python), on an untrained character model over a T-character text. Python's bytecode
is cached, as it is after the first start of an installed package: the child's environment drops
PYTHONDONTWRITEBYTECODE and one untimed start comes first.

`--against DIR` times another checkout of the repository (a clone at an older commit, say) side
by side: the two start alternately, `--rounds` times each, so load on the machine hits both alike.

Default: 200x60, an LSTM with H=256 over a T=500 character sequence; goals: first frame 0.6 s CPU,
model ready 2.5 s, a step 10 ms CPU and p95 16 ms wall on a quiet machine.
Next to each wall-clock time it prints the CPU time the explorer's process used (from
/proc/PID/stat), which does not grow when other work shares the machine; and the load average.

    python benchmarks/ui.py [--cell lstm] [--hidden 256] [--steps 500] [--keys 60] [--size 200x60]
    python benchmarks/ui.py --count     # also: messages handled and widgets repainted per step,
                                        # counted in-process (Textual's headless driver)
    python benchmarks/ui.py --floor     # also, in-process: a step's CPU against a frame in which only
                                        # two lines change, and against a bare Textual app redrawing
                                        # the same screen (what Textual itself costs)
    python benchmarks/ui.py --against /tmp/before --rounds 3
    python benchmarks/ui.py --gradients 2000   # the Gradients tab on a long trace: the rows and
                                               # step Jacobians in view first, then the whole
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

SYNC_QUERY = b"\x1b[?2026$p"
SYNC_REPLY = b"\x1b[?2026;2$y"  # DECRPM: synchronized output is supported
SYNC_END = b"\x1b[?2026l"
RIGHT = b"\x1b[C"

TEXT = "the quick brown fox jumps over the lazy dog, and the dog sleeps on. "


def text_of(steps: int) -> str:
    return (TEXT * (steps // len(TEXT) + 1))[:steps]


def rnn_tui_command() -> str:
    """The `rnn-tui` script of this Python's environment (else the one on PATH)."""
    here = Path(sys.executable).with_name("rnn-tui")
    found = str(here) if here.is_file() else shutil.which("rnn-tui")
    if found is None:
        raise SystemExit("benchmarks/ui.py: no rnn-tui command: install the package (pip install -e .)")
    return found


# `rnn-tui` from another checkout: its rnn_tui package ahead of the installed (editable) one
FROM_TREE = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv.pop(1))
from rnn_tui.cli import main
sys.argv[0] = "rnn-tui"
sys.exit(main())
"""


def command(tree: str | None) -> list[str]:
    return [rnn_tui_command()] if tree is None else [sys.executable, "-c", FROM_TREE, tree]


class Terminal:
    """A pseudo-terminal running one child process, with timestamped reads."""

    def __init__(self, argv: list[str], cols: int, rows: int) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        env.pop("NO_COLOR", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as an installed package runs
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.buffer = b""

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:
            return b""
        if SYNC_QUERY in data:
            os.write(self.master, SYNC_REPLY)
        self.buffer += data
        return data

    def wait_for(self, needle: bytes, timeout: float) -> float:
        """Seconds since start when `needle` has arrived (searching what is not yet consumed)."""
        deadline = time.perf_counter() + timeout
        while needle not in self.buffer:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no {needle!r} within {timeout} s; last output: {self.buffer[-400:]!r}")
            self.read(0.05)
        now = time.perf_counter()
        self.buffer = self.buffer[self.buffer.index(needle) + len(needle):]
        return now - self.started

    def cpu(self) -> float:
        """Seconds of CPU (user + system) the child has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def drain(self, quiet: float = 0.15) -> None:
        while self.read(quiet):
            pass
        self.buffer = b""

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        finally:
            os.close(self.master)


def warm_up(tree: str | None, cols: int, rows: int) -> None:
    """One untimed start to its first frame: Python writes the bytecode caches."""
    term = Terminal([*command(tree), "--cell", "rnn", "--hidden", "4"], cols, rows)
    try:
        term.wait_for(b"loading the model", 60)
    finally:
        term.close()


def measure(cell: str, hidden: int, steps: int, keys: int, cols: int, rows: int, tree: str | None = None) -> dict:
    argv = [*command(tree), "--cell", cell, "--hidden", str(hidden), "--input", text_of(steps)]
    term = Terminal(argv, cols, rows)
    try:
        first = term.wait_for(b"loading the model", 10)
        first_cpu = term.cpu()
        ready = term.wait_for(b"params", 120)
        ready_cpu = term.cpu()
        term.drain()
        cpu0 = term.cpu()
        latencies = []
        for _ in range(keys):
            t0 = time.perf_counter()
            os.write(term.master, RIGHT)
            deadline = t0 + 2
            while SYNC_END not in term.buffer and time.perf_counter() < deadline:
                term.read(0.5)
            t1 = time.perf_counter()
            if SYNC_END not in term.buffer:
                raise TimeoutError("a step drew no frame within 2 s")
            latencies.append(t1 - t0)
            term.drain(0.03)
        step_cpu = (term.cpu() - cpu0) / keys
    finally:
        term.close()
    return {"first": first, "first_cpu": first_cpu, "ready": ready, "ready_cpu": ready_cpu,
            "latencies": latencies, "step_cpu": step_cpu}


def count(cell: str, hidden: int, steps: int, keys: int, cols: int, rows: int) -> dict:
    """Per → press, in-process on Textual's headless driver: the messages handled, and the widgets
    asked to repaint and the widgets drawn (asked for their lines) on average; and the widgets mounted."""
    import asyncio

    from textual.widget import Widget

    from rnn_tui.engine.subject import Spec
    from rnn_tui.ui.app import ExplorerApp
    from rnn_tui.ui.compositor import ChangedOnlyCompositor
    from rnn_tui.ui.source import EngineSource

    source = EngineSource.from_spec(Spec(cell=cell, hidden=hidden, input=text_of(steps)))
    app = ExplorerApp(source, source.initial_request())
    seen: list = []
    refreshed: list[set] = []
    drawn: list[set] = []
    mounted: list[int] = []
    set_dirty, get_renders = Widget._set_dirty, ChangedOnlyCompositor._get_renders

    def counting_set_dirty(self, *regions):  # a repaint asked for: Widget.refresh, or ui.compositor.repaint
        refreshed[-1].add(id(self))
        return set_dirty(self, *regions)

    def counting_get_renders(self, crop=None):  # the widgets the compositor asks for their lines
        at = {where: widget for widget, where in self.visible_widgets.items()}
        for render in get_renders(self, crop):
            drawn[-1].add(id(at.get((render[0], render[1]))))
            yield render

    async def go() -> None:
        async with app.run_test(size=(cols, rows), message_hook=seen.append) as pilot:
            while app.screen.view is None:
                await pilot.pause(0.1)
            await pilot.pause(0.5)
            mounted.append(len(list(app.screen.walk_children())))
            Widget._set_dirty, ChangedOnlyCompositor._get_renders = counting_set_dirty, counting_get_renders
            try:
                seen.clear()
                for _ in range(keys):  # not pilot.press: its wait posts a message to every widget
                    refreshed.append(set())
                    drawn.append(set())
                    app.simulate_key("right")
                    await asyncio.sleep(0.15)
            finally:
                Widget._set_dirty, ChangedOnlyCompositor._get_renders = set_dirty, get_renders

    asyncio.run(go())
    return {"messages": len(seen) / keys, "refreshed": statistics.mean(map(len, refreshed)),
            "drawn": statistics.mean(map(len, drawn)), "widgets": mounted[0]}


def floor(cell: str, hidden: int, steps: int, keys: int, cols: int, rows: int) -> dict:
    """What a step costs against what Textual itself costs, in-process on the headless driver, in
    CPU seconds of this process per frame, the frame rendered to the text a terminal would get:

    - step: a → press in the explorer (the View handed down, the frame composed and rendered);
    - fixed: a frame of the explorer in which only the status line and the time axis change: the
      frame still spans the screen, and Textual draws again every widget whose area meets it;
    - bare: a bare App, one widget showing the explorer's last frame (the same segments), every
      line redrawn each frame: Textual's own cost of redrawing that screen.
    """
    import asyncio

    from textual._compositor import Compositor
    from textual.app import App
    from textual.geometry import Region
    from textual.widget import Widget

    from rnn_tui.engine.subject import Spec
    from rnn_tui.ui.app import ExplorerApp
    from rnn_tui.ui.source import EngineSource
    from rnn_tui.ui.widgets.heatmap_view import HeatmapView
    from rnn_tui.ui.widgets.status_bar import StatusBar

    render_update = Compositor.render_update
    out: dict = {"bytes": []}

    def rendered(self, *args, **kwargs):  # the headless driver writes nothing: render it here
        update = render_update(self, *args, **kwargs)
        if update is not None and hasattr(update, "render_segments"):
            out["bytes"].append(len(update.render_segments(self_app[0].console)))
        return update

    self_app: list = []

    async def per_frame(pilot, act, n: int) -> float:
        await pilot.pause(0.2)
        t0 = time.process_time()
        for _ in range(n):
            act()
            await asyncio.sleep(0.04)
        return (time.process_time() - t0) / n

    import gc

    from rnn_tui.ui.app import GC_YOUNG

    gc.freeze()  # the collector set as `rnn-tui` sets it (run_frozen), for both apps alike
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
    source = EngineSource.from_spec(Spec(cell=cell, hidden=hidden, input=text_of(steps)))
    app = ExplorerApp(source, source.initial_request())
    self_app.append(app)
    strips: list = []

    async def explorer() -> None:
        async with app.run_test(size=(cols, rows)) as pilot:
            while app.screen.view is None:
                await pilot.pause(0.1)
            Compositor.render_update = rendered
            try:
                out["step"] = await per_frame(pilot, lambda: app.simulate_key("right"), keys)
                status, maps = app.screen.query_one(StatusBar), app.screen.query_one(HeatmapView)
                out["fixed"] = await per_frame(
                    pilot, lambda: (status.refresh(), maps.refresh(Region(0, 1, maps.size.width, 1))), keys)
            finally:
                Compositor.render_update = render_update
            strips.extend(app.screen._compositor.render_strips())

    asyncio.run(explorer())

    class Frame(Widget):
        def render_line(self, y: int):
            return strips[y]

    class Bare(App):
        def compose(self):
            yield Frame()

    bare = Bare()
    self_app[0] = bare

    async def redraw() -> None:
        async with bare.run_test(size=(cols, rows)) as pilot:
            frame = bare.screen.query_one(Frame)
            Compositor.render_update = rendered
            try:
                out["bare"] = await per_frame(pilot, frame.refresh, keys)
            finally:
                Compositor.render_update = render_update

    asyncio.run(redraw())
    out["segments"] = sum(len(strip) for strip in strips)
    return out


def gradients(T: int, hidden: int, cell: str) -> dict:
    """CPU seconds, in this process, of what the Gradients tab computes for a T-step trace with the
    cursor at its first step: the windows in view (drawn as each arrives), then the whole analysis."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `rnn-tui` runs (cli.single_threaded_numpy)
    from rnn_tui.engine.subject import Spec
    from rnn_tui.ui.lab import gradflow, gradflow_window
    from rnn_tui.ui.widgets.gradients_pane import WHOLE_AT_ONCE, GradientsPane

    source = __import__("rnn_tui.ui.source", fromlist=["EngineSource"]).EngineSource
    src = source.from_spec(Spec(cell=cell, hidden=hidden, input=text_of(T)))
    trace = src.build(src.initial_request())
    out = {"T": trace.T, "whole_at_once": trace.T <= WHOLE_AT_ONCE, "windows": []}
    t0 = time.process_time()
    if not out["whole_at_once"]:
        for block in GradientsPane._blocks_wanted(trace, 0):
            gradflow_window(trace, *GradientsPane._block_ranges(trace, block))
            out["windows"].append((block, time.process_time() - t0))
    t1 = time.process_time()
    gradflow(trace)
    out["whole"] = time.process_time() - t1
    return out


def report(name: str, runs: list[dict], cols: int, rows: int, args) -> None:
    """The figures of one tree: medians over its rounds (the step latencies pooled)."""
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    lat = sorted(x for r in runs for x in r["latencies"])
    ms = lambda s: f"{1000 * s:.1f} ms"  # noqa: E731
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    rounds = f", median of {len(runs)} starts" if len(runs) > 1 else ""
    print(f"{name}{rounds}")
    print(f"  first frame     {med('first'):.3f} s wall, {med('first_cpu'):.3f} s CPU   (goal 0.6 s CPU)")
    print(f"  model ready     {med('ready'):.3f} s wall, {med('ready_cpu'):.3f} s CPU"
          f"   (goal 2.5 s; torch import, model build and trace, in a worker)")
    print(f"  step latency    median {ms(statistics.median(lat))}, p95 {ms(p95)}, max {ms(lat[-1])} wall"
          f" over {len(lat)} steps; {ms(med('step_cpu'))} CPU per step   (goals: p95 16 ms wall, 10 ms CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--steps", type=int, default=500, help="sequence length T")
    parser.add_argument("--keys", type=int, default=60, help="→ presses to time")
    parser.add_argument("--size", default="200x60")
    parser.add_argument("--count", action="store_true", help="also count messages and repainted widgets per step")
    parser.add_argument("--floor", action="store_true", help="also, in-process: a step's CPU against a frame that "
                        "changes two lines and against a bare Textual app redrawing the same screen")
    parser.add_argument("--against", metavar="DIR", help="another checkout of the repository, timed side by side")
    parser.add_argument("--rounds", type=int, default=1, help="starts of each tree, alternating")
    parser.add_argument("--gradients", type=int, metavar="T", help="time the Gradients tab's analysis of a T-step "
                        "trace instead (in-process; --hidden and --cell apply)")
    args = parser.parse_args()
    if args.gradients:
        g = gradients(args.gradients, args.hidden, args.cell)
        print(f"Gradients tab, {args.cell} H={args.hidden}, T={g['T']}, cursor at t=0   ({os.cpu_count()} cores,"
              f" load average {os.getloadavg()[0]:.2f})")
        if g["whole_at_once"]:
            print("  short enough to analyse whole at once")
        for (kind, b), t in g["windows"]:
            print(f"  in view: {kind} block {b} drawn after {t:.2f} s CPU")
        print(f"  the whole analysis, in the background after that: {g['whole']:.2f} s CPU")
        return
    cols, rows = (int(v) for v in args.size.split("x"))
    trees = [None] + ([str(Path(args.against).resolve())] if args.against else [])
    for tree in trees:
        warm_up(tree, cols, rows)
    runs: dict = {tree: [] for tree in trees}
    for _ in range(max(args.rounds, 1)):
        for tree in trees:
            runs[tree].append(measure(args.cell, args.hidden, args.steps, args.keys, cols, rows, tree))
    load = os.getloadavg()[0]
    print(f"explorer at {cols}x{rows}, {args.cell} H={args.hidden}, T={args.steps}"
          f"   ({os.cpu_count()} cores, load average {load:.2f})")
    for tree in trees:
        report("this checkout" if tree is None else tree, runs[tree], cols, rows, args)
    if args.floor:
        f = floor(args.cell, args.hidden, args.steps, min(args.keys, 40), cols, rows)
        ms = lambda s: f"{1000 * s:.1f} ms"  # noqa: E731
        print(f"  in-process      a step {ms(f['step'])} CPU; a frame changing only the status line and the time axis"
              f" {ms(f['fixed'])}; a bare Textual app redrawing the same screen ({f['segments']} segments)"
              f" {ms(f['bare'])} (headless driver, each frame rendered to terminal text)")
    if args.count:
        c = count(args.cell, args.hidden, args.steps, min(args.keys, 20), cols, rows)
        print(f"  per step        {c['messages']:.0f} messages handled, {c['refreshed']:.0f} widgets asked to"
              f" repaint, {c['drawn']:.0f} drawn; {c['widgets']} widgets mounted (in-process, headless)")


if __name__ == "__main__":
    main()
