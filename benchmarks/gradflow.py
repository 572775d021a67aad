"""The whole gradient-flow analysis of one trace — the flow matrix ||d l_t / d h_k|| for every
scored t and every k, the step Jacobian norms ||d s_t / d s_{t-1}||_2, the decay rate gamma, the
W_hh spectra, the gradient of every tensor — in CPU seconds, next to a fused torch forward +
backward of the same sequence. Then a long trace analysed a window of rows first, and RTRL
against BPTT on a small Elman network, the contrast the lecture notes draw.

    python benchmarks/gradflow.py [--steps 500] [--hidden 128] [--cells lstm,rnn,gru] [--long 2000]

Target: the whole analysis of a T=500, H=128 LSTM trace in <= 1.5 s of CPU (torch already
imported). The traces are float32, as `rnn-tui trace --format json` makes them. Everything runs
under the thread policy of the `rnn-tui` commands (`rnn_tui.engine.threads`). Finishes in well
under two minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def apply_threads() -> str:
    """rnn-tui's thread policy, set before numpy and torch load (they read it once)."""
    try:
        from rnn_tui.engine import threads as policy
    except ImportError:  # an older checkout, before the policy existed
        policy = None
    if policy is not None:
        policy.apply()
    import torch

    return f"{torch.get_num_threads()} ({'torch' if policy is None else 'rnn-tui'}'s policy)"


def cpu(fn) -> tuple[float, float, object]:
    """(CPU seconds over all threads, wall seconds, result) of one call."""
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c, time.perf_counter() - w, out


def make_trace(cell: str, T: int, H: int, vocab: int):
    import torch

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

    cfg = ModelConfig(cell=cell, input_size=vocab, vocab_size=vocab, hidden_size=H, output_size=vocab)
    model = build_model(cfg, seed=0)
    x = torch.randint(0, vocab, (T,), generator=torch.Generator().manual_seed(0))
    targets = x.roll(-1).tolist()

    def fused() -> None:  # what a plain torch user runs: forward + backward of the loss
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x[None])[0], torch.tensor(targets)).backward()

    return model, x, targets, run_trace(model, x, targets), fused


def whole_analysis(cell: str, T: int, H: int, vocab: int) -> float:
    from rnn_tui.engine import gradflow as gf

    _, _, _, trace, fused = make_trace(cell, T, H, vocab)
    fused()
    c_fused, _, _ = cpu(fused)
    gf.analyze_gradflow(make_trace(cell, 8, 4, vocab)[3])  # warm up the code paths once
    c_all, w_all, report = cpu(lambda: gf.analyze_gradflow(trace))
    c_flow, _, _ = cpu(lambda: gf.flow_matrix(trace, sources=range(T)))
    c_jac, _, norms = cpu(lambda: gf.jacobian_norms(trace))
    c_svd, _, exact = cpu(lambda: full_svd_norms(trace))
    rel = max(float(abs(a - b).max() / b.max()) for a, b in zip(norms, exact))
    ok = "OK" if c_all <= 1.5 else "OVER"
    print(f"{cell} T={T} H={H}: whole analysis {c_all:.2f} s CPU ({w_all:.2f} s wall)  {ok} (target <= 1.5 s CPU)")
    print(f"  of which, measured alone: flow matrix, all {T} sources {c_flow:.2f} s; step Jacobian norms "
          f"{c_jac:.2f} s (a full SVD of every step: {c_svd:.2f} s; largest relative difference {rel:.1e})")  # fmt: skip
    print(f"  fused torch forward+backward of the same sequence: {c_fused * 1e3:.1f} ms CPU;"
          f" gamma {report.layers[0].decay.gamma:.4f}")
    return c_all


def full_svd_norms(trace):
    """The answer key: the largest singular value of every step Jacobian, by a full SVD."""
    import numpy as np

    from rnn_tui.engine import gradflow as gf

    out = []
    for idx in range(len(trace.layers)):
        norms = np.empty(trace.T)
        for a in range(0, trace.T, 64):
            J = gf.step_jacobians(trace, idx, range(a, min(trace.T, a + 64)))
            norms[a : a + 64] = np.linalg.svd(J, compute_uv=False)[:, 0]
        out.append(norms)
    return out


def long_window(cell: str, T: int, H: int, vocab: int, window: int) -> None:
    """A long trace, as the Gradients tab fills it in: the rows and steps on screen first, then
    every row and step, completing the first report (`previous=`)."""
    import inspect

    from rnn_tui.engine import gradflow as gf

    _, _, _, trace, _ = make_trace(cell, T, H, vocab)
    if "previous" not in inspect.signature(gf.analyze_gradflow).parameters:
        print(f"{cell} T={T} H={H}: analysis by window of rows not available in this checkout")
        return
    shown = range(T - window, T)
    c_first, w_first, first = cpu(lambda: gf.analyze_gradflow(trace, rows=shown, steps=shown))
    c_rest, w_rest, _ = cpu(lambda: gf.analyze_gradflow(trace, window=(0, T), previous=first))
    print(f"{cell} T={T} H={H}: the {window} rows and steps on screen first {c_first:.2f} s CPU ({w_first:.2f} s wall); "
          f"then the other {T - window} rows and steps {c_rest:.2f} s CPU ({w_rest:.2f} s wall)")  # fmt: skip


def rtrl_vs_bptt(T: int, H: int, I: int = 4, O: int = 4) -> None:
    import numpy as np

    from rnn_tui.engine.rtrl import cost_comparison

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
    ap.add_argument("--cells", default="lstm,rnn,gru")
    ap.add_argument("--long", type=int, default=2000, help="steps of the long trace analysed by window (0: skip)")
    ap.add_argument("--window", type=int, default=60, help="rows analysed first in the long trace")
    args = ap.parse_args()
    how = apply_threads()
    start = time.perf_counter()
    print(f"torch threads={how} OpenBLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}"
          f" load={os.getloadavg()[0]:.2f}")
    for cell in args.cells.split(","):
        whole_analysis(cell, args.steps, args.hidden, args.vocab)
    if args.long:
        long_window("lstm", args.long, args.hidden, args.vocab, args.window)
    for H in (8, 32):
        rtrl_vs_bptt(100, H)
    print(f"benchmark took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
