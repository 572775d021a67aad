"""An encoder-decoder: one recurrent network reads the source, a second one writes the answer.

    encoder:  h^e_s = cell(x_s, h^e_{s-1}),  s = 1..S,  h^e_0 = 0
    decoder:  h^d_0 = h^e_S                 the encoder's final state (h and, for LSTMs, c)
              h^d_t = cell(y_{t-1}, h^d_{t-1}),  y_0 = <s>
              p(y_t) = softmax(V h^d_t + b)

Training feeds the decoder the true previous token (teacher forcing); `greedy` feeds back its
own argmax. The whole source reaches the decoder through one state vector, so the gradient of
every decoder loss flows back into the encoder through h^d_0 = h^e_S.

Both halves are `RNNModel`s with the same cell, size and layers. The encoder has no read-out of
its own: its head is a fixed zero row (never trained, left out of `tensors()`), kept only so the
tracer can run it like any model. Tensors are named `encoder.<torch name>` and
`decoder.<torch name>` (encoder.weight_ih_l0, decoder.head.weight, ...).

`trace_encdec` traces both halves with the per-model tracer: the decoder from h^e_S, then the
encoder with the decoder's dL/dh^d_0 arriving on its final state, so the BPTT gradients in the
two traces are one backward pass.

With attention (`attention="dot"` or `"additive"`, `engine.attention`) the decoder also reads a
context at every step, c_t = Σ_k α_{t,k} h^e_k with α_t = softmax_k score(h^d_{t-1}, h^e_k):

    h^d_t = cell([y_{t-1}; c_t], h^d_{t-1})

so its config reads vectors of V + H numbers (the one-hot y_{t-1}, then c_t), and every
encoder state, not only the last, reaches the decoder. Training runs it step by step in torch
(`forward`); the trace runs it with the cells' numpy maths (`attention.decoder_forward`,
`decoder_backward`), and the encoder's trace gets each dL/dh^e_k that came back through c_t.
The additive score's tensors are attention.W, attention.U (H, H) and attention.v (H).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import math

import torch
from torch import Tensor, nn

from rnn_tui.engine.attention import KINDS as ATTENTION_KINDS
from rnn_tui.engine.attention import AttentionRecord
from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.model import build_model, copy_tensors
from rnn_tui.engine.records import Trace

PREFIXES = ("encoder.", "decoder.")


class AdditiveScore(nn.Module):
    """Bahdanau's score e_k = v · tanh(W s + U h_k), for a batch of states s over the keys h."""

    def __init__(self, H: int):
        super().__init__()
        bound = 1.0 / math.sqrt(H)
        self.W = nn.Parameter(torch.empty(H, H).uniform_(-bound, bound))
        self.U = nn.Parameter(torch.empty(H, H).uniform_(-bound, bound))
        self.v = nn.Parameter(torch.empty(H).uniform_(-bound, bound))

    def forward(self, s: Tensor, keys: Tensor) -> Tensor:
        """s (B, H), keys (B, S, H) -> e (B, S)."""
        return torch.tanh((s @ self.W.T)[:, None, :] + keys @ self.U.T) @ self.v


