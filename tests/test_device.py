"""`--device cpu|cuda|auto`: where torch computes, for train, trace and the explorer.

Without a GPU the device plumbing runs against fakes: torch.cuda says it is there and "cuda"
maps to the CPU (every device path runs, its numbers compared with the CPU path's in float64),
or to the meta device, where a CPU tensor meeting a device tensor raises, so a tensor left
behind on the CPU fails the test. Where a GPU exists, the last tests compare it with the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_tui.cli import main
from rnn_tui.engine import device as devices
from rnn_tui.engine import trace as trace_module
from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.device import CPU, Device, DeviceError, resolve
from rnn_tui.engine.model import build_model
from rnn_tui.engine.subject import Spec, open_subject, trace_subject
from rnn_tui.engine.tasks import get_task
from rnn_tui.engine.trace import Intervention, run_trace
from rnn_tui.engine.train import TrainConfig, Trainer

CUDA = torch.cuda.is_available()
CELL_ACTS = [("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid"), ("rnn", "identity"), ("lstm", "tanh"),
             ("lstm-peephole", "tanh"), ("gru", "tanh"), ("gru-textbook", "tanh")]  # fmt: skip
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def fake_cuda(monkeypatch, target: str = "cpu") -> Device:
    """torch.cuda says a GPU is there, and the device "cuda" names is `target`."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(devices, "torch_device", lambda kind: torch.device(target if kind == "cuda" else kind))
    monkeypatch.setattr(devices, "ieee_float32", lambda: None)  # the real one is checked on a GPU below
    return resolve("cuda")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- choosing --------------------------------------------------------------------------------------
def test_cpu_is_the_default_and_says_nothing():
    assert resolve(None) == resolve("cpu") == CPU
    assert not CPU.accelerated and CPU.note() is None and CPU.torch == torch.device("cpu")


def test_cuda_absent_is_one_line_naming_the_way_out(no_cuda):
    with pytest.raises(DeviceError) as e:
        resolve("cuda")
    message = str(e.value)
    assert "\n" not in message and "CUDA is not available" in message and "--device cpu" in message


def test_auto_takes_the_cpu_without_cuda_and_says_why(no_cuda):
    d = resolve("auto")
    assert d.kind == "cpu" and d.asked == "auto" and not d.accelerated
    assert d.note().startswith("--device auto: computing on cpu (") and d.why in d.note()


def test_auto_takes_cuda_where_it_is_there(monkeypatch):
    d = fake_cuda(monkeypatch)
    auto = resolve("auto")
    assert auto.kind == d.kind == "cuda" and auto.accelerated
    assert auto.note() == "--device auto: computing on cuda (Fake GPU)"
    assert d.note() == "computing on cuda (Fake GPU)"


def test_on_cuda_float32_is_ieee_float32():
    """No TF32 in cuDNN's RNN kernels (torch's default allows it) or in matrix products."""
    rnn, matmul = torch.backends.cudnn.rnn, torch.backends.cuda.matmul
    before = rnn.fp32_precision, matmul.fp32_precision
    try:
        devices.ieee_float32()
        assert (rnn.fp32_precision, matmul.fp32_precision) == ("ieee", "ieee")
    finally:
        rnn.fp32_precision, matmul.fp32_precision = before


def test_an_unknown_device_is_refused():
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve("gpu")


