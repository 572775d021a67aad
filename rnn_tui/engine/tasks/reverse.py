"""Reverse a sequence with an encoder and a decoder: asynchronous sequence-to-sequence.

    encoder reads   x     = c a f e
    decoder reads   dec_x = <s> e f a c            (teacher forcing: the true previous symbol)
    decoder writes  y     = e   f a c </s>

The decoder starts from the encoder's final state: everything it needs about the source must pass
through that one vector. The first symbol it writes is the last one the encoder read; the last
one it writes was read first, the longest way back.
"""

from __future__ import annotations

import string

import torch

from rnn_tui.engine.tasks.base import (
    EncDecBatch,
    EncDecExample,
    Task,
    TaskError,
    TrainDefaults,
    int_option,
)

START, STOP = "<s>", "</s>"


class ReverseTask(Task):
    name = "reverse"
    head = "step"
    loss_name = "ce"
    metric_name = "accuracy"
    solved = 0.95

    def __init__(self, seq_len: int = 8, symbols: int = 8):
        self.seq_len = int_option(self.name, "seq_len", seq_len, 1, 1000)
        self.symbols = int_option(self.name, "symbols", symbols, 2, 26)
        letters = list(string.ascii_lowercase[: self.symbols])
        self.vocab = letters  # what the encoder reads
        self.dec_vocab = [START] + letters  # what the decoder reads
        self.output_labels = letters + [STOP]  # what the decoder writes
        self.start_id = 0
        self.stop_id = self.symbols
        self.chance = 1.0 / len(self.output_labels)
        # output id -> decoder input id that reads it back (</s> ends decoding; it reads as <s>)
        self.feed = torch.tensor([i + 1 for i in range(self.symbols)] + [self.start_id])
        self.defaults = TrainDefaults(
            hidden=64, steps=1200, batch=64, lr=1e-2, clip=1.0, seq_len=self.seq_len, log_every=25
        )

    # ---- the model: two halves -------------------------------------------------------------
    def model_config(self, cell="lstm", hidden=None, layers=None, bidirectional=False, activation="tanh", bias=True):
        """The decoder's config (it has the head); the encoder's follows from it (`encoder_config`)."""
        from rnn_tui.engine.config import ModelConfig

        if bidirectional:
            raise TaskError("the reverse task's decoder writes left to right: drop --bidirectional")
        d = self.defaults
        V = len(self.dec_vocab)
        return ModelConfig(
            cell=cell,
            activation=activation,
            input_size=V,
            hidden_size=int(hidden if hidden is not None else d.hidden),
            num_layers=int(layers if layers is not None else d.layers),
            bidirectional=False,
            bias=bool(bias),
            output_size=len(self.output_labels),
            input_mode="onehot",
            vocab_size=V,
            head="step",
            loss="ce",
        )

    def encoder_config(self, config):
        from rnn_tui.engine.encdec import encoder_config_for

        return encoder_config_for(config, vocab_size=len(self.vocab))

    def build_model(self, config, seed=None):
        from rnn_tui.engine.encdec import EncoderDecoder
        from rnn_tui.engine.tasks.base import set_keep_gate_bias

        model = EncoderDecoder(self.encoder_config(config), config, seed=seed)
        set_keep_gate_bias(model.encoder.tensors(), model.encoder_config, self.defaults.gate_bias)
        set_keep_gate_bias(model.decoder.tensors(), config, self.defaults.gate_bias)
        return model

    def forward(self, model, batch: EncDecBatch):
        return model(batch.x, batch.dec_x)

    # ---- the data --------------------------------------------------------------------------
    def _draw(self, batch_size: int, g: torch.Generator):
        src = torch.randint(0, self.symbols, (batch_size, self.seq_len), generator=g)  # (B, S)
        rev = src.flip(1)  # (B, S)
        start = torch.full((batch_size, 1), self.start_id, dtype=torch.long)
        stop = torch.full((batch_size, 1), self.stop_id, dtype=torch.long)
        dec_x = torch.cat([start, rev + 1], dim=1)  # (B, S+1): dec_vocab puts <s> before the letters
        y = torch.cat([rev, stop], dim=1)  # (B, S+1)
        return src, dec_x, y

    def sample(self, batch_size: int, generator: torch.Generator) -> EncDecBatch:
        src, dec_x, y = self._draw(batch_size, generator)
        return EncDecBatch(x=src, y=y, dec_x=dec_x)

    def example(self, seed: int = 0) -> EncDecExample:
        src, dec_x, y = self._draw(1, torch.Generator().manual_seed(seed))
        return EncDecExample(
            tokens=[self.vocab[i] for i in src[0].tolist()],
            x=src[0],
            targets=y[0].tolist(),
            dec_tokens=[self.dec_vocab[i] for i in dec_x[0].tolist()],
            dec_x=dec_x[0],
        )

    def trace(self, model, example: EncDecExample | None = None, dtype: str = "float32", decoder_inputs: str = "greedy",
              device=None):  # fmt: skip
        """Trace one example through both halves (see `encdec.trace_encdec`; device: where)."""
        from rnn_tui.engine.encdec import trace_encdec

        ex = example if example is not None else self.example()
        return trace_encdec(
            model,
            ex.x,
            ex.dec_x,
            ex.targets,
            tokens=ex.tokens,
            dec_tokens=ex.dec_tokens,
            vocab=self.output_labels,
            dec_vocab=self.dec_vocab,
            feed=self.feed,
            dtype=dtype,
            decoder_inputs=decoder_inputs,
            device=device,
        )

    def reverse(self, model, text: str) -> str:
        """The model's greedy answer for a source string of known letters."""
        unknown = sorted(set(text) - set(self.vocab))
        if unknown:
            raise TaskError(f"{unknown[0]!r} is not one of the symbols {''.join(self.vocab)}")
        x = torch.tensor([[self.vocab.index(ch) for ch in text]], dtype=torch.long)
        ids = model.greedy(x, start=self.start_id, steps=len(text) + 1, stop=self.stop_id, feed=self.feed)
        ids = ids[0].tolist()
        out = []
        for i in ids:
            if i == self.stop_id:
                break
            out.append(self.output_labels[i])
        return "".join(out)
