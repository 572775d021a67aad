"""Slow work behind the panes: computed in a thread worker, kept by the key of what it depends on,
and a failure told in one line.

    self.flow = Job(self, "gradflow", gradflow)      # in a pane's __init__
    outcome = self.flow.get(keyed(trace), trace)      # in its refresh: ready, failed or running
    if outcome.ready: draw(outcome.value)
    elif outcome.failed: say(outcome.error)

`get` returns the kept result for the key, or starts the worker (cancelling the one computing an
older key) and says it is running. When the worker is done the result comes back as a message
(thread-safe) and the pane's `computed(job, key)` runs on the UI thread: a pane on screen draws
it, a hidden one keeps it for when it is opened next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from textual.message import Message
from textual.worker import get_current_worker

from rnn_tui.safe_text import safe


def one_line(error: BaseException) -> str:
    """An exception as one line for the person: the message of a user error (a ValueError, which
    every EngineError is), else its type and message. Control characters (from a file name, say)
    are written escaped (rnn_tui.safe_text), never sent to the terminal."""
    text = str(error).strip()
    text = safe(text.splitlines()[0].strip()) if text else ""
    if isinstance(error, ValueError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


_COMPUTING: set[int] = set()  # threads inside a computation that cannot stop halfway
_COMPUTING_LOCK = threading.Lock()


@contextmanager
def uninterruptible() -> Iterator[None]:
    """Mark the calling thread as inside an engine call that cannot check for cancellation (an
    analysis, a model build): when the person quits meanwhile, the process leaves without waiting
    for an answer nobody will see (see `rnn_tui.ui.app.run_frozen`)."""
    me = threading.get_ident()
    with _COMPUTING_LOCK:
        _COMPUTING.add(me)
    try:
        yield
    finally:
        with _COMPUTING_LOCK:
            _COMPUTING.discard(me)


def computing() -> int:
    """How many threads are inside an `uninterruptible` computation now."""
    with _COMPUTING_LOCK:
        return len(_COMPUTING)


class Ident:
    """Compares by identity: a Trace holds arrays, so `==` between two traces cannot answer."""

    __slots__ = ("obj",)

    def __init__(self, obj) -> None:
        self.obj = obj

    def __eq__(self, other) -> bool:
        return isinstance(other, Ident) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def keyed(*parts) -> tuple:
    """A cache key: traces by identity (and kept alive, so an id is never reused), the rest by value."""
    from rnn_tui.engine.records import Trace  # numpy's records: loaded with the first trace

    return tuple(Ident(p) if isinstance(p, Trace) else p for p in parts)


@dataclass(frozen=True)
class Outcome:
    """Where one computation stands: "ready" (value), "failed" (error, one line) or "running"."""

    state: str
    value: Any = None
    error: str = ""

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def running(self) -> bool:
        return self.state == "running"


RUNNING = Outcome("running")


class Computed(Message):
    """A job's worker finished (posted from its thread to the job's pane)."""

    def __init__(self, job: "Job", key, outcome: Outcome) -> None:
        super().__init__()
        self.job, self.key, self.outcome = job, key, outcome


class Job:
    """One kind of slow computation of a pane (see the module docstring).

    owner: the widget whose worker runs it and which is told of results (`owner.computed(job, key)`).
    compute: called in the worker thread with `get`'s arguments; its exception becomes one line.
    keep: results kept (the oldest are dropped first).
    explain: turns an exception into the line shown (default `one_line`), for a pane that knows more.
    """

    def __init__(self, owner, name: str, compute: Callable[..., Any], *, keep: int = 8,
                 explain: Callable[..., str] | None = None) -> None:
        self.owner = owner
        self.name = name
        self.compute = compute
        self.keep = keep
        self.explain = explain
        self._done: dict[Any, Outcome] = {}
        self._pending: Any = None
        self._pending_set = False

    def result(self, key) -> Outcome | None:
        """What is known for the key, without starting anything: None when nothing is."""
        done = self._done.get(key)
        if done is not None:
            return done
        return RUNNING if self.running_for(key) else None

    def running_for(self, key) -> bool:
        return self._pending_set and self._pending == key

    @property
    def busy(self) -> bool:
        """A worker is computing (a `get` for another key now would cancel it)."""
        return self._pending_set

    def get(self, key, *args, **kwargs) -> Outcome:
        """The result for the key; if there is none, start computing it and say it is running."""
        known = self.result(key)
        if known is not None:
            return known
        self._pending, self._pending_set = key, True
        self.owner.run_worker(
            lambda: self._run(key, args, kwargs), name=self.name, group=f"{self.name}:{id(self.owner)}",
            thread=True, exclusive=True, exit_on_error=False,
        )
        return RUNNING

    def forget(self) -> None:
        """Drop every result kept (and ignore the one being computed): the next `get` computes again."""
        self._done.clear()
        self._pending, self._pending_set = None, False

    def _run(self, key, args, kwargs) -> None:
        worker = get_current_worker()
        try:
            with uninterruptible():
                outcome = Outcome("ready", self.compute(*args, **kwargs))
        except Exception as error:  # shown in the pane, never raised: the explorer stays up
            outcome = Outcome("failed", error=self.explain(error, *args) if self.explain else one_line(error))
        if not worker.is_cancelled:
            self.owner.post_message(Computed(self, key, outcome))

    def arrived(self, key, outcome: Outcome) -> bool:
        """Keep a result (on the UI thread); False when it was forgotten meanwhile."""
        if not self.running_for(key):
            return False
        self._pending, self._pending_set = None, False
        while len(self._done) >= self.keep:
            self._done.pop(next(iter(self._done)))
        self._done[key] = outcome
        return True
