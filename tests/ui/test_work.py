"""The panes' one Job for slow work: computed in a worker, kept by key, a failure in one line."""

from __future__ import annotations

import threading

from textual.app import App, ComposeResult

from rnn_tui.ui.widgets.pane import Pane
from rnn_tui.ui.work import Computed, Job, keyed, one_line
from tests.ui.conftest import settle
from tests.ui.fakes import make_trace


class Squares(Pane):
    """A pane with one job: the square of a number, or a failure for a negative one."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.told: list = []
        self.gate = gate

        def square(n: int) -> int:
            self.calls.append(n)
            if self.gate is not None:
                self.gate.wait(5)
            if n < 0:
                raise ValueError(f"no square for {n}\nsecond line")
            return n * n

        self.job = Job(self, "square", square, keep=2)

    def computed(self, job, key) -> None:
        self.told.append((job.name, key))


class Host(App):
    def __init__(self, pane: Squares) -> None:
        super().__init__()
        self.pane = pane

    def compose(self) -> ComposeResult:
        yield self.pane


async def test_a_result_is_computed_once_and_kept_by_key():
    pane = Squares()
    async with Host(pane).run_test() as pilot:
        assert pane.job.get(3, 3).running
        await settle(pilot)
        assert pane.told == [("square", 3)]
        outcome = pane.job.get(3, 3)
        assert outcome.ready and outcome.value == 9 and pane.calls == [3]  # kept: not computed again
        failed = pane.job.get(-2, -2)
        await settle(pilot)
        failed = pane.job.get(-2, -2)
        assert failed.failed and failed.error == "no square for -2"  # one line
        pane.job.get(4, 4)
        await settle(pilot)
        assert pane.job.result(3) is None  # keep=2: the oldest went first
        assert pane.job.result(4).value == 16


async def test_a_newer_key_supersedes_the_one_being_computed():
    gate = threading.Event()
    pane = Squares(gate)
    seen = []
    async with Host(pane).run_test(message_hook=seen.append) as pilot:
        pane.job.get(1, 1)
        await pilot.pause(0.05)
        pane.job.get(2, 2)  # the first worker is cancelled: its answer is never delivered
        assert pane.job.busy and pane.job.result(1) is None
        gate.set()
        await settle(pilot)
        assert [m.key for m in seen if isinstance(m, Computed)] == [2]
        assert pane.job.result(2).value == 4 and pane.job.result(1) is None
        pane.job.forget()
        assert pane.job.result(2) is None and not pane.job.busy


def test_keys_hold_traces_by_identity():
    a, b = make_trace(hidden=3, text="abc"), make_trace(hidden=3, text="abc")
    assert keyed(a, 1) == keyed(a, 1) and keyed(a, 1) != keyed(b, 1)
    assert len({keyed(a, 1), keyed(a, 1), keyed(b, 1)}) == 2


def test_one_line_names_a_bug_but_not_a_user_error_and_escapes_control_characters():
    assert one_line(ValueError("hidden must be\nsomething")) == "hidden must be"
    assert one_line(RuntimeError("boom")) == "RuntimeError: boom"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(ValueError("no such file: a\x1b[31mb")) == "no such file: a\\x1b[31mb"


def test_quitting_does_not_wait_for_a_computation_that_cannot_stop():
    """A model build (or an analysis) in a thread cannot be interrupted; the person who quits
    meanwhile gets their shell back at once, with exit code 0, not after the computation."""
    import subprocess
    import sys
    import textwrap
    import time

    code = textwrap.dedent("""
        import time
        from rnn_tui.ui.app import ExplorerApp, run_frozen
        from rnn_tui.ui.source import TraceRequest
        from tests.ui.fakes import FakeSource

        class Slow(FakeSource):
            def build(self, request):
                app.call_from_thread(app.exit)  # the person quits while the model is being built
                time.sleep(60)
                return super().build(request)

        app = ExplorerApp(Slow(), TraceRequest(hidden=4, text="abc"))
        run_frozen(app, headless=True)
        print("not reached: the process waited for the build")
    """)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "not reached" not in out.stdout
    assert time.monotonic() - t0 < 30
