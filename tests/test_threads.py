"""One thread policy for every command: engine/threads.py, applied first thing by `rnn-tui`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnn_tui.engine import threads


@pytest.mark.parametrize("given,count", [(None, threads.DEFAULT), ("3", 3), ("0", threads.DEFAULT), ("two", threads.DEFAULT)])
def test_the_count_is_the_default_unless_rnn_tui_threads_says(monkeypatch, given, count):
    if given is None:
        monkeypatch.delenv("RNN_TUI_THREADS", raising=False)
    else:
        monkeypatch.setenv("RNN_TUI_THREADS", given)
    assert threads.count() == count


@pytest.mark.parametrize("given", [None, "2"])
def test_a_command_runs_torch_and_blas_at_the_policys_count(given):
    """`rnn-tui cells` imports neither torch nor numpy; torch loaded after it runs at the count."""
    env = {k: v for k, v in os.environ.items() if k not in ("RNN_TUI_THREADS", *threads.VARIABLES)}
    if given is not None:
        env["RNN_TUI_THREADS"] = given
    code = ("import contextlib, io, os, sys\nfrom rnn_tui import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    cli.main(['cells'])\n"
            "loaded = 'torch' in sys.modules or 'numpy' in sys.modules\nimport torch\n"
            "print(loaded, torch.get_num_threads(), *(os.environ[v] for v in %r))" % (threads.VARIABLES,))  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=120)
    n = given or str(threads.DEFAULT)
    assert out.stdout.split() == ["False", n] + [n] * len(threads.VARIABLES)
