"""A new user trying to break rnn-tui: every bad input gets one line on stderr, exit code 2, no
traceback, and nothing the user saved is lost or damaged. One test per bug found that way."""

from __future__ import annotations

import json
import os
import re
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


# ---- scenario values ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, words",
    [
        ('[input]\nvectors = [["1", "2"]]', "list of lists of numbers"),
        ("[input]\nvectors = [[true, false]]", "list of lists of numbers"),
        ('[input]\ntext = "abc"\nvocab = "aabc"', "vocab lists 'a' more than once"),
        ('[input]\ntext = "abc"\nvocab = 5', "vocab must be a string of characters"),
        ("[weights]\nweight_hh_l0 = [[true, 0], [0, 1]]\n[input]\nvectors = [[1, 1]]", "nested lists of numbers"),
    ],
)
def test_scenario_values_of_the_wrong_kind_are_refused(capsys, tmp_path, body, words):
    path = scenario(tmp_path, f'[model]\ncell = "rnn"\nhidden_size = 2\n{body}\n')
    assert words in refused(capsys, "trace", "--scenario", path)


def test_scenario_mse_targets_must_be_finite_numbers(capsys, tmp_path):
    head = '[model]\ncell = "rnn"\nhidden_size = 2\nloss = "mse"\noutput_size = 1\n[input]\nvectors = [[1], [2]]\n'
    assert "finite" in refused(capsys, "trace", "--scenario", scenario(tmp_path, head + "targets = [[inf], [0]]\n"))
    assert "list of 1 numbers" in refused(
        capsys, "trace", "--scenario", scenario(tmp_path, head + "targets = [[true], [0]]\n")
    )


def test_a_scenario_vocab_may_be_a_list_of_characters(capsys, tmp_path):
    path = scenario(tmp_path, '[model]\ncell = "rnn"\nhidden_size = 2\n[input]\ntext = "ab"\nvocab = ["b", "a", "c"]\n')
    code, out, err = run_cli(capsys, "trace", "--scenario", path, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["vocab"] == ["b", "a", "c"] and doc["inputs"][0] == [0, 1, 0]


# ---- run directories ---------------------------------------------------------------------------
@pytest.fixture
def run_copy(tmp_path):
    """A copy of a shipped demo run, free to damage."""
    run = tmp_path / "run"
    shutil.copytree(DEMOS / "recall-lstm", run)
    return run


def _edit_config(run: Path, change) -> None:
    doc = json.loads((run / "config.json").read_text())
    change(doc)
    (run / "config.json").write_text(json.dumps(doc))


def test_a_checkpoint_holding_nan_or_inf_is_refused(capsys, run_copy):
    from safetensors.torch import load_file, save_file

    tensors = load_file(run_copy / "model.safetensors")
    tensors["weight_hh_l0"][0, 0] = float("nan")
    save_file(tensors, run_copy / "model.safetensors")
    err = refused(capsys, "trace", "--checkpoint", run_copy)
    assert "weight_hh_l0 holds NaN or Inf" in err


def test_a_damaged_metrics_file_does_not_stop_a_trace(capsys, run_copy):
    (run_copy / "metrics.jsonl").unlink()
    (run_copy / "metrics.jsonl").mkdir()  # not even a file
    code, out, err = run_cli(capsys, "trace", "--checkpoint", run_copy)
    assert code == 0, err


def test_a_metrics_path_that_is_a_folder_is_a_clear_error(run_copy):
    from rnn_tui.engine.checkpoint import CheckpointError, read_metrics

    (run_copy / "metrics.jsonl").unlink()
    (run_copy / "metrics.jsonl").mkdir()
    with pytest.raises(CheckpointError, match="is a folder"):
        read_metrics(run_copy)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d["task"].update(options={"distance": "far"}), "config.json: recall: distance"),
        (lambda d: d["task"].update(name="nosuch"), "config.json: unknown task 'nosuch'"),
        (lambda d: d["model"].update(hidden_size=65536), "config.json: a lstm with hidden_size 65536"),
    ],
)
def test_a_damaged_config_names_the_file(capsys, run_copy, change, words):
    _edit_config(run_copy, change)
    assert words in refused(capsys, "trace", "--checkpoint", run_copy)


