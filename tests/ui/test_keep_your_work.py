"""Keep your work: a model trained in the Training tab saves as a run directory that
`rnn-tui --checkpoint DIR` opens with the same weights, and a session (input, model, step, tab,
holds, the compared cell) saves to a file that `rnn-tui --session FILE` reopens to the same screen;
a bad session file is one line and exit code 2; in a browser both go to the visitor as downloads."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import TabbedContent

from rnn_tui.cli import main
from rnn_tui.engine.checkpoint import RUN_TEXT, load_checkpoint
from rnn_tui.engine.session import FORMAT, Session, SessionError, read_session, save_session
from rnn_tui.engine.subject import Spec
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.launch import open_session
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.compare_pane import ComparePane
from rnn_tui.ui.widgets.interventions_pane import Hold, InterventionsPane
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource
from tests.ui.test_panes_training import TEXT, open_tab, wait_until

ROOT = Path(__file__).resolve().parents[2]


def saved_runs(folder: Path) -> list[Path]:
    runs = folder / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


async def train_and_save(pilot, tmp_path):
    pane = await open_tab(pilot, steps="30")
    await pilot.press("w")  # nothing trained yet: nothing is written
    await settle(pilot)
    assert saved_runs(tmp_path) == []
    await pilot.press("r")
    await wait_until(pilot, lambda: pane.state.status == "finished")
    await settle(pilot)
    await pilot.press("w")
    await wait_until(pilot, lambda: len(saved_runs(tmp_path)) == 1 and not pane.saver.busy)
    await settle(pilot)
    return pane, saved_runs(tmp_path)[0]


async def test_w_saves_what_was_trained_here_as_a_run_that_checkpoint_opens(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = EngineSource()
    app = ExplorerApp(source, TraceRequest(cell="gru", hidden=6, text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        pane, run = await train_and_save(pilot, tmp_path)
        trained = app.screen.view.trace
        assert run.name.startswith("chars-gru-")
        ckpt = load_checkpoint(run)
        assert ckpt.info.task == "chars" and ckpt.info.step == 30 and ckpt.info.status == "finished"
        assert ckpt.info.task_options["text"] == RUN_TEXT and (run / RUN_TEXT).read_text() == TEXT
        for name, value in trained.params.items():  # the weights on screen, bit for bit
            np.testing.assert_array_equal(ckpt.tensors[name].numpy(), value)
        await pilot.press("w")  # a second save is another folder, never over the first
        await wait_until(pilot, lambda: len(saved_runs(tmp_path)) == 2 and not pane.saver.busy)
    # rnn-tui --checkpoint DIR: the same model on the same text, the same numbers
    reopened = EngineSource.from_spec(Spec(checkpoint=str(run), input=TEXT)).build(TraceRequest(text=TEXT))
    assert reopened.tokens == trained.tokens and reopened.config == trained.config
    np.testing.assert_allclose(reopened.outputs, trained.outputs, rtol=1e-5, atol=1e-6)
    own = EngineSource.from_spec(Spec(checkpoint=str(run))).build(TraceRequest(text=""))  # its own example
    assert "".join(own.tokens).startswith("abcabc")


async def test_a_catalog_task_saves_under_its_own_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = ExplorerApp(EngineSource(), TraceRequest(cell="rnn", hidden=6, task="recall", text=""))
    async with app.run_test(size=(120, 40)) as pilot:
        _, run = await train_and_save(pilot, tmp_path)
    info = load_checkpoint(run).info
    assert info.task == "recall" and run.name.startswith("recall-rnn-") and info.output_labels is not None


async def test_in_a_browser_the_run_is_a_download_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNN_TUI_SERVED", "1")
    sent = []
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=4, text=TEXT))
    monkeypatch.setattr(type(app), "is_web", property(lambda self: True))
    monkeypatch.setattr(app, "deliver_binary", lambda data, **kw: sent.append((data.getvalue(), kw)))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="5")
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "finished")
        await settle(pilot)
        await pilot.press("w")
        await wait_until(pilot, lambda: sent)
    data, kw = sent[0]
    assert kw["save_filename"].endswith(".tar.gz") and kw["open_method"] == "download"
    names = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    stem = kw["save_filename"].removesuffix(".tar.gz")
    assert f"{stem}/model.safetensors" in names and f"{stem}/config.json" in names and f"{stem}/{RUN_TEXT}" in names
    assert list(tmp_path.iterdir()) == []  # nothing on the server's disk


# ---- sessions ------------------------------------------------------------------------------------
async def save_on_screen(pilot, folder: Path) -> Path:
    await pilot.press("S")
    await settle(pilot)
    files = sorted(folder.glob("rnn-tui-session-*.json"))
    assert files, "no session file"
    return files[-1]


async def test_a_session_saves_and_reopens_to_the_same_screen(tmp_path):
    source = FakeSource()
    request = TraceRequest(cell="gru", hidden=6, text="hello there", seed=3)
    app = ExplorerApp(source, request, screenshot_dir=str(tmp_path))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right", "right", "down", "down", "v")
        app.screen.query_one(TabbedContent).active = "tab-interventionspane"
        await settle(pilot)
        await pilot.press("z")  # hold unit 2's h at 0 from t=3
        await settle(pilot)
        app.screen.query_one(TabbedContent).active = "tab-comparepane"
        await settle(pilot)
        await pilot.press("c")  # compare with the cell after rnn
        await settle(pilot)
        other = app.screen.query_one(ComparePane).other_cell
        path = await save_on_screen(pilot, tmp_path)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["tab"] == "Compare"
    assert doc["request"]["text"] == "hello there" and doc["request"]["seed"] == 3
    assert doc["view"]["step"] == 3 and doc["view"]["unit"] == 2 and doc["view"]["matrix"] == "r"
    session = read_session(path)
    again = ExplorerApp(FakeSource(), TraceRequest(**session.request), restore=session)
    async with again.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        screen = again.screen
        assert screen.request == request
        assert (screen.view.step, screen.view.unit, screen.view.matrix) == (3, 2, "r")
        assert screen.query_one(TabbedContent).active == "tab-comparepane"
        assert screen.query_one(ComparePane).other_cell == other
        screen.query_one(TabbedContent).active = "tab-interventionspane"
        await settle(pilot)
        holds = screen.query_one(InterventionsPane).holds
        assert holds == (Hold("state", "h", 0.0, unit=2, start=3),)


async def test_a_session_of_a_model_trained_here_names_the_run_it_was_saved_as(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=4, text=TEXT), screenshot_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="10")
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "finished")
        await settle(pilot)
        await pilot.press("S")  # the weights are in no file yet: refused, nothing written
        await settle(pilot)
        assert list(tmp_path.glob("rnn-tui-session-*.json")) == []
        await pilot.press("w")
        await wait_until(pilot, lambda: saved_runs(tmp_path) and not pane.saver.busy)
        await settle(pilot)
        path = await save_on_screen(pilot, tmp_path)
        trained = app.screen.view.trace
    run = saved_runs(tmp_path)[0]
    spec, request, session = open_session(str(path), set())
    assert spec.checkpoint == str(run.resolve()) and session.tab == "Training"
    reopened = EngineSource.from_spec(spec).build(request)
    np.testing.assert_allclose(reopened.outputs, trained.outputs, rtol=1e-5, atol=1e-6)


def test_a_session_pointing_at_files_keeps_them(tmp_path):
    run = ROOT / "assets" / "models" / "recall-gru"
    session = Session(model={"checkpoint": str(run)}, request={"cell": "gru", "hidden": 64, "task": "recall"},
                      view={"step": 40}, tab="Gradients")
    path = save_session(tmp_path / "s.json", session)
    spec, request, back = open_session(str(path), set())
    assert spec.checkpoint == str(run.resolve()) and request.checkpoint is None
    assert back.view["step"] == 40 and back.tab == "Gradients"


BAD = {
    "missing": (None, "does not exist"),
    "not JSON": ("{'format': 1", "is not valid JSON"),
    "not an object": ("[1, 2]", "expected a JSON object"),
    "another format": ('{"format": "rnn-tui-run", "version": 1}', "not an rnn-tui session"),
    "a newer version": (f'{{"format": "{FORMAT}", "version": 7}}', "version 7 is not one this rnn-tui reads"),
    "version as text": (f'{{"format": "{FORMAT}", "version": "1"}}', "'version' must be a whole number"),
    "hidden as text": (f'{{"format": "{FORMAT}", "version": 1, "request": {{"hidden": "8"}}}}', "request.hidden must be"),
    "unknown cell": (f'{{"format": "{FORMAT}", "version": 1, "request": {{"cell": "transformer"}}}}', "request.cell must be"),
    "a list for a name": (f'{{"format": "{FORMAT}", "version": 1, "request": {{"tokenize": ["char"]}}}}',
                          "request.tokenize must be"),
    "step below 0": (f'{{"format": "{FORMAT}", "version": 1, "view": {{"step": -1}}}}', "view.step must be"),
    "a hold of NaN": (f'{{"format": "{FORMAT}", "version": 1, "panes": {{"Interventions": {{"holds": '
                      f'[{{"kind": "state", "name": "h", "value": "nan"}}]}}}}}}', ".value must be a finite number"),
    "no such tab": (f'{{"format": "{FORMAT}", "version": 1, "tab": "Nowhere"}}', "is not one of States"),
    "its run is gone": (f'{{"format": "{FORMAT}", "version": 1, "model": {{"checkpoint": "gone-run"}}}}',
                        "the model it points to is gone"),
    "its weights are gone": (f'{{"format": "{FORMAT}", "version": 1, "model": {{"weights": "/no/such.pt"}}}}',
                             "the model it points to is gone"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_session_file_is_one_line_and_exit_code_2(tmp_path, capsys, kind):
    text, expected = BAD[kind]
    path = tmp_path / "session.json"
    if text is not None:
        path.write_text(text)
    assert main(["--session", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert expected in err, err


def test_a_folder_or_a_fifo_is_refused(tmp_path, capsys):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, said in ((tmp_path, "is a folder, not a file"), (fifo, "is not a regular file")):
        assert main(["--session", str(path)]) == 2
        assert said in capsys.readouterr().err
    with pytest.raises(SessionError, match="is a folder"):
        read_session(tmp_path)


def test_session_with_model_flags_is_refused(tmp_path, capsys):
    path = save_session(tmp_path / "s.json", Session())
    assert main(["--session", str(path), "--hidden", "8"]) == 2
    assert "leave out --hidden" in capsys.readouterr().err


async def test_in_a_browser_the_session_is_a_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RNN_TUI_SERVED", "1")
    sent = []
    app = ExplorerApp(FakeSource(), TraceRequest(cell="lstm", hidden=4, text="abcd"), screenshot_dir=str(tmp_path))
    monkeypatch.setattr(type(app), "is_web", property(lambda self: True))
    monkeypatch.setattr(app, "deliver_text", lambda data, **kw: sent.append((data.getvalue(), kw)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
    text, kw = sent[0]
    assert json.loads(text)["request"]["text"] == "abcd" and kw["open_method"] == "download"
    assert list(tmp_path.iterdir()) == []


async def test_a_lesson_screen_saves_no_session(tmp_path, monkeypatch):
    from rnn_tui.ui.lesson_app import LessonApp
    from tests.ui.test_lessons_screen import wait_for_view

    monkeypatch.chdir(tmp_path)
    app = LessonApp(EngineSource(dtype="float64"), "memory")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_view(pilot, key="main")
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
    assert list(tmp_path.iterdir()) == []  # its model is the lesson's own: nothing written


async def test_after_training_a_run_opened_by_the_compare_key_is_what_the_session_names(tmp_path, monkeypatch):
    from rnn_tui.engine.assets import MODELS

    monkeypatch.chdir(tmp_path)
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=4, text=TEXT), screenshot_dir=str(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_tab(pilot, steps="5")
        await pilot.press("r")
        await wait_until(pilot, lambda: pane.state.status == "finished")
        await settle(pilot)
        app.screen.run_pane_action("tab-comparepane", "classic")  # the trained weights stay with the source
        await wait_until(pilot, lambda: app.screen.view.trace.config.hidden_size == 64, timeout=60)
        await settle(pilot)
        path = await save_on_screen(pilot, tmp_path)
    assert json.loads(path.read_text())["model"] == {"checkpoint": str((MODELS / "recall-rnn").resolve())}


# ---- sessions under serve: names, not the server's paths ----------------------------------------------
async def served_session(pilot, app, sent) -> dict:
    await pilot.press("S")
    await settle(pilot)
    assert sent, [n.message for n in app._notifications]
    return json.loads(sent[-1][0])


def in_browser(app, monkeypatch, sent, runs: Path | None = None) -> None:
    monkeypatch.setenv("RNN_TUI_SERVED", "1")
    if runs is not None:
        monkeypatch.setenv("RNN_TUI_SERVE_RUNS", str(runs))
    monkeypatch.setattr(type(app), "is_web", property(lambda self: True))
    monkeypatch.setattr(app, "deliver_text", lambda data, **kw: sent.append((data.getvalue(), kw)))


async def test_a_served_session_names_a_shipped_demo_by_its_name_and_reopens_locally(tmp_path, monkeypatch):
    from rnn_tui.engine.assets import MODELS

    monkeypatch.chdir(tmp_path)
    sent = []
    app = ExplorerApp(EngineSource(), TraceRequest(cell="lstm", hidden=4, text=TEXT), screenshot_dir=str(tmp_path))
    in_browser(app, monkeypatch, sent)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.run_pane_action("tab-comparepane", "classic")  # the recall-rnn demo on screen
        await wait_until(pilot, lambda: app.screen.view.trace.config.hidden_size == 64, timeout=60)
        await settle(pilot)
        doc = await served_session(pilot, app, sent)
    assert doc["model"] == {"demo": "recall-rnn"}
    assert str(tmp_path) not in sent[-1][0] and str(MODELS) not in sent[-1][0]  # no path of the server's
    monkeypatch.delenv("RNN_TUI_SERVED")
    path = tmp_path / "s.json"
    path.write_text(sent[-1][0])
    spec, request, session = open_session(str(path), set())
    assert spec.checkpoint == str((MODELS / "recall-rnn").resolve()) and session.tab == "Compare"


async def test_a_served_session_names_a_run_by_its_name_in_the_runs_folder(tmp_path, monkeypatch, capsys):
    import shutil

    from rnn_tui.engine.assets import MODELS

    runs = tmp_path / "served-runs"
    shutil.copytree(MODELS / "recall-gru", runs / "mine")
    monkeypatch.chdir(tmp_path)
    sent = []
    source = EngineSource.from_spec(Spec(checkpoint=str(runs / "mine")))
    app = ExplorerApp(source, source.initial_request(), screenshot_dir=str(tmp_path))
    in_browser(app, monkeypatch, sent, runs=runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.screen.view is not None, timeout=60)
        await settle(pilot)
        doc = await served_session(pilot, app, sent)
    assert doc["model"] == {"run": "mine"} and str(runs) not in sent[-1][0]
    home = tmp_path / "home"
    home.mkdir()
    path = home / "s.json"
    path.write_text(sent[-1][0])
    spec, _, _ = open_session(str(path), set())  # under serve: the served folder's run
    assert spec.checkpoint == str((runs / "mine").resolve())
    monkeypatch.delenv("RNN_TUI_SERVED")
    monkeypatch.delenv("RNN_TUI_SERVE_RUNS")
    assert main(["--session", str(path)]) == 2  # locally, and no such run beside the session: one line
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no such run beside the session file" in err, err
    shutil.copytree(runs / "mine", home / "mine")  # the run put beside it: it opens
    spec, _, _ = open_session(str(path), set())
    assert spec.checkpoint == str((home / "mine").resolve())


@pytest.mark.parametrize("name", ["../mine", "/etc", "~root", ".."])
def test_a_run_named_by_a_session_is_a_name_never_a_path(tmp_path, name):
    path = save_session(tmp_path / "s.json", Session(model={"run": name}))
    with pytest.raises(SessionError, match="must be a run's name|no such run"):
        read_session(path)


async def test_a_served_session_of_a_file_the_operator_opened_is_refused(tmp_path, monkeypatch):
    run = tmp_path / "elsewhere"
    import shutil

    from rnn_tui.engine.assets import MODELS

    shutil.copytree(MODELS / "recall-gru", run)
    sent = []
    source = EngineSource.from_spec(Spec(checkpoint=str(run)))
    app = ExplorerApp(source, source.initial_request(), screenshot_dir=str(tmp_path))
    in_browser(app, monkeypatch, sent)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.screen.view is not None, timeout=60)
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        said = [n.message for n in app._notifications]
    assert sent == [] and any("a file on the server" in m for m in said), said


# ---- what a session and a run do not keep, said when they are saved ---------------------------------
async def test_a_session_says_the_compared_models_training_is_not_kept(tmp_path):
    app = ExplorerApp(FakeSource(), TraceRequest(cell="gru", hidden=6, text="hello there"), screenshot_dir=str(tmp_path))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        app.screen.query_one(TabbedContent).active = "tab-comparepane"
        await settle(pilot)
        compare = app.screen.query_one(ComparePane)
        (await save_on_screen(pilot, tmp_path)).unlink()
        assert not any("training is not kept" in n.message for n in app._notifications)
        compare.partner = "trained"  # r: the other model trained here
        await settle(pilot)
        path = await save_on_screen(pilot, tmp_path)
        said = [n.message for n in app._notifications if str(path) in n.message]
    assert said and "the compared model's training is not kept" in said[-1]
    assert read_session(path).panes["Compare"]["partner"] == "untrained"  # what it reopens, as it said


async def test_w_says_the_run_keeps_no_optimizer_state_and_resume_says_it_too(tmp_path, monkeypatch):
    from rnn_tui.engine.train import Trainer

    monkeypatch.chdir(tmp_path)
    app = ExplorerApp(EngineSource(), TraceRequest(cell="rnn", hidden=4, task="recall", text=""))
    async with app.run_test(size=(120, 40)) as pilot:
        _, run = await train_and_save(pilot, tmp_path)
        said = [n.message for n in app._notifications if n.message.startswith("saved ")]
    assert said and "train --resume starts a fresh optimizer" in said[-1]
    trainer = Trainer.resume(run, steps=40)
    assert any("fresh optimizer" in n and "saved from the explorer (w)" in n for n in trainer.notes), trainer.notes
