"""Interventions: hold part of the network by hand and see what changes downstream.

    f   clamp the forget gate open (LSTM f = 1; GRU z = 1: keep the state) from this step on
    n   close the input gate (LSTM i = 0; GRU r = 0: ignore the old state) from this step on
    z   zero the selected unit's h from this step on
    p   pin the selected unit's h at its value now, from this step on
    x   flip h_t: the selected unit's h at this step only changes sign (h -> -h)
    d   drop the last hold      D  drop them all
    the form: any gate or state, unit (blank: all), value, steps — Enter adds it

The same sequence is traced again with the values held (`engine.trace.run_trace(...,
interventions=...)`, in a thread worker) and set against the untouched run: the difference of
the focused matrix (v picks h, c or a gate) as a heatmap, units x time, and the predictions that
changed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Input, Label, Select, Static

from rnn_tui.ui.visible_input import OrderedInput
from rnn_tui.engine.records import Trace
from rnn_tui.ui.lab import retrace
from rnn_tui.ui.messages import MoveTo
from rnn_tui.ui.palette import Scale, matrix, matrix_names
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.widgets.matrix_view import Matrix, MatrixView
from rnn_tui.ui.work import Job, keyed


HOLD_LINES = 4  # lines of the list of holds (#holds max-height)


@dataclass(frozen=True)
class Hold:
    """One value held by hand: the fields of `engine.trace.Intervention` (which imports torch)."""

    kind: str  # "gate" | "state"
    name: str  # gate name, or "h" / "c"
    value: float
    layer: int = 0
    direction: str = "forward"
    unit: int | None = None  # None: every unit
    start: int = 0
    stop: int | None = None  # None: to the end

    def describe(self) -> str:
        where = "all units" if self.unit is None else f"unit {self.unit}"
        if self.stop == self.start + 1:
            steps = f"at t={self.start}"
        else:
            steps = f"t={self.start}…" + ("end" if self.stop is None else str(self.stop - 1))
        layer = f"l{self.layer}" + ("_reverse" if self.direction == "reverse" else "")
        return f"{self.name} = {self.value:g} ({where}, {steps}, {layer})"

    def engine(self):
        from rnn_tui.engine.trace import Intervention

        return Intervention(self.kind, self.name, float(self.value), layer=self.layer, direction=self.direction,
                            unit=self.unit, start=self.start, stop=self.stop)


def held_run(base: Trace, holds: tuple[Hold, ...]) -> Trace:
    """The base trace's sequence traced again with the holds applied (in a worker: torch)."""
    return retrace(base, interventions=[h.engine() for h in holds])


@dataclass(frozen=True)
class Change:
    """One output row whose top prediction (or target probability) moved."""

    row: int
    before: str  # "e 41%"
    after: str
    target_before: float | None  # probability of the target, when there is one
    target_after: float | None
    flipped: bool  # the top prediction changed


def top1(trace: Trace, r: int) -> tuple[int, float]:
    probs = trace.probs
    if probs is None:
        return -1, float(np.asarray(trace.outputs[r]).ravel()[0])
    k = int(np.argmax(probs[r]))
    return k, float(probs[r, k])


def changes(base: Trace, held: Trace) -> list[Change]:
    """The output rows whose prediction changed, in row order (every row for an MSE head whose
    output moved by more than 1e-6)."""
    out = []
    names = base.vocab
    for r in range(base.outputs.shape[0]):
        kb, pb = top1(base, r)
        ka, pa = top1(held, r)
        target = base.targets[r] if r < len(base.targets) else None
        if base.probs is not None:
            label = lambda k: names[k] if names is not None and k < len(names) else str(k)  # noqa: E731
            tb = ta = None
            if target is not None:
                tb, ta = float(base.probs[r, target]), float(held.probs[r, target])
            moved = ka != kb or (tb is not None and abs(ta - tb) > 0.01) or abs(pa - pb) > 0.01
            if moved:
                out.append(Change(r, f"{label(kb)} {100 * pb:.0f}%", f"{label(ka)} {100 * pa:.0f}%", tb, ta, ka != kb))
        else:
            if abs(pa - pb) > 1e-6:
                out.append(Change(r, f"{pb:.3g}", f"{pa:.3g}", None, None, True))
    return out


