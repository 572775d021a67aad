"""A person's own model, end to end: fine-tuned whole (their embedding and head kept), exported
back to a plain torch state_dict that torch loads strictly, and the README's walk-through run."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rnn_tui.cli import main
from rnn_tui.engine.checkpoint import load_checkpoint, read_config
from rnn_tui.engine.subject import Spec, open_subject, trace_subject

ROOT = Path(__file__).resolve().parents[1]
TEXT = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n" * 3


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


class WordLM(nn.Module):
    """The PyTorch examples' word language model, as saved: encoder, rnn, decoder."""

    def __init__(self, V, ninp=5, nhid=6, layers=1, cell=nn.LSTM):
        super().__init__()
        self.encoder = nn.Embedding(V, ninp)
        self.rnn = cell(ninp, nhid, layers)
        self.decoder = nn.Linear(nhid, V)


@pytest.fixture
def word_lm(tmp_path):
    idx2word = list(dict.fromkeys(w for line in TEXT.splitlines() for w in line.split() + ["<eos>"]))
    torch.manual_seed(0)
    model = WordLM(len(idx2word))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "vocab.json").write_text(json.dumps(idx2word))
    (tmp_path / "corpus.txt").write_text(TEXT)
    return model, idx2word


def train_args(tmp_path, *extra):
    return ("train", "--task", "chars", "--text", tmp_path / "corpus.txt", "--tokenize", "space", "--weights",
            tmp_path / "model.pt", "--seq-len", "8", "--batch", "4", "--quiet", *extra)  # fmt: skip


def test_fine_tuning_keeps_the_embedding_and_the_head(tmp_path, capsys, word_lm):
    model, idx2word = word_lm
    code, out, err = run_cli(capsys, *train_args(tmp_path, "--vocab", tmp_path / "vocab.json", "--steps", "1", "--lr", "0",
                                                 "--out", tmp_path / "still"))  # fmt: skip
    assert code == 0, err
    assert "note: read model.pt: encoder.weight -> embedding" in err and "decoder.weight, decoder.bias -> head" in err
    info = read_config(tmp_path / "still")
    assert info.vocab == idx2word and info.task_options["vocab"] == str((tmp_path / "vocab.json").resolve())
    assert (info.model.input_mode, info.model.vocab_size, info.model.output_size) == ("embedding", len(idx2word), len(idx2word))
    saved = load_checkpoint(tmp_path / "still").tensors  # lr 0: the weights are the file's, every one of them
    theirs = {"embedding.weight": "encoder.weight", "head.weight": "decoder.weight", "head.bias": "decoder.bias"}
    for name, value in saved.items():
        assert torch.equal(value, model.state_dict()[theirs.get(name, f"rnn.{name}")]), name

    code, _, err = run_cli(capsys, *train_args(tmp_path, "--vocab", tmp_path / "vocab.json", "--steps", "3",
                                               "--out", tmp_path / "tuned"))  # fmt: skip
    assert code == 0, err
    tuned = load_checkpoint(tmp_path / "tuned").tensors
    assert not torch.equal(tuned["embedding.weight"], saved["embedding.weight"])  # trained, all of it
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "tuned", "--steps", "5", "--quiet")
    assert code == 0, err


