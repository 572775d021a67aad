"""The `rnn-tui` command: trace export, cells, and clear one-line errors with exit code 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_tui.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_trace_json_has_every_documented_key(capsys):
    code, out, err = run_cli(capsys, "trace", "--cell", "lstm", "--hidden", "5", "--input", "abcab", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    for key in ("schema", "config", "tokens", "inputs", "params", "layers", "outputs", "targets",
                "step_losses", "loss", "grad"):
        assert key in doc
    assert doc["tokens"] == list("abcab")
    assert doc["targets"] == [1, 2, 0, 1, None]  # next characters over the vocabulary a, b, c
    assert len(doc["inputs"]) == 5 and len(doc["inputs"][0]) == 3
    assert doc["config"]["cell"] == "lstm" and doc["config"]["hidden_size"] == 5
    assert set(doc["layers"][0]["gates"]) == {"i", "f", "g", "o"}
    assert len(doc["grad"]["dL_dh_norm"][0]) == 5
    assert doc["step_losses"][-1] is None
    assert sorted(doc["params"]) == ["bias_hh_l0", "bias_ih_l0", "head.bias", "head.weight",
                                     "weight_hh_l0", "weight_ih_l0"]
    assert math.isclose(doc["loss"], sum(doc["step_losses"][:-1]) / 4, rel_tol=1e-6)


def test_trace_json_layers_forward_before_reverse(capsys):
    code, out, _ = run_cli(capsys, "trace", "--cell", "gru", "--layers", "2", "--bidirectional",
                           "--input", "xyz", "--format", "json", "--dtype", "float64")
    doc = json.loads(out)
    assert [(e["layer"], e["direction"]) for e in doc["layers"]] == [
        (0, "forward"), (0, "reverse"), (1, "forward"), (1, "reverse")]
    assert doc["layers"][0]["c"] is None
    assert "weight_ih_l1_reverse" in doc["params"]
    assert doc["config"]["dtype"] == "float64"


def test_trace_of_scenario_json_reproduces_hand_numbers(capsys):
    code, out, _ = run_cli(capsys, "trace", "--scenario", str(ROOT / "assets/scenarios/identity-rnn.toml"),
                           "--format", "json")
    doc = json.loads(out)
    assert doc["layers"][0]["h"] == [[2, 2], [6, 6], [16, 16]]
    assert doc["inputs"] == [[1, 1], [1, 1], [2, 2]]


def test_trace_text_and_cells(capsys):
    code, out, _ = run_cli(capsys, "trace", "--cell", "rnn", "--activation", "relu", "--input", "hey")
    assert code == 0 and "rnn (relu)" in out and "|dL/dh|" in out
    code, out, _ = run_cli(capsys, "cells")
    assert code == 0
    for name in ("rnn", "lstm", "lstm-peephole", "gru", "gru-textbook", "c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t"):
        assert name in out


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["trace", "--hidden", "zero"], "--hidden: expected a whole number"),
        (["trace", "--hidden", "0"], "must be from 1"),
        (["trace", "--cell", "transformer"], "invalid choice"),
        (["trace", "--bogus"], "unrecognized arguments"),
        (["trace", "--input", ""], "input text is empty"),
        (["trace", "--scenario", "/nonexistent/x.toml"], "does not exist"),
        (["trace", "--cell", "lstm", "--activation", "relu"], "--activation applies to the rnn and indrnn cells only"),
        (["trace", "--format", "xml"], "invalid choice"),
        (["nosuchcommand"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(capsys, argv, expected):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_installed_command_runs_and_fails_cleanly():
    ok = subprocess.run([sys.executable, "-m", "rnn_tui", "trace", "--input", "ab", "--format", "json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout)["tokens"] == ["a", "b"]
    bad = subprocess.run([sys.executable, "-m", "rnn_tui", "trace", "--layers", "-1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_trace_of_an_encoder_decoder_covers_both_halves(capsys):
    code, out, err = run_cli(capsys, "trace", "--task", "reverse", "--format", "json", "--dtype", "float64")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["mode"] == "encdec"
    enc, dec = doc["encoder"], doc["decoder"]
    assert len(enc["tokens"]) == len(enc["grad"]["dL_dh_norm"][0])
    assert dec["loss"] > 0 and len(doc["predicted"]) == len(dec["tokens"])
    # the encoder learns only through the decoder: its last step receives the decoder's gradient
    assert enc["grad"]["dL_dh_norm"][0][-1] > 0
