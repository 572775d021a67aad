"""Long-range recall: remember the first symbol across N distractors, then name it at the cue.

    x = A 2 0 3 1 ... 3 ?      (a symbol, `distance` random distractor digits, the cue "?")
    y = A                      (one class, read from the state at the cue: a pooled "last" head)

The answer lives only in step 0, so the gradient must travel `distance` + 1 steps back: a tanh RNN's
gradient vanishes on the way, while an LSTM's cell state (or a GRU's z gate) carries it.
"""

from __future__ import annotations

import string

import torch

from rnn_tui.engine.tasks.base import Batch, Example, Task, TrainDefaults, int_option

DISTRACTORS = ("0", "1", "2", "3")
CUE = "?"


class RecallTask(Task):
    name = "recall"
    head = "last"
    loss_name = "ce"
    metric_name = "accuracy"
    solved = 0.95

    def __init__(self, distance: int = 40, symbols: int = 8):
        self.distance = int_option(self.name, "distance", distance, 1, 10_000)
        self.symbols = int_option(self.name, "symbols", symbols, 2, 26)
        self.output_labels = list(string.ascii_uppercase[: self.symbols])
        self.vocab = self.output_labels + list(DISTRACTORS) + [CUE]
        self.chance = 1.0 / self.symbols
        self.defaults = TrainDefaults(
            hidden=64,
            steps=1000,
            batch=64,
            lr=1e-3,
            clip=1.0,
            gate_bias=2.0,
            seq_len=self.distance + 2,
            log_every=25,
        )

    def _draw(self, batch_size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n_sym, D = self.symbols, len(DISTRACTORS)
        target = torch.randint(0, n_sym, (batch_size,), generator=g)  # (B,)
        noise = n_sym + torch.randint(0, D, (batch_size, self.distance), generator=g)  # (B, N)
        cue = torch.full((batch_size, 1), n_sym + D, dtype=torch.long)
        x = torch.cat([target[:, None], noise, cue], dim=1)  # (B, N + 2)
        return x, target

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        x, y = self._draw(batch_size, generator)
        return Batch(x=x, y=y)

    def example(self, seed: int = 0) -> Example:
        x, y = self._draw(1, torch.Generator().manual_seed(seed))
        return Example(tokens=[self.vocab[i] for i in x[0].tolist()], x=x[0], targets=[int(y[0])])