def test_a_config_that_is_not_text_says_it_is_damaged(capsys, run_copy):
    (run_copy / "config.json").write_bytes(bytes(range(128, 256)))
    err = refused(capsys, "trace", "--checkpoint", run_copy)
    assert "is not text" in err and "codec" not in err


# ---- weights files -----------------------------------------------------------------------------
def test_a_malicious_pickle_in_torchs_own_container_names_what_it_asked_for(capsys, tmp_path):
    import os

    import torch

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"weight_ih_l0": Evil()}, tmp_path / "evil.pt")
    err = refused(capsys, "trace", "--weights", tmp_path / "evil.pt")
    assert "refused without running it (it asks to load" in err and "system" in err
    assert "PyTorch 2.6" not in err  # torch's own paragraph is not the story
    assert not marker.exists()


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.mkdir(), "is a folder, not a weights file"),
        (lambda p: p.write_bytes(b""), "is empty or cut short"),
    ],
)
def test_weights_paths_that_are_not_weights(capsys, tmp_path, make, words):
    make(tmp_path / "w.pt")
    assert words in refused(capsys, "trace", "--weights", tmp_path / "w.pt")


def test_a_truncated_torch_file_gets_the_first_sentence_of_the_reason(capsys, tmp_path):
    import torch

    torch.save(torch.nn.LSTM(3, 4).state_dict(), tmp_path / "w.pt")
    data = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "w.pt").write_bytes(data[: len(data) // 3])
    err = refused(capsys, "trace", "--weights", tmp_path / "w.pt")
    assert "not a readable torch file" in err and "high likelihood" not in err


# ---- rnn-tui train: where the run goes --------------------------------------------------------
TINY = ("--task", "recall", "--distance", "3", "--hidden", "4", "--steps", "2", "--batch", "4", "--quiet")


def test_train_never_mixes_into_the_remains_of_another_run(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    err = refused(capsys, "train", *TINY, "--out", out)
    assert "holds metrics.jsonl from another run" in err
    assert (out / "metrics.jsonl").read_text() == '{"step": 1, "loss": 9.0}\n'
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]


def test_train_into_a_folder_of_other_files_keeps_them(capsys, tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "train", *TINY, "--out", out)
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").is_file()


def test_train_out_below_a_file_is_refused_before_training(capsys, tmp_path):
    (tmp_path / "afile").write_text("precious")
    err = refused(capsys, "train", *TINY, "--out", tmp_path / "afile" / "run")
    assert "is a file, not a folder" in err
    assert (tmp_path / "afile").read_text() == "precious"


def test_train_out_in_a_folder_it_cannot_write_is_refused(capsys, tmp_path, monkeypatch):
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    err = refused(capsys, "train", *TINY, "--out", tmp_path / "run")
    assert "permission denied" in err and "choose another --out" in err


def test_a_failed_write_is_one_line_and_leaves_the_saved_run_whole(capsys, tmp_path, monkeypatch):
    import errno
    import os

    run = tmp_path / "run"
    shutil.copytree(DEMOS / "recall-lstm", run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    err = refused(capsys, "train", "--resume", run, "--steps", "310", "--quiet")
    assert "cannot write the run to" in err and "No space left on device" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # no temp files, no damage


def test_a_batch_too_big_for_memory_is_refused_with_its_sizes(capsys, tmp_path):
    err = refused(capsys, "train", "--task", "chars", "--batch", "4096", "--hidden", "1024", "--seq-len", "500",
                  "--out", tmp_path / "r")  # fmt: skip
    assert "GB of memory (batch 4096 x 500 steps, 1 layer(s) of 1024 units)" in err and "--tbptt" in err
    assert not (tmp_path / "r").exists()


def test_resume_names_the_file_when_its_saved_settings_are_damaged(capsys, run_copy):
    _edit_config(run_copy, lambda d: d["train"].update(lr="fast"))
    err = refused(capsys, "train", "--resume", run_copy, "--steps", "310")
    assert "config.json: the saved training settings are damaged" in err and "'fast'" in err


# ---- rnn-tui train: the command ----------------------------------------------------------------
def test_train_prints_paths_as_text_not_markup(capsys, tmp_path):
    out = tmp_path / "w[/]x y"  # Rich markup closing tag, and a space
    code, stdout, err = run_cli(capsys, "train", *TINY, "--out", out)
    assert code == 0, err
    assert f"saved to {out}" in stdout
    assert f"rnn-tui trace --checkpoint '{out}'" in stdout  # quoted for the shell, ready to paste


def test_resume_of_a_finished_run_asks_for_more_steps(capsys, tmp_path):
    run = tmp_path / "r"
    assert run_cli(capsys, "train", *TINY, "--out", run)[0] == 0
    before = (run / "config.json").read_bytes()
    err = refused(capsys, "train", "--resume", run)
    assert "already has 2 steps: give --steps N with N above 2" in err
    assert (run / "config.json").read_bytes() == before


@pytest.mark.parametrize("flag", ["--out", "--resume", "--weights"])
def test_train_refuses_an_empty_path(capsys, flag):
    assert f"{flag} is empty" in refused(capsys, "train", "--task", "recall", flag, "")


def test_train_documents_its_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "0 finished, 1 diverged" in out and "130 cancelled" in out and "2 a bad flag" in out


def test_a_diverging_run_keeps_the_last_good_weights_and_exits_1(capsys, tmp_path):
    from safetensors.torch import load_file

    run = tmp_path / "r"
    code, out, err = run_cli(capsys, "train", "--task", "adding", "--seq-len", "5", "--hidden", "4", "--batch", "4",
                             "--steps", "50", "--lr", "1e30", "--optimizer", "sgd", "--no-clip", "--quiet", "--out", run)  # fmt: skip
    assert code == 1, err
    assert "diverged" in out and "--resume" in out and "Traceback" not in err
    doc = json.loads((run / "config.json").read_text())
    assert doc["status"] == "diverged" and doc["result"]["diverged_at"] >= 1
    assert all(bool(t.isfinite().all()) for t in load_file(run / "model.safetensors").values())


@pytest.mark.parametrize(
    "flags, what",
    [
        # the last update overflows: finite loss and gradient, Inf weights (it was saved "finished")
        (["--task", "recall", "--hidden", "16", "--steps", "2", "--lr", "1e30", "--optimizer", "sgd", "--no-clip",
          "--weight-decay", "1000", "--momentum", "0"], "the weights became"),
        (["--task", "adding", "--seq-len", "5", "--hidden", "4", "--steps", "50", "--lr", "1e30", "--optimizer", "sgd",
          "--no-clip"], "became"),
    ],
)  # fmt: skip
def test_whatever_diverges_the_run_says_at_which_step_and_keeps_good_weights(capsys, tmp_path, flags, what):
    from safetensors.torch import load_file

    from rnn_tui.engine.checkpoint import list_snapshots, load_checkpoint

    run = tmp_path / "r"
    code, out, err = run_cli(capsys, "train", *flags, "--batch", "4", "--snapshot-every", "1", "--quiet", "--out", run)
    assert code == 1, (out, err)
    assert re.search(r"diverged at step \d+: ", out) and what in out, out
    ckpt = load_checkpoint(run)
    at = ckpt.info.result["diverged_at"]
    assert ckpt.info.status == "diverged" and f"diverged at step {at}:" in out
    assert ckpt.info.step in (at - 1, at - 2)  # the weights before the bad step (or, for a bad loss, before those)
    assert f"kept the weights of step {ckpt.info.step}" in out
    assert all(bool(t.isfinite().all()) for t in ckpt.tensors.values())
    for step, path in list_snapshots(run):
        assert step <= ckpt.info.step
        assert all(bool(t.isfinite().all()) for t in load_file(path).values()), path
    assert [r["step"] for r in ckpt.metrics] == sorted(r["step"] for r in ckpt.metrics)
    assert all(r["step"] <= ckpt.info.step for r in ckpt.metrics)
    # the run can be traced and resumed (with a saner rate)
    code, _, err = run_cli(capsys, "trace", "--checkpoint", run)
    assert code == 0, err
    code, out, err = run_cli(capsys, "train", "--resume", run, "--lr", "0.001", "--steps", str(ckpt.info.step + 2),
                             "--quiet")  # fmt: skip
    assert code in (0, 1) and "Traceback" not in err, err


# ---- rnn-tui trace and the explorer's flags ---------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "many"])
def test_trace_clip_is_checked_when_parsed_in_every_format(capsys, value):
    assert "--clip" in refused(capsys, "trace", "--clip", value)  # text format used to ignore it


def test_trace_text_shows_the_tbptt_and_clip_previews(capsys):
    code, out, err = run_cli(capsys, "trace", "--input", "hello there", "--tbptt", "3", "--clip", "0.01")
    assert code == 0, err
    text = " ".join(out.split())
    assert "truncated BPTT, K=3" in text and "cosine" in text
    assert "clip at norm 0.01" in text and "scaled by" in text


def test_trace_keeps_a_scenarios_own_precision(capsys):
    code, out, _ = run_cli(capsys, "trace", "--scenario", SCENARIOS / "identity-rnn.toml", "--format", "json")
    assert json.loads(out)["config"]["dtype"] == "float64"  # the scenario format's default
    code, out, _ = run_cli(capsys, "trace", "--scenario", SCENARIOS / "identity-rnn.toml", "--format", "json",
                           "--dtype", "float32")  # fmt: skip
    assert json.loads(out)["config"]["dtype"] == "float32"


def test_an_unscored_trace_exports_json_without_a_loss(capsys):
    code, out, err = run_cli(capsys, "trace", "--input", "a", "--format", "json")  # one step: no next character
    assert code == 0, err
    doc = json.loads(out)
    assert doc["loss"] is None and doc["targets"] == [None] and "dL_dh_norm" in doc["grad"]
    code, out, _ = run_cli(capsys, "trace", "--input", "a")
    assert "no step is scored" in out
    assert "no step of this sequence is scored" in refused(capsys, "trace", "--input", "a", "--tbptt", "2")


def test_trace_labels_are_not_escaped_twice(capsys):
    code, out, _ = run_cli(capsys, "trace", "--input", "a\x1bb")
    assert "'\\x1b'" in out and "'\\\\x1b'" not in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--scenario", SCENARIOS / "identity-rnn.toml", "--input", "hi"], "scenario file sets the model"),
        (["--scenario", SCENARIOS / "identity-rnn.toml", "--hidden", "3", "--no-bias"], "drop --hidden, --no-bias"),
        (["--checkpoint", DEMOS / "recall-lstm", "--task", "chars"], "brings its own model and task: drop --task"),
        (["--checkpoint", DEMOS / "recall-lstm", "--layers", "2"], "drop --layers"),
        (["--weights", "w.pt", "--bidirectional"], "shape is read from the weights file: drop --bidirectional"),
        (["--task", " "], "--task is empty"),
        (["--input", "x" * 100_001], "at most 100000 can be traced"),
        (["--input", " \t ", "--tokenize", "word"], "no tokens"),
    ],
)
def test_flags_a_model_source_would_ignore_are_refused(capsys, argv, words):
    assert words in refused(capsys, "trace", *argv)  # the explorer reads the same flags (spec_from_args)


def test_a_trace_too_big_for_memory_is_refused_with_its_sizes(capsys):
    err = refused(capsys, "trace", "--input", "ab" * 50_000, "--hidden", "256")
    assert "tracing 100000 steps of 1 layer(s) x 256 lstm units" in err and "GB" in err


def test_gradient_flow_refuses_matrices_too_big_before_allocating():
    from rnn_tui.engine import gradflow
    from rnn_tui.engine.config import ModelConfig

    cfg = ModelConfig(cell="lstm", input_size=2, vocab_size=2, output_size=2, hidden_size=4)
    gradflow.check_flow_size(cfg, 8000, 8000)  # 1 GB: fits
    with pytest.raises(gradflow.GradFlowError, match=r"100000-step trace would take 160.0 GB.*at most about 8192 steps"):
        gradflow.check_flow_size(cfg, 100_000, 100_000)
    gradflow.check_flow_size(cfg, 100_000, 1)  # a pooled head has one row


def test_a_flow_matrix_too_big_is_refused_before_the_trace_runs(capsys):
    import time

    t0 = time.perf_counter()
    err = refused(capsys, "trace", "--input", "ab" * 50_000, "--format", "json")
    assert "gradient-flow matrices of a 100000-step trace" in err and "at most about 8192 steps" in err
    assert time.perf_counter() - t0 < 20  # refused up front (tracing first took 30 s, then asked for 75 GB)


# ---- terminals, pipes, lessons, serve ---------------------------------------------------------
def test_the_explorer_without_a_terminal_says_so(capsys, monkeypatch):
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)  # pytest's stdin is not a terminal
    err = refused(capsys, "--input", "hello")
    assert "the explorer needs a terminal" in err and "rnn-tui trace" in err
    err = refused(capsys, "lesson", "bptt")
    assert "needs a terminal" in err


