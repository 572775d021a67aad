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
        real_fdopen = os.fdopen

        def half_writer(fd, mode="r", *a, **k):
            f = real_fdopen(fd, mode, *a, **k)
            real_write = f.write

            def write(data):
                real_write(data[: len(data) // 2])
                raise Crash

            f.write = write
            return f

        monkeypatch.setattr(ck.os, "fdopen", half_writer)
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


@pytest.mark.parametrize("name", ["chars-lstm", "chars-gru", "recall-lstm", "recall-gru", "recall-rnn"])
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
    else:
        assert metric >= 0.9, metric
