"""A full trace (states, every gate, every per-step dL/dh_t and dL/dc_t) against a fused
`torch.nn.LSTM` forward + backward of the same sequence, timed side by side in one run.

    python benchmarks/trace.py [--steps 200] [--hidden 256] [--repeat 15]

Prints the median times and their ratio (target: trace / fused <= 2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `rnn-tui` runs (see cli.single_threaded_numpy)

import torch  # noqa: E402

from rnn_tui.engine.config import ModelConfig  # noqa: E402
from rnn_tui.engine.model import build_model  # noqa: E402
from rnn_tui.engine.trace import run_trace  # noqa: E402


def timings(fns, repeat: int) -> list[list[float]]:
    """Each function's times, taken in alternation so that load on the machine hits both alike."""
    for fn in fns:
        fn()  # warm up
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--repeat", type=int, default=31)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(cell=args.cell, input_size=args.vocab, vocab_size=args.vocab,
                      hidden_size=args.hidden, output_size=args.vocab)
    model = build_model(cfg, seed=0)
    x = torch.randint(0, args.vocab, (args.steps,))
    targets = x.roll(-1).tolist()

    def fused() -> None:  # what a plain torch user would run: forward + backward of the loss
        model.zero_grad(set_to_none=True)
        y = model(x[None])
        loss = torch.nn.functional.cross_entropy(y[0], torch.tensor(targets))
        loss.backward()

    def trace() -> None:
        run_trace(model, x, targets)

    fused_t, trace_t = timings([fused, trace], args.repeat)
    print(f"cell={args.cell} T={args.steps} H={args.hidden} torch threads={torch.get_num_threads()}"
          f" repeats={args.repeat} (alternated)")
    print(f"{'':30s} {'best':>9s} {'median':>9s}")
    print(f"{'fused torch forward+backward':30s} {min(fused_t) * 1e3:7.2f}ms {statistics.median(fused_t) * 1e3:7.2f}ms")
    print(f"{'full trace, every dL/dh dL/dc':30s} {min(trace_t) * 1e3:7.2f}ms {statistics.median(trace_t) * 1e3:7.2f}ms")
    print(f"ratio trace / fused: best {min(trace_t) / min(fused_t):.2f}x, "
          f"median {statistics.median(trace_t) / statistics.median(fused_t):.2f}x  (target <= 2x)")


if __name__ == "__main__":
    main()
