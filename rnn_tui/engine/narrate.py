"""One line that says what just happened at step t, for a projector or a student stepping alone.

    narrate(trace, t).text
    -> "t=7 'x': the forget gate of unit 3 closed (f 0.93→0.08): c dropped from 0.91 to 0.12"

Every candidate change at step t (in the layer and direction looked at) becomes an `Event` with
a salience score; the line tells the most salient one, plus a change of prediction when there is
one. What counts, in order of weight:

- a sigmoid gate crossing 1/2 by a wide margin (|Δ| >= GATE_SWING): "opened" / "closed", told with
  the state it moves: f and i move c, o moves h (LSTM); z decides how much of h_{t-1} stays, r how
  much of it the candidate sees (GRU). Score: 1.5 |Δgate| (+ |Δ state| it moved).
- the largest |c_t - c_{t-1}| (LSTMs) and |h_t - h_{t-1}|; a sign flip says "flipped".
- the top-1 prediction changing from the previous step (a per-step cross-entropy head), or the
  pooled head's answer at the last step it reads.

"Previous" is the step read before, in the direction's reading order (t+1 for a reverse
direction); at the first step read it is the initial state, and gates have no previous value.
Pure numpy over a `Trace`: no torch, no model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.records import LayerTrace, Trace

GATE_SWING = 0.4  # a gate "opens" or "closes" when it crosses 1/2 and moves at least this much
STATE_MIN = 0.05  # a state change smaller than this is "little changed"
GATE_WORDS = {
    "i": "input gate",
    "f": "forget gate",
    "o": "output gate",
    "r": "reset gate",
    "z": "update gate",
}


class NarrateError(EngineError):
    pass


@dataclass(frozen=True)
class Event:
    """One candidate change at a step, with how salient it is."""

    kind: str  # "gate" | "c" | "h" | "prediction" | "quiet" | "diverged"
    score: float
    text: str
    unit: int | None = None
    gate: str | None = None
    before: float | None = None
    after: float | None = None


@dataclass(frozen=True)
class Narration:
    step: int
    layer: int
    direction: str
    text: str  # the one line
    events: tuple[Event, ...]  # every candidate, most salient first

    @property
    def main(self) -> Event:
        return self.events[0]


def _f(x: float) -> str:
    return f"{x:.2f}"


def _moved(name: str, before: float, after: float) -> str:
    """"c dropped from 0.91 to 0.12" / "h rose ..." / "h flipped from -0.80 to 0.70"."""
    if before * after < 0 and min(abs(before), abs(after)) >= 0.2:
        verb = "flipped"
    elif after > before:
        verb = "rose"
    else:
        verb = "dropped"
    return f"{name} {verb} from {_f(before)} to {_f(after)}"


def _prev_index(entry: LayerTrace, t: int, T: int) -> int | None:
    """The step read just before t in this direction's order (None at the first step read)."""
    if entry.direction == "forward":
        return t - 1 if t > 0 else None
    return t + 1 if t < T - 1 else None


def _token(trace: Trace, t: int) -> str:
    return trace.tokens[t] if t < len(trace.tokens) else str(t)


