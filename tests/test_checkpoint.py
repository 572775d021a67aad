"""Run directories: atomic writes that survive a crash, and reading that never runs code."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from rnn_tui.engine import checkpoint as ck
from rnn_tui.engine.checkpoint import (
    CheckpointError,
    append_metrics,
    atomic_write_bytes,
    atomic_write_json,
    load_checkpoint,
    load_model,
    load_tensors,
    read_config,
    read_metrics,
    save_tensors,
)
from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.tasks import get_task
from rnn_tui.engine.train import TrainConfig, Trainer


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    task = get_task("recall", distance=3)
    path = tmp_path_factory.mktemp("runs") / "run"
    config = TrainConfig.from_defaults(task.defaults, steps=10, batch=8, log_every=5)
    Trainer(task, config, cell="gru", hidden=6, run_dir=path).run()
    return path


def copy_run(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).write_bytes(f.read_bytes())
    return dst


# ---- atomic writes -------------------------------------------------------------------------
def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_a_crash_mid_write_leaves_the_old_file_whole(tmp_path, monkeypatch, where):
    path = tmp_path / "model.safetensors"
    save_tensors(path, {"w": torch.ones(3)})
    old = path.read_bytes()

    class Crash(BaseException):
        pass

    def crash(*args, **kwargs):
        raise Crash

    if where == "write":  # the process dies after half the bytes are written
        real_write = os.write

        def half_write(fd, data):
            real_write(fd, bytes(data[: len(data) // 2]))
            raise Crash

        monkeypatch.setattr(ck.os, "write", half_write)
    else:
        monkeypatch.setattr(ck.os, where, crash)
    with pytest.raises(Crash):
        save_tensors(path, {"w": torch.zeros(1000)})
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert torch.equal(load_tensors(path)[0]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_written_files_honour_the_umask(tmp_path):
    atomic_write_json(tmp_path / "config.json", {"a": 1})
    mode = (tmp_path / "config.json").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_json_has_no_nan(tmp_path):
    append_metrics(tmp_path, [{"step": 1, "loss": float("nan"), "metric": float("inf")}])
    assert read_metrics(tmp_path) == [{"step": 1, "loss": None, "metric": None}]


# ---- the run directory ---------------------------------------------------------------------
def test_a_run_directory_holds_weights_config_and_metrics(run_dir):
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["config.json", "metrics.jsonl", "model.safetensors", "trainer.safetensors"]
    info = read_config(run_dir)
    assert info.task == "recall" and info.task_options == {} and info.status == "finished"
    assert info.step == 10 and info.model.cell == "gru" and info.model.hidden_size == 6
    assert info.vocab == get_task("recall", distance=3).vocab
    assert info.train["steps"] == 10 and info.result["metric_name"] == "accuracy"
    metrics = read_metrics(run_dir)
    assert [m["step"] for m in metrics] == [5, 10]
    assert set(metrics[0]) >= {"step", "loss", "grad_norm", "metric", "metric_name"}
    tensors, meta = load_tensors(run_dir / "model.safetensors")
    assert meta["step"] == "10"
    assert sorted(tensors) == sorted(
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias"]
    )


def test_load_model_gives_the_trained_weights(run_dir):
    model, ckpt = load_model(run_dir)
    for name, t in model.tensors().items():
        assert torch.equal(t.detach(), ckpt.tensors[name])
    x = get_task("recall", distance=3).example(0).x[None]
    assert model(x).shape == (1, 8)


def test_a_torn_last_metrics_line_is_skipped(tmp_path, run_dir):
    run = copy_run(run_dir, tmp_path / "r")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 15, "loss": 0.')
    assert [m["step"] for m in read_metrics(run)] == [5, 10]


def test_an_append_after_a_torn_line_cuts_it_off_first(tmp_path):
    """A crash mid-append left half a line: the next append must not glue a record to it (the
    file would then be damaged in its middle, and every later read refused)."""
    append_metrics(tmp_path, [{"step": 1, "loss": 1.0}])
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2, "lo')
    append_metrics(tmp_path, [{"step": 2, "loss": 0.5}])
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2


# ---- bad files -----------------------------------------------------------------------------
def damage(run, name, data: bytes):
    (run / name).write_bytes(data)


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("model.safetensors", b"\x00" * 3, "not a readable safetensors file"),
        ("model.safetensors", b"garbage garbage garbage garbage", "not a readable safetensors file"),
        ("config.json", b"{not json", "not valid JSON"),
        ("config.json", b"[1, 2]", "expected a JSON object"),
        ("config.json", json.dumps({"format": "something-else"}).encode(), "not an rnn-tui run"),
        ("metrics.jsonl", b'{"step": 1}\nnot json\n{"step": 2}\n', "line 2 is not valid JSON"),
    ],
)
def test_damaged_files_get_a_clear_error(tmp_path, run_dir, name, data, words):
    run = copy_run(run_dir, tmp_path / "r")
    damage(run, name, data)
    with pytest.raises(CheckpointError, match=words):
        load_checkpoint(run)


def test_a_truncated_safetensors_file_is_refused(tmp_path, run_dir):
    run = copy_run(run_dir, tmp_path / "r")
    data = (run / "model.safetensors").read_bytes()
    damage(run, "model.safetensors", data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(run)


def test_config_entries_are_checked(tmp_path, run_dir):
    run = copy_run(run_dir, tmp_path / "r")
    doc = json.loads((run / "config.json").read_text())
    doc["model"]["hidden_size"] = "lots"
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="hidden_size"):
        load_checkpoint(run)
    doc["model"]["hidden_size"] = 6
    doc["model"]["evil"] = "__import__('os').system('true')"
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="unknown model setting"):
        load_checkpoint(run)


def test_weights_that_do_not_fit_the_config_name_the_tensor(tmp_path, run_dir):
    run = copy_run(run_dir, tmp_path / "r")
    tensors, _ = load_tensors(run / "model.safetensors")
    tensors["weight_hh_l0"] = torch.zeros(18, 5)
    save_tensors(run / "model.safetensors", tensors)
    with pytest.raises(CheckpointError, match=r"weight_hh_l0 has shape \(18, 5\), the model needs \(18, 6\)"):
        load_model(run)
    tensors["weight_hh_l0"] = torch.zeros(18, 6, dtype=torch.int64)
    save_tensors(run / "model.safetensors", tensors)
    with pytest.raises(CheckpointError, match="int64"):
        load_model(run)


def test_missing_things_are_named(tmp_path, run_dir):
    with pytest.raises(CheckpointError, match="not a run directory"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_checkpoint(tmp_path / "empty")
    run = copy_run(run_dir, tmp_path / "r")
    (run / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_checkpoint(run)
    with pytest.raises(CheckpointError, match="no snapshot at step 7"):
        load_model(run_dir, snapshot=7)


def test_a_pickle_in_place_of_the_weights_is_never_run(tmp_path, run_dir):
    run = copy_run(run_dir, tmp_path / "r")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    damage(run, "model.safetensors", pickle.dumps(Evil()))
    damage(run, "trainer.safetensors", pickle.dumps(Evil()))
    with pytest.raises(EngineError):
        load_checkpoint(run)
    with pytest.raises(EngineError):
        ck.load_trainer_state(run)
    assert not marker.exists()


# ---- the demo models in assets/ ------------------------------------------------------------
DEMOS = ck.Path(__file__).resolve().parents[1] / "assets" / "models"


@pytest.mark.parametrize("name", ["chars-lstm", "chars-gru", "recall-lstm", "recall-gru", "recall-rnn", "recall-indrnn",
                                  "recall-mingru", "recall-minlstm", "reverse-gru", "reverse-gru-dot",
                                  "reverse-gru-additive"])
def test_demo_models_load_and_score_as_documented(name):
    from rnn_tui.engine.train import Trainer

    model, ckpt = load_model(DEMOS / name)
    assert ckpt.info.status == "finished"
    assert f"--out assets/models/{name}`" in (DEMOS / "README.md").read_text()
    for path in (DEMOS / name).rglob("*"):
        assert path.stat().st_size < 1_000_000, path
    task = get_task(ckpt.info.task, **ckpt.info.task_options)
    assert task.vocab == ckpt.info.vocab
    trainer = Trainer(task, TrainConfig.from_dict(ckpt.info.train), model_config=ckpt.info.model, model=model)
    _, metric = trainer.evaluate(batches=2, seed=99)
    if name == "recall-rnn":
        assert metric < 0.3  # the tanh RNN's failure is the point of this demo
    elif name == "reverse-gru":
        assert metric < 0.8  # so is the single context's, reversing 30 symbols
    else:
        assert metric >= 0.9, metric
    if name.startswith("reverse-gru-"):  # the trained attention follows the anti-diagonal
        record = task.trace(model, dtype="float64").attention
        assert record.kind == name.rsplit("-", 1)[1]
        assert record.anti_diagonal_mass + record.diagonal_mass(1) > 0.8


# ---- a save is one commit: faults injected at every system call of a save ------------------
# Every file operation of a save goes through os.open / os.write / os.fsync / os.replace /
# os.unlink (checkpoint.py uses no buffered files), so each call can be made to fail in turn.
# A failure before the commit point must leave the previous save whole; after it, the new one.
import errno  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rnn_tui.engine.checkpoint import (  # noqa: E402
    COMMIT_FILE,
    STAGED_RE,
    TEMP_RE,
    committed_files,
    run_state,
)

FUZZ = max(1, int(os.environ.get("RNN_TUI_FUZZ", "1")))  # scale the loops below (see docs/robustness.md)


class Faults:
    """Make the n-th os-level call of one kind that touches `root` fail with `code`."""

    KINDS = ("open", "write", "fsync", "replace", "unlink")

    def __init__(self, monkeypatch, root: Path, kind: str, nth: int, code: int):
        self.root, self.kind, self.nth, self.code = str(root), kind, nth, code
        self.calls = 0
        self.fired = False
        self.fds: set[int] = set()
        real = {k: getattr(os, k) for k in self.KINDS}
        self.real = real

        def counted(kind, touches):
            def call(*args, **kwargs):
                if touches(*args) and kind == self.kind:
                    self.calls += 1
                    if self.calls == self.nth:
                        self.fired = True
                        raise OSError(self.code, os.strerror(self.code))
                result = real[kind](*args, **kwargs)
                if kind == "open" and touches(*args):
                    self.fds.add(result)
                return result

            return call

        inside = lambda path, *rest: os.fspath(path).startswith(self.root)  # noqa: E731
        mine = lambda fd, *rest: fd in self.fds  # noqa: E731
        for kind, touches in (("open", inside), ("write", mine), ("fsync", mine), ("replace", lambda a, b: inside(b)),
                              ("unlink", inside)):  # fmt: skip
            monkeypatch.setattr(ck.os, kind, counted(kind, touches))


def small_trainer(run: Path, steps: int, **kwargs) -> Trainer:
    task = get_task("recall", distance=2)
    config = TrainConfig.from_defaults(task.defaults, steps=steps, batch=4, log_every=1, eval_batches=0, **kwargs)
    return Trainer(task, config, cell="gru", hidden=3, run_dir=run)


def assert_consistent(run: Path) -> int:
    """The run loads as one save: weights, config and trainer state of one commit, and metrics
    up to its step with the last record at that step (log_every=1); returns the step."""
    ckpt = load_checkpoint(run)
    info = ckpt.info
    committed = committed_files(run)
    _, meta = load_tensors(committed.path(ck.MODEL_FILE))
    assert meta["step"] == str(info.step) and meta["generation"] == str(info.generation)
    steps = [r["step"] for r in ckpt.metrics]
    assert steps == list(range(1, info.step + 1)), (steps, info.step)
    state = ck.load_trainer_state(run)
    if state is not None and state[1].get("generation") == info.generation:
        assert state[1]["step"] == info.step
    return info.step


def leftovers(run: Path) -> list[str]:
    names = [p.name for p in run.iterdir()] + [p.name for p in (run / "snapshots").glob("*")]
    return [n for n in names if TEMP_RE.match(n) or STAGED_RE.match(n) or n == COMMIT_FILE]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A run saved at step 3, and the reference: the same run trained on to step 5 in one go."""
    root = tmp_path_factory.mktemp("commit")
    small_trainer(root / "base", steps=3).run()
    ref = root / "ref"
    shutil.copytree(root / "base", ref)
    Trainer.resume(ref, steps=5).run()
    return root / "base", load_checkpoint(ref).tensors


