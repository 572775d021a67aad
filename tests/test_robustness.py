"""A new user trying to break rnn-tui: every bad input gets one line on stderr, exit code 2, no
traceback, and nothing the user saved is lost or damaged. One test per bug found that way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rnn_tui.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "assets" / "scenarios"
DEMOS = ROOT / "assets" / "models"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv) -> str:
    """Run the command, check it failed the documented way, and return its one line."""
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def scenario(tmp_path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


# ---- model sizes and types ---------------------------------------------------------------------
def test_a_huge_model_is_refused_before_anything_is_allocated(capsys, tmp_path):
    path = scenario(tmp_path, '[model]\ncell = "lstm"\ninput_size = 2\nhidden_size = 65536\n[input]\nvectors = [[1, 1]]\n')
    err = refused(capsys, "trace", "--scenario", path)
    assert "hidden_size 65536" in err and "at most 100,000,000" in err and "smaller hidden size" in err


def test_the_parameter_count_is_read_off_the_sizes():
    import itertools

    from rnn_tui.engine.config import ModelConfig
    from rnn_tui.engine.model import build_model

    for cell, bi, bias, mode in itertools.product(
        ("rnn", "lstm", "lstm-peephole", "gru"), (False, True), (False, True), ("onehot", "embedding", "vectors")
    ):
        vocab = {"onehot": 5, "embedding": 11, "vectors": 0}[mode]
        cfg = ModelConfig(cell=cell, bidirectional=bi, bias=bias, num_layers=2, input_size=5, hidden_size=3,
                          output_size=4, input_mode=mode, vocab_size=vocab)  # fmt: skip
        assert cfg.num_parameters == build_model(cfg).num_parameters()


@pytest.mark.parametrize(
    "setting, words",
    [
        ('bidirectional = "no"', "bidirectional must be true or false"),
        ("bias = 1", "bias must be true or false"),
        ("hidden_size = true", "hidden_size must be a whole number"),
    ],
)
def test_model_settings_of_the_wrong_type_are_refused(capsys, tmp_path, setting, words):
    path = scenario(tmp_path, f'[model]\ncell = "lstm"\n{setting}\n[input]\nvectors = [[1, 1]]\n')
    assert words in refused(capsys, "trace", "--scenario", path)
