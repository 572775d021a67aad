"""Time-series forecasting: read a sum of sine waves, predict the value `horizon` steps ahead.

    x_t = s(t) (+ noise)           one float per step
    y_t = s(t + horizon)           mean squared error at every step after a short warm-up

    s(t) = Σ_k a_k sin(2π f_k t + φ_k),  a_k = 1/waves,  f_k ~ U(1/40, 1/8),  φ_k ~ U(0, 2π)

The first `warmup` steps are unscored (mask False): no model can know a wave's frequency and
phase from one sample. Answering 0 scores an MSE of about 1/(2·waves), the signal's variance.
"""

from __future__ import annotations

import math

import torch

from rnn_tui.engine.tasks.base import Batch, Example, Task, TrainDefaults, float_option, int_option

F_LOW, F_HIGH = 1 / 40, 1 / 8  # cycles per step


class SineTask(Task):
    name = "sine"
    vocab = None
    output_labels = None
    head = "step"
    loss_name = "mse"
    input_size = 1
    output_size = 1
    metric_name = "mse"
    higher_is_better = False

    def __init__(self, seq_len: int = 64, horizon: int = 1, waves: int = 2, noise: float = 0.0):
        self.seq_len = int_option(self.name, "seq_len", seq_len, 2, 100_000)
        self.horizon = int_option(self.name, "horizon", horizon, 1, 1000)
        self.waves = int_option(self.name, "waves", waves, 1, 4)
        self.noise = float_option(self.name, "noise", noise, 0.0, 10.0)
        self.warmup = min(8, self.seq_len - 1)
        self.chance = 1.0 / (2 * self.waves)  # variance of s(t): the error of answering 0
        self.solved = self.chance / 20
        self.defaults = TrainDefaults(
            hidden=32, steps=600, batch=32, lr=1e-2, clip=1.0, seq_len=self.seq_len, log_every=25
        )

    def _draw(self, batch_size: int, g: torch.Generator):
        B, T, K = batch_size, self.seq_len, self.waves
        f = F_LOW + (F_HIGH - F_LOW) * torch.rand(B, 1, K, generator=g)  # (B, 1, K)
        phi = 2 * math.pi * torch.rand(B, 1, K, generator=g)  # (B, 1, K)
        t = torch.arange(T + self.horizon, dtype=torch.float32)[None, :, None]  # (1, T+h, 1)
        s = (torch.sin(2 * math.pi * f * t + phi) / K).sum(dim=-1)  # (B, T+h)
        x = s[:, :T] + self.noise * torch.randn(B, T, generator=g)  # (B, T)
        y = s[:, self.horizon :]  # (B, T)
        mask = torch.zeros(B, T, dtype=torch.bool)
        mask[:, self.warmup :] = True
        return x[..., None], y[..., None], mask  # (B, T, 1), (B, T, 1), (B, T)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        x, y, mask = self._draw(batch_size, generator)
        return Batch(x=x, y=y, mask=mask)

    def example(self, seed: int = 0) -> Example:
        x, y, mask = self._draw(1, torch.Generator().manual_seed(seed))
        targets = [[v] if m else None for v, m in zip(y[0, :, 0].tolist(), mask[0].tolist())]
        return Example(tokens=[f"{v:+.2f}" for v in x[0, :, 0].tolist()], x=x[0], targets=targets)
