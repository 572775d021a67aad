"""Importing a user's own torch.nn.RNN/LSTM/GRU weights: shape read from names and shapes, outputs
equal to the torch module's in float64 (fused and explicit paths), bad files refused unrun."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
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
    parse_map,
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


def test_describe_roles_and_ignored_tensors(tmp_path):
    lstm = torch_module("lstm", 4, 5, 2, True, True)
    state = {"encoder." + k: v for k, v in lstm.state_dict().items()}
    state["fc.weight"] = torch.ones(2, 10)  # reads both directions: the head, without a bias
    state["embedding.weight"] = torch.ones(7, 4)  # as wide as weight_ih_l0 reads: the embedding
    state["norm.weight"] = torch.ones(3)
    state["step"] = torch.tensor(7)
    torch.save(state, tmp_path / "m.pt")
    shape, tensors = load_user_weights(tmp_path / "m.pt")
    assert shape.describe() == "2-layer bidirectional lstm, input size 4, hidden size 5, bias on"
    assert (shape.embedding, shape.vocab_size, shape.head, shape.head_bias, shape.output_size) == (
        "embedding.weight", 7, "fc.weight", "", 2
    )
    assert shape.ignored == ("norm.weight", "step")
    assert {"embedding.weight", "head.weight"} <= set(tensors) and "head.bias" not in tensors
    report = shape.report()
    assert "embedding.weight -> embedding (7 x 4)" in report and "encoder.* (16 tensors)" in report
    assert "fc.weight -> head (2 outputs, no bias)" in report and "ignored: norm.weight, step" in report
    config = shape.model_config()
    assert (config.input_mode, config.vocab_size, config.output_size, config.head_bias) == ("embedding", 7, 2, False)


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
    with pytest.raises(WeightsError, match="no recurrent weights found .*found fc.weight.*--map"):
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
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(WeightsError, match="unknown weights format"):
        load_user_weights(tmp_path / "w.h5")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not a readable .npz file"):
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


# ---- a map, and tensors found by shape and name ----------------------------------------------
def test_a_map_names_what_the_file_calls_otherwise(tmp_path):
    torch.manual_seed(0)
    V, H = 6, 4
    rnn = torch.nn.RNN(V, H, nonlinearity="tanh").double()
    torch.nn.init.zeros_(rnn.bias_hh_l0)  # one bias, as a from-scratch RNN has
    state = {"Wx": rnn.weight_ih_l0, "Wh": rnn.weight_hh_l0, "b": rnn.bias_ih_l0[:, None], "Wout": torch.randn(V, H).double(),
             "bout": torch.randn(V).double(), "note": torch.zeros(2)}  # fmt: skip
    save_file({k: v.detach().contiguous() for k, v in state.items()}, tmp_path / "mine.safetensors")
    mapping = parse_map("Wx=weight_ih_l0, Wh=weight_hh_l0,b=bias_ih_l0,Wout=head.weight,bout=head.bias,note=ignore")
    shape, tensors = load_user_weights(tmp_path / "mine.safetensors", mapping=mapping)
    assert (shape.cell, shape.input_size, shape.hidden_size, shape.output_size, shape.names) == ("rnn", V, H, V, "--map")
    assert shape.filled == ("bias_hh_l0",) and shape.ignored == ("note",)
    assert torch.equal(tensors["bias_hh_l0"], torch.zeros(H, dtype=torch.float64))
    assert "Wx=weight_ih_l0, Wh=weight_hh_l0, b=bias_ih_l0 (--map)" in shape.report()
    x = torch.randn(5, V, dtype=torch.float64)
    model = build_with_weights(shape, tensors, shape.model_config(), dtype="float64")
    expected = rnn(x)[0] @ state["Wout"].T + state["bout"]
    torch.testing.assert_close(model(x[None])[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "text, words",
    [
        ("Wx", "'Wx' is not NAME=ROLE"),
        ("Wx=weights", "unknown role 'weights'"),
        ("a=head.weight,b=head.weight", "names the role 'head.weight' twice"),
        ("a=ignore,a=head.bias", "names the tensor 'a' twice"),
        (" , ", "--map is empty"),
    ],
)
def test_bad_maps_say_what_is_wrong(text, words):
    with pytest.raises(WeightsError, match=words):
        parse_map(text)


def test_a_map_must_name_tensors_the_file_has_and_shapes_that_fit():
    state = dict(torch_module("gru", 3, 4, 1, False, True).state_dict())
    with pytest.raises(WeightsError, match="--map names 'emb', which the file does not have"):
        infer_shape(state, mapping=(("emb", "embedding.weight"),))
    state["emb"] = torch.zeros(9, 5)
    with pytest.raises(WeightsError, match=r"emb has shape \(9, 5\); an embedding for weight_ih_l0 \(reads 3\) must be \(tokens, 3\)"):
        infer_shape(state, mapping=(("emb", "embedding.weight"),))


def test_two_tensors_that_fit_one_role_are_not_guessed_between():
    state = dict(torch_module("lstm", 3, 4, 1, False, True).state_dict())
    state.update({"fc1.weight": torch.zeros(4, 4), "fc1.bias": torch.zeros(4), "fc2.weight": torch.zeros(9, 4), "fc2.bias": torch.zeros(9)})
    with pytest.raises(WeightsError, match="fc1.weight and fc2.weight could each be the head: say which with --map"):
        infer_shape(state)
    shape, _ = infer_shape(state, mapping=(("fc2.weight", "head.weight"), ("fc2.bias", "head.bias")))
    assert shape.head == "fc2.weight" and shape.output_size == 9 and "fc1.weight" in shape.ignored
    lone = dict(torch_module("rnn", 4, 4, 1, False, True).state_dict())
    lone["W.weight"] = torch.zeros(7, 4)  # (V, 4): an embedding of 4 or a head reading 4 units, no name to tell
    with pytest.raises(WeightsError, match="W.weight .* could be the embedding or the output layer"):
        infer_shape(lone)


# ---- hostile files: checked before they are read ---------------------------------------------
def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    import json

    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


@pytest.mark.parametrize(
    "content, words",
    [
        (b"\x00" * 64, "its header claims 0 bytes"),
        ((10**12).to_bytes(8, "little") + b"{}", "its header claims 1,000,000,000,000 bytes"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}), "lies outside the file"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}}, b"\0" * 8), "has 8 bytes for a F32 tensor of shape (2, 2)"),
        (safetensors_bytes({"w": {"dtype": "F32", "shape": "big", "data_offsets": [0, 4]}}, b"\0" * 4), "is described wrongly"),
        (b"\x05\x00\x00\x00\x00\x00\x00\x00[[[[[", "its header is not JSON"),
    ],
)
def test_a_safetensors_header_is_checked_before_the_data(tmp_path, content, words):
    (tmp_path / "w.safetensors").write_bytes(content)
    with pytest.raises(WeightsError, match=re.escape(words)):
        load_user_weights(tmp_path / "w.safetensors")


def test_a_large_sparse_file_is_refused_from_its_header(tmp_path):
    import resource

    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as f:
        f.truncate(1_500_000_000)  # 1.5 GB of holes: nothing on disk, nothing to read
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(WeightsError, match="its header claims 0 bytes"):
        load_user_weights(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: not read whole
    with open(path, "wb") as f:
        f.truncate((2 << 30) + 1)
    with pytest.raises(WeightsError, match=r"is 2,147,483,649 bytes; at most 2048 MiB \(2,147,483,648 bytes\) is read"):
        load_user_weights(path)


def test_only_the_tensors_used_are_read(tmp_path, monkeypatch):
    import safetensors

    lstm = torch_module("lstm", 3, 4, 1, False, True)
    tensors = {k: v.detach().contiguous() for k, v in lstm.state_dict().items()}
    tensors["optimizer.exp_avg"] = torch.zeros(1000, 100)
    save_file(tensors, tmp_path / "ckpt.safetensors")
    read = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, *a, **k):
            self.f = real(*a, **k)

        def __enter__(self):
            self.f.__enter__()
            return self

        def __exit__(self, *a):
            return self.f.__exit__(*a)

        def get_tensor(self, name):
            read.append(name)
            return self.f.get_tensor(name)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    shape, _ = load_user_weights(tmp_path / "ckpt.safetensors")
    assert shape.ignored == ("optimizer.exp_avg",) and "optimizer.exp_avg" not in read and len(read) == 4


def test_a_compressed_torch_archive_is_refused_before_torch_load(tmp_path):
    import zipfile

    torch.save(torch_module("rnn", 2, 3, 1, False, True).state_dict(), tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as src, zipfile.ZipFile(tmp_path / "bomb.pt", "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("archive/data/99", b"\0" * 50_000_000)  # 50 MB that deflate to a few KB
    assert (tmp_path / "bomb.pt").stat().st_size < 1_000_000
    with pytest.raises(WeightsError, match="is compressed, which torch.save never writes: refused without reading it"):
        load_user_weights(tmp_path / "bomb.pt")


def test_npz_files(tmp_path):
    np.savez(tmp_path / "objects.npz", Wxh=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsError, match="holds Python objects \\(a pickle\\): refused without running it"):
        load_user_weights(tmp_path / "objects.npz")
    np.savez_compressed(tmp_path / "ok.npz", Wxh=np.ones((3, 2)), Whh=np.eye(3), Why=np.ones((2, 3)),
                        bh=np.zeros(3), by=np.zeros(2), chars=np.array(list("ab")))  # fmt: skip
    shape, _ = load_user_weights(tmp_path / "ok.npz")
    assert shape.names == "min-char-rnn" and shape.ignored == ("chars",)


@pytest.mark.parametrize("special, words", [("fifo", "is not a regular file (a FIFO)"), ("/dev/zero", "is not a regular file (a character device)")])
def test_special_files_are_named_for_what_they_are(tmp_path, capsys, special, words):
    from rnn_tui.cli import main

    path = tmp_path / "w.pt"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path = Path(special)
    assert main(["trace", "--weights", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "does not exist" not in err and len(err.splitlines()) == 1


def test_names_from_a_file_reach_the_terminal_escaped():
    state = dict(torch_module("rnn", 2, 3, 1, False, True).state_dict())
    state["\x1b]0;pwned\x07x.weight"] = torch.zeros(2)
    shape, _ = infer_shape(state)
    assert "\x1b" not in shape.report() and "\\x1b]0;pwned\\x07x.weight" in shape.report()
    with pytest.raises(WeightsError) as e:
        infer_shape(state, mapping=(("\x1b[2Jgone", "head.weight"),))
    assert "\x1b" not in str(e.value)


EARLY, LATE = True, False  # the explorer refuses before taking the terminal / the worker shows it after


@pytest.mark.parametrize(
    "argv, words, early",
    [
        (["--map", "x"], "'x' is not NAME=ROLE", EARLY),
        (["--map", "nope=head.weight"], "--map names 'nope', which the file does not have", LATE),
        (["--map", "rnn.weight_ih_l0=embedding.weight"], "missing tensor rnn.weight_ih_l0 (--map makes it embedding.weight)", LATE),
        (["--vocab", "{tmp}/v.json", "--input", "abc"], "do not fit the model: weight_ih_l0 reads 3 inputs", LATE),
        (["--vocab", "{tmp}/bad.json", "--input", "abc"], "is not valid JSON", EARLY),
        (["--input", "abc"], "give the vocabulary the model was trained with as --vocab FILE", LATE),
        (["--input-ids", "1 9"], "id 9 is out of range: the model reads ids 0..2", LATE),
        (["--input-ids", "1 x"], "'x' is not a token id", EARLY),
        (["--vectors", "{tmp}/x.csv", "--input", "abc"], "give one sequence", EARLY),
        (["--vectors", "{tmp}/x.csv"], "has 2 numbers per step but the model reads 3", LATE),
        (["--targets", "{tmp}/x.csv"], "--targets scores your own sequence", EARLY),
        (["--text", "{tmp}/missing.txt"], "--text: {tmp}/missing.txt does not exist", EARLY),
        (["--text", ""], "--text: an empty path was given", EARLY),
        (["--prefix", "enc."], "no recurrent weights under the prefix 'enc.'", LATE),
    ],
)
def test_bad_maps_vocabularies_and_sequences_on_the_command_line(tmp_path, capsys, argv, words, early):
    """One line and exit 2 from `trace`; the explorer says the same before it takes the terminal
    where no model is needed to know (else its worker shows the line in the explorer)."""
    from rnn_tui.cli import main

    rnn = torch_module("rnn", 3, 4, 1, False, True)
    save(rnn, tmp_path / "w.pt", prefix="rnn.")
    (tmp_path / "v.json").write_text('["a", "b"]')
    (tmp_path / "bad.json").write_text("[")
    (tmp_path / "x.csv").write_text("1,2\n3,4\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    words = words.replace("{tmp}", str(tmp_path))
    for command in (["trace"], []) if early else (["trace"],):
        code = main([*command, "--weights", str(tmp_path / "w.pt"), *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


# ---- whole models over many shapes and names -------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["rnn", "lstm", "gru"]),
    I=st.integers(1, 5),
    H=st.integers(1, 5),
    L=st.integers(1, 2),
    bi=st.booleans(),
    V=st.integers(2, 9),
    O=st.integers(1, 9),
    emb_name=st.sampled_from(["encoder", "embedding", "embed", "word_embeddings", "module.emb"]),
    head_name=st.sampled_from(["decoder", "linear", "fc", "head", "out", "module.classifier"]),
    head_bias=st.booleans(),
    prefix=st.sampled_from(["rnn.", "lstm.", "module.rnn.", ""]),
    fmt=st.sampled_from([".pt", ".safetensors"]),
    seed=st.integers(0, 1000),
)
def test_a_whole_model_reads_as_torch_computes_it(tmp_path_factory, kind, I, H, L, bi, V, O, emb_name, head_name,
                                                  head_bias, prefix, fmt, seed):  # fmt: skip
    """nn.Embedding -> nn.RNN/LSTM/GRU -> nn.Linear under common names: found by shape and name,
    and the imported model's logits equal torch's in float64."""
    torch.manual_seed(seed)
    D = 2 if bi else 1
    emb = torch.nn.Embedding(V, I).double()
    core = torch_module(kind, I, H, L, bi, True, seed=seed)
    head = torch.nn.Linear(D * H, O, bias=head_bias).double()
    state = {f"{emb_name}.weight": emb.weight.detach().clone()}
    state.update({prefix + k: v.detach().clone() for k, v in core.state_dict().items()})
    state.update({f"{head_name}.{k}": v.detach().clone() for k, v in head.state_dict().items()})
    path = tmp_path_factory.mktemp("m") / f"model{fmt}"
    save_file(state, path) if fmt == ".safetensors" else torch.save(state, path)

    shape, tensors = load_user_weights(path)
    assert (shape.embedding, shape.head, shape.head_bias) == (f"{emb_name}.weight", f"{head_name}.weight",
                                                             f"{head_name}.bias" if head_bias else "")  # fmt: skip
    assert (shape.vocab_size, shape.output_size, shape.ignored) == (V, O, ())
    model = build_with_weights(shape, tensors, shape.model_config(), dtype="float64")
    ids = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(seed))
    expected = head(core(emb(ids))[0])
    torch.testing.assert_close(model(ids), expected, rtol=1e-12, atol=1e-12)


# ---- fuzz: any header, any bytes, one clear refusal or a good read --------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
entries = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F64", "I64", "F16", "X9", 3]),
    "shape": st.lists(st.integers(-2, 5), max_size=3) | json_values,
    "data_offsets": st.lists(st.integers(-4, 400), min_size=0, max_size=3) | json_values,
})  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(header=st.dictionaries(st.sampled_from(["weight_ih_l0", "weight_hh_l0", "__metadata__", "x"]),
                              entries | json_values, max_size=4),
       data=st.binary(max_size=400), lie=st.integers(-3, 3))  # fmt: skip
def test_fuzzed_safetensors_headers_are_read_or_refused_in_one_line(tmp_path_factory, header, data, lie):
    import json

    raw = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("f") / "w.safetensors"
    path.write_bytes(max(0, len(raw) + lie).to_bytes(8, "little") + raw + data)
    try:
        load_user_weights(path)
    except WeightsError as e:
        assert "\n" not in str(e) and str(e)


@settings(max_examples=100, deadline=None)
@given(doc=json_values)
def test_fuzzed_vocabularies_are_read_or_refused_in_one_line(tmp_path_factory, doc):
    import json

    from rnn_tui.engine.vocab import VocabError, load_vocab

    path = tmp_path_factory.mktemp("v") / "v.json"
    path.write_text(json.dumps(doc))
    try:
        vocab = load_vocab(path)
    except VocabError as e:
        assert "\n" not in str(e)
    else:
        assert len(set(vocab.tokens)) == len(vocab) >= 1