def test_bad_explorer_flags_win_over_the_missing_terminal(capsys, monkeypatch):
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    assert "unknown theme" in refused(capsys, "--theme", "neon")


def test_the_explorer_without_a_terminal_in_a_real_process(tmp_path):
    import subprocess
    import sys

    with open(tmp_path / "out.txt", "w") as out:
        done = subprocess.run([sys.executable, "-m", "rnn_tui"], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "needs a terminal" in done.stderr
    assert (tmp_path / "out.txt").read_text() == ""  # no escape codes written anywhere


def test_broken_pipe_on_a_json_trace_is_quiet():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "rnn_tui", "trace", "--input", "x" * 3000, "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    head = proc.stdout.read(100)
    proc.stdout.close()  # like `| head -c 100`
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert head.startswith(b'{"schema"') and "Traceback" not in err and "Error" not in err


@pytest.mark.parametrize("width", ["0", "-5", "5"])
def test_lesson_width_must_fit_a_figure(capsys, width):
    assert "--width" in refused(capsys, "lesson", "bptt", "--headless", "--width", width)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--scenario", "nosuch.toml"], "--scenario: no such file"),
        (["--checkpoint", "nosuch"], "no such run directory"),
        (["--scenario", SCENARIOS / "identity-rnn.toml", "--hidden", "3"], "drop --hidden"),
    ],
)
def test_serve_checks_the_explorer_flags_once_not_per_visitor(capsys, extra, words):
    err = refused(capsys, "serve", "--port", "1", "--", *extra)
    assert "bad explorer flags after `--`" in err and words in err


