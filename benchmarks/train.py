"""Tokens per second of rnn-tui's Trainer against an idiomatic plain torch loop, side by side.

    python benchmarks/train.py [--task recall] [--cell lstm] [--steps 100] [--rounds 7] [--threads 1]

Both train the same model (the same initial weights, as torch.nn.LSTM/GRU/RNN + nn.Linear in the
plain loop) on the same task batches with the same optimizer and clipping; rounds alternate between
the two so a busy machine slows both alike. Prints the median tokens/s of each and the ratio
(target: trainer / plain >= 0.9x), and checks that both produced bit-identical losses.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from rnn_tui.engine.tasks import get_task
from rnn_tui.engine.train import TrainConfig, Trainer


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - t0[0], cpu - t0[1]


class PlainNet(nn.Module):
    """What a torch user writes: one-hot (or raw vectors) -> nn.LSTM -> nn.Linear."""

    def __init__(self, cfg):
        super().__init__()
        kinds = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
        extra = {"nonlinearity": cfg.activation} if cfg.cell == "rnn" else {}
        self.cfg = cfg
        self.rnn = kinds[cfg.cell](cfg.input_size, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True, **extra)
        self.fc = nn.Linear(cfg.hidden_size, cfg.output_size)

    def forward(self, x):
        if self.cfg.input_mode == "onehot":
            x = nn.functional.one_hot(x, self.cfg.vocab_size).float()
        out, _ = self.rnn(x)
        return self.fc(out[:, -1] if self.cfg.head == "last" else out)


def plain_loop(task, cfg, config, init: dict, steps: int) -> tuple[float, list[float]]:
    net = PlainNet(cfg)
    with torch.no_grad():
        for name, p in net.rnn.named_parameters():
            p.copy_(init[name])
        net.fc.weight.copy_(init["head.weight"])
        net.fc.bias.copy_(init["head.bias"])
    # weight matrices before biases, the order the Trainer's two parameter groups give, so the
    # gradient-norm sums add up in the same order and the two loops agree bit for bit
    named = list(net.named_parameters())
    params = [p for n, p in named if "bias" not in n] + [p for n, p in named if "bias" in n]
    opt = torch.optim.Adam(params, lr=config.lr)
    g = torch.Generator().manual_seed(config.seed)
    losses = []
    t0 = clock()
    for _ in range(steps):
        batch = task.sample(config.batch, g)
        out = net(batch.x)
        if cfg.loss == "ce":
            loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), batch.y.reshape(-1), ignore_index=-100)
        else:
            loss = nn.functional.mse_loss(out, batch.y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, config.clip)
        opt.step()
        losses.append(loss.item())
    return since(t0), losses


def trainer_loop(task, cfg, config, steps: int) -> tuple[float, list[float], dict]:
    trainer = Trainer(task, config.replace(steps=steps, eval_batches=0, threads=None), model_config=cfg)
    init = {k: v.detach().clone() for k, v in trainer.model.tensors().items()}
    losses = []  # through the progress callback, as the explorer and the CLI receive them
    t0 = clock()
    trainer.run(on_progress=lambda p: p.done or losses.append(p.loss))
    elapsed = since(t0)
    return elapsed, losses, init


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="recall")
    ap.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both loops")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    cfg = task.model_config(cell=args.cell)
    config = TrainConfig.from_defaults(task.defaults)
    tokens = args.steps * task.sample(config.batch, torch.Generator().manual_seed(0)).num_tokens

    trainer_loop(task, cfg, config, 5)  # warm up both
    plain_loop(task, cfg, config, trainer_loop(task, cfg, config, 1)[2], 5)
    ours, theirs, same = [], [], True
    init = trainer_loop(task, cfg, config, 1)[2]
    for r in range(args.rounds):
        if r % 2:  # alternate which loop goes first, so neither always runs on a warmer machine
            t_plain, losses_plain = plain_loop(task, cfg, config, init, args.steps)
            t_ours, losses_ours, init = trainer_loop(task, cfg, config, args.steps)
        else:
            t_ours, losses_ours, init = trainer_loop(task, cfg, config, args.steps)
            t_plain, losses_plain = plain_loop(task, cfg, config, init, args.steps)
        ours.append(t_ours)
        theirs.append(t_plain)
        same = same and losses_ours == losses_plain
    print(
        f"task={args.task} cell={args.cell} H={cfg.hidden_size} batch={config.batch} "
        f"tokens/step={tokens // args.steps} {config.optimizer} clip={config.clip} threads={torch.get_num_threads()} "
        f"rounds={args.rounds}x{args.steps} steps"
    )
    for i, clock_name in enumerate(("wall", "cpu")):
        a = tokens / statistics.median(t[i] for t in ours)
        b = tokens / statistics.median(t[i] for t in theirs)
        print(f"[{clock_name:4s}] plain torch loop {b:11,.0f} tokens/s | rnn-tui Trainer {a:11,.0f} tokens/s | ratio {a / b:.3f}x")
    print("target: ratio >= 0.9x (on a busy machine the cpu-time ratio is the steadier one)")
    print(f"identical losses in both loops: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