class EncoderDecoder(nn.Module):
    """encoder(x) -> final state -> decoder(dec_x, that state) -> logits (B, T, O); with attention
    the decoder reads [y_{t-1}; c_t] one step at a time."""

    def __init__(self, encoder_config: ModelConfig, decoder_config: ModelConfig, seed: int | None = None,
                 attention: str = "none"):  # fmt: skip
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ConfigError(f"unknown attention {attention!r}: choose one of {', '.join(ATTENTION_KINDS)}")
        check_pair(encoder_config, decoder_config)
        self.encoder_config = encoder_config
        self.config = decoder_config  # the trainer reads model.config: the half with the head
        self.attention = attention
        H = decoder_config.hidden_size
        self.y_width = decoder_config.input_size - (H if attention != "none" else 0)  # the one-hot y_{t-1}
        if attention != "none" and (decoder_config.input_mode != "vectors" or self.y_width < 1):
            raise ConfigError("a decoder with attention reads vectors [y_{t-1}; c_t]: input_size = V + hidden_size")
        self.encoder = build_model(encoder_config, seed=seed)
        self.decoder = build_model(decoder_config, seed=None if seed is None else seed + 1)
        if attention == "additive":
            with torch.random.fork_rng(devices=[]):
                if seed is not None:
                    torch.manual_seed(seed + 2)
                self.score = AdditiveScore(H)
        with torch.no_grad():
            for p in self.encoder.head.parameters():
                p.zero_()
                p.requires_grad_(False)

    def encode(self, x: Tensor):
        """Source (B, S) -> the encoder's final state, torch's (L, B, H) layout ((h, c) for LSTMs)."""
        _, final = self.encoder(x, return_state=True)
        return final

    def encode_keys(self, x: Tensor):
        """Source (B, S) -> (the encoder's top-layer states (B, S, H), its final state)."""
        return self.encoder.core(self.encoder.encode(x))

    def attend(self, s: Tensor, keys: Tensor) -> tuple[Tensor, Tensor]:
        """α (B, S) = softmax over the keys of score(s, h_k), and the context c = Σ_k α_k h_k (B, H)."""
        e = (keys @ s[:, :, None])[..., 0] if self.attention == "dot" else self.score(s, keys)
        a = torch.softmax(e, dim=-1)
        return a, (a[:, :, None] * keys).sum(1)

    def step(self, y_ids: Tensor, keys: Tensor, state):
        """One decoder step with attention: input ids (B,), keys, state -> (logits (B, O), state, α)."""
        top = (state[0] if isinstance(state, tuple) else state)[-1]  # s_{t-1}: the top layer's h
        a, ctx = self.attend(top, keys)
        x = torch.cat([nn.functional.one_hot(y_ids, self.y_width).to(keys.dtype), ctx], dim=-1)
        logits, state = self.decoder(x[:, None], state=state, return_state=True)
        return logits[:, 0], state, a

    def forward(self, x: Tensor, dec_x: Tensor, return_state: bool = False):
        """Teacher forcing: source (B, S), decoder inputs (B, T) -> logits (B, T, O)."""
        if self.attention == "none":
            return self.decoder(dec_x, state=self.encode(x), return_state=return_state)
        keys, state = self.encode_keys(x)
        out = []
        for t in range(dec_x.shape[1]):
            logits, state, _ = self.step(dec_x[:, t], keys, state)
            out.append(logits)
        y = torch.stack(out, dim=1)
        return (y, state) if return_state else y

    @torch.no_grad()
    def greedy(
        self, x: Tensor, start: int, steps: int, stop: int | None = None, feed: Tensor | None = None
    ) -> Tensor:
        """Decode by feeding back the argmax: source (B, S) -> output ids (B, <= steps).

        Begins with decoder input `start`; ends after `steps` tokens, or once every row has written
        output `stop`. `feed` maps an output id to the decoder input id that reads it back
        (the two vocabularies differ: <s> is only read, </s> only written); identity when None.
        """
        device = self.decoder.head.weight.device  # the model's device: the ids go there
        x = torch.as_tensor(x).to(device)
        feed = None if feed is None else feed.to(device)
        if self.attention == "none":
            state, keys = self.encode(x), None
        else:
            keys, state = self.encode_keys(x)
        token = torch.full((x.shape[0], 1), start, dtype=torch.long, device=device)
        out = []
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=device)
        for _ in range(steps):
            if keys is None:
                logits, state = self.decoder(token, state=state, return_state=True)  # (B, 1, O)
            else:
                logits, state, _ = self.step(token[:, 0], keys, state)
                logits = logits[:, None]
            written = logits.argmax(dim=-1)  # (B, 1) output ids
            out.append(written)
            token = written if feed is None else feed[written]  # (B, 1) decoder input ids
            if stop is not None:
                done |= written[:, 0] == stop
                if bool(done.all()):
                    break
        return torch.cat(out, dim=1)

    # ---- tensors by name ---------------------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        """encoder.<torch name> (no head) and decoder.<torch name>, head and embedding included."""
        named = {f"encoder.{k}": v for k, v in self.encoder.tensors().items() if not k.startswith("head.")}
        named.update({f"decoder.{k}": v for k, v in self.decoder.tensors().items()})
        if self.attention == "additive":
            named.update({f"attention.{k}": v for k, v in self.score.named_parameters()})
        return named

    def load_tensors(self, tensors: dict[str, Tensor], strict: bool = True) -> None:
        """Copy tensors in by name; a missing, extra or mis-shaped tensor raises ConfigError."""
        copy_tensors(self.tensors(), tensors, "an encoder-decoder", strict)
        for half in (self.encoder, self.decoder):
            if isinstance(half.core, nn.RNNBase):
                half.core.flatten_parameters()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.tensors().values())