def events_at(trace: Trace, t: int, layer: int = 0, direction: str = "forward") -> list[Event]:
    """Every candidate change at step t, most salient first (at least one: a "quiet" event)."""
    T = trace.T
    if not 0 <= t < T:
        raise NarrateError(f"step {t} is outside the sequence (0..{T - 1})")
    try:
        entry = trace.layer(layer, direction)
    except KeyError:
        raise NarrateError(f"the model has no layer {layer} {direction}") from None
    p = _prev_index(entry, t, T)
    h, h_prev = entry.h[t], entry.h_prev[t]
    c = entry.c[t] if entry.c is not None else None
    c_prev = entry.c_prev[t] if entry.c_prev is not None else None
    dh = h - h_prev
    dc = None if c is None else c - c_prev
    out: list[Event] = []
    if not (np.isfinite(h).all() and (c is None or np.isfinite(c).all())):
        bad = int((~np.isfinite(h)).sum()) + (0 if c is None else int((~np.isfinite(c)).sum()))
        where = "h and c" if c is not None else "h"
        return [Event("diverged", float("inf"), f"the model has diverged: {bad} values of {where} are NaN or inf at this step")]

    # gates crossing 1/2
    if p is not None:
        for g, word in GATE_WORDS.items():
            if g not in entry.gates:
                continue
            now, before = entry.gates[g][t], entry.gates[g][p]
            swing = now - before
            crossed = ((before < 0.5) & (now >= 0.5)) | ((before >= 0.5) & (now < 0.5))
            for j in np.flatnonzero(crossed & (np.abs(swing) >= GATE_SWING)):
                j = int(j)
                verb = "opened" if swing[j] > 0 else "closed"
                head = f"the {word} of unit {j} {verb} ({g} {_f(before[j])}→{_f(now[j])})"
                state_move = 0.0
                if g in ("i", "f") and c is not None:
                    tail = _moved("c", float(c_prev[j]), float(c[j]))
                    state_move = abs(float(dc[j]))
                elif g == "z":
                    tail = (
                        "h keeps its old value" if now[j] >= 0.5 else "h takes the new candidate"
                    ) + f": {_moved('h', float(h_prev[j]), float(h[j]))}"
                    state_move = abs(float(dh[j]))
                elif g == "r":
                    tail = (
                        "the candidate sees h_{t-1} again" if now[j] >= 0.5 else "the candidate ignores h_{t-1}"
                    ) + f" (n = {_f(float(entry.gates['n'][t][j]))})"
                else:  # o: how much of tanh(c) shows in h
                    tail = _moved("h", float(h_prev[j]), float(h[j]))
                    state_move = abs(float(dh[j]))
                out.append(
                    Event("gate", 1.5 * abs(float(swing[j])) + state_move, f"{head}: {tail}", j, g, float(before[j]), float(now[j]))
                )

    # the largest state changes
    if dc is not None:
        j = int(np.argmax(np.abs(dc)))
        if abs(dc[j]) >= STATE_MIN:
            text = _moved(f"c of unit {j}", float(c_prev[j]), float(c[j]))
            if "f" in entry.gates and "i" in entry.gates:
                text += f" (f {_f(float(entry.gates['f'][t][j]))}, i {_f(float(entry.gates['i'][t][j]))})"
            out.append(Event("c", abs(float(dc[j])), text, j, None, float(c_prev[j]), float(c[j])))
    j = int(np.argmax(np.abs(dh)))
    if abs(dh[j]) >= STATE_MIN:
        out.append(Event("h", 0.9 * abs(float(dh[j])), _moved(f"h of unit {j}", float(h_prev[j]), float(h[j])), j, None, float(h_prev[j]), float(h[j])))

    pred = _prediction_event(trace, t, entry)
    if pred is not None:
        out.append(pred)
    if not any(e.kind != "prediction" for e in out):
        out.append(
            Event("quiet", 0.0, f"little changed (largest |Δh| = {_f(float(np.abs(dh).max()))}, unit {int(np.argmax(np.abs(dh)))})")
        )
    out.sort(key=lambda e: (-e.score, e.kind, e.unit if e.unit is not None else -1))
    return out


def _prediction_event(trace: Trace, t: int, entry: LayerTrace) -> Event | None:
    probs = trace.probs
    if probs is None or not len(probs):
        return None
    labels = trace.vocab or [str(k) for k in range(probs.shape[1])]
    name = lambda k: repr(labels[k]) if k < len(labels) else str(k)  # noqa: E731
    if trace.config.head == "step":
        now = int(np.argmax(probs[t]))
        if t == 0:
            return Event("prediction", 0.0, f"predicts {name(now)} ({_f(float(probs[t, now]))})")
        before = int(np.argmax(probs[t - 1]))
        if now == before:
            return None
        return Event("prediction", 0.5 * float(probs[t, now]), f"the prediction changed from {name(before)} to {name(now)} ({_f(float(probs[t, now]))})")
    # a pooled head answers once: tell it at the last step the head reads
    last = trace.T - 1 if entry.direction == "forward" else 0
    if t != last:
        return None
    now = int(np.argmax(probs[0]))
    return Event("prediction", 0.5 * float(probs[0, now]), f"the model answers {name(now)} ({_f(float(probs[0, now]))})")


def narrate(trace: Trace, t: int, layer: int = 0, direction: str = "forward") -> Narration:
    """The one line for step t: the most salient change, and a changed prediction if any."""
    events = events_at(trace, t, layer, direction)
    main = next(e for e in events if e.kind != "prediction")
    parts = [main.text]
    pred = next((e for e in events if e.kind == "prediction"), None)
    if pred is not None:
        parts.append(pred.text)
    where = f"t={t} {_token(trace, t)!r}"
    if trace.config.num_layers > 1 or trace.config.bidirectional:
        where += f" [l{layer}{' reverse' if direction == 'reverse' else ''}]"
    main_first = tuple([main] + [e for e in events if e is not main])
    return Narration(t, layer, direction, f"{where}: " + "; ".join(parts), main_first)
