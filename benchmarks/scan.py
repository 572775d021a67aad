"""Training through the chunked parallel scan against the step-by-step loop, and against nn.GRU.

    python benchmarks/scan.py [--task adding] [--seq-len 512] [--steps 10] [--rounds 5] [--threads 1]

minGRU and minLSTM run their linear recurrence h_t = a_t h_{t-1} + b_t either as the loop (T small
steps, each differentiated by autograd) or as the chunked scan (`rnn_tui.engine.scan`: about
2 sqrt(T) steps forward and as many back). Each is trained with rnn-tui's Trainer on the same task
batches from the same weights; a GRU of the same size (torch's fused nn.GRU) trains beside them.
Rounds alternate the order so a busy machine slows all alike. Prints the median CPU and wall time
per optimizer step and the ratios (target: sequential / parallel >= 5x at T = 512), and how far
apart the two scans' losses are (the same maths in another order: float32 rounding only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("RNN_TUI_THREADS", "1")  # before numpy and torch load (rnn_tui.engine.threads)

from rnn_tui.engine import threads  # noqa: E402

threads.apply()

import torch  # noqa: E402

from rnn_tui.engine.tasks import get_task  # noqa: E402
from rnn_tui.engine.train import TrainConfig, Trainer  # noqa: E402


def run(task, cell: str, scan: str, config, steps: int) -> tuple[float, float, list[float]]:
    cfg = task.model_config(cell=cell)
    if scan != "sequential":
        cfg = cfg.replace(scan=scan)
    trainer = Trainer(task, config.replace(steps=steps, eval_batches=0, threads=None), model_config=cfg)
    losses: list[float] = []
    w0, c0 = time.perf_counter(), time.process_time()
    trainer.run(on_progress=lambda p: p.done or losses.append(p.loss))
    return (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps, losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="adding")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10, help="optimizer steps per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task, seq_len=args.seq_len)
    config = TrainConfig.from_defaults(task.defaults)
    runs = [("mingru", "sequential"), ("mingru", "parallel"), ("minlstm", "sequential"), ("minlstm", "parallel"),
            ("gru", "sequential")]  # fmt: skip
    for cell, scan in runs:  # warm up
        run(task, cell, scan, config, 1)
    times: dict = {r: [] for r in runs}
    losses: dict = {}
    for r in range(args.rounds):
        order = runs if r % 2 == 0 else runs[::-1]
        for cell, scan in order:
            wall, cpu, ls = run(task, cell, scan, config, args.steps)
            times[(cell, scan)].append((wall, cpu))
            losses[(cell, scan)] = ls
    H = task.model_config().hidden_size
    print(f"task={args.task} T={args.seq_len} H={H} batch={config.batch} threads={torch.get_num_threads()} "
          f"rounds={args.rounds}x{args.steps} steps; seconds per optimizer step (median)")  # fmt: skip
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    gru_wall, gru_cpu = med[("gru", "sequential")]
    print(f"  gru (torch.nn.GRU, fused)     wall {gru_wall:.4f}  cpu {gru_cpu:.4f}")
    for cell in ("mingru", "minlstm"):
        (sw, sc), (pw, pc) = med[(cell, "sequential")], med[(cell, "parallel")]
        print(f"  {cell:<8} sequential loop     wall {sw:.4f}  cpu {sc:.4f}")
        print(f"  {cell:<8} parallel scan       wall {pw:.4f}  cpu {pc:.4f}")
        gap = max(abs(a - b) for a, b in zip(losses[(cell, "sequential")], losses[(cell, "parallel")]))
        print(f"  {cell:<8} loop / scan  {sc / pc:5.1f}x cpu ({sw / pw:.1f}x wall)   "
              f"nn.GRU / scan {gru_cpu / pc:.2f}x cpu   largest loss gap between the scans {gap:.2g}")
    print("target: loop / scan >= 5x at T = 512")


if __name__ == "__main__":
    main()
