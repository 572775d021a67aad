"""Tokens per second of `rnn-tui generate`'s sampler against a plain torch sampling loop, side by side.

    python benchmarks/generate.py [--run assets/models/chars-lstm] [--tokens 2000] [--rounds 5]

Both sample from the same trained model, one token at a time with the state carried: the plain
loop is what a torch user writes (nn.LSTM step, nn.Linear, softmax, torch.multinomial); rnn-tui's
sampler also computes what it reports for every token (the model's p, the entropy, the top
candidates, the truncated distribution in float64). Rounds alternate so a busy machine slows both
alike; prints the median tokens/s of each (wall and CPU) and the ratio (target: >= 0.5x of the
plain loop, which reports nothing). Also times `eval` of the same model on the built-in text
against its unigram and n-gram baselines.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rnn_tui.engine import threads

threads.apply()  # one thread, as every rnn-tui command (before numpy or torch loads)

import torch  # noqa: E402

from rnn_tui.engine.checkpoint import load_model  # noqa: E402
from rnn_tui.engine.generate import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - t0[0], cpu - t0[1]


@torch.no_grad()
def plain_loop(model, prime: list[int], n: int, seed: int) -> list[int]:
    """What a torch user writes: feed the prime, then sample and feed back one token at a time."""
    rnn, head, V = model.core, model.head, model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.one_hot(torch.tensor([prime]), V).float()
    out, state = rnn(x)
    out_ids = []
    for _ in range(n):
        p = torch.softmax(head(out[:, -1]), dim=-1)
        i = int(torch.multinomial(p[0], 1, generator=g))
        out_ids.append(i)
        out, state = rnn(torch.nn.functional.one_hot(torch.tensor([[i]]), V).float(), state)
    return out_ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(ROOT / "assets/models/chars-lstm"))
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    model, ckpt = load_model(args.run, metrics=False)
    model.eval()
    prime = [1, 2, 3]
    generate(model, prime, 50, seed=0)  # warm both up
    plain_loop(model, prime, 50, 0)
    ours, plain = [], []
    for r in range(args.rounds):
        t0 = clock()
        generate(model, prime, args.tokens, temperature=1.0, seed=r)
        ours.append(since(t0))
        t0 = clock()
        plain_loop(model, prime, args.tokens, r)
        plain.append(since(t0))
    wall = lambda xs: args.tokens / statistics.median(w for w, _ in xs)  # noqa: E731
    cpu = lambda xs: args.tokens / statistics.median(c for _, c in xs)  # noqa: E731
    cfg = model.config
    print(f"{Path(args.run).name}: {cfg.cell} {cfg.num_layers}x{cfg.hidden_size}, {cfg.vocab_size} tokens, "
          f"{args.tokens} tokens x {args.rounds} rounds, {torch.get_num_threads()} thread(s)")
    print(f"rnn-tui generate   {wall(ours):8,.0f} tokens/s wall  {cpu(ours):8,.0f} tokens/s CPU")
    print(f"plain torch loop   {wall(plain):8,.0f} tokens/s wall  {cpu(plain):8,.0f} tokens/s CPU")
    print(f"ratio (rnn-tui / plain): {wall(ours) / wall(plain):.2f}x wall, {cpu(ours) / cpu(plain):.2f}x CPU")

    from rnn_tui.engine.evaluate import evaluate_task
    from rnn_tui.engine.tasks import get_task

    task = get_task(ckpt.info.task, **ckpt.info.task_options)
    t0 = clock()
    report = evaluate_task(model, task)
    w, c = since(t0)
    print(f"eval on fresh windows of its text with baselines: {w:.2f} s wall, {c:.2f} s CPU")
    print(report.line())


if __name__ == "__main__":
    main()