def difference(base: Trace, held: Trace, layer: int, direction: str, name: str) -> np.ndarray:
    """(H, T) the held run minus the untouched one, for one matrix of one layer."""
    a = matrix(base.layer(layer, direction), name)
    b = matrix(held.layer(layer, direction), name)
    return (np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)).T


def diff_scale(d: np.ndarray) -> Scale:
    fin = np.abs(d[np.isfinite(d)])
    m = float(fin.max()) if fin.size else 0.0
    return Scale("diverging", -m if m > 0 else -1.0, m if m > 0 else 1.0)


class InterventionsPane(AnalysisPane):
    TITLE = "Interventions"
    DESCRIPTION = "clamp a gate, pin or zero a unit, edit h_t; see what changes downstream"

    BINDINGS = [
        Binding("f", "preset('forget')", "f=1", tooltip="clamp the forget gate open from this step (GRU: z=1)"),
        Binding("n", "preset('input')", "i=0", tooltip="close the input gate from this step (GRU: r=0)"),
        Binding("z", "preset('zero')", "zero unit", tooltip="zero the selected unit's h from this step"),
        Binding("p", "preset('pin')", "pin unit", tooltip="pin the selected unit's h at its value now"),
        Binding("x", "preset('flip')", "flip h_t", tooltip="flip the sign of the selected unit's h at this step only (h -> -h)"),
        Binding("d", "drop(False)", "drop last", tooltip="remove the last hold"),
        Binding("D", "drop(True)", "drop all", show=False, tooltip="remove every hold"),
    ]

    DEFAULT_CSS = """
    InterventionsPane #hold-form { height: 1; }
    InterventionsPane #hold-form Label { width: auto; padding: 0 1 0 1; }
    InterventionsPane #hold-form Input { width: 8; }
    InterventionsPane #hold-form Select { width: 10; }
    InterventionsPane #holds { height: auto; max-height: 4; padding: 0 1; }  /* HOLD_LINES */
    InterventionsPane #held-summary { height: 1; padding: 0 1; }
    InterventionsPane #held-body { height: 1fr; }
    InterventionsPane #held-diff { width: 1fr; }
    InterventionsPane #held-changes { width: 42; padding: 0 1; border-left: vkey $panel; }
    InterventionsPane.-narrow #held-changes { display: none; }
    """

    holds: reactive[tuple[Hold, ...]] = reactive(())

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.held = Job(self, "intervene", held_run, keep=4)  # by (base trace, holds)

    def compose(self) -> ComposeResult:
        with Horizontal(id="hold-form"):
            yield Select([("gate", "gate"), ("state", "state")], id="hold-kind", value="state", allow_blank=False,
                         compact=True)
            yield Select([("h", "h")], id="hold-name", value="h", allow_blank=False, compact=True)
            yield Label("unit")
            yield OrderedInput(id="hold-unit", placeholder="all", type="integer", compact=True)
            yield Label("value")
            yield OrderedInput(id="hold-value", placeholder="0", compact=True)
            yield Label("from t")
            yield OrderedInput(id="hold-start", placeholder="now", type="integer", compact=True)
            yield Label("to")
            yield OrderedInput(id="hold-stop", placeholder="end", type="integer", compact=True)
        yield Static(id="holds")
        yield Static(id="held-summary")
        with Horizontal(id="held-body"):
            yield MatrixView(id="held-diff")
            yield Static(id="held-changes")

    def on_mount(self) -> None:
        self._names_for_kind()
        self._draw_holds()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 90, "-narrow")

    # ---- the form ------------------------------------------------------------------------------------
    def _names_for_kind(self) -> None:
        if self.view is None:
            return
        cfg = self.view.trace.config
        kind = self.query_one("#hold-kind", Select).value
        if getattr(self, "_names_key", None) == (cfg, kind):
            return
        self._names_key = (cfg, kind)
        names = list(cfg.gates) if kind == "gate" else (["h", "c"] if cfg.has_cell_state else ["h"])
        box = self.query_one("#hold-name", Select)
        current = box.value
        box.set_options([(n, n) for n in names])
        box.value = current if current in names else names[0]

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "hold-kind":
            self._names_for_kind()

    def form_hold(self) -> Hold:
        """The hold the form describes; ValueError with one line when it cannot be one."""
        view = self.view
        if view is None:
            raise ValueError("no trace yet")

        def whole(box_id: str, default):
            text = self.query_one(f"#{box_id}", Input).value.strip()
            if not text:
                return default
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"{box_id.removeprefix('hold-')} must be a whole number, got {text!r}") from None

        text = self.query_one("#hold-value", Input).value.strip() or "0"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"value must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        start = whole("hold-start", view.step)
        stop = whole("hold-stop", None)
        stop = None if stop is None else stop + 1  # the form's "to" is the last step held
        kind = str(self.query_one("#hold-kind", Select).value)
        name = str(self.query_one("#hold-name", Select).value)
        return self._checked(Hold(kind, name, value, view.layer, view.direction, whole("hold-unit", None), start, stop))

    def _checked(self, hold: Hold) -> Hold:
        view = self.view
        cfg, T = view.trace.config, view.trace.T
        names = cfg.gates if hold.kind == "gate" else (("h", "c") if cfg.has_cell_state else ("h",))
        if hold.name not in names:
            raise ValueError(f"this {cfg.cell} has {', '.join(names)}")
        if hold.unit is not None and not 0 <= hold.unit < cfg.hidden_size:
            raise ValueError(f"unit must be 0..{cfg.hidden_size - 1}")
        if not 0 <= hold.start < T or (hold.stop is not None and not hold.start < hold.stop <= T):
            raise ValueError(f"steps must lie in 0..{T - 1}, the first before the last")
        return hold

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            hold = self.form_hold()
        except ValueError as error:
            self.notify(str(error), severity="error", timeout=4)
            return
        self.holds = self.holds + (hold,)
        self.focus()

    # ---- presets -----------------------------------------------------------------------------------------
    def preset(self, what: str) -> Hold | None:
        """The hold a preset key means at the current step, layer and unit (None: not for this cell)."""
        view = self.view
        if view is None:
            return None
        cfg = view.trace.config
        where = dict(layer=view.layer, direction=view.direction, start=view.step)
        if what in ("forget", "input"):  # the cell's own presets (its registry entry)
            gate = {name: (g, v) for name, g, v in cfg.cell_spec.presets}.get(what)
            return None if gate is None else Hold("gate", gate[0], gate[1], **where)
        h = float(view.entry.h[view.step, view.unit])
        if what == "zero":
            return Hold("state", "h", 0.0, unit=view.unit, **where)
        if what == "pin":
            return Hold("state", "h", h, unit=view.unit, **where)
        if what == "flip":
            return Hold("state", "h", -h, unit=view.unit, stop=view.step + 1, **{k: v for k, v in where.items()})
        raise ValueError(what)

    def action_preset(self, what: str) -> None:
        hold = self.preset(what)
        if hold is None:
            self.notify("the Elman cell has no gates to clamp: z, p or x hold its state", timeout=4)
            return
        self.holds = self.holds + (hold,)
        if what == "flip":  # say what the key did: a sign flipped, and only here
            was = float(self.view.entry.h[hold.start, hold.unit])
            self.notify(f"h[t={hold.start}, unit {hold.unit}] set to {hold.value:+.4g} (was {was:+.4g}): its sign "
                        "flipped at this step only", timeout=4, markup=False)

    def action_drop(self, everything: bool) -> None:
        self.holds = () if everything else self.holds[:-1]

    # ---- the session ---------------------------------------------------------------------------------
    def session_state(self) -> dict | None:
        """The holds, for a saved session (rnn_tui.engine.session)."""
        return {"holds": [asdict(h) for h in self.holds]} if self.holds else None

    def restore(self, state: dict) -> None:
        fields = Hold.__dataclass_fields__
        self.holds = tuple(Hold(**{k: v for k, v in h.items() if k in fields}) for h in state.get("holds", ()))

    # ---- the held run -----------------------------------------------------------------------------------
    @property
    def held_trace(self) -> Trace | None:
        """The trace with the holds applied, once computed for the view's trace and these holds."""
        if self.view is None or not self.holds:
            return None
        outcome = self.held.result(keyed(self.view.trace, self.holds))
        return outcome.value if outcome is not None and outcome.ready else None

    def refresh_analysis(self) -> None:
        if not self.is_mounted:
            return
        self._names_for_kind()
        view = self.view
        if view is None:
            self._message(self.busy or "no trace yet")
            return
        if not self.holds:
            self._message("nothing held: f, n, z, p, x or the form above hold a value")
            return
        outcome = self.held.get(keyed(view.trace, self.holds), view.trace, self.holds)
        if outcome.ready:
            self._draw()
        elif outcome.failed:
            self._message(f"could not trace with these holds: {outcome.error}")
        else:
            self._message("tracing with the values held…")

    # ---- drawing -------------------------------------------------------------------------------------------
    def watch_holds(self) -> None:
        if self.is_mounted:
            self._draw_holds()
            if self.shown:
                self.refresh_analysis()

    def _draw_holds(self) -> None:
        out = Text()
        if not self.holds:
            out.append("no values held", style="dim")
        first = 0
        if len(self.holds) > HOLD_LINES:  # the list has 4 lines: the newest holds, and a count of the rest
            first = len(self.holds) - (HOLD_LINES - 1)
            out.append(f"… {first} earlier hold{'s' * (first > 1)} (d drops the last, D all)", style="dim")
        for k, hold in enumerate(self.holds[first:], start=first):
            if out:
                out.append("\n")
            out.append(f"{k + 1}. ", style="bold")
            out.append(hold.describe())
        self.query_one("#holds", Static).update(out)

    def _message(self, text: str) -> None:
        self.query_one("#held-summary", Static).update(Text(text, style="dim italic"))
        diff = self.query_one(MatrixView)
        diff.matrix = None
        diff.message = text
        self.query_one("#held-changes", Static).update("")

    def _draw(self) -> None:
        view, held = self.view, self.held_trace
        base = view.trace
        name = view.matrix if view.matrix in matrix_names(base.config) else "h"
        key = keyed(base, held, view.layer, view.direction, name)
        diff_view = self.query_one(MatrixView)
        with self.app.batch_update():
            if getattr(self, "_diff_key", None) != key:
                self._diff_key = key
                d = difference(base, held, view.layer, view.direction, name)
                diff_view.matrix = Matrix(
                    values=d, scale=diff_scale(d), title=f"Δ{name} = {name}(held) − {name}", row_axis="unit",
                    col_axis="t", unit_name="unit",
                )
                moved = changes(base, held)
                self.query_one("#held-summary", Static).update(summary(base, held, moved, d))
                self.query_one("#held-changes", Static).update(changes_text(base, moved))
            diff_view.cursor = (view.unit, view.step)

    def on_matrix_view_picked(self, message: MatrixView.Picked) -> None:
        message.stop()
        self.post_message(MoveTo(step=message.col, unit=message.row))


