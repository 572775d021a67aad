"""Lesson 7, task modes: one kind of input, three shapes of output.

On sequences of 6 symbols from {a, b, c, d}, three GRUs of the same width are trained live:
- sequence-to-class: one answer per sequence (the first symbol), read from the last state;
- synchronous sequence-to-sequence: one answer per step (the symbol one step back);
- encoder-decoder: an encoder reads the whole sequence, its final state starts a decoder that
  writes the sequence backwards, one symbol per step, feeding in the symbol before (teacher forcing
  while training, its own guesses when decoding).
"""

from __future__ import annotations

import numpy as np

from rnn_tui.lessons._kit import LessonTask, train
from rnn_tui.lessons.base import Check, Context, Lesson, Question, Step, table

SYMBOLS = ("a", "b", "c", "d")
LENGTH = 6
HIDDEN = 24
START = "<s>"


def _symbols(B: int, g):
    import torch

    return torch.randint(0, len(SYMBOLS), (B, LENGTH), generator=g)  # (B, T)


class FirstSymbolTask(LessonTask):
    name = "lesson-first-symbol"
    MODE = "seq2class"
    DESCRIPTION = "name the first symbol of the sequence"
    head = "last"
    loss_name = "ce"

    def __init__(self):
        super().__init__(hidden=HIDDEN, seq_len=LENGTH)
        self.vocab = list(SYMBOLS)
        self.output_labels = list(SYMBOLS)
        self.chance = 1 / len(SYMBOLS)

    def sample(self, B, g):
        from rnn_tui.engine.tasks.base import Batch

        x = _symbols(B, g)
        return Batch(x=x, y=x[:, 0].clone())

    def example(self, seed=0):
        import torch

        from rnn_tui.engine.tasks.base import Example

        x = _symbols(1, torch.Generator().manual_seed(seed))[0]
        return Example([SYMBOLS[i] for i in x.tolist()], x, [int(x[0])])


class DelayTask(LessonTask):
    name = "lesson-delay"
    MODE = "seq2seq"
    DESCRIPTION = "at every step, name the symbol one step back"
    head = "step"
    loss_name = "ce"

    def __init__(self):
        super().__init__(hidden=HIDDEN, seq_len=LENGTH)
        self.vocab = list(SYMBOLS)
        self.output_labels = list(SYMBOLS)
        self.chance = 1 / len(SYMBOLS)

    def _targets(self, x):
        from rnn_tui.engine.tasks.base import IGNORE

        y = x.roll(1, dims=1)
        y[:, 0] = IGNORE  # nothing one step before the first
        return y

    def sample(self, B, g):
        from rnn_tui.engine.tasks.base import Batch

        x = _symbols(B, g)
        return Batch(x=x, y=self._targets(x))

    def example(self, seed=0):
        import torch

        from rnn_tui.engine.tasks.base import IGNORE, Example

        x = _symbols(1, torch.Generator().manual_seed(seed))
        y = self._targets(x)[0].tolist()
        return Example([SYMBOLS[i] for i in x[0].tolist()], x[0], [None if v == IGNORE else v for v in y])


def _encdec_class():
    from torch import nn

    class EncoderDecoder(nn.Module):
        """Two GRUs: the encoder's final state is the decoder's initial state."""

        def __init__(self, enc, dec):
            super().__init__()
            self.encoder, self.decoder = enc, dec

        def forward(self, src, dec_in):
            _, h = self.encoder(src, return_state=True)  # h (L*D, B, H)
            return self.decoder(dec_in, state=h)  # (B, T, O)

    return EncoderDecoder


