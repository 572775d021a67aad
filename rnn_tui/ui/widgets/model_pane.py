"""The model: pick the cell, its size, layers, direction, task and tokens; see every tensor.

A change here asks the screen for a new trace (a `RequestChange`); the parameter table is read off
the trace's own tensors, so it counts what was built, not what was asked for.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from rnn_tui.ui.keys import KeysUp
from rnn_tui.ui.visible_input import OrderedInput
from rnn_tui.engine.config import ACTIVATIONS, CELLS, ModelConfig, layer_names
from rnn_tui.engine.records import Trace
from rnn_tui.safe_text import safe
from rnn_tui.ui.messages import RequestChange
from rnn_tui.ui.source import TOKENIZE
from rnn_tui.ui.widgets.pane import Pane

INT_FIELDS = {"hidden": (1, 4096), "layers": (1, 16), "seed": (0, 2**31 - 1)}


def layer_formula(config: ModelConfig, layer: int) -> tuple[str, int]:
    """The parameter count of one recurrent layer and direction, as a formula and its value.

    G gate blocks, each reading the layer's input (I) and, where the cell has W_hh, the previous
    state (H), plus the bias vectors the cell keeps (b_ih, b_hh):  G·((I + H)·H + 2·H), and the
    vectors of one number per unit (peepholes, IndRNN's w_hh):  + n·H.
    """
    G, H = len(config.gates), config.hidden_size
    I = config.input_size if layer == 0 else H * config.num_directions
    weights = [w for w in config.cell_spec.weights if config.bias or not w.bias]
    reads = [I if w.shape[-1] == "I" else H for w in weights if len(w.shape) == 2]  # W_ih, W_hh
    nb = sum(1 for w in weights if w.shape == ("GH",))
    body = f"({' + '.join(str(r) for r in reads)})·{H}" if len(reads) > 1 else f"{reads[0]}·{H}"
    if nb:
        body += f" + {nb}·{H}" if nb > 1 else f" + {H}"
    value = G * (sum(reads) * H + nb * H)
    text = f"{G}·({body})" if G > 1 else body
    vectors = [w for w in weights if w.shape == ("H",)]  # one number per unit: peepholes, IndRNN's w_hh
    if vectors:
        text += f" + {len(vectors)}·{H}" if len(vectors) > 1 else f" + {H}"
        value += len(vectors) * H
    return text, value


def parameter_table(trace: Trace) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("tensor")
    table.add_column("shape")
    table.add_column("count", justify="right")
    for name, value in trace.params.items():
        table.add_row(name, "×".join(str(s) for s in value.shape), f"{int(value.size):,}")
    return table


def parameter_summary(trace: Trace) -> Text:
    cfg = trace.config
    total = sum(int(v.size) for v in trace.params.values())
    out = Text()
    out.append(f"{total:,} parameters\n", style="bold")
    for k, direction, sfx in layer_names(cfg):
        formula, value = layer_formula(cfg, k)
        out.append(f"  layer {k}{' reverse' if direction == 'reverse' else ''}: {formula} = {value:,}\n")
    head = trace.params.get("head.weight")
    if head is not None:
        if "head.bias" in trace.params:
            out.append(f"  head: {head.shape[1]}·{head.shape[0]} + {head.shape[0]} = {head.size + head.shape[0]:,}\n")
        else:  # a head without bias: y = V h
            out.append(f"  head: {head.shape[1]}·{head.shape[0]} = {head.size:,} (no bias)\n")
    embedding = trace.params.get("embedding.weight")
    if embedding is not None:
        out.append(f"  embedding: {embedding.shape[0]}·{embedding.shape[1]} = {embedding.size:,}\n")
    return out


class ModelPane(KeysUp, Pane, can_focus=True):
    """The form and the parameter table. Opened, the pane takes the focus (as every pane does),
    so Tab goes from it to the first field; the form's scroll takes no focus of its own (Tab went
    to the input line, the tab bar and the form before the cell)."""

    TITLE = "Model"
    DESCRIPTION = "cell, size, layers, direction, task and tokens; every tensor and the parameter count"

    DEFAULT_CSS = """
    ModelPane { height: 1fr; }
    ModelPane:focus { background-tint: $foreground 0%; }
    ModelPane > Horizontal { height: 1fr; }
    ModelPane Grid { grid-size: 2; grid-columns: 12 24; grid-rows: 1; grid-gutter: 0 1;
                     height: auto; width: 38; }
    ModelPane Label { height: 1; }
    ModelPane Input { width: 24; }
    ModelPane #model-error { color: $error; height: auto; }
    ModelPane VerticalScroll { width: 1fr; height: 1fr; }
    """

    def __init__(self, tasks: list[tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._tasks = tasks or [("text", "")]

    @classmethod
    def create(cls, context: dict) -> "ModelPane":
        return cls(tasks=context.get("tasks"))

    def compose(self) -> ComposeResult:
        with Horizontal():
            form = VerticalScroll(id="model-form")
            form.can_focus = False  # the fields take the focus; it scrolls to the one focused
            with form:
                with Grid():
                    yield Label("cell")
                    yield Select([(c, c) for c in CELLS], id="cell", allow_blank=False, compact=True)
                    yield Label("activation")
                    yield Select([(a, a) for a in ACTIVATIONS], id="activation", allow_blank=False, compact=True)
                    yield Label("hidden")
                    yield OrderedInput(id="hidden", type="integer", compact=True)
                    yield Label("layers")
                    yield OrderedInput(id="layers", type="integer", compact=True)
                    yield Label("direction")
                    yield Select([("forward", False), ("bidirectional", True)], id="bidirectional",
                                 allow_blank=False, compact=True)
                    yield Label("task")
                    yield Select([(name, name) for name, _ in self._tasks], id="task", allow_blank=False,
                                 compact=True)
                    yield Label("tokens")
                    yield Select([(t, t) for t in TOKENIZE], id="tokenize", allow_blank=False, compact=True)
                    yield Label("seed")
                    yield OrderedInput(id="seed", type="integer", compact=True)
                yield Static(id="model-error")
                yield Static(id="task-help")
            with VerticalScroll(id="model-params"):
                yield Static(id="param-summary")
                yield Static(id="param-table")

    def opened(self) -> None:
        self.claim_focus()

    def on_mount(self) -> None:
        self.call_after_refresh(self._show_request)
        self.watch_view()

    def watch_request(self) -> None:
        if self.is_mounted:
            self.call_after_refresh(self._show_request)

    def _show_request(self) -> None:
        """Set the controls to the request (after the first refresh: controls set their own
        initial values when they mount)."""
        request = self.request
        if request is None:
            return
        with self.prevent(Select.Changed):
            for name in ("cell", "activation", "bidirectional", "task", "tokenize"):
                select = self.query_one(f"#{name}", Select)
                value = getattr(request, name)
                if select.value != value:
                    select.value = value
        for name in INT_FIELDS:
            box = self.query_one(f"#{name}", Input)
            if not box.has_focus:
                box.value = str(getattr(request, name))
        self.query_one("#activation", Select).disabled = request.cell != "rnn"
        self._synced = True
        self._show_title()

    _shown_trace = None
    _synced = False  # the controls show the request (until then their changes are their own)

    def _show_title(self) -> None:
        """What the model on screen is: the source's title for it ("chars, trained 2000 steps"),
        else the task's one-line description."""
        title = self.view.trace.extras.get("title") if self.view is not None else None
        if not title and self.request is not None:
            title = dict(self._tasks).get(self.request.task, "")
        # an imported model: what was read from its file for what, and what was assumed
        notes = self.view.trace.extras.get("notes", []) if self.view is not None else []
        self.query_one("#task-help", Static).update(Text("\n".join([safe(title or ""), *map(safe, notes)]), style="dim"))

    def watch_view(self) -> None:
        if not self.is_mounted:
            return
        if self.view is not None and self.view.trace is self._shown_trace:
            return  # a step or a unit: the model is the same
        self._shown_trace = None if self.view is None else self.view.trace
        if self.view is None:
            self.query_one("#param-summary", Static).update(Text(self.busy, style="dim"))
            self.query_one("#param-table", Static).update("")
            return
        trace = self.view.trace
        self._show_title()
        self.query_one("#param-summary", Static).update(parameter_summary(trace))
        self.query_one("#param-table", Static).update(parameter_table(trace))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id is None or event.value is Select.NULL or self.request is None:
            return
        if not (self._synced and event.select.has_focus_within):
            return  # a select taking its first value, or showing the request: nobody chose it
        if getattr(self.request, event.select.id) == event.value:
            return
        changes = {event.select.id: event.value}
        if event.select.id == "cell" and event.value != "rnn":
            changes["activation"] = "tanh"  # only the Elman cell has a choice of activation
        self.post_message(RequestChange(changes))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit(event.input)

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self._submit(event.input)

    def _submit(self, box: Input) -> None:
        name = box.id
        if name not in INT_FIELDS:
            return
        lo, hi = INT_FIELDS[name]
        error = self.query_one("#model-error", Static)
        try:
            value = int(box.value)
        except ValueError:
            error.update(f"{name} must be a whole number from {lo} to {hi}")
            return
        if not lo <= value <= hi:
            error.update(f"{name} must be from {lo} to {hi}, got {value}")
            return
        error.update("")
        if self.request is None or getattr(self.request, name) != value:
            self.post_message(RequestChange({name: value}))
