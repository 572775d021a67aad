"""The adding problem (Hochreiter & Schmidhuber, 1997): sum two marked numbers in a long stream.

Each step reads two numbers, x_t = (value_t, marker_t): value_t ~ U(0, 1), and marker_t is 1 at
exactly two steps (one in each half of the stream) and 0 elsewhere. After the last step the model
outputs the sum of the two marked values (mean squared error, a pooled "last" head).

Always answering 1 (the mean of the sum) scores an MSE of 1/6 ~ 0.167; learning the task means
going well below that, which needs memory across about half the stream.
"""

from __future__ import annotations

import torch

from rnn_tui.engine.tasks.base import Batch, Example, Task, TrainDefaults, int_option

BASELINE_MSE = 1.0 / 6.0  # variance of U(0,1) + U(0,1): the error of always answering 1


class AddingTask(Task):
    name = "adding"
    vocab = None
    output_labels = None
    head = "last"
    loss_name = "mse"
    input_size = 2
    output_size = 1
    metric_name = "mse"
    higher_is_better = False
    solved = 0.01  # 6% of the baseline error
    chance = BASELINE_MSE

    def __init__(self, seq_len: int = 50):
        self.seq_len = int_option(self.name, "seq_len", seq_len, 2, 100_000)
        self.defaults = TrainDefaults(
            hidden=64,
            steps=1500,
            batch=64,
            lr=1e-2,
            clip=1.0,
            gate_bias=2.0,
            seq_len=self.seq_len,
            log_every=25,
        )

    def _draw(self, batch_size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.seq_len
        half = T // 2
        values = torch.rand(batch_size, T, generator=g)  # (B, T)
        first = torch.randint(0, half, (batch_size,), generator=g)  # one mark in [0, T/2)
        second = half + torch.randint(0, T - half, (batch_size,), generator=g)  # one in [T/2, T)
        rows = torch.arange(batch_size)
        markers = torch.zeros(batch_size, T)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        x = torch.stack([values, markers], dim=-1)  # (B, T, 2)
        y = (values[rows, first] + values[rows, second])[:, None]  # (B, 1)
        return x, y

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        x, y = self._draw(batch_size, generator)
        return Batch(x=x, y=y)

    def example(self, seed: int = 0) -> Example:
        x, y = self._draw(1, torch.Generator().manual_seed(seed))
        tokens = [f"{v:.2f}" + ("*" if m else "") for v, m in x[0].tolist()]
        return Example(tokens=tokens, x=x[0], targets=[[float(y[0, 0])]])
