"""Importing a user's own torch.nn.RNN/LSTM/GRU weights: shape read from names and shapes, outputs
equal to the torch module's in float64 (fused and explicit paths), bad files refused unrun."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from rnn_tui.engine.config import ModelConfig
from rnn_tui.engine.model import CellStack, build_model
from rnn_tui.engine.weights import (
    WeightsError,
    build_with_weights,
    infer_shape,
    load_user_weights,
)

MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def torch_module(kind, I, H, L, bi, bias, nonlinearity="tanh", seed=0):
    torch.manual_seed(seed)
    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    return MODULES[kind](I, H, num_layers=L, bidirectional=bi, bias=bias, batch_first=True, **extra).double()


def save(module, path, prefix=""):
    state = {prefix + k: v.detach().clone() for k, v in module.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return path


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(["rnn", "lstm", "gru"]),
    nonlinearity=st.sampled_from(["tanh", "relu"]),
    I=st.integers(1, 5),
    H=st.integers(1, 6),
    L=st.integers(1, 3),
    bi=st.booleans(),
    bias=st.booleans(),
    fmt=st.sampled_from([".pt", ".safetensors"]),
    prefix=st.sampled_from(["", "rnn.", "module.encoder.lstm."]),
    seed=st.integers(0, 1000),
)
def test_imported_weights_reproduce_the_torch_module(tmp_path_factory, kind, nonlinearity, I, H, L, bi, bias, fmt, prefix, seed):
    nonlinearity = nonlinearity if kind == "rnn" else "tanh"
    module = torch_module(kind, I, H, L, bi, bias, nonlinearity, seed)
    path = save(module, tmp_path_factory.mktemp("w") / f"weights{fmt}", prefix)
    shape, tensors = load_user_weights(path, activation=nonlinearity if kind == "rnn" else None)
    assert (shape.cell, shape.input_size, shape.hidden_size, shape.num_layers, shape.bidirectional, shape.bias) == (
        kind, I, H, L, bi, bias
    )
    assert shape.prefix == prefix and shape.activation == nonlinearity

    x = torch.randn(2, 7, I, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    expected, _ = module(x)  # (B, T, D*H)

    # the fused path inside an rnn-tui model, with a given head: y = V h_t + b
    config = shape.model_config(output_size=3)
    V = torch.randn(3, H * (2 if bi else 1), dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    model = build_with_weights(shape, tensors, config, head={"head.weight": V, "head.bias": b}, dtype="float64")
    torch.testing.assert_close(model(x), expected @ V.T + b, rtol=1e-12, atol=1e-12)

    # the explicit cells (what the explorer traces) under the same names
    stack = CellStack(config).double()
    with torch.no_grad():
        for name, p in stack.named_parameters():
            p.copy_(tensors[name])
    out, _ = stack(x)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


def test_describe_and_ignored_tensors(tmp_path):
    lstm = torch_module("lstm", 4, 5, 2, True, True)
    state = {"encoder." + k: v for k, v in lstm.state_dict().items()}
    state["fc.weight"] = torch.zeros(2, 10)
    state["embedding.weight"] = torch.zeros(7, 4)
    torch.save(state, tmp_path / "m.pt")
    shape, tensors = load_user_weights(tmp_path / "m.pt")
    assert shape.describe() == "2-layer bidirectional lstm, input size 4, hidden size 5, bias on"
    assert shape.ignored == ("fc.weight",)
    assert "embedding.weight" in tensors  # rnn-tui's own name passes through


def test_a_training_checkpoint_dict_is_unwrapped(tmp_path):
    gru = torch_module("gru", 3, 4, 1, False, True)
    torch.save({"epoch": 3, "state_dict": gru.state_dict(), "optimizer": {"lr": 0.1}}, tmp_path / "ckpt.pt")
    shape, _ = load_user_weights(tmp_path / "ckpt.pt")
    assert shape.cell == "gru" and shape.hidden_size == 4


def test_gru_textbook_and_relu_are_choices_the_tensors_cannot_make(tmp_path):
    path = save(torch_module("gru", 3, 4, 1, False, True), tmp_path / "g.pt")
    assert load_user_weights(path)[0].cell == "gru"
    assert load_user_weights(path, cell="gru-textbook")[0].cell == "gru-textbook"
    path = save(torch_module("rnn", 3, 4, 1, False, True, "relu"), tmp_path / "r.pt")
    assert load_user_weights(path)[0].activation == "tanh"  # the default: relu cannot be seen
    assert load_user_weights(path, activation="relu")[0].activation == "relu"


def test_peephole_lstm_from_rnn_tui_itself(tmp_path):
    model = build_model(ModelConfig(cell="lstm-peephole", input_size=3, hidden_size=4, output_size=2, vocab_size=0, input_mode="vectors"))
    save_file({k: v.detach().contiguous() for k, v in model.tensors().items()}, tmp_path / "p.safetensors")
    shape, tensors = load_user_weights(tmp_path / "p.safetensors")
    assert shape.cell == "lstm-peephole" and "weight_ci_l0" in tensors and "head.weight" in tensors


# ---- mismatches and refusals ---------------------------------------------------------------
def test_a_mismatched_tensor_is_named_with_both_shapes(tmp_path):
    state = dict(torch_module("lstm", 3, 4, 2, False, True).state_dict())
    state["weight_ih_l1"] = torch.zeros(16, 5)
    with pytest.raises(WeightsError, match=r"tensor weight_ih_l1 has shape \(16, 5\), expected \(16, 4\)"):
        infer_shape(state)
    state = dict(torch_module("gru", 3, 4, 1, False, True).state_dict())
    del state["bias_hh_l0"]
    with pytest.raises(WeightsError, match=r"missing tensor bias_hh_l0 of shape \(12,\)"):
        infer_shape(state)


def test_a_cell_that_does_not_fit_the_rows_is_refused(tmp_path):
    state = torch_module("gru", 3, 4, 1, False, True).state_dict()
    with pytest.raises(WeightsError, match=r"a lstm needs weight_hh_l0 of shape \(16, 4\), the file has \(12, 4\) \(that is a gru\)"):
        infer_shape(state, cell="lstm")
    with pytest.raises(WeightsError, match="rows"):
        infer_shape({"weight_ih_l0": torch.zeros(10, 3), "weight_hh_l0": torch.zeros(10, 5)})
    with pytest.raises(WeightsError, match="several prefixes"):
        a, b = torch_module("gru", 3, 4, 1, False, True).state_dict(), torch_module("rnn", 3, 4, 1, False, True).state_dict()
        infer_shape({**{"enc." + k: v for k, v in a.items()}, **{"dec." + k: v for k, v in b.items()}})
    a = torch_module("gru", 3, 4, 1, False, True).state_dict()
    shape, _ = infer_shape({**{"enc." + k: v for k, v in a.items()}, "dec.weight_ih_l0": torch.zeros(1)}, prefix="enc.")
    assert shape.prefix == "enc."


def test_projections_and_non_float_tensors_are_refused():
    lstm = torch.nn.LSTM(3, 6, proj_size=2)
    with pytest.raises(WeightsError, match="proj_size"):
        infer_shape(lstm.state_dict())
    state = dict(torch_module("rnn", 3, 4, 1, False, False).state_dict())
    state["weight_hh_l0"] = state["weight_hh_l0"].long()
    with pytest.raises(WeightsError, match="int64"):
        infer_shape(state)
    state = dict(torch_module("rnn", 3, 4, 1, False, False).state_dict())
    state["weight_hh_l0"][0, 0] = float("nan")
    with pytest.raises(WeightsError, match="NaN"):
        infer_shape(state)


def test_a_state_dict_without_recurrent_weights(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "lin.pt")
    with pytest.raises(WeightsError, match="no torch.nn.RNN/LSTM/GRU weights found.*fc.weight"):
        load_user_weights(tmp_path / "lin.pt")


def test_a_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("evil.pt", "evil.pth", "evil.bin"):
        (tmp_path / name).write_bytes(pickle.dumps({"weight_ih_l0": Evil()}))
        with pytest.raises(WeightsError, match="refused"):
            load_user_weights(tmp_path / name)
    # the same inside torch's zip container
    torch.save({"weight_ih_l0": torch.zeros(1)}, tmp_path / "ok.pt")  # a real zip to imitate
    import zipfile

    with zipfile.ZipFile(tmp_path / "ok.pt") as z:
        names = z.namelist()
    root = names[0].split("/")[0]
    with zipfile.ZipFile(tmp_path / "evil_zip.pt", "w") as z:
        z.writestr(f"{root}/data.pkl", pickle.dumps(Evil(), protocol=2))
        z.writestr(f"{root}/version", "3\n")
    with pytest.raises(WeightsError):
        load_user_weights(tmp_path / "evil_zip.pt")
    assert not marker.exists()


def test_a_whole_module_is_refused_with_the_fix(tmp_path):
    torch.save(torch.nn.LSTM(3, 4), tmp_path / "whole.pt")
    with pytest.raises(WeightsError, match=r"refused without running it \(it asks to load torch.nn.modules.rnn.LSTM\); save it with torch.save\(module.state_dict\(\), path\)"):
        load_user_weights(tmp_path / "whole.pt")


@pytest.mark.parametrize("name", ["junk.pt", "junk.safetensors"])
def test_garbage_bytes_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(WeightsError):
        load_user_weights(tmp_path / name)


def test_other_objects_and_paths(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="holds a list, not a state_dict"):
        load_user_weights(tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="does not exist"):
        load_user_weights(tmp_path / "missing.pt")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_user_weights(tmp_path / "w.npz")


# ---- fitting a task's model ----------------------------------------------------------------
def test_imported_weights_must_read_the_task_input():
    from rnn_tui.engine.tasks import get_task

    task = get_task("adding")  # raw vectors of size 2
    shape, tensors = infer_shape(torch_module("lstm", 3, 4, 1, False, True).state_dict())
    with pytest.raises(WeightsError, match="reads 3 inputs but the task feeds vectors of size 2"):
        build_with_weights(shape, tensors, task.model_config())
    recall = get_task("recall")
    with pytest.raises(WeightsError, match="one-hot vocabulary has 13 tokens"):
        build_with_weights(shape, tensors, recall.model_config())
    shape, tensors = infer_shape(torch_module("gru", 2, 5, 2, False, True).state_dict())
    model = build_with_weights(shape, tensors, task.model_config(), seed=0)
    assert model.config.cell == "gru" and model.config.hidden_size == 5 and model.config.head == "last"
    for name, t in tensors.items():
        assert torch.equal(model.tensors()[name].detach(), t.float())