class ReverseLessonTask(LessonTask):
    name = "lesson-reverse"
    MODE = "encdec"
    DESCRIPTION = "read the sequence, then write it backwards"
    head = "step"
    loss_name = "ce"

    def __init__(self):
        super().__init__(hidden=HIDDEN, seq_len=LENGTH)
        self.vocab = list(SYMBOLS)
        self.dec_vocab = list(SYMBOLS) + [START]
        self.output_labels = list(SYMBOLS)
        self.chance = 1 / len(SYMBOLS)

    def configs(self, hidden=HIDDEN):
        from rnn_tui.engine.config import ModelConfig

        V = len(SYMBOLS)
        enc = ModelConfig(cell="gru", input_size=V, hidden_size=hidden, output_size=V, vocab_size=V)
        dec = ModelConfig(cell="gru", input_size=V + 1, hidden_size=hidden, output_size=V, vocab_size=V + 1)
        return enc, dec

    def build_model(self, config=None, seed=None):
        from rnn_tui.engine.model import build_model

        enc, dec = self.configs()
        return _encdec_class()(build_model(enc, seed=seed), build_model(dec, seed=None if seed is None else seed + 1))

    def _batch(self, x):
        import torch

        from rnn_tui.engine.tasks.base import EncDecBatch

        y = x.flip(1)  # (B, T) the sequence backwards
        start = torch.full((x.shape[0], 1), len(SYMBOLS), dtype=torch.long)
        dec_x = torch.cat([start, y[:, :-1]], dim=1)  # <s>, then the previous target
        return EncDecBatch(x=x, y=y, dec_x=dec_x)

    def sample(self, B, g):
        return self._batch(_symbols(B, g))

    def forward(self, model, batch):
        return model(batch.x, batch.dec_x)

    def example(self, seed=0):
        import torch

        from rnn_tui.engine.tasks.base import EncDecExample

        b = self._batch(_symbols(1, torch.Generator().manual_seed(seed)))
        return EncDecExample(
            tokens=[SYMBOLS[i] for i in b.x[0].tolist()],
            x=b.x[0],
            targets=b.y[0].tolist(),
            dec_tokens=[self.dec_vocab[i] for i in b.dec_x[0].tolist()],
            dec_x=b.dec_x[0],
        )


def greedy(model, src, steps: int) -> list[int]:
    """Decode without teacher forcing: feed back the decoder's own best guess."""
    import torch

    with torch.no_grad():
        _, h = model.encoder(src[None], return_state=True)
        token = torch.tensor([[len(SYMBOLS)]])
        out = []
        for _ in range(steps):
            y, h = model.decoder(token, state=h, return_state=True)
            k = int(y[0, -1].argmax())
            out.append(k)
            token = torch.tensor([[k]])
    return out


def build(ctx: Context) -> None:
    import torch

    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

    r = ctx.results
    rows = []
    # 1. sequence to class
    t1 = FirstSymbolTask()
    cfg1 = t1.model_config(cell="gru", hidden=HIDDEN)
    tr1, res1, _, _ = train(t1, cfg1, model=build_model(cfg1, seed=0), steps=250, lr=1e-2, ctx=ctx,
                            label="sequence to class")
    ex1 = t1.example(seed=2)
    trace1 = run_trace(tr1.model, ex1.x, ex1.targets, tokens=ex1.tokens, vocab=t1.output_labels, dtype="float64")
    ctx.traces["main"] = trace1
    r["acc_class"] = float(res1.metric)
    r["ex1"] = " ".join(ex1.tokens)
    r["ans1"] = SYMBOLS[int(np.argmax(trace1.probs[0]))]
    r["rows1"] = int(trace1.outputs.shape[0])
    rows.append(["sequence → class", f"{trace1.T} in, {r['rows1']} out", "the first symbol", f"{res1.metric:.0%}"])

    # 2. synchronous sequence to sequence
    t2 = DelayTask()
    cfg2 = t2.model_config(cell="gru", hidden=HIDDEN)
    tr2, res2, _, _ = train(t2, cfg2, model=build_model(cfg2, seed=0), steps=250, lr=1e-2, ctx=ctx,
                            label="synchronous sequence to sequence")
    ex2 = t2.example(seed=2)
    trace2 = run_trace(tr2.model, ex2.x, ex2.targets, tokens=ex2.tokens, vocab=t2.output_labels, dtype="float64")
    ctx.traces["sync"] = trace2
    r["acc_sync"] = float(res2.metric)
    r["rows2"] = int(trace2.outputs.shape[0])
    r["out2"] = " ".join(SYMBOLS[int(k)] for k in trace2.probs.argmax(1))
    rows.append(["sequence → sequence", f"{trace2.T} in, {r['rows2']} out", "the symbol one step back", f"{res2.metric:.0%}"])

    # 3. encoder-decoder
    t3 = ReverseLessonTask()
    enc_cfg, dec_cfg = t3.configs()
    model3 = t3.build_model(seed=0)
    tr3, res3, _, _ = train(t3, dec_cfg, model=model3, steps=400, lr=1e-2, ctx=ctx, label="encoder-decoder")
    ex3 = t3.example(seed=2)
    # the decoder's trace starts from the encoder's final state; the gradient that reaches that state
    # flows on into the encoder's trace
    enc_first = run_trace(tr3.model.encoder, ex3.x, None, tokens=ex3.tokens, dtype="float64")
    h_n = torch.as_tensor(enc_first.layers[-1].h[-1])[None]  # (L*D, H)
    dec = run_trace(tr3.model.decoder, ex3.dec_x, ex3.targets, tokens=ex3.dec_tokens, vocab=t3.output_labels,
                    dtype="float64", initial_state=(h_n, None))
    enc = run_trace(tr3.model.encoder, ex3.x, None, tokens=ex3.tokens, dtype="float64",
                    final_state_grad=(torch.as_tensor(dec.extras["dL_dh0"]), None))
    ctx.traces["decoder"], ctx.traces["encoder"] = dec, enc
    r["acc_encdec"] = float(res3.metric)
    r["ex3"] = " ".join(ex3.tokens)
    r["want3"] = " ".join(SYMBOLS[k] for k in ex3.targets)
    r["greedy3"] = " ".join(SYMBOLS[k] for k in greedy(tr3.model, ex3.x, LENGTH))
    r["forced3"] = " ".join(SYMBOLS[int(k)] for k in dec.probs.argmax(1))
    r["enc_grad0"] = float(np.linalg.norm(enc.layers[0].dL_dh[0]))
    r["enc_grad_last"] = float(np.linalg.norm(enc.layers[0].dL_dh[-1]))
    r["rows3"] = int(dec.outputs.shape[0])
    rows.append(["encoder → decoder", f"{enc.T} in, then {r['rows3']} out", "the sequence backwards", f"{res3.metric:.0%}"])
    ctx.figures["modes"] = table(rows, ["mode", "steps", "target", "accuracy"])
    r["q_rows"] = 1  # a seq2class model has one output row
    r["params3"] = int(sum(p.numel() for p in tr3.model.parameters()))


