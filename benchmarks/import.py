"""Opening a person's own model: rnn-tui's import against plain torch, side by side.

    python benchmarks/import.py [--vocab 10000] [--size 650] [--layers 2] [--rounds 5]

The model is the PyTorch examples' word language model at the size of its PTB "medium" run
(10000 words, 650 units, 2 LSTM layers: 20 million weights, 80 MB), saved with torch.save and as
safetensors, plus an optimizer's worth of extra tensors that nothing uses (a training checkpoint).
Each round times, in one process and alternately, so a busy machine slows both alike:

    plain       torch.load(weights_only=True) + module.load_state_dict (what a torch user runs)
    rnn-tui     load_user_weights (checks, roles by shape and name) + build_with_weights

and prints the median CPU seconds of each and the ratio (target: rnn-tui / plain <= 1.5x for .pt;
for safetensors rnn-tui reads only the tensors it uses, so the unused optimizer state costs nothing).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rnn_tui.engine.weights import build_with_weights, load_user_weights


class WordLM(nn.Module):
    def __init__(self, V, size, layers):
        super().__init__()
        self.encoder = nn.Embedding(V, size)
        self.rnn = nn.LSTM(size, size, layers)
        self.decoder = nn.Linear(size, V)


def cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--size", type=int, default=650)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    model = WordLM(args.vocab, args.size, args.layers)
    state = dict(model.state_dict())
    # an optimizer state as torch numbers it (by parameter index), unused by both
    extra = {f"optimizer.state.{i}.exp_avg": torch.zeros_like(v) for i, v in enumerate(state.values())}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {".pt": Path(tmp) / "model.pt", ".safetensors": Path(tmp) / "model.safetensors"}
        torch.save({"model": state, "optimizer": extra}, paths[".pt"])
        save_file({**{k: v.contiguous() for k, v in state.items()}, **extra}, paths[".safetensors"])
        n = sum(v.numel() for v in state.values())
        print(f"word LM: {args.vocab} words, {args.size} units, {args.layers} layers: {n:,} weights "
              f"(+ {n:,} unused), {paths['.pt'].stat().st_size / 2**20:.0f} MiB per file")

        def plain(suffix):
            def run():
                fresh = WordLM(args.vocab, args.size, args.layers)
                if suffix == ".pt":
                    loaded = torch.load(paths[suffix], map_location="cpu", weights_only=True)["model"]
                else:
                    loaded = {k: v for k, v in load_file(paths[suffix]).items() if not k.startswith("optimizer.")}
                fresh.load_state_dict(loaded, strict=True)

            return run

        def ours(suffix):
            def run():
                shape, tensors = load_user_weights(paths[suffix])
                build_with_weights(shape, tensors, shape.model_config(input_mode="onehot"))

            return run

        for suffix in (".pt", ".safetensors"):
            times = {"plain": [], "rnn-tui": []}
            for _ in range(args.rounds):
                times["plain"].append(cpu(plain(suffix)))
                times["rnn-tui"].append(cpu(ours(suffix)))
            a, b = statistics.median(times["plain"]), statistics.median(times["rnn-tui"])
            print(f"{suffix:13s} plain {a:.3f} s   rnn-tui {b:.3f} s   ratio {b / a:.2f}x  (median CPU of {args.rounds})")


if __name__ == "__main__":
    main()
