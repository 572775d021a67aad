"""A full trace (states, every gate, every per-step dL/dh_t and dL/dc_t) against a fused torch
forward + backward of the same sequence, for every cell, timed in pairs in one run.

    python benchmarks/trace.py [--steps 200] [--hidden 256] [--repeat 21] [--cells rnn,lstm,...] [--device cuda]

Each pair runs the fused torch model (what a plain torch user runs: nn.RNN / nn.LSTM / nn.GRU,
a linear head, cross-entropy, backward) and then the trace, back to back; the ratio is taken per
pair, so load on a shared machine hits both halves of a pair alike, and the median ratio is
reported. Cells torch lacks are paired with the fused module of the same size they extend
(lstm-peephole with nn.LSTM, gru-textbook with nn.GRU, a sigmoid or identity rnn with nn.RNN).
Targets: trace / fused <= 1.5x for rnn, lstm and gru; <= 2.5x for lstm-peephole and gru-textbook.

Both run under the thread policy every `rnn-tui` command uses (`rnn_tui.engine.threads`), unless
--threads says otherwise. Wall time is the figure; CPU time (all threads) is printed beside it.
--device cuda runs both on the GPU (the trace's device path, `rnn-tui trace --device cuda`),
each timed to the end of its GPU work; the targets are the CPU's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CELLS = ("rnn", "lstm", "gru", "lstm-peephole", "gru-textbook")
FUSED = {"rnn": "rnn", "lstm": "lstm", "gru": "gru", "lstm-peephole": "lstm", "gru-textbook": "gru"}
TARGET = {"rnn": 1.5, "lstm": 1.5, "gru": 1.5, "lstm-peephole": 2.5, "gru-textbook": 2.5}


def apply_threads(threads: int) -> str:
    """The thread policy of the commands, or a fixed count, set before numpy and torch load (they
    read it once); returns how it was set, in words."""
    try:
        from rnn_tui.engine import threads as policy
    except ImportError:  # an older checkout, before the policy existed: torch's own default
        policy = None
    if threads:
        os.environ["RNN_TUI_THREADS"] = str(threads)
    if policy is not None:
        policy.apply()
    import torch

    if threads:
        torch.set_num_threads(threads)
        return f"{threads} (--threads)"
    return f"{torch.get_num_threads()} ({'torch' if policy is None else 'rnn-tui'}'s policy)"


def pairs(first, second, repeat: int) -> tuple[list, list]:
    """(wall, cpu) times of each function, run back to back `repeat` times after a warm-up."""
    first(), second()
    out_a, out_b = [], []
    for _ in range(repeat):
        for fn, out in ((first, out_a), (second, out_b)):
            w, c = time.perf_counter(), time.process_time()
            fn()
            out.append((time.perf_counter() - w, time.process_time() - c))
    return out_a, out_b


def bench_cell(cell: str, T: int, H: int, vocab: int, repeat: int, device: str = "cpu") -> dict:
    import torch

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model
    from rnn_tui.engine.trace import run_trace

    shape = dict(input_size=vocab, vocab_size=vocab, hidden_size=H, output_size=vocab)
    model = build_model(ModelConfig(cell=cell, **shape), seed=0)
    fused_model = build_model(ModelConfig(cell=FUSED[cell], **shape), seed=0)
    x = torch.randint(0, vocab, (T,), generator=torch.Generator().manual_seed(0))
    targets = x.roll(-1).tolist()
    target_t = torch.tensor(targets)
    on = {}
    sync = lambda: None  # noqa: E731
    if device != "cpu":  # both on the GPU (an older checkout without --device: the CPU only)
        from rnn_tui.engine.device import resolve

        dev = resolve(device)
        model.to(dev.torch)
        fused_model.to(dev.torch)
        x_f, target_t, on = x.to(dev.torch), target_t.to(dev.torch), {"device": dev}
        sync = torch.cuda.synchronize
    else:
        x_f = x

    def fused() -> None:
        fused_model.zero_grad(set_to_none=True)
        y = fused_model(x_f[None])
        torch.nn.functional.cross_entropy(y[0], target_t).backward()
        sync()

    def trace() -> None:
        run_trace(model, x, targets, **on)

    f, t = pairs(fused, trace, repeat)
    return dict(
        cell=cell,
        fused=statistics.median(w for w, _ in f),
        trace=statistics.median(w for w, _ in t),
        ratio=statistics.median(tw / fw for (fw, _), (tw, _) in zip(f, t)),
        cpu_ratio=statistics.median(tc / max(fc, 1e-9) for (_, fc), (_, tc) in zip(f, t)),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both (default: rnn-tui's policy)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where both run (default cpu)")
    args = ap.parse_args()
    how = apply_threads(args.threads)
    if args.device != "cpu":
        from rnn_tui.engine.device import DeviceError, resolve

        try:
            resolve(args.device)
        except DeviceError as e:
            raise SystemExit(f"benchmarks/trace.py: {e}") from None
    print(f"T={args.steps} H={args.hidden} vocab={args.vocab} torch threads={how} "
          f"OpenBLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')} pairs={args.repeat}"
          f" load={os.getloadavg()[0]:.2f} device={args.device}")  # fmt: skip
    print(f"{'cell':14s} {'fused':>9s} {'trace':>9s} {'ratio':>7s} {'cpu ratio':>9s}  target (fused module)")
    for cell in args.cells.split(","):
        r = bench_cell(cell, args.steps, args.hidden, args.vocab, args.repeat, args.device)
        ok = "OK" if r["ratio"] <= TARGET[cell] else "OVER"
        print(f"{cell:14s} {r['fused'] * 1e3:7.2f}ms {r['trace'] * 1e3:7.2f}ms {r['ratio']:6.2f}x {r['cpu_ratio']:8.2f}x"
              f"  <= {TARGET[cell]}x (nn.{FUSED[cell].upper()}) {ok}")  # fmt: skip


if __name__ == "__main__":
    main()
