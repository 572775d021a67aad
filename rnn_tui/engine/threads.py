"""How many threads torch and the BLAS libraries use: one policy for every rnn-tui command.

One thread, unless RNN_TUI_THREADS=N says otherwise. rnn-tui's work is many small products in
time loops (a trace, a training step of a small net, the gradient-flow sweep), where a second
thread only adds hand-offs; on a machine that is busy with other work, threads that wait for a
core make it several times slower. Measured with `benchmarks/threads.py` on a 2-core machine
shared with other work: at 2 torch threads a trace took 1.95x and 30 training steps 6.0x as long
as at 1 thread; the gradient-flow analysis took the same CPU time either way.

`set_environment()` runs first thing in `rnn-tui` (before numpy or torch is imported, which
read these variables once); `apply()` also sets torch's count when torch is already loaded.
"""

from __future__ import annotations

import os
import sys

DEFAULT = 1  # threads, as measured above
VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # torch (OpenMP, MKL), numpy (OpenBLAS)


def count() -> int:
    """The policy's thread count: RNN_TUI_THREADS when it is a whole number from 1, else DEFAULT."""
    given = os.environ.get("RNN_TUI_THREADS", "").strip()
    return int(given) if given.isdigit() and int(given) >= 1 else DEFAULT


def set_environment() -> None:
    """The thread variables torch and numpy read when they load (RNN_TUI_THREADS is the one knob:
    these are set from it, whatever they were)."""
    n = str(count())
    for name in VARIABLES:
        os.environ[name] = n


def apply() -> None:
    """The policy, now: the variables, and torch's own count when torch is already imported."""
    set_environment()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count())
