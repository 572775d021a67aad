"""Nested brackets (a Dyck language): track how deep the nesting is at every step.

    x = ( ( [ ] ( ) ) ...
    y = 1 2 3 2 3 2 1 ...     (target="depth": the depth after each character, as a class)

The sequence is a random walk that opens a bracket (while below `max_depth`) or closes the most
recent open one (while above 0), so every prefix is well nested. A trained model usually grows a
unit whose value follows the depth: a counter you can find in the explorer.

With target="next" the task is language modelling instead: predict the next character. Only the
kind of a closing bracket is certain (it must match the last open one), so accuracy stays below 1.
"""

from __future__ import annotations

import torch

from rnn_tui.engine.tasks.base import (
    Batch,
    Example,
    Task,
    TrainDefaults,
    choice_option,
    float_option,
    int_option,
)

PAIRS = ("()", "[]", "{}")


class BracketsTask(Task):
    name = "brackets"
    head = "step"
    loss_name = "ce"
    metric_name = "accuracy"

    def __init__(
        self,
        target: str = "depth",
        kinds: int = 1,
        max_depth: int = 8,
        seq_len: int = 48,
        p_open: float = 0.5,
    ):
        self.target = choice_option(self.name, "target", target, ("depth", "next"))
        self.kinds = int_option(self.name, "kinds", kinds, 1, len(PAIRS))
        self.max_depth = int_option(self.name, "max_depth", max_depth, 1, 1000)
        self.seq_len = int_option(self.name, "seq_len", seq_len, 2, 100_000)
        self.p_open = float_option(self.name, "p_open", p_open, 0.01, 0.99)
        pairs = PAIRS[: self.kinds]
        self.vocab = [p[0] for p in pairs] + [p[1] for p in pairs]  # openers, then closers
        if self.target == "depth":
            self.output_labels = [str(d) for d in range(self.max_depth + 1)]
            self.solved = 0.95
        else:
            self.output_labels = list(self.vocab)
            self.solved = None  # the next opener is a coin toss: no accuracy reaches 1
        self.defaults = TrainDefaults(
            hidden=32, steps=1500, batch=32, lr=2e-3, clip=1.0, seq_len=self.seq_len, log_every=25
        )

    def _draw(self, batch_size: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random walks: ids (B, T+1) and depth after each character (B, T+1)."""
        B, T, K = batch_size, self.seq_len + 1, self.kinds
        coins = torch.rand(B, T, generator=g)  # open when below p_open (if allowed)
        kinds = torch.randint(0, K, (B, T), generator=g)  # which bracket to open
        ids = torch.empty(B, T, dtype=torch.long)
        depths = torch.empty(B, T, dtype=torch.long)
        stack = torch.zeros(B, self.max_depth + 1, dtype=torch.long)  # kind opened at each depth
        depth = torch.zeros(B, dtype=torch.long)  # (B,) open brackets so far
        rows = torch.arange(B)
        for t in range(T):
            opening = (depth == 0) | ((depth < self.max_depth) & (coins[:, t] < self.p_open))
            closing = ~opening
            stack[rows[opening], depth[opening]] = kinds[opening, t]  # push
            depth = depth - closing.long()  # pop: the closer matches the kind below the top
            ids[:, t] = torch.where(opening, kinds[:, t], K + stack[rows, depth])
            depth = depth + opening.long()
            depths[:, t] = depth
        return ids, depths

    def _pair(self, ids: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.target == "depth":
            return ids[:, :-1], depth[:, :-1]
        return ids[:, :-1], ids[:, 1:]

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        x, y = self._pair(*self._draw(batch_size, generator))
        return Batch(x=x, y=y)

    def example(self, seed: int = 0) -> Example:
        x, y = self._pair(*self._draw(1, torch.Generator().manual_seed(seed)))
        return Example(tokens=[self.vocab[i] for i in x[0].tolist()], x=x[0], targets=y[0].tolist())
