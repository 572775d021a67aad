"""How many torch threads rnn-tui should use: a trace and a training run at 1 and at 2 threads,
taken in alternation in one process, so that load on the machine hits both counts alike.

    python benchmarks/threads.py [--rounds 9] [--counts 1,2]

For each count it prints the median wall and CPU time of a full trace (LSTM H=256, T=200, every
per-step gradient), of the whole gradient-flow analysis (LSTM H=128, T=500) and of 30 training
steps (the recall task's LSTM), and the ratio to the first count. The policy in
`rnn_tui/engine/threads.py` is the count that wins here; numpy's BLAS stays at one thread (set
before numpy loads, as every `rnn-tui` command does), so only torch's count varies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def work():
    """name -> a function that runs one piece of work."""
    import torch

    from rnn_tui.engine import gradflow
    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.tasks import get_task
    from rnn_tui.engine.trace import run_trace
    from rnn_tui.engine.train import TrainConfig, Trainer

    def trace_fn(H, T):
        cfg = ModelConfig(cell="lstm", input_size=64, vocab_size=64, hidden_size=H, output_size=64)
        model = build_model(cfg, seed=0)
        x = torch.randint(0, 64, (T,), generator=torch.Generator().manual_seed(0))
        return model, x, x.roll(-1).tolist()

    model, x, targets = trace_fn(256, 200)
    m2, x2, t2 = trace_fn(128, 500)
    flow_trace = run_trace(m2, x2, t2)
    task = get_task("recall")
    cfg = task.model_config(cell="lstm")
    base = TrainConfig.from_defaults(task.defaults).replace(steps=30, eval_batches=0)

    def train(n: int) -> None:
        Trainer(task, base.replace(threads=n), model_config=cfg).run()

    return {
        "trace lstm H=256 T=200": lambda n: run_trace(model, x, targets),
        "gradient flow H=128 T=500": lambda n: gradflow.analyze_gradflow(flow_trace),
        "train recall lstm, 30 steps": train,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--counts", default="1,2")
    args = ap.parse_args()
    import torch

    counts = [int(c) for c in args.counts.split(",")]
    jobs = work()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, OpenBLAS threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}, load {os.getloadavg()[0]:.2f}, {args.rounds} rounds")  # fmt: skip
    for name, fn in jobs.items():
        times = {n: [] for n in counts}
        for n in counts:  # warm up
            torch.set_num_threads(n)
            fn(n)
        for r in range(args.rounds):
            for n in counts if r % 2 == 0 else counts[::-1]:
                torch.set_num_threads(n)
                w, c = time.perf_counter(), time.process_time()
                fn(n)
                times[n].append((time.perf_counter() - w, time.process_time() - c))
        first = statistics.median(w for w, _ in times[counts[0]])
        cells = []
        for n in counts:
            wall = statistics.median(w for w, _ in times[n])
            cpu = statistics.median(c for _, c in times[n])
            cells.append(f"{n} thread{'s' * (n > 1)}: {wall * 1e3:8.1f} ms wall {cpu * 1e3:8.1f} ms CPU ({wall / first:.2f}x)")
        print(f"{name:30s} " + " | ".join(cells))
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