@pytest.mark.parametrize("kind, code", [("open", errno.ENOSPC), ("write", errno.ENOSPC), ("write", errno.EIO),
                                        ("fsync", errno.EIO), ("replace", errno.EIO), ("unlink", errno.EIO)])  # fmt: skip
def test_a_save_that_fails_at_any_call_leaves_one_whole_save(tmp_path, monkeypatch, base_run, kind, code):
    """Resume a run and train it on from step 3 to 5 (a save at the start, two metrics records,
    a save at the end) with the n-th call of one kind failing, for every n until none fails.
    After each failure the run loads as one save (step 3 or 5, never a mix), and resuming it
    (which removes the remains of the failed save) ends on exactly the reference weights."""
    base, reference = base_run
    n = 0
    while True:
        n += 1
        run = tmp_path / f"r{n}"
        shutil.copytree(base, run)
        trainer = Trainer.resume(run, steps=5)
        faults = Faults(monkeypatch, run, kind, n, code)
        try:
            trainer.run()
        except CheckpointError as e:
            assert os.strerror(code) in str(e) and "\n" not in str(e)
        monkeypatch.undo()
        if not faults.fired:
            break
        step = assert_consistent(run)
        assert step in (3, 5)
        if step < 5 or run_state(run) != "committed" or leftovers(run):
            Trainer.resume(run, steps=5).run()
        assert not leftovers(run), leftovers(run)
        assert assert_consistent(run) == 5
        got = load_checkpoint(run).tensors
        assert all(torch.equal(got[k], reference[k]) for k in reference), f"{kind} call {n}: not the reference weights"
        shutil.rmtree(run)
    assert n > 2  # the loop did reach past the first calls


