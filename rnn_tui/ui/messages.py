"""Messages that flow up the widget tree to the main screen and the app (state flows down as a
View): a widget asks, the screen or the app acts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from rnn_tui.ui.source import TraceRequest

if TYPE_CHECKING:  # numpy's records: loaded with the first trace, after the first frame
    from rnn_tui.engine.records import Trace


@dataclass
class TraceReady(Message):
    """A worker finished building a trace."""

    request: TraceRequest
    trace: Trace


@dataclass
class TraceFailed(Message):
    """A worker could not build a trace; `error` is one line for the person."""

    request: TraceRequest
    error: str


@dataclass
class MoveTo(Message):
    """Go to a step and/or unit (a click on a token or a heatmap cell)."""

    step: int | None = None
    unit: int | None = None
    matrix: str | None = None


@dataclass
class RequestChange(Message):
    """Rebuild the trace with these request fields changed (model settings, input text)."""

    changes: dict


@dataclass
class OpenLesson(Message):
    """Open a guided lesson on a screen of its own (the app does it)."""

    name: str


@dataclass
class ShowTrace(Message):
    """A pane shows another trace of the same sequence (the Time-lapse tab: a snapshot's): the
    status line and the token strip follow it while that tab is open; None: back to the explorer's."""

    trace: Trace | None