def check_pair(encoder: ModelConfig, decoder: ModelConfig) -> None:
    """The decoder starts from the encoder's final state, so the two must have the same state."""
    if decoder.bidirectional or encoder.bidirectional:
        raise ConfigError("an encoder-decoder reads and writes left to right: bidirectional is not supported")
    for name in ("cell", "activation", "hidden_size", "num_layers"):
        a, b = getattr(encoder, name), getattr(decoder, name)
        if a != b:
            raise ConfigError(f"encoder and decoder must share {name}: {a!r} vs {b!r}")
    if decoder.head != "step":
        raise ConfigError("the decoder needs a per-step head (head='step')")


def encoder_config_for(decoder: ModelConfig, vocab_size: int, input_size: int | None = None) -> ModelConfig:
    """The encoder that fits a decoder: same cell and state, its own vocabulary, a dummy read-out."""
    if decoder.input_mode == "embedding":
        mode, size = "embedding", int(input_size or decoder.input_size)
    elif decoder.input_mode == "onehot":
        mode, size = "onehot", vocab_size
    else:
        mode, size = "vectors", int(input_size or decoder.input_size)
    return decoder.replace(
        input_mode=mode,
        input_size=size,
        vocab_size=vocab_size if mode != "vectors" else 0,
        output_size=1,
        head="step",
        loss="mse",
    )


# ---- tracing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncDecTrace:
    """Both halves of one encoder-decoder sequence; numpy records, like every trace.

    decoder.layers[k].h0 is the encoder's final state; encoder.layers[k].dL_dh[-1] includes the
    gradient the decoder sends back through that state.
    """

    encoder: Trace
    decoder: Trace
    predicted: list[str]  # the decoder's argmax at each step, as labels
    decoder_inputs: str  # "teacher" (the true previous token) or "greedy" (its own previous argmax)
    attention: AttentionRecord | None = None  # what the decoder attended to (also decoder.extras["attention"])