def test_a_first_save_that_fails_is_an_empty_run_for_every_command(tmp_path, monkeypatch, capsys):
    """The very first save failing at each write: `trace` and `--resume` say no run was saved,
    `train --out` starts there (clearing what the failed save left)."""
    from rnn_tui.cli import main

    n = 0
    while True:
        n += 1
        run = tmp_path / f"first{n}"
        faults = Faults(monkeypatch, run, "write", n, errno.ENOSPC)
        try:
            small_trainer(run, steps=1).run()
        except CheckpointError:
            pass
        monkeypatch.undo()
        if not faults.fired or run_state(run) == "committed":
            break  # past the first save's commit
        assert faults.fired and run_state(run) in ("unfinished", "empty")
        for argv in (["trace", "--checkpoint", run], ["train", "--resume", run]):
            assert main([str(a) for a in argv]) == 2
            err = capsys.readouterr().err
            assert ("holds no saved run" in err or "has no config.json" in err) and err.count("\n") == 1, err
        assert main(["train", "--task", "recall", "--distance", "2", "--hidden", "3", "--steps", "1",
                     "--batch", "4", "--quiet", "--out", str(run)]) == 0  # fmt: skip
        capsys.readouterr()
        assert not leftovers(run) and run_state(run) == "committed"
    assert n > 1


