"""The gradient-flow matrix ||d l_t / d h_k|| for every scored step t and every step k, against a
fused torch forward+backward of the same sequence, timed side by side in one run. Then RTRL
against BPTT on a small Elman network, the contrast the lecture notes draw.

    python benchmarks/gradflow.py [--steps 500] [--hidden 128] [--cells rnn,lstm,gru] [--repeat 5]

Target: the flow matrix for T=500, H=128 in under a second.

The delta recursion runs many small NumPy matrix products in a time loop. On a small, busy
machine OpenBLAS's own threads (next to torch's) can make them several times slower; compare
with `OPENBLAS_NUM_THREADS=1 python benchmarks/gradflow.py` (the setting is printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from rnn_tui.engine import gradflow
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.model import build_model
from rnn_tui.engine.rtrl import cost_comparison
from rnn_tui.engine.trace import run_trace


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median, best) seconds over `repeat` runs after a warm-up; the best is the steadier figure
    on a machine shared with other work."""
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def flow_vs_fused(cell: str, T: int, H: int, vocab: int, repeat: int) -> None:
    cfg = ModelConfig(cell=cell, input_size=vocab, vocab_size=vocab, hidden_size=H, output_size=vocab)
    model = build_model(cfg, seed=0)
    x = torch.randint(0, vocab, (T,), generator=torch.Generator().manual_seed(0))
    targets = x.roll(-1).tolist()
    trace = run_trace(model, x, targets)

    def fused() -> None:  # what a plain torch user runs: forward + backward of the loss
        model.zero_grad(set_to_none=True)
        y = model(x[None])
        torch.nn.functional.cross_entropy(y[0], torch.tensor(targets)).backward()

    flows = []

    def flow() -> None:
        flows[:] = gradflow.flow_matrix(trace, sources=range(T))

    (m_fused, t_fused), (m_flow, t_flow) = timed(fused, repeat), timed(flow, repeat)
    m_all, t_all = timed(lambda: gradflow.analyze_gradflow(trace, tbptt=50), max(1, repeat // 2))
    entries = int(np.isfinite(flows[0][0]).sum())
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"cell={cell} T={T} H={H} torch threads={torch.get_num_threads()} OpenBLAS threads={blas}"
          f"  ({entries} flow entries)")  # fmt: skip
    print("                                     best ms   median ms")
    print(f"  fused torch forward+backward    {t_fused * 1e3:10.1f}  {m_fused * 1e3:10.1f}")
    print(f"  flow matrix, all {T} sources    {t_flow * 1e3:10.1f}  {m_flow * 1e3:10.1f}"
          f"   flow/fused {t_flow / t_fused:5.1f}x (best) {m_flow / m_fused:5.1f}x (median)"
          f"   {'OK' if t_flow < 1.0 else 'OVER'} (target < 1 s)")  # fmt: skip
    print(f"  whole analysis (+ step Jacobians and their SVDs, decay fit, spectra, dW_hh, TBPTT K=50)"
          f" {t_all * 1e3:.1f} best, {m_all * 1e3:.1f} median")  # fmt: skip


def rtrl_vs_bptt(T: int, H: int, I: int = 4, O: int = 4) -> None:
    g = np.random.default_rng(0)
    s = 1 / np.sqrt(H)
    tensors = {
        "weight_ih_l0": g.uniform(-s, s, (H, I)),
        "weight_hh_l0": g.uniform(-s, s, (H, H)),
        "bias_ih_l0": g.uniform(-s, s, H),
        "bias_hh_l0": g.uniform(-s, s, H),
        "head.weight": g.uniform(-s, s, (O, H)),
        "head.bias": g.uniform(-s, s, O),
    }
    x = g.normal(size=(T, I))
    targets = [int(v) for v in g.integers(0, O, T)]
    c = cost_comparison(tensors, x, targets, repeats=3)
    print(f"RTRL vs BPTT, Elman T={T} H={H} I={I} O={O} (float64 NumPy; gradients agree to {c.max_abs_diff:.1e})")
    for r in (c.bptt, c.rtrl):
        print(f"  {r.method:4s}  {r.flops / 1e6:10.2f} Mflop  {r.bytes / 1024:10.1f} KiB  {r.seconds * 1e3:9.2f} ms"
              f"   memory ~ {r.memory_scales_with}")  # fmt: skip
    print(f"  rtrl/bptt: {c.rtrl.flops / c.bptt.flops:.0f}x flops, {c.rtrl.seconds / c.bptt.seconds:.0f}x time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for cell in args.cells.split(","):
        flow_vs_fused(cell, args.steps, args.hidden, args.vocab, args.repeat)
    for H in (8, 32):
        rtrl_vs_bptt(100, H)


if __name__ == "__main__":
    main()