def trace_encdec(
    model: EncoderDecoder,
    x,
    dec_x,
    targets,
    *,
    tokens=None,
    dec_tokens=None,
    vocab=None,
    dtype: str = "float32",
    decoder_inputs: str = "teacher",
    dec_vocab=None,
    feed: Tensor | None = None,
    forced=(),
    device=None,
) -> EncDecTrace:
    """Trace the encoder and the decoder as one backward pass.

    x: source ids (S,); dec_x: teacher-forced decoder inputs (T,), starting with <s>;
    targets: one class per decoder step (None where unscored). With decoder_inputs="greedy" the
    decoder reads <s> then its own previous argmax instead (`feed` maps an output id to the input
    id that reads it back, `dec_vocab` labels those inputs), and is still scored against the
    targets. device: where the traces' torch work runs (`run_trace`); None: where the model is
    (with attention the encoder's trace runs there, the decoder's steps in numpy on the CPU).
    forced: (t, k) pairs, decoder step t's attention held on encoder step k.
    """
    from rnn_tui.engine.trace import TraceError, run_trace

    if decoder_inputs not in ("teacher", "greedy"):
        raise TraceError(f"decoder_inputs must be 'teacher' or 'greedy', got {decoder_inputs!r}")
    x = torch.as_tensor(x).long()
    dec_x = torch.as_tensor(dec_x).long()
    if model.attention != "none":
        return _trace_attention(model, x, dec_x, targets, tokens, dec_tokens, vocab, dtype, decoder_inputs, dec_vocab,
                                feed, forced, device)  # fmt: skip
    if forced:
        raise TraceError("attention can be held only in a decoder with attention")
    if decoder_inputs == "greedy":
        written = model.greedy(x[None], start=int(dec_x[0]), steps=len(dec_x), feed=feed)[0].cpu()  # (T,)
        fed = written if feed is None else feed[written]
        dec_x = torch.cat([dec_x[:1], fed[:-1]])
        if dec_vocab is not None:
            dec_tokens = [dec_vocab[i] for i in dec_x.tolist()]
    # the encoder's final state, computed by the tracer itself so float64 traces stay float64
    forward_only = run_trace(model.encoder, x, None, tokens=tokens, dtype=dtype, device=device)
    h_n, c_n = final_state(forward_only)
    decoder = run_trace(
        model.decoder,
        dec_x,
        targets,
        tokens=dec_tokens,
        vocab=vocab,
        dtype=dtype,
        initial_state=(h_n, c_n),
        device=device,
    )
    dh0 = torch.as_tensor(decoder.extras["dL_dh0"])
    dc0 = decoder.extras.get("dL_dc0")
    dc0 = None if dc0 is None else torch.as_tensor(dc0)
    encoder = run_trace(model.encoder, x, None, tokens=tokens, dtype=dtype, final_state_grad=(dh0, dc0), device=device)
    labels = vocab if vocab is not None else [str(i) for i in range(decoder.outputs.shape[1])]
    predicted_labels = [labels[i] for i in decoder.outputs.argmax(axis=1).tolist()]
    return EncDecTrace(encoder=encoder, decoder=decoder, predicted=predicted_labels, decoder_inputs=decoder_inputs)


def final_state(trace: Trace) -> tuple[Tensor, Tensor | None]:
    """(h_n, c_n) in torch's (L, H) layout from a one-direction trace's last step."""
    h = torch.stack([torch.as_tensor(layer.h[-1]) for layer in trace.layers])  # (L, H)
    if trace.layers[0].c is None:
        return h, None
    return h, torch.stack([torch.as_tensor(layer.c[-1]) for layer in trace.layers])


# ---- tracing with attention -------------------------------------------------------------------------
def _trace_attention(model, x, dec_x, targets, tokens, dec_tokens, vocab, dtype, decoder_inputs, dec_vocab, feed,
                     forced, device=None) -> EncDecTrace:  # fmt: skip
    """Both halves with attention: the encoder forward, the decoder step by step (numpy, the cells'
    maths), its backward through the cells and the attention, then the encoder's BPTT with the
    gradient of its final state and of every state the decoder attended to."""
    import numpy as np

    from rnn_tui.engine.trace import DTYPES, run_trace

    forward_only = run_trace(model.encoder, x, None, tokens=tokens, dtype=dtype, device=device)
    h_n, c_n = final_state(forward_only)
    keys = np.asarray(forward_only.layers[-1].h)  # (S, H) the top layer's states
    dt = DTYPES[dtype]
    P = {k.removeprefix("decoder."): v.detach().to(device="cpu", dtype=dt, copy=True).numpy()
         for k, v in model.tensors().items() if not k.startswith("encoder.")}  # fmt: skip
    labels = list(dec_vocab) if dec_vocab is not None else [str(i) for i in range(model.y_width)]
    base = AttentionRecord(
        kind=model.attention, weights=None, scores=None, keys=keys, encoder_tokens=tuple(forward_only.tokens),
        y_width=model.y_width, input_labels=tuple(labels), decoder_inputs=decoder_inputs,
        feed=None if feed is None else tuple(int(i) for i in feed.tolist()),
        forced=tuple((int(t), int(k)) for t, k in forced),
    )  # fmt: skip
    decoder = attention_trace(
        model.config, P, base, h_n.numpy(), None if c_n is None else c_n.numpy(), dec_x.numpy(), targets, dtype,
        vocab, dec_tokens,
    )  # fmt: skip
    record = decoder.extras["attention"]
    dh0, dc0 = decoder.extras["dL_dh0"], decoder.extras.get("dL_dc0")
    encoder = run_trace(model.encoder, x, None, tokens=tokens, dtype=dtype,
                        final_state_grad=(dh0, dc0), output_grad=record.dL_dkeys, device=device)  # fmt: skip
    out_labels = vocab if vocab is not None else [str(i) for i in range(decoder.outputs.shape[1])]
    predicted = [out_labels[i] for i in decoder.outputs.argmax(axis=1).tolist()]
    return EncDecTrace(encoder=encoder, decoder=decoder, predicted=predicted, decoder_inputs=decoder_inputs,
                       attention=record)  # fmt: skip