def test_a_save_from_before_commits_with_mismatched_files_is_named(tmp_path, run_dir):
    """A run written by an older rnn-tui that was cut between its weights and its config."""
    run = copy_run(run_dir, tmp_path / "r")
    doc = json.loads((run / "config.json").read_text())
    doc.pop("generation")
    doc["step"] = 0
    (run / "config.json").write_text(json.dumps(doc))
    tensors, _ = load_tensors(run / "model.safetensors")
    save_tensors(run / "model.safetensors", tensors, {"format": ck.FORMAT, "step": "10"})
    with pytest.raises(CheckpointError, match="holds the weights of step 10 but config.json says step 0"):
        load_checkpoint(run)


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    run = tmp_path / "r"
    small_trainer(run, steps=2).run()
    (run / ".model.safetensors.0badf00d.tmp").write_bytes(b"half")
    (run / ".config.json.g000099").write_bytes(b"{")
    (run / "snapshots").mkdir()
    (run / "snapshots" / ".step_000005.safetensors.12345678.tmp").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")
    Trainer.resume(run, steps=3).run()
    assert not leftovers(run) and (run / "notes.txt").read_text() == "mine"


def test_a_commit_left_half_done_is_read_and_then_finished(tmp_path):
    """Killed between the commit and the renames: readers take the staged files; the next
    writer renames them into place."""
    run = tmp_path / "r"
    small_trainer(run, steps=2).run()
    info = read_config(run)
    gen = info.generation + 1
    new = ck.replace(info, step=info.step, status="cancelled", generation=gen)
    (run / f".config.json.g{gen:06d}").write_bytes(ck.json_bytes(new.to_json()))
    (run / COMMIT_FILE).write_bytes(ck.json_bytes({"format": ck.FORMAT, "generation": gen,
                                                  "files": {"config.json": f".config.json.g{gen:06d}"}}))  # fmt: skip
    model_meta = load_tensors(run / "model.safetensors")[1]
    assert read_config(run).status == "cancelled"
    # weights of the previous commit with a config of this one: the stamps differ, and say so
    with pytest.raises(CheckpointError, match="is of save"):
        load_checkpoint(run)
    assert model_meta["generation"] == str(info.generation)
    ck.recover(run)
    assert not (run / COMMIT_FILE).exists() and read_config(run).status == "cancelled"