def test_a_terminal_that_cannot_hold_the_labels_gets_escapes_not_a_traceback():
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    run = lambda *argv: subprocess.run([sys.executable, "-m", "rnn_tui", *argv], capture_output=True, env=env,  # noqa: E731
                                       timeout=120)  # fmt: skip
    text = run("trace", "--input", "héllo 中")
    assert text.returncode == 0 and b"Traceback" not in text.stderr
    assert b"'\\xe9'" in text.stdout and b"'\\u2423'" in text.stdout  # é and the space symbol ␣, escaped
    doc = run("trace", "--input", "héllo 中", "--format", "json")
    assert doc.returncode == 0 and json.loads(doc.stdout.decode("ascii"))["tokens"] == list("héllo") + ["␣", "中"]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_train_stopped_by_a_signal_saves_the_run(tmp_path, signame):
    import signal
    import subprocess
    import sys

    run = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnn_tui", "train", *TINY[:-5], "--steps", "1000000", "--batch", "4", "--log-every", "1",
         "--out", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stderr:  # wait for the first logged step
        if line.startswith("step"):
            break
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "cancelled at step" in out and "Traceback" not in err
    doc = json.loads((run / "config.json").read_text())
    assert doc["status"] == "cancelled" and doc["step"] >= 1


def test_step_jacobians_too_wide_are_refused_before_the_trace(capsys):
    err = refused(capsys, "trace", "--hidden", "4096", "--format", "json")
    assert "4096-unit lstm takes 8192 x 8192 step Jacobians" in err and "at most 1024 units" in err


