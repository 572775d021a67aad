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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnn_tui.engine.config import ConfigError, ModelConfig
from rnn_tui.engine.model import build_model, copy_tensors
from rnn_tui.engine.records import Trace

PREFIXES = ("encoder.", "decoder.")


class EncoderDecoder(nn.Module):
    """encoder(x) -> final state -> decoder(dec_x, that state) -> logits (B, T, O)."""

    def __init__(self, encoder_config: ModelConfig, decoder_config: ModelConfig, seed: int | None = None):
        super().__init__()
        check_pair(encoder_config, decoder_config)
        self.encoder_config = encoder_config
        self.config = decoder_config  # the trainer reads model.config: the half with the head
        self.encoder = build_model(encoder_config, seed=seed)
        self.decoder = build_model(decoder_config, seed=None if seed is None else seed + 1)
        with torch.no_grad():
            for p in self.encoder.head.parameters():
                p.zero_()
                p.requires_grad_(False)

    def encode(self, x: Tensor):
        """Source (B, S) -> the encoder's final state, torch's (L, B, H) layout ((h, c) for LSTMs)."""
        _, final = self.encoder(x, return_state=True)
        return final

    def forward(self, x: Tensor, dec_x: Tensor, return_state: bool = False):
        """Teacher forcing: source (B, S), decoder inputs (B, T) -> logits (B, T, O)."""
        return self.decoder(dec_x, state=self.encode(x), return_state=return_state)

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
        state = self.encode(x)
        token = torch.full((x.shape[0], 1), start, dtype=torch.long, device=device)
        out = []
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=device)
        for _ in range(steps):
            logits, state = self.decoder(token, state=state, return_state=True)  # (B, 1, O)
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
    device=None,
) -> EncDecTrace:
    """Trace the encoder and the decoder as one backward pass.

    x: source ids (S,); dec_x: teacher-forced decoder inputs (T,), starting with <s>;
    targets: one class per decoder step (None where unscored). With decoder_inputs="greedy" the
    decoder reads <s> then its own previous argmax instead (`feed` maps an output id to the input
    id that reads it back, `dec_vocab` labels those inputs), and is still scored against the
    targets. device: where the traces' torch work runs (`run_trace`); None: where the model is.
    """
    from rnn_tui.engine.trace import TraceError, run_trace

    if decoder_inputs not in ("teacher", "greedy"):
        raise TraceError(f"decoder_inputs must be 'teacher' or 'greedy', got {decoder_inputs!r}")
    x = torch.as_tensor(x).long()
    dec_x = torch.as_tensor(dec_x).long()
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