STEPS_ = (
    Step(
        "Sequence to class",
        "One answer for the whole sequence: the head reads only the last state, y = V h_T + b. "
        "Task: name the first symbol. Trained live: {acc_class:.0%}. Input {ex1}: the model answers {ans1!r}.",
        question=Question(
            "How many output rows does this trace have?",
            ("one per step", "one"),
            "q_rows",
            "{rows1}: the loss enters at the last step only, so every gradient starts there and flows back.",
        ),
        trace="main",
        at={"step": -1},
    ),
    Step(
        "Synchronous sequence to sequence",
        "One answer per step, y_t = V h_t + b, as soon as x_t is read. Task: name the symbol one step back. "
        "Trained live: {acc_sync:.0%}. Input {ex1sync}; outputs {out2} (the first one is unscored: nothing came before).",
        tries=("Step through it: each prediction sits under its step in the sequence strip.",),
        trace="sync",
    ),
    Step(
        "Encoder-decoder",
        "Reversing needs the last symbol first — before a synchronous model could have read it. So an encoder "
        "GRU reads all of {ex3}; its final state h_T becomes the decoder's h_0, and the decoder writes one symbol per "
        "step, reading the one it wrote before (<s> to start). Trained live: {acc_encdec:.0%} per symbol. "
        "Wanted {want3}; decoding on its own the model writes {greedy3}.",
        trace="decoder",
        pane="explore",
    ),
    Step(
        "The gradient crosses the bridge",
        "The decoder's loss reaches the encoder only through that one state. In the encoder's trace, ||dL/dh_t|| "
        "is {enc_grad_last:.3g} at its last step and {enc_grad0:.3g} at its first.",
        figure="modes",
        tries=("In the Gradients tab: the encoder has no loss of its own, its gradient enters at its last step.",),
        trace="encoder",
        pane="gradients",
    ),
)


def checks(r: dict) -> list[Check]:
    return [
        Check("sequence to class learns (>= 90%)", r["acc_class"] >= 0.9),
        Check("synchronous sequence to sequence learns (>= 90%)", r["acc_sync"] >= 0.9),
        Check("the encoder-decoder learns to reverse (>= 80% per symbol)", r["acc_encdec"] >= 0.8),
        Check("one output row for a class, one per step for a sequence", r["rows1"] == 1 and r["rows2"] == LENGTH),
        Check("the decoder's gradient reaches the encoder", r["enc_grad_last"] > 0),
    ]


def _build(ctx: Context) -> None:
    build(ctx)
    ctx.results["ex1sync"] = " ".join(ctx.traces["sync"].tokens)


LESSON = Lesson(
    name="task-modes",
    title="Task modes: one answer, one per step, or read-then-write",
    summary="sequence-to-class, synchronous sequence-to-sequence and encoder-decoder GRUs, trained live",
    build=_build,
    steps=STEPS_,
    checks=checks,
)
