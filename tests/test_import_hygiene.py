"""The engine never loads textual; the CLI and the UI never load torch until a model is needed."""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module",
    ["rnn_tui.engine", "rnn_tui.engine.trace", "rnn_tui.engine.model", "rnn_tui.engine.scenario",
     "rnn_tui.engine.subject", "rnn_tui.engine.export"],
)
def test_engine_never_loads_textual(module):
    mods = loaded_after(f"import {module}")
    assert not {m for m in mods if m == "textual" or m.startswith("textual.")}


@pytest.mark.parametrize("statement", ["import rnn_tui.lessons",
                                       "from rnn_tui.lessons import get_lesson; get_lesson('bptt')"])
def test_lessons_load_no_textual_and_no_torch_until_run(statement):
    """The lessons sit above the engine and below the UI: a lesson is text and a build function."""
    mods = loaded_after(statement)
    assert not {m for m in mods if m == "textual" or m.startswith("textual.")}
    assert "torch" not in mods


@pytest.mark.parametrize(
    "statement",
    ["import rnn_tui.cli", "import rnn_tui.cli; rnn_tui.cli.build_parser()",
     "import rnn_tui.engine.records, rnn_tui.engine.config, rnn_tui.engine.equations"],
)
def test_cli_and_records_do_not_load_torch(statement):
    assert "torch" not in loaded_after(statement)


def test_the_explorer_draws_its_first_frame_without_numpy():
    """Everything the explorer imports before its first frame (the command line, the launcher, the
    app, its main screen and the first tab's pane) leaves numpy for the worker that builds the
    model: numpy costs ~0.15 s of a 0.6 s first frame, and torch brings it anyway."""
    mods = loaded_after("import rnn_tui.cli; rnn_tui.cli.build_parser()\n"
                        "from rnn_tui.ui.launch import check, launch, with_default_demo\n"
                        "from rnn_tui.ui.app import ExplorerApp\n"
                        "from rnn_tui.ui.panes import PANES; PANES[0].load()")
    assert "numpy" not in mods
    assert "torch" not in mods
