"""Generate: type a prime and let the model on screen write, one token at a time.

    g / Enter  generate from the prime (empty: from the explorer's sequence)     Esc  stop
    < >        temperature down / up (0: greedy)        { }  top-k down / up (off: every token)

The model is the one on screen (the trace's own config and weights, `ui.lab.model_for`), run in a
thread worker by the engine's sampler (`engine.generate`), which reports after every token; the
tokens appear one by one, each coloured by the probability the model gave it, with bars for the
most likely candidates. When it is done (or stopped) the explorer's sequence becomes the prime and
what was generated, so every other tab shows that sequence. Afterwards the bars follow the step:
the model's probabilities for the token after step t, read from the trace's own outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, Static
from textual.worker import Worker, get_current_worker

from rnn_tui.engine.tokens import label
from rnn_tui.safe_text import safe
from rnn_tui.ui.messages import RequestChange
from rnn_tui.ui.source import TraceRequest
from rnn_tui.ui.visible_input import OrderedInput, VisibleControls, box_number
from rnn_tui.ui.widgets.analysis_pane import AnalysisPane
from rnn_tui.ui.work import one_line

TEMPERATURES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0)
TOP_KS = (None, 1, 2, 3, 5, 10, 20, 40, 100)  # None: every token
BARS = 5  # candidates drawn as bars (twice as many on a tall terminal)
PACE = 0.03  # seconds between tokens, so a person sees them arrive one by one ...
MAX_PACED = 3.0  # ... but a long generation is paced to take at most this long
DEFAULT_LENGTH = 80
MAX_LENGTH = 2000


@dataclass(frozen=True)
class GenSettings:
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    length: int = DEFAULT_LENGTH
    seed: int | None = None  # None: a new one each time (shown afterwards)


@dataclass(frozen=True)
class GenState:
    """Where a generation stands, whole (each message replaces the last)."""

    status: str = "idle"  # idle | running | done | stopped | failed
    prime: tuple[int, ...] = ()
    steps: tuple = ()  # engine.generate.GenStep, one per token made
    settings: GenSettings = field(default_factory=GenSettings)
    seed: int | None = None
    message: str = ""
    elapsed: float = 0.0

    @property
    def ids(self) -> list[int]:
        return [s.id for s in self.steps]


@dataclass
class Job:
    request: TraceRequest
    trace: object  # the Trace whose model generates
    prime: tuple[int, ...]
    settings: GenSettings
    vocab: tuple[str, ...] | None  # raw tokens by id (None: ids only)


@dataclass
class GenerateProgress(Message):
    """The generation worker's state; only the newest of those queued is handled."""

    state: GenState
    worker_id: int = 0

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, GenerateProgress) and message.worker_id == self.worker_id