def summary(base: Trace, held: Trace, moved: list[Change], d: np.ndarray) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    delta = held.loss - base.loss
    out.append("loss ", style="bold")
    out.append(f"{base.loss:.4g} → {held.loss:.4g} ({delta:+.3g})   ")
    flipped = sum(1 for c in moved if c.flipped)
    rows = base.outputs.shape[0]
    out.append(f"{flipped} of {rows} top predictions changed   ")
    fin = np.abs(np.where(np.isfinite(d), d, 0.0))
    if fin.size and fin.max() > 0:
        unit, t = np.unravel_index(int(np.argmax(fin)), fin.shape)
        out.append(f"largest change {fin.max():.3g} at t={t}, unit {unit}", style="dim")
    else:
        out.append("no change in this matrix", style="dim")
    return out


def changes_text(base: Trace, moved: list[Change]) -> Text:
    out = Text()
    out.append("predictions that moved\n", style="bold")
    if not moved:
        out.append("none", style="dim")
        return out
    T = base.T
    pooled = base.outputs.shape[0] != T
    for c in moved[:200]:
        t = T - 1 if pooled else c.row
        token = base.tokens[t] if t < len(base.tokens) else ""
        out.append(f"t={t} {token!r} ", style="bold" if c.flipped else "dim")
        out.append(f"{c.before} → {c.after}", style="bold" if c.flipped else "")
        if c.target_before is not None:
            out.append(f"  p(y*) {100 * c.target_before:.0f}→{100 * c.target_after:.0f}%", style="dim")
        out.append("\n")
    out.rstrip()
    return out