def attention_trace(cfg: ModelConfig, P: dict, base: AttentionRecord, h0_all, c0_all, inputs, targets, dtype: str,
                    vocab=None, tokens=None) -> Trace:  # fmt: skip
    """The decoder's Trace with attention over `base.keys` (the encoder's states), from its initial
    state (L, H): the states, gates, outputs and losses of every step, dL/dh_t through the cells and
    the attention, and in extras["attention"] the weights, the scores and dL/d(each key).

    inputs: (T,) decoder input ids; read as they are under teacher forcing, and only its first
    (the start symbol) when `base.decoder_inputs` is "greedy", which reads back each argmax
    through `base.feed`. `base.forced` holds chosen rows of α on one encoder step."""
    import numpy as np

    from rnn_tui.engine import attention
    from rnn_tui.engine.trace import Pass, head_and_loss, trace_record

    greedy = base.decoder_inputs == "greedy"
    T = len(targets)
    ids = np.asarray(inputs, dtype=np.int64)
    dp = attention.decoder_forward(
        cfg, P, base.kind, base.keys, h0_all, c0_all, base.y_width, inputs=None if greedy else ids,
        start=int(ids[0]), feed=base.feed, steps=T, forced=base.forced,
    )  # fmt: skip
    head = head_and_loss(cfg, P, dp.layers[-1].H, targets)
    grads, dK, pgrads = attention.decoder_backward(cfg, dp.layers, base.keys, P, base.kind, dp.caches, base.y_width,
                                                   head.grad_top)  # fmt: skip
    dh0 = np.stack([g.dh0 for g in grads])
    dc0 = np.stack([g.dc0 for g in grads]) if cfg.has_cell_state else None
    run = Pass(dp.layers, grads, head.outputs, head.loss, head.step_losses, head.targets, dh0, dc0)
    if greedy or tokens is None:
        tokens = [base.input_labels[i] for i in dp.fed]
    record = replace(base, weights=dp.weights, scores=dp.scores, dL_dkeys=dK, param_grads=pgrads)
    extras = {"dL_dh0": dh0, "dL_dc0": dc0, "interventions": [], "attention": record, "device": "cpu"}  # numpy steps
    return trace_record(cfg, dtype, list(tokens), dp.layers[0].X, run, P, vocab, extras)


def hold_attention(trace: Trace, forced) -> Trace:
    """A decoder trace with attention run again with α held one-hot at some steps: forced is (t, k)
    pairs (decoder step t looks only at encoder step k). Everything downstream follows: the later
    states, and under greedy decoding the tokens read back. From the trace alone (numpy)."""
    import numpy as np

    base = trace.extras.get("attention")
    if base is None:
        raise ConfigError("this trace has no attention to hold: trace an encoder-decoder with --attention dot|additive")
    base = replace(base, forced=tuple((int(t), int(k)) for t, k in forced))
    X = np.asarray(trace.inputs)
    ids = X[:, : base.y_width].argmax(axis=1)  # the decoder input ids it read
    h0 = np.stack([e.h0 for e in trace.layers])
    c0 = np.stack([e.c0 for e in trace.layers]) if trace.layers[0].c0 is not None else None
    tokens = None if base.decoder_inputs == "greedy" else trace.tokens
    return attention_trace(trace.config, trace.params, base, h0, c0, ids, trace.targets, trace.dtype, trace.vocab,
                           tokens)  # fmt: skip