# ---- the command line: cuda absent is one line and exit 2 everywhere -----------------------------------
@pytest.mark.parametrize("argv", [
    ["trace", "--input", "hello", "--device", "cuda"],
    ["--input", "hello", "--device", "cuda"],  # the explorer: before it asks for a terminal
    ["--device", "cuda"],  # the explorer on its demo model
])  # fmt: skip
def test_cuda_absent_ends_trace_and_the_explorer_in_one_line(no_cuda, capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--device cuda: CUDA is not available" in err and "Traceback" not in err


def test_cuda_absent_ends_train_before_anything_is_written(no_cuda, capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--task", "recall", "--steps", "2", "--device", "cuda", "--out", str(tmp_path / "run"))
    assert code == 2 and err.count("\n") == 1 and "CUDA is not available" in err
    assert not (tmp_path / "run").exists()


def test_device_cpu_traces_exactly_as_before(capsys):
    argv = ["trace", "--cell", "gru", "--hidden", "5", "--layers", "2", "--input", "abcabd", "--format", "json"]
    code, plain, _ = run_cli(capsys, *argv)
    code_cpu, on_cpu, err = run_cli(capsys, *argv, "--device", "cpu")
    assert code == code_cpu == 0 and plain == on_cpu and err == ""
    assert json.loads(plain)["loss"] > 0


def test_device_auto_without_cuda_traces_on_the_cpu_and_says_so(no_cuda, capsys):
    argv = ["trace", "--cell", "lstm", "--hidden", "4", "--input", "abcab", "--format", "json"]
    _, plain, _ = run_cli(capsys, *argv)
    code, auto, err = run_cli(capsys, *argv, "--device", "auto")
    assert code == 0 and auto == plain
    assert err.startswith("note: --device auto: computing on cpu (") and err.count("\n") == 1


def test_train_says_which_device_auto_took(no_cuda, capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", "--task", "recall", "--steps", "3", "--log-every", "1", "--device", "auto",
                             "--out", str(tmp_path / "run"))
    assert code == 0
    assert "note: --device auto: computing on cpu (" in err and ", on cpu" in err  # the note and the header
    assert "·  on cpu" in out  # the summary


# ---- the trace's device paths, with "cuda" on the CPU: the same numbers ---------------------------------
@st.composite
def configs(draw):
    cell, act = draw(st.sampled_from(CELL_ACTS))
    mode = draw(st.sampled_from(["vectors", "onehot", "embedding"]))
    V = draw(st.integers(2, 5))
    return ModelConfig(
        cell=cell, activation=act, input_size=draw(st.integers(1, 4)) if mode != "onehot" else V,
        hidden_size=draw(st.integers(1, 5)), num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()), output_size=draw(st.integers(1, 4)), input_mode=mode,
        vocab_size=0 if mode == "vectors" else V, head=draw(st.sampled_from(["step", "step", "last", "mean"])),
        loss=draw(st.sampled_from(["ce", "mse"])), head_bias=draw(st.booleans()),
    )  # fmt: skip


def sequence(cfg: ModelConfig, T: int, rng):
    if cfg.input_mode == "vectors":
        x = rng.normal(size=(T, cfg.input_size))
    else:
        x = rng.integers(0, cfg.vocab_size, T)
    rows = T if cfg.head == "step" else 1
    targets = []
    for _ in range(rows):
        if rng.random() < 0.25:
            targets.append(None)
        elif cfg.loss == "ce":
            targets.append(int(rng.integers(cfg.output_size)))
        else:
            targets.append(rng.normal(size=cfg.output_size).tolist())
    return x, targets


def assert_same_trace(a, b, rtol, atol):
    assert b.extras["device"] == "cuda" and a.extras["device"] == "cpu"
    assert a.dtype == b.dtype and a.targets == b.targets
    tol = dict(rtol=rtol, atol=atol)
    np.testing.assert_allclose(b.loss, a.loss, **tol)
    np.testing.assert_allclose(b.outputs, a.outputs, **tol)
    np.testing.assert_allclose(b.step_losses, a.step_losses, **tol)  # nan where unscored, in both
    for la, lb in zip(a.layers, b.layers, strict=True):
        for name in ("h", "c", "dL_dh", "dL_dc", "dL_dpre", "h0", "c0"):
            u, v = getattr(la, name), getattr(lb, name)
            assert (u is None) == (v is None), name
            if u is not None:
                assert v.dtype == u.dtype, name
                np.testing.assert_allclose(v, u, **tol, err_msg=f"{la.name} {name}")
        for g in la.gates:
            np.testing.assert_allclose(lb.gates[g], la.gates[g], **tol, err_msg=f"{la.name} gate {g}")
            np.testing.assert_allclose(lb.preacts[g], la.preacts[g], **tol, err_msg=f"{la.name} pre {g}")
    for key in ("dL_dh0", "dL_dc0"):
        if a.extras[key] is None:
            assert b.extras[key] is None
        else:
            np.testing.assert_allclose(b.extras[key], a.extras[key], **tol)


@SETTINGS
@given(cfg=configs(), T=st.integers(1, 7), seed=st.integers(0, 10_000), held=st.booleans(), edges=st.booleans())
def test_a_trace_on_the_device_paths_equals_the_cpus_float64(monkeypatch, cfg, T, seed, held, edges):
    """The fused kernels forward and backward (rnn tanh/relu, lstm, gru), the readable steps with
    autograd (the other cells, and any cell with values held), the head and loss in torch:
    every record the CPU's to 1e-10."""
    cuda = fake_cuda(monkeypatch)
    rng = np.random.default_rng(seed)
    model = build_model(cfg, seed=seed).double()
    with torch.no_grad():  # larger weights than the default init, so saturation and growth appear
        for p in model.tensors().values():
            p.mul_(2.0)
    x, targets = sequence(cfg, T, rng)
    LD, H = cfg.num_layers * cfg.num_directions, cfg.hidden_size
    kwargs = {}
    if edges:  # a state coming in and a gradient arriving on the final state (an encoder-decoder's halves)
        kwargs = dict(initial_state=(torch.from_numpy(rng.normal(size=(LD, H))), torch.from_numpy(rng.normal(size=(LD, H)))),
                      final_state_grad=(torch.from_numpy(rng.normal(size=(LD, H))), torch.from_numpy(rng.normal(size=(LD, H)))))
    if held:
        kwargs["interventions"] = [Intervention("state", "h", 0.5, unit=int(rng.integers(H)), start=int(rng.integers(T)))]
    on_cpu = run_trace(model, x, targets, dtype="float64", **kwargs)
    on_device = run_trace(model, x, targets, dtype="float64", device=cuda, **kwargs)
    assert_same_trace(on_cpu, on_device, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell,act", CELL_ACTS)
def test_a_float32_trace_on_the_device_paths_is_the_cpus_within_float32(monkeypatch, cell, act):
    cuda = fake_cuda(monkeypatch)
    cfg = ModelConfig(cell=cell, activation=act, input_size=6, hidden_size=16, num_layers=2, bidirectional=True,
                      output_size=6, input_mode="onehot", vocab_size=6)  # fmt: skip
    model = build_model(cfg, seed=3)
    x, targets = sequence(cfg, 40, np.random.default_rng(3))
    assert_same_trace(run_trace(model, x, targets), run_trace(model, x, targets, device=cuda), rtol=2e-4, atol=2e-6)


def test_a_diverged_model_traces_its_nan_on_the_device_as_on_the_cpu(monkeypatch):
    cuda = fake_cuda(monkeypatch)
    cfg = ModelConfig(cell="lstm", input_size=3, hidden_size=4, output_size=3, input_mode="onehot", vocab_size=3)
    model = build_model(cfg, seed=0)
    with torch.no_grad():
        model.core.weight_hh_l0[0, 0] = float("nan")
    a = run_trace(model, [0, 1, 2], [1, 2, None])
    b = run_trace(model, [0, 1, 2], [1, 2, None], device=cuda)
    assert np.isnan(a.loss) and np.isnan(b.loss)
    np.testing.assert_array_equal(np.isnan(a.layers[0].h), np.isnan(b.layers[0].h))


# ---- no tensor left behind: "cuda" on the meta device, where mixing devices raises -------------------
def meta_host(monkeypatch) -> list:
    """Every tensor the trace brings back to the host must come from the device; stand-ins of
    its shape go on (meta tensors hold no numbers)."""
    seen = []

    def host(t):
        assert t.device.type == "meta", f"a {tuple(t.shape)} tensor came back from {t.device}, not the device"
        seen.append(tuple(t.shape))
        return np.zeros(tuple(t.shape), dtype=str(t.dtype).removeprefix("torch."))

    monkeypatch.setattr(trace_module, "_host", host)
    return seen


@pytest.mark.parametrize("cell,act,held", [("lstm", "tanh", False), ("gru", "tanh", False), ("rnn", "relu", False),
                                           ("lstm-peephole", "tanh", False), ("gru-textbook", "tanh", False),
                                           ("rnn", "tanh", True), ("lstm", "tanh", True)])  # fmt: skip
def test_the_trace_does_its_torch_work_on_the_device(monkeypatch, cell, act, held):
    cuda = fake_cuda(monkeypatch, "meta")
    assert cuda.torch.type == "meta"
    seen = meta_host(monkeypatch)
    cfg = ModelConfig(cell=cell, activation=act, input_size=3, hidden_size=4, num_layers=2, bidirectional=True,
                      output_size=3, input_mode="embedding", vocab_size=5, head="step")  # fmt: skip
    model = build_model(cfg, seed=0)
    LD = 4
    ivs = [Intervention("gate" if cell != "rnn" else "state", "f" if cell == "lstm" else "h", 0.0, unit=1, start=1)] if held else []
    tr = run_trace(model, [0, 3, 1, 4], [1, None, 2, 0], device=cuda, interventions=ivs,
                   initial_state=(torch.zeros(LD, 4), torch.zeros(LD, 4)),
                   final_state_grad=(torch.ones(LD, 4), torch.ones(LD, 4)))  # fmt: skip
    assert tr.extras["device"] == "cuda" and len(tr.layers) == LD and seen


def test_training_keeps_the_model_batches_and_optimizer_state_on_the_device(monkeypatch, tmp_path):
    cuda = fake_cuda(monkeypatch, "meta")
    task = get_task("chars")
    trainer = Trainer(task, TrainConfig.from_defaults(task.defaults, steps=4, batch=3), cell="gru", device=cuda)
    assert trainer.device == cuda and all(p.device.type == "meta" for p in trainer.model.parameters())
    for _ in range(2):
        out, batch, _ = trainer._forward()
        assert out.device.type == "meta" and batch.x.device.type == "meta" and batch.y.device.type == "meta"
        trainer.optimizer.zero_grad()
        trainer.task.loss(out, batch).backward()
        trainer.optimizer.step()
    opt = [v for entry in trainer.optimizer.state.values() for k, v in entry.items() if k != "step"]
    assert opt and all(v.device.type == "meta" for v in opt)
    assert all(p.grad.device.type == "meta" for p in trainer.params)


def test_a_resumed_run_goes_on_on_the_device(monkeypatch, tmp_path):
    """Saved on the CPU, resumed on the device: weights, optimizer state and a half-read batch go there."""
    task = get_task("chars")
    run = tmp_path / "run"
    first = Trainer(task, TrainConfig.from_defaults(task.defaults, steps=3, batch=2, tbptt=7, log_every=1),
                    cell="lstm", run_dir=run)  # fmt: skip
    first.run()
    cuda = fake_cuda(monkeypatch, "meta")
    again = Trainer.resume(run, steps=6, device=cuda)
    assert again.step == 3 and again._pending is not None
    assert all(p.device.type == "meta" for p in again.model.parameters())
    assert again._pending["batch"].x.device.type == "meta"
    assert all(t.device.type == "meta" for t in again._pending["state"])
    opt = [v for entry in again.optimizer.state.values() for k, v in entry.items() if k != "step"]
    assert opt and all(v.device.type == "meta" for v in opt)


# ---- training with "cuda" on the CPU: the same run ------------------------------------------------------
@pytest.mark.parametrize("tbptt", [None, 6])
def test_a_run_on_the_device_path_is_the_cpu_run(monkeypatch, tmp_path, tbptt):
    task = get_task("chars")
    config = TrainConfig.from_defaults(task.defaults, steps=12, batch=4, tbptt=tbptt, log_every=2, snapshot_every=6)
    cpu = Trainer(task, config, cell="lstm").run()
    cuda = fake_cuda(monkeypatch)
    trainer = Trainer(task, config, cell="lstm", device=cuda, run_dir=tmp_path / "run")
    assert trainer.device.accelerated
    result = trainer.run()
    assert [r["loss"] for r in result.history] == [r["loss"] for r in cpu.history]
    assert result.metric == cpu.metric


def test_a_run_trained_on_the_device_opens_and_traces_on_the_cpu(monkeypatch, tmp_path):
    from safetensors import safe_open

    from rnn_tui.engine.checkpoint import list_snapshots, load_model

    cuda = fake_cuda(monkeypatch)
    task = get_task("recall")
    run = tmp_path / "run"
    Trainer(task, TrainConfig.from_defaults(task.defaults, steps=4, snapshot_every=2), cell="gru", device=cuda,
            run_dir=run).run()  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # now a machine without one
    for path in [run / "model.safetensors", run / "trainer.safetensors", *(p for _, p in list_snapshots(run))]:
        with safe_open(str(path), framework="pt") as f:  # every tensor saved is a plain CPU tensor
            assert all(f.get_tensor(k).device.type == "cpu" for k in f.keys())
    model, _ = load_model(run)
    assert all(p.device.type == "cpu" for p in model.parameters())
    subject = open_subject(Spec(checkpoint=str(run)))
    assert subject.device == CPU and trace_subject(subject).extras["device"] == "cpu"


# ---- the subject, the explorer's source and its lab -----------------------------------------------------
def test_the_subject_goes_to_the_device_and_says_so(monkeypatch):
    cuda = fake_cuda(monkeypatch)
    subject = open_subject(Spec(cell="gru", hidden=5, input="abcab", device="cuda"))
    assert subject.device == cuda and subject.notes[-1] == "computing on cuda (Fake GPU)"
    on_device = trace_subject(subject)
    on_cpu = trace_subject(open_subject(Spec(cell="gru", hidden=5, input="abcab")))
    assert_same_trace(on_cpu, on_device, rtol=2e-5, atol=1e-6)


def test_the_encoder_decoder_traces_on_the_device(monkeypatch):
    cuda = fake_cuda(monkeypatch)
    both = trace_subject(open_subject(Spec(task="reverse", device="cuda")))
    plain = trace_subject(open_subject(Spec(task="reverse")))
    assert both.predicted == plain.predicted
    assert_same_trace(plain.encoder, both.encoder, rtol=2e-5, atol=1e-6)
    assert_same_trace(plain.decoder, both.decoder, rtol=2e-5, atol=1e-6)


def test_the_explorer_builds_and_retraces_on_the_device(monkeypatch):
    from rnn_tui.ui.lab import model_for, retrace
    from rnn_tui.ui.source import EngineSource

    fake_cuda(monkeypatch)
    source = EngineSource.from_spec(Spec(cell="lstm", hidden=6, input="hello there", device="auto"))
    trace = source.build(source.initial_request())
    assert trace.extras["device"] == "cuda"
    assert "--device auto: computing on cuda (Fake GPU)" in trace.extras["notes"]  # the Model tab shows it
    held = retrace(trace, interventions=[Intervention("gate", "f", 1.0)])
    assert held.extras["device"] == "cuda"  # values held by hand: the readable steps, on the device
    assert model_for(trace).head.weight.device == devices.torch_device("cuda")


def test_the_explorer_opens_the_demo_with_only_a_device_given():
    from rnn_tui.ui.launch import DEMO, with_default_demo

    if not (DEMO / "model.safetensors").is_file():
        pytest.skip("the demo model is not in this checkout")
    assert with_default_demo(Spec(device="auto")).checkpoint == str(DEMO)


# ---- on a real GPU --------------------------------------------------------------------------------------
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


@gpu
@pytest.mark.parametrize("cell,act", CELL_ACTS)
def test_cuda_traces_equal_the_cpus_in_float32(cell, act):
    cuda = resolve("cuda")
    cfg = ModelConfig(cell=cell, activation=act, input_size=8, hidden_size=32, num_layers=2, bidirectional=True,
                      output_size=8, input_mode="onehot", vocab_size=8)  # fmt: skip
    model = build_model(cfg, seed=5)
    x, targets = sequence(cfg, 60, np.random.default_rng(5))
    assert_same_trace(run_trace(model, x, targets), run_trace(model.to(cuda.torch), x, targets), rtol=1e-3, atol=1e-5)
    held = [Intervention("state", "h", 0.0, unit=3, start=10, stop=20)]
    a = run_trace(model.cpu(), x, targets, interventions=held)
    b = run_trace(model, x, targets, interventions=held, device=cuda)
    assert_same_trace(a, b, rtol=1e-3, atol=1e-5)


@gpu
def test_cuda_is_chosen_with_ieee_float32():
    d = resolve("cuda")
    assert d.kind == "cuda" and d.name and torch.backends.cudnn.rnn.fp32_precision == "ieee"


@gpu
def test_cuda_float64_stays_float64():
    cfg = ModelConfig(cell="lstm", input_size=4, hidden_size=8, output_size=4, input_mode="onehot", vocab_size=4)
    model = build_model(cfg, seed=1).double()
    x, targets = sequence(cfg, 20, np.random.default_rng(1))
    b = run_trace(model, x, targets, dtype="float64", device="cuda")
    assert b.layers[0].h.dtype == np.float64
    assert_same_trace(run_trace(model, x, targets, dtype="float64"), b, rtol=1e-10, atol=1e-12)


@gpu
def test_cuda_training_follows_the_cpu_run_and_loads_without_a_gpu(tmp_path):
    task = get_task("recall")
    config = TrainConfig.from_defaults(task.defaults, steps=5, log_every=1)
    cpu = Trainer(task, config, cell="lstm").run()
    trainer = Trainer(task, config, cell="lstm", device="cuda", run_dir=tmp_path / "run")
    assert next(trainer.model.parameters()).is_cuda
    result = trainer.run()
    np.testing.assert_allclose([r["loss"] for r in result.history], [r["loss"] for r in cpu.history], rtol=1e-4)
    assert all(v.is_cuda for entry in trainer.optimizer.state.values() for k, v in entry.items() if k != "step")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    code = ("from rnn_tui.cli import main; import sys; "
            f"sys.exit(main(['trace', '--checkpoint', {str(tmp_path / 'run')!r}, '--format', 'json']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["loss"] > 0