class GeneratePane(AnalysisPane):
    TITLE = "Generate"
    DESCRIPTION = "type a prime and the model writes, token by token, with bars for the top candidates"

    BINDINGS = [
        Binding("g", "generate", "generate", tooltip="from the prime (empty: from the explorer's sequence)"),
        Binding("escape", "stop", "stop generating", show=False, tooltip="what was made is kept, and every tab shows it"),
        Binding("less_than_sign", "temperature(-1)", "temperature down", key_display="<", show=False,
                tooltip="sharper; 0 is greedy, always the most likely"),
        Binding("greater_than_sign", "temperature(1)", "temperature up", key_display=">", show=False,
                tooltip="flatter: less likely tokens more often"),
        Binding("left_curly_bracket", "top_k(-1)", "top-k down", key_display="{", show=False,
                tooltip="sample among fewer of the most likely"),
        Binding("right_curly_bracket", "top_k(1)", "top-k up", key_display="}", show=False,
                tooltip="sample among more (off: every token)"),
    ]

    COMPONENT_CLASSES = {
        "generate-pane--prime",
        "generate-pane--sure",
        "generate-pane--unsure",
        "generate-pane--surprise",
        "generate-pane--cursor",
        "generate-pane--bar",
        "generate-pane--chosen",
        "generate-pane--dim",
    }

    DEFAULT_CSS = """
    GeneratePane #gen-form { height: 1; }
    GeneratePane #gen-form Label { width: auto; padding: 0 1 0 1; }
    GeneratePane #gen-prime { width: 1fr; min-width: 12; }
    GeneratePane #gen-length { width: 6; }
    GeneratePane #gen-top-p { width: 6; }
    GeneratePane #gen-seed { width: 8; }
    GeneratePane #gen-status { height: 2; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    GeneratePane #gen-status.-failed { color: $error; }
    GeneratePane #gen-scroll { height: 1fr; min-height: 2; padding: 0 1; }
    GeneratePane #gen-text { width: 1fr; }
    GeneratePane #gen-bars { height: auto; max-height: 6; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    GeneratePane.-tall #gen-bars { max-height: 11; }
    GeneratePane > .generate-pane--prime { color: $foreground-muted; }
    GeneratePane > .generate-pane--sure { color: $foreground; }
    GeneratePane > .generate-pane--unsure { color: $warning; }
    GeneratePane > .generate-pane--surprise { color: $error; text-style: bold; }
    GeneratePane > .generate-pane--cursor { text-style: reverse; }
    GeneratePane > .generate-pane--bar { color: $primary; }
    GeneratePane > .generate-pane--chosen { color: $accent; text-style: bold; }
    GeneratePane > .generate-pane--dim { color: $foreground-muted; }
    """

    state: reactive[GenState] = reactive(GenState)
    settings: reactive[GenSettings] = reactive(GenSettings)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._worker: Worker | None = None
        self._job: Job | None = None
        self._sent: tuple[str, tuple[str, ...]] | None = None  # (text, labels) handed to the explorer
        self._drawn: tuple | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="gen-form"):
            yield Label("prime")
            yield OrderedInput(id="gen-prime", placeholder="empty: the explorer's sequence", compact=True,
                        highlighter=VisibleControls())
            yield Label("length")
            yield OrderedInput(str(DEFAULT_LENGTH), id="gen-length", type="integer", compact=True)
            yield Label("top-p")
            yield OrderedInput(id="gen-top-p", placeholder="1", type="number", compact=True)
            yield Label("seed")
            yield OrderedInput(id="gen-seed", placeholder="new", type="integer", compact=True)
        yield Static(id="gen-status")
        with VerticalScroll(id="gen-scroll"):
            yield Static(id="gen-text")
        yield Static(id="gen-bars")

    def on_mount(self) -> None:
        self._draw()

    def refresh_analysis(self) -> None:
        self._draw()

    def on_resize(self, event) -> None:
        tall = event.size.height >= 30
        if tall != self.has_class("-tall"):
            self.set_class(tall, "-tall")
            self._draw()

    @property
    def bar_rows(self) -> int:
        return 2 * BARS if self.has_class("-tall") else BARS

    # ---- the form and keys ---------------------------------------------------------------------
    def read_settings(self) -> GenSettings:
        """The form's values with the keys' temperature and top-k; ValueError with a line."""

        def number(box_id: str, kind, lo: float, hi: float, name: str):
            return box_number(self, box_id, kind, lo, hi, name)

        length = number("gen-length", int, 1, MAX_LENGTH, "length")
        top_p = number("gen-top-p", float, 1e-6, 1.0, "top-p")
        seed = number("gen-seed", int, 0, 2**31 - 1, "seed")
        return replace(self.settings, length=length or DEFAULT_LENGTH, top_p=None if top_p in (None, 1.0) else top_p,
                       seed=seed)  # fmt: skip

    def action_temperature(self, delta: int) -> None:
        now = self.settings.temperature
        k = min(range(len(TEMPERATURES)), key=lambda i: abs(TEMPERATURES[i] - now))
        self.settings = replace(self.settings, temperature=TEMPERATURES[min(max(k + delta, 0), len(TEMPERATURES) - 1)])

    def action_top_k(self, delta: int) -> None:
        k = TOP_KS.index(self.settings.top_k) if self.settings.top_k in TOP_KS else 0
        self.settings = replace(self.settings, top_k=TOP_KS[min(max(k + delta, 0), len(TOP_KS) - 1)])

    def watch_settings(self) -> None:
        if self.is_mounted:
            self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus()
        if event.input.id == "gen-prime":
            self.action_generate()

    # ---- generating ------------------------------------------------------------------------------
    def action_generate(self) -> None:
        if self.state.status == "running":
            return
        view, request = self.view, self.request
        if view is None or request is None or self.busy:
            self._set(GenState(status="failed", message="no model yet: wait for the trace"))
            return
        trace = view.trace
        try:
            settings = self.read_settings()
            vocab = trace.extras.get("token_vocab")
            prime = self._prime(trace, request, vocab)
            reason = _why_not(trace)
            if reason:
                raise ValueError(f"this model cannot generate text: {reason}")
            V = trace.config.vocab_size
            if settings.top_k is not None and settings.top_k > V:
                settings = replace(settings, top_k=None)
        except ValueError as error:
            self._set(GenState(status="failed", message=one_line(error)))
            return
        self.settings = settings
        self._job = Job(request=request, trace=trace, prime=tuple(prime), settings=settings,
                        vocab=None if vocab is None else tuple(vocab))  # fmt: skip
        self._sent = None
        self._set(GenState(status="running", prime=tuple(prime), settings=settings, message="starting…"))
        self._worker = self.run_generation(self._job)

    def _prime(self, trace, request: TraceRequest, vocab) -> list[int]:
        """The prime's ids: the typed text read with the model's vocabulary, or (empty box) the ids
        of the explorer's sequence as the trace read them."""
        from rnn_tui.ui.lab import token_ids

        typed = self.query_one("#gen-prime", Input).value
        if not typed:
            ids = token_ids(trace)
            if ids is None:
                raise ValueError("the explorer's sequence is not tokens the model can be fed back")
            return [int(i) for i in ids]
        if vocab is None:
            raise ValueError("this model's tokens have no text here (opened on ids without --vocab): "
                             "clear the prime to start from the explorer's sequence")  # fmt: skip
        return encode(typed, vocab, request.tokenize)

    def action_stop(self) -> None:
        if self.state.status == "running" and self._worker is not None:
            self._worker.cancel()
            return
        focused = self.screen.focused
        if isinstance(focused, Input) and self in focused.ancestors:
            self.focus()  # out of the box, staying in this tab
            return
        raise SkipAction()  # Escape does what it does elsewhere

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def run_generation(self, job: Job) -> None:
        from rnn_tui.engine.generate import generate
        from rnn_tui.ui.lab import model_for

        worker = get_current_worker()
        wid = id(worker)
        s = job.settings
        steps: list = []
        t0 = time.monotonic()
        delay = min(PACE, MAX_PACED / s.length)
        seed = s.seed
        if s.temperature > 0 and seed is None:
            from rnn_tui.engine.generate import new_seed

            seed = new_seed()
        base = GenState(status="running", prime=job.prime, settings=s, seed=seed if s.temperature > 0 else None)
        post = lambda state: self.post_message(GenerateProgress(state, wid))  # noqa: E731

        def on_step(i, step) -> None:
            steps.append(step)
            post(replace(base, steps=tuple(steps), message=f"generating {i + 1}/{s.length}…",
                         elapsed=time.monotonic() - t0))  # fmt: skip
            if i + 1 < s.length and not worker.is_cancelled:
                time.sleep(delay)

        try:
            gen = generate(model_for(job.trace), list(job.prime), s.length, temperature=s.temperature,
                           top_k=s.top_k, top_p=s.top_p, seed=seed, top=2 * BARS, on_step=on_step,
                           cancel=lambda: worker.is_cancelled)  # fmt: skip
        except Exception as error:  # noqa: BLE001 - shown in the pane, never raised
            post(replace(base, status="failed", steps=tuple(steps), message=one_line(error)))
            return
        status = "stopped" if gen.stopped == "cancelled" else "done"
        post(replace(base, status=status, steps=gen.steps, elapsed=time.monotonic() - t0))

    def on_generate_progress(self, message: GenerateProgress) -> None:
        message.stop()
        if self._worker is None or message.worker_id != id(self._worker):
            return
        state = message.state
        if state.status in ("done", "stopped") and self._job is not None:
            state = self._hand_over(state)
        self.state = state

    def _hand_over(self, state: GenState) -> GenState:
        """Make prime + generated the explorer's sequence (every tab follows), where it can be."""
        job = self._job
        n = len(state.steps)
        made = f"{'stopped after' if state.status == 'stopped' else 'generated'} {n} token{'s' * (n != 1)}"
        if not n:
            return replace(state, message=f"{made}: nothing to show")
        if job.vocab is None:
            return replace(state, message=f"{made}; the model's tokens have no text here, so the explorer keeps "
                                          "its sequence")  # fmt: skip
        if job.request != self.request:
            return replace(state, message=f"{made}; the model changed meanwhile, so the explorer keeps its sequence")
        raw = [job.vocab[i] for i in (*job.prime, *state.ids)]
        from rnn_tui.engine.generate import detokenize

        text = detokenize(raw, job.request.tokenize)
        if job.trace.extras.get("vocab_from_input") and sorted(set(raw)) != list(job.vocab):
            missing = [label(t) for t in job.vocab if t not in set(raw)][:3]
            return replace(state, message=(
                f"{made}; this untrained model's vocabulary is its sequence's own tokens, and this one lacks "
                f"{' '.join(missing)}: as the explorer's sequence it would be another model, so it stays here"))
        try:
            again = encode(text, job.vocab, job.request.tokenize)
        except ValueError:
            again = None
        if again != [*job.prime, *state.ids]:
            return replace(state, message=f"{made}; as text they read back as other tokens, so the explorer "
                                          "keeps its sequence")  # fmt: skip
        self._sent = (text, tuple(label(t) for t in raw))
        self.post_message(RequestChange({"text": text}))
        return replace(state, message=f"{made}; the explorer's sequence is now the prime and them")

    def watch_request(self, old: TraceRequest | None, new: TraceRequest | None) -> None:
        if self.state.status == "running" and self._job is not None and new != self._job.request and self._worker:
            self._worker.cancel()

    def on_unmount(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    # ---- drawing ---------------------------------------------------------------------------------
    def _set(self, state: GenState) -> None:
        self.state = state

    def watch_state(self) -> None:
        if self.shown:
            self._draw()

    def _style(self, name: str):
        return self.get_component_rich_style(f"generate-pane--{name}")

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        with self.app.batch_update():
            status = self.query_one("#gen-status", Static)
            status.update(self._status_text())
            status.set_class(self.state.status == "failed", "-failed")
            self.query_one("#gen-text", Static).update(self._text())
            self.query_one("#gen-bars", Static).update(self._bars())
            if self.state.status == "running":
                self.query_one("#gen-scroll", VerticalScroll).scroll_end(animate=False)

    def _status_text(self) -> Text:
        st, s = self.state, self.settings
        out = Text(no_wrap=True, overflow="ellipsis")
        temp = "0 (greedy)" if s.temperature == 0 else f"{s.temperature:g}"
        out.append(f"temperature {temp}", style="bold")
        out.append(" < >   ", style=self._style("dim"))
        out.append(f"top-k {s.top_k or 'off'}", style="bold")
        out.append(" { }   ", style=self._style("dim"))
        out.append("g generates, Esc stops", style=self._style("dim"))
        if st.seed is not None and st.status != "idle":
            out.append(f"   seed {st.seed}", style=self._style("dim"))
        out.append("\n")
        reason = _why_not(self.view.trace) if self.view is not None and st.status == "idle" else None
        if st.message:
            out.append(safe(st.message))
        elif reason:
            out.append(safe(f"this model cannot generate text: {reason}"), style=self._style("dim"))
        elif st.status == "idle":
            out.append("type a prime (or leave it empty to go on from the explorer's sequence) and press g",
                       style=self._style("dim"))  # fmt: skip
        return out

    def _labels(self) -> tuple[str, ...] | None:
        view = self.view
        if view is None:
            return None
        vocab = view.trace.extras.get("token_vocab")
        if vocab is not None:
            return tuple(vocab)
        return None

    def _text(self) -> Text:
        """The prime and the generated tokens as text, each token coloured by its probability; the
        explorer's current step, where the text is the explorer's sequence, reversed."""
        st = self.state
        out = Text()
        job = self._job
        if not st.prime or job is None:
            return out
        vocab = job.vocab
        mode = job.request.tokenize

        def piece(i: int, first: bool) -> str:
            if vocab is None:
                return ("" if first else " ") + str(i)
            tok = vocab[i]
            if mode == "char":
                return safe(tok, newlines=True, tabs=True, strict=True)
            if tok == "<eos>":
                return "\n"
            return ("" if first else " ") + safe(tok, strict=True)

        cursor = self._cursor_step()
        t = 0
        for n, i in enumerate(st.prime):
            out.append(piece(i, n == 0), style=self._style("cursor") + self._style("prime") if t == cursor
                       else self._style("prime"))  # fmt: skip
            t += 1
        for step in st.steps:
            kind = "sure" if step.p >= 0.5 else "unsure" if step.p >= 0.1 else "surprise"
            style = self._style(kind)
            if t == cursor:
                style = style + self._style("cursor")
            out.append(piece(step.id, False), style=style)
            t += 1
        if st.status == "running":
            out.append("▌", style=self._style("chosen"))
        return out

    def _cursor_step(self) -> int | None:
        """The explorer's step, when the explorer shows the generated sequence."""
        view = self.view
        if view is None or self._sent is None or tuple(view.trace.tokens) != self._sent[1]:
            return None
        return view.step

    def _bars(self) -> Text:
        """Bars for the most likely next tokens: while generating, the last token's; afterwards the
        model's probabilities after the explorer's step (its trace's own outputs)."""
        st = self.state
        job = self._job
        if st.status == "running" and st.steps and job is not None:
            step = st.steps[-1]
            names = _namer(job.vocab, job.trace)
            t = len(st.prime) + len(st.steps) - 2
            head = (f"next token after step {t}: drawn {names(step.id)!r}, p {step.p:.3f}, "
                    f"entropy {step.entropy:.2f} nats")  # fmt: skip
            return self._bar_lines(head, [(c.id, c.p) for c in step.top[: self.bar_rows]], step.id, names)
        view = self.view
        if view is None:
            return Text()
        trace = view.trace
        if _why_not(trace) is not None or trace.outputs.shape[0] != trace.T:
            return Text("")
        t = view.step
        z = np.asarray(trace.outputs[t], dtype=np.float64)
        if not np.isfinite(z).all():
            return Text(f"after step {t} the model's outputs are not finite numbers", style=self._style("dim"))
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")[: self.bar_rows]
        names = _namer(self._labels(), trace)
        nxt = trace.targets[t] if t < len(trace.targets) else None
        H = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        head = f"after step {t} {trace.tokens[t]!r}, the model's next token (entropy {H:.2f} nats)"
        if nxt is not None:
            head += f"; the sequence goes on with {names(int(nxt))!r}, p {p[int(nxt)]:.3f}"
        return self._bar_lines(head, [(int(i), float(p[i])) for i in order], None if nxt is None else int(nxt), names)

    def _bar_lines(self, head: str, rows: list[tuple[int, float]], chosen: int | None, names) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(safe(head), style=self._style("dim"))
        width = max(8, self.size.width - 24)
        for i, p in rows:
            name = names(i)
            cells = set_cell_size(name, 8) if cell_len(name) > 8 else name + " " * (8 - cell_len(name))
            mark = "▶" if i == chosen else " "
            style = self._style("chosen") if i == chosen else self._style("bar")
            n = p * width
            bar = "█" * int(n) + (" ▏▎▍▌▋▊▉"[int((n - int(n)) * 8)] if n < width else "")
            out.append("\n")
            out.append(f"{mark} {cells} ", style=style)
            out.append(bar, style=style)
            out.append(f" {p:6.1%}", style=self._style("dim") if i != chosen else style)
        return out


def _namer(vocab, trace):
    """id -> the label shown for it: the model's token, visible, or its id."""
    labels = trace.vocab
    if vocab is not None:
        return lambda i: label(vocab[i])
    if labels is not None:
        return lambda i: labels[i]
    return str


def _why_not(trace) -> str | None:
    """Why the trace's model cannot generate (engine.generate), or None."""
    from rnn_tui.engine.generate import cannot_generate

    return cannot_generate(trace.config, trace.extras.get("input_labels"), trace.vocab)


def encode(text: str, vocab, mode: str) -> list[int]:
    """`text` read with the model's vocabulary as the explorer reads it; ValueError naming a token
    the vocabulary lacks (<unk> where it has one)."""
    from rnn_tui.engine.vocab import split_text

    index = {tok: i for i, tok in enumerate(vocab)}
    unk = index.get("<unk>")
    raw = split_text(text, mode, eos="<eos>" in index and mode != "char")
    if not raw:
        raise ValueError("the prime has no tokens")
    ids = []
    for tok in raw:
        i = index.get(tok, unk)
        if i is None:
            raise ValueError(f"{label(tok)!r} is not in the model's vocabulary")
        ids.append(i)
    return ids
