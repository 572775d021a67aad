"""`rnn-tui train` and `rnn-tui tasks` from the command line: runs saved, resumed, imported, and every
bad input answered with one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnn_tui.cli import main
from rnn_tui.engine.checkpoint import read_config, read_metrics
from rnn_tui.engine.tasks import TASKS


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tasks_lists_every_task_with_its_mode(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    for name, info in TASKS.items():
        line = next(l for l in out.splitlines() if l.startswith(name + " "))
        assert info.mode in line
    code, out, _ = run_cli(capsys, "tasks", "--options")
    assert "--distance" in out


def test_train_saves_a_run_and_ends_with_the_metric(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "train", "--task", "recall", "--distance", "4", "--cell", "gru", "--hidden", "8",
        "--steps", "20", "--batch", "8", "--log-every", "10", "--out", str(out_dir),
    )
    assert code == 0, err
    assert "finished" in out and "recall accuracy:" in out and "(chance 0.1250)" in out
    assert f"saved to {out_dir}" in out
    assert "step      10" in err and "training gru 1x8 on recall" in err  # no TTY: plain lines, no bar
    info = read_config(out_dir)
    assert info.step == 20 and info.model.cell == "gru" and info.task_options == {"distance": 4}
    assert info.train["batch"] == 8 and [m["step"] for m in read_metrics(out_dir)] == [10, 20]

    code, out, err = run_cli(capsys, "train", "--resume", str(out_dir), "--steps", "30", "--quiet")
    assert code == 0, err
    assert read_config(out_dir).step == 30 and [m["step"] for m in read_metrics(out_dir)] == [10, 20, 30]
    assert err == ""


def test_a_divergent_run_exits_1_and_says_how_to_go_on(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, "train", "--task", "adding", "--seq-len", "20", "--cell", "rnn", "--activation", "relu",
        "--optimizer", "sgd", "--momentum", "0", "--lr", "1e12", "--no-clip", "--steps", "50",
        "--out", str(tmp_path / "run"), "--quiet",
    )
    assert code == 1
    assert "diverged" in out and "try a lower --lr" in out and "--resume" in out
    assert read_config(tmp_path / "run").status == "diverged"


def test_train_from_imported_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    vocab = 13  # recall's one-hot input: 8 symbols, 4 distractors, the cue
    lstm = torch.nn.LSTM(vocab, 12, num_layers=2)
    save_file({"lstm." + k: v.contiguous() for k, v in lstm.state_dict().items()}, tmp_path / "mine.safetensors")
    code, out, err = run_cli(
        capsys, "train", "--task", "recall", "--distance", "3", "--weights", str(tmp_path / "mine.safetensors"),
        "--steps", "3", "--out", str(tmp_path / "run"), "--quiet",
    )
    assert code == 0, err
    info = read_config(tmp_path / "run")
    assert (info.model.cell, info.model.hidden_size, info.model.num_layers) == ("lstm", 12, 2)

    code, _, err = run_cli(
        capsys, "train", "--task", "recall", "--weights", str(tmp_path / "mine.safetensors"), "--hidden", "32",
        "--out", str(tmp_path / "run2"),
    )
    assert code == 2 and "--hidden does not match the imported weights (2-layer lstm" in err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--task", "nope"], "unknown task 'nope'"),
        (["train"], "--task NAME"),
        (["train", "--task", "recall", "--distance", "abc"], "distance must be a whole number"),
        (["train", "--task", "adding", "--distance", "3"], "has no option 'distance'"),
        (["train", "--task", "recall", "--steps", "0"], "--steps"),
        (["train", "--task", "recall", "--clip", "1", "--no-clip"], "contradict"),
        (["train", "--task", "recall", "--tbptt", "4", "--bidirectional"], "one-direction"),
        (["train", "--task", "recall", "--prefix", "lstm."], "--prefix applies to --weights"),
        (["train", "--resume", "{tmp}/missing"], "not a run directory"),
        (["train", "--task", "recall", "--weights", "{tmp}/junk.pt"], "refused without running it"),
        (["train", "--task", "recall", "--weights", "{tmp}/missing.pt"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, words):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path / "out")) if "--resume" not in argv else run_cli(capsys, *argv)
    assert code == 2
    assert words in one_line(err)


def test_resume_refuses_flags_that_would_change_the_model(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--task", "recall", "--distance", "3", "--steps", "2",
                           "--hidden", "4", "--out", str(tmp_path / "run"), "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "--resume", str(tmp_path / "run"), "--hidden", "8", "--distance", "9")
    assert code == 2 and "drop --hidden, --distance" in one_line(err)
    code, _, err = run_cli(capsys, "train", "--task", "recall", "--out", str(tmp_path / "run"))
    assert code == 2 and "already holds a run" in one_line(err)


def test_command_modules_import_no_torch():
    code = (
        "import sys, rnn_tui.commands.train, rnn_tui.commands.tasks, argparse\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers()\n"
        "rnn_tui.commands.train.add_parser(s); rnn_tui.commands.tasks.add_parser(s)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def installed() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "rnn-tui")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "rnn_tui"]


def test_the_installed_command_trains(tmp_path):
    proc = subprocess.run(
        installed() + ["train", "--task", "adding", "--seq-len", "10", "--cell", "lstm", "--hidden", "8",
                       "--steps", "10", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "adding mse:" in proc.stdout and "(chance 0.1667)" in proc.stdout
    assert json.loads((tmp_path / "run" / "config.json").read_text())["status"] == "finished"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT semantics")
def test_ctrl_c_stops_cleanly_and_saves_a_resumable_run(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        installed() + ["train", "--task", "recall", "--distance", "3", "--hidden", "8", "--steps", "10000000",
                       "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while not (run / "config.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelled at step" in out and "Traceback" not in err
    info = read_config(run)
    assert info.status == "cancelled" and info.step > 0
    assert (run / "trainer.safetensors").exists()


def test_a_terminal_gets_a_progress_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats the streams as a terminal
    monkeypatch.delenv("NO_COLOR", raising=False)
    code, out, err = run_cli(capsys, "train", "--task", "recall", "--distance", "3", "--hidden", "8",
                             "--steps", "30", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert "30/30" in err and "tok/s" in err and "step      25" not in err  # the bar, not log lines
    assert "finished" in out