# ---- messages that said the wrong thing, crashes and hangs on hostile files ------------------------
def test_an_empty_text_path_says_it_is_empty(capsys):
    err = refused(capsys, "train", "--task", "chars", "--text", "")
    assert "the text is empty" in err and "'.'" not in err


def test_a_text_just_over_the_limit_gives_its_exact_size(capsys, tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # sparse: 64 MiB + 10 B without writing them
        f.truncate(64 * 2**20 + 10)
    err = refused(capsys, "train", "--task", "chars", "--text", big)
    assert "67,108,874 bytes" in err and "at most 64 MiB" in err


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.update(version="1"), "'version' must be a whole number, got the string '1'"),
        (lambda d: d.update(version=2), "version 2 is newer than this rnn-tui reads"),
        (lambda d: d.update(step=10**30), "'step' must be a whole number from 0 to 10000000"),
        (lambda d: d.update(step=-1), "'step' must be a whole number from 0 to 10000000, got -1"),
    ],
)
def test_config_values_of_the_wrong_kind_are_named_as_what_they_are(capsys, run_copy, change, words):
    doc = json.loads((run_copy / "config.json").read_text())
    change(doc)
    (run_copy / "config.json").write_text(json.dumps(doc))
    assert words in refused(capsys, "trace", "--checkpoint", run_copy)
    assert words in refused(capsys, "train", "--resume", run_copy, "--steps", "400")


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "scenario"])
def test_files_nested_thousands_deep_are_one_line(capsys, run_copy, tmp_path, name):
    deep = "[" * 5000 + "]" * 5000
    if name == "scenario":
        path = scenario(tmp_path, f"x = {deep}\n")
        err = refused(capsys, "trace", "--scenario", path)
    elif name == "config.json":
        text = (run_copy / name).read_text()
        (run_copy / name).write_text(text.replace('"result": {', f'"deep": {deep}, "result": {{', 1))
        err = refused(capsys, "trace", "--checkpoint", run_copy)
    else:
        (run_copy / name).write_text(f'{{"step": 1, "x": {deep}}}\n{{"step": 2}}\n')
        err = refused(capsys, "train", "--resume", run_copy, "--steps", "400")
    assert "nested too deeply" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_scenario_or_text_that_is_a_special_file_is_refused_at_once(capsys, tmp_path, kind):
    path = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    what = "a FIFO" if kind == "fifo" else "a character device"
    assert f"is not a regular file ({what})" in refused(capsys, "trace", "--scenario", path)
    assert f"is not a regular file ({what})" in refused(capsys, "train", "--task", "chars", "--text", path)


def test_out_where_no_file_can_be_made_is_refused_before_training(capsys):
    err = refused(capsys, "train", "--task", "recall", "--steps", "1", "--out", "/proc/x/y")
    assert "cannot write to /proc" in err and "training" not in err


def test_tracing_huge_but_finite_weights_prints_no_warning_and_finite_norms(tmp_path):
    """Weights of 1e35: the norms of their gradients are finite (they overflowed in the squares,
    read Inf and printed a numpy RuntimeWarning)."""
    import subprocess
    import sys

    from safetensors.torch import load_file, save_file

    run = tmp_path / "huge"
    shutil.copytree(DEMOS / "recall-lstm", run)
    tensors = load_file(run / "model.safetensors")
    save_file({k: v * 1e30 for k, v in tensors.items()}, run / "model.safetensors", {"format": "rnn-tui-run", "step": "300"})
    for fmt in ("text", "json"):
        out = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "rnn_tui", "trace", "--checkpoint",
                              str(run), "--format", fmt], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    doc = json.loads(out.stdout)
    norms = doc["grad"]["dL_dh_norm"][0]
    assert all(n is not None and n < float("inf") for n in norms)