def test_fine_tuning_on_a_text_without_the_models_vocabulary_is_refused(tmp_path, capsys, word_lm):
    code, _, err = run_cli(capsys, *train_args(tmp_path, "--steps", "1", "--out", tmp_path / "run"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--weights with --task chars needs the model's own --vocab FILE" in err
    assert not (tmp_path / "run").exists()


def test_a_head_that_does_not_fit_the_task_is_named_and_can_be_left_out(tmp_path, capsys):
    torch.manual_seed(0)
    save_file({**{f"rnn.{k}": v.contiguous() for k, v in nn.LSTM(13, 8).state_dict().items()},
               "fc.weight": torch.zeros(5, 8), "fc.bias": torch.zeros(5)}, tmp_path / "m.safetensors")  # fmt: skip
    base = ("train", "--task", "recall", "--distance", "3", "--weights", tmp_path / "m.safetensors", "--steps", "2", "--quiet")
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "a")
    assert code == 2 and "output layer fc.weight has 5 outputs but the task needs 8" in err
    assert "--map fc.weight=ignore,fc.bias=ignore" in err
    code, _, err = run_cli(capsys, *base, "--map", "fc.weight=ignore,fc.bias=ignore", "--out", tmp_path / "b")
    assert code == 0 and "the file has no output layer: a fresh head (8 outputs) is initialised" in err


# ---- export ------------------------------------------------------------------------------------
@pytest.fixture
def tuned_run(tmp_path, capsys, word_lm):
    code, _, err = run_cli(capsys, *train_args(tmp_path, "--vocab", tmp_path / "vocab.json", "--steps", "3",
                                               "--out", tmp_path / "run"))  # fmt: skip
    assert code == 0, err
    return tmp_path / "run"


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_an_export_loads_strictly_into_torch_modules_and_computes_the_same(tmp_path, capsys, word_lm, tuned_run, suffix):
    _, idx2word = word_lm
    to = tmp_path / f"out{suffix}"
    code, out, err = run_cli(capsys, "export", tuned_run, "--to", to)
    assert code == 0, err
    assert f"wrote {to}: embedding.weight ({len(idx2word)} x 5); rnn.* (4 tensors: 1-layer lstm, input 5, hidden 6)" in out
    assert "model.load_state_dict(tensors, strict=True)" in out
    assert json.loads((tmp_path / "out.vocab.json").read_text()) == idx2word
    tensors = load_file(to) if suffix == ".safetensors" else torch.load(to, weights_only=True)
    assert sorted(tensors) == sorted(["embedding.weight", "head.weight", "head.bias"] +
                                     [f"rnn.{k}" for k in nn.LSTM(5, 6).state_dict()])  # fmt: skip
    torch_model = nn.Module()  # what the printed lines build
    torch_model.embedding = nn.Embedding(len(idx2word), 5)
    torch_model.rnn = nn.LSTM(5, 6, num_layers=1, batch_first=True)
    torch_model.head = nn.Linear(6, len(idx2word))
    torch_model.load_state_dict(tensors, strict=True)
    torch_model.double()

    sentence = "the dog sat on the mat"
    tr = trace_subject(open_subject(Spec(checkpoint=str(tuned_run), input=sentence, dtype="float64")))
    ids = torch.tensor([[idx2word.index(w) for w in sentence.split() + ["<eos>"]]])
    out_, _ = torch_model.rnn(torch_model.embedding(ids))
    logits = torch_model.head(out_)[0]
    np.testing.assert_allclose(tr.outputs, logits.detach().numpy(), rtol=1e-9, atol=1e-12)
    back = trace_subject(open_subject(Spec(weights=str(to), vocab=str(tmp_path / "out.vocab.json"), input=sentence,
                                           tokenize="space", dtype="float64")))  # fmt: skip
    assert back.loss == pytest.approx(tr.loss, abs=1e-12)  # and rnn-tui reads its own export back


def test_export_never_overwrites_and_refuses_what_it_cannot_write(tmp_path, capsys, tuned_run):
    (tmp_path / "x.pt").write_bytes(b"mine")
    code, _, err = run_cli(capsys, "export", tuned_run, "--to", tmp_path / "x.pt")
    assert code == 2 and "already exists: give another --to, or --force" in err and (tmp_path / "x.pt").read_bytes() == b"mine"
    assert run_cli(capsys, "export", tuned_run, "--to", tmp_path / "x.pt", "--force")[0] == 0
    for argv, words in (
        ((tuned_run, "--to", tmp_path / "x.onnx"), "write a .safetensors or a .pt file"),
        ((tmp_path / "nope", "--to", tmp_path / "y.pt"), "not a run directory"),
        ((tuned_run, "--to", tmp_path / "no" / "y.pt"), "the folder"),
        ((ROOT / "assets" / "models" / "recall-lstm", "--to", tmp_path / "z.pt", "--help-me"), "unrecognized arguments"),
    ):
        code, _, err = run_cli(capsys, "export", *argv)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_a_one_hot_run_exports_without_an_embedding(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "export", ROOT / "assets" / "models" / "chars-lstm", "--to", tmp_path / "c.safetensors")
    assert code == 0 and "no embedding tensor; its rnn reads one_hot(x, V).float()" in out
    assert "embedding.weight" not in load_file(tmp_path / "c.safetensors")
    assert "nn.functional.one_hot(x, 45).float()" in out


def test_a_cell_torch_lacks_keeps_its_rnn_tui_names(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--task", "recall", "--distance", "3", "--cell", "gru-textbook", "--hidden", "4",
                           "--steps", "2", "--batch", "4", "--quiet", "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    code, out, _ = run_cli(capsys, "export", tmp_path / "run", "--to", tmp_path / "g.safetensors")
    assert code == 0 and "gru-textbook is not a torch cell: its tensors keep rnn-tui's names under gru_textbook." in out
    tensors = load_file(tmp_path / "g.safetensors")
    assert "gru_textbook.weight_ih_l0" in tensors and not any(k.startswith("rnn.") for k in tensors)
    gru = nn.Module()
    gru.embedding, gru.rnn, gru.head = nn.Identity(), nn.GRU(13, 4, batch_first=True), nn.Linear(4, 8)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        gru.load_state_dict(tensors, strict=True)  # no torch module takes it by mistake
    again = open_subject(Spec(weights=str(tmp_path / "g.safetensors"), input_ids=(0, 1, 2)))
    assert again.config.cell == "gru-textbook" and "gru-textbook from the file's metadata" in again.notes[0]


# ---- a model that reads vectors ------------------------------------------------------------------
def test_vectors_and_targets_score_a_model_that_reads_vectors(tmp_path, capsys):
    torch.manual_seed(0)
    lstm, fc = nn.LSTM(3, 4, batch_first=True).double(), nn.Linear(4, 2).double()
    state = {**{f"lstm.{k}": v for k, v in lstm.state_dict().items()}, **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    torch.save(state, tmp_path / "m.pt")
    x = np.random.default_rng(0).normal(size=(6, 3))
    y = np.random.default_rng(1).normal(size=(6, 2))
    y[2] = np.nan  # not scored
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    code, out, err = run_cli(capsys, "trace", "--weights", tmp_path / "m.pt", "--vectors", tmp_path / "x.npy", "--targets",
                             tmp_path / "y.csv", "--dtype", "float64", "--format", "json")  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    pred = fc(lstm(torch.as_tensor(x)[None])[0])[0].detach().numpy()
    rows = [0, 1, 3, 4, 5]
    assert doc["loss"] == pytest.approx(float(((pred[rows] - y[rows]) ** 2).mean()), abs=1e-12)
    assert doc["targets"][2] is None and doc["config"]["loss"] == "mse"


# ---- the explorer on a person's own model ---------------------------------------------------------
def test_every_tab_of_the_explorer_opens_on_an_imported_model(tmp_path, word_lm):
    import asyncio

    from rnn_tui.ui.app import ExplorerApp
    from rnn_tui.ui.screens.main import MainScreen
    from rnn_tui.ui.source import EngineSource
    from tests.ui.conftest import settle

    spec = Spec(weights=str(tmp_path / "model.pt"), vocab=str(tmp_path / "vocab.json"), input=TEXT, tokenize="space")
    source = EngineSource.from_spec(spec)

    async def walk():
        app = ExplorerApp(source, source.initial_request(), theme="dark")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, MainScreen) and screen.view is not None and not screen.error
            assert screen.view.trace.tokens[:4] == ["the", "cat", "sat", "on"]
            for tab, _, _ in screen.explorer_commands():
                screen.action_show_pane(tab)
                await settle(pilot)
                assert not screen.error, (tab, screen.error)
            screen.action_show_pane(screen.explorer_commands()[1][0])  # the Model tab
            await settle(pilot)
            for _ in range(40):  # the tab catches up with the View as it opens: give it a few frames
                shown = app.export_screenshot().replace("&#160;", " ")
                if "encoder.weight" in shown:
                    break
                await pilot.pause(0.05)
            assert "encoder.weight" in shown and "embedding" in shown

    asyncio.run(walk())


# ---- the README's walk-through, command by command ------------------------------------------------
def walkthrough() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Your own weights", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(python|sh)\n(.*?)```", section.split("#### End to end", 1)[1], re.S)


def test_the_readme_walks_through_save_open_trace_fine_tune_export_and_load_back(tmp_path, monkeypatch):
    from rnn_tui.cli import build_parser, spec_from_args
    from rnn_tui.ui.source import EngineSource

    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a few small models: torch's thread pool only competes
    blocks = walkthrough()
    assert [kind for kind, _ in blocks] == ["python", "sh", "python"]
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    monkeypatch.chdir(tmp_path)
    printed = ""
    for kind, code in blocks:
        if kind == "python":
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
            assert done.returncode == 0, done.stderr
            printed = done.stdout
            continue
        for line in code.strip().splitlines():
            argv = shlex.split(line)
            assert argv[0] == "rnn-tui"
            out = None
            if ">" in argv:
                argv, out = argv[: argv.index(">")], argv[argv.index(">") + 1]
            if argv[1].startswith("-"):  # the explorer: its own source builds what it would show
                source = EngineSource.from_spec(spec_from_args(build_parser().parse_args(argv[1:])))
                trace = source.build(source.initial_request())
                assert "encoder.weight -> embedding" in trace.extras["notes"][0] and trace.loss > 0
                continue
            done = subprocess.run([sys.executable, "-m", "rnn_tui", *argv[1:]], capture_output=True, text=True, timeout=600,
                                  env=env)
            assert done.returncode == 0, (line, done.stderr)
            if out:
                Path(out).write_text(done.stdout)
    doc = json.loads(Path("trace.json").read_text())
    assert doc["loss"] > 0 and len(doc["vocab"]) == len(json.loads(Path("vocab.json").read_text()))
    assert any(n > 0 for n in doc["grad"]["dL_dh_norm"][0])
    check = subprocess.run([sys.executable, "-m", "rnn_tui", "trace", "--checkpoint", "runs/notes-lstm", "--text",
                            "assets/texts/rnn-notes.txt"], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    shown = re.search(r"^loss ([0-9.]+) ", check.stdout, re.M)
    assert shown and float(printed) == pytest.approx(float(shown.group(1)), abs=1e-4)  # torch's loss is rnn-tui's