# ---- kill -9 at random moments ---------------------------------------------------------------
def _state_of(run: Path) -> str:
    return run_state(run)


def test_kill_9_at_random_moments_never_leaves_a_mixed_run(tmp_path):
    """Train in a child process that saves every step, kill -9 it at a random moment, check the
    run loads as one save, and go on (--resume, or --out again when the first save was cut),
    again and again. RNN_TUI_FUZZ=N runs N times as many kills (see docs/robustness.md)."""
    import random

    rng = random.Random(int(os.environ.get("RNN_TUI_FUZZ_SEED", "0")))
    run = tmp_path / "run"
    base = [sys.executable, "-m", "rnn_tui", "train", "--quiet"]
    new = base + ["--task", "recall", "--distance", "2", "--hidden", "3", "--batch", "4", "--steps", "100000",
                  "--log-every", "1", "--save-every", "1", "--out", str(run)]  # fmt: skip
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    kills = 3 * FUZZ
    steps_seen = []
    for k in range(kills):
        state = _state_of(run)
        argv = new if state in ("missing", "unfinished", "empty") else base + ["--resume", str(run), "--steps", "100000"]
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if k % 3 == 0:  # a moment anywhere from the start: before, during or after the first save
            time.sleep(rng.uniform(0.2, 3.0))
        else:  # a moment while it trains and saves: once it has committed a save of its own
            before = read_config(run).generation if state == "committed" else 0
            deadline = time.time() + 60
            while time.time() < deadline and child.poll() is None:
                if _state_of(run) == "committed" and (read_config(run).generation or 0) > before:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.5))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=60)
        assert b"Traceback" not in err, err.decode()
        state = _state_of(run)
        assert state in ("missing", "empty", "unfinished", "committed")
        if state == "committed":
            steps_seen.append(assert_consistent(run))
    assert steps_seen, "no kill landed after the first save"
    # the run goes on from wherever it was cut
    code = subprocess.run(base + ["--resume", str(run), "--steps", str(max(steps_seen) + 2)], env=env,
                          capture_output=True).returncode  # fmt: skip
    assert code == 0 and not leftovers(run)
    assert assert_consistent(run) == max(steps_seen) + 2
