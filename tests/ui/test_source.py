"""The real trace source and the command-line entry: requests become engine Specs, files keep
their model until the shape is changed, and bad flags fail before the terminal is taken."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnn_tui.engine.errors import EngineError
from rnn_tui.engine.subject import Spec
from rnn_tui.ui.launch import DEMO, check, with_default_demo
from rnn_tui.ui.source import FREE_TEXT, EngineSource, SourceError, TraceRequest, shape_fields

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "assets" / "scenarios" / "gru-two-placements.toml"


def test_free_text_builds_a_next_token_model():
    trace = EngineSource().build(TraceRequest(cell="gru", hidden=5, text="abcab"))
    assert trace.config.cell == "gru" and trace.config.hidden_size == 5
    assert trace.tokens == list("abcab") and trace.targets[-1] is None
    assert trace.extras["title"] == "next-token model (untrained)"


def test_a_task_traces_its_example_or_refuses_foreign_tokens():
    source = EngineSource()
    trace = source.build(TraceRequest(task="recall", text="", hidden=8))
    assert trace.config.head == "last" and trace.T > 10
    with pytest.raises(EngineError, match="not in the model's vocabulary"):
        source.build(TraceRequest(task="recall", text="xyz", hidden=8))


@pytest.mark.skipif(not SCENARIO.is_file(), reason="the scenario asset is not there")
def test_a_scenario_is_kept_until_the_shape_changes():
    source = EngineSource.from_spec(Spec(scenario=str(SCENARIO)))
    first = source.initial_request()
    assert first.text == ""  # the scenario's own input
    trace = source.build(first)
    shape = shape_fields(trace.config)
    assert trace.extras["title"] != "next-token model (untrained)"
    same = first.replace(**shape)
    assert source.spec_for(same).scenario == str(SCENARIO)
    with pytest.raises(SourceError, match="scenario sets its own input"):
        source.build(same.replace(text="abc"))
    bigger = same.replace(hidden=shape["hidden"] + 2, text="abc")
    assert source.spec_for(bigger).scenario is None
    fresh = source.build(bigger)
    assert fresh.config.hidden_size == shape["hidden"] + 2 and fresh.tokens == list("abc")


def test_trained_weights_handed_to_the_source_are_used_when_they_fit():
    source = EngineSource()
    request = TraceRequest(cell="rnn", hidden=3, text="abab")
    first = source.build(request)
    source.use_weights({k: v * 0 for k, v in first.params.items()})
    zeroed = source.build(request)
    assert all((v == 0).all() for v in zeroed.params.values())
    other = source.build(request.replace(hidden=4))  # another shape: its own weights
    assert any((v != 0).any() for v in other.params.values())
    source.use_weights(None)  # back to the source's own
    again = source.build(request)
    assert (again.params["weight_hh_l0"] == first.params["weight_hh_l0"]).all()


def test_launch_checks_flags_without_torch(tmp_path):
    with pytest.raises(EngineError, match="unknown theme"):
        check(Spec(), "neon")
    with pytest.raises(EngineError, match="no such file"):
        check(Spec(scenario=str(tmp_path / "missing.toml")), None)
    with pytest.raises(EngineError, match="no such run directory"):
        check(Spec(checkpoint=str(tmp_path / "nope")), None)
    with pytest.raises(EngineError, match="unknown task"):
        check(Spec(task="bogus"), None)
    with pytest.raises(EngineError, match="only one of"):
        check(Spec(scenario="a", weights="b"), None)
    check(Spec(task="recall"), "mono")


def test_no_flags_open_the_trained_demo():
    spec = with_default_demo(Spec())
    if (DEMO / "model.safetensors").is_file():
        assert spec.checkpoint == str(DEMO)
        request = EngineSource.from_spec(spec).initial_request()
        assert request.text == "" and request.task == FREE_TEXT
    assert with_default_demo(Spec(hidden=8)) == Spec(hidden=8)  # a choice made: no demo


@pytest.mark.skipif(not SCENARIO.is_file(), reason="the scenario asset is not there")
async def test_the_explorer_shows_the_shape_a_file_sets():
    from rnn_tui.ui.app import ExplorerApp
    from tests.ui.conftest import settle

    source = EngineSource.from_spec(Spec(scenario=str(SCENARIO)))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.view is not None and screen.error == ""
        cfg = screen.view.trace.config
        assert (screen.request.cell, screen.request.hidden) == (cfg.cell, cfg.hidden_size)
        await pilot.press("right", "down")
        assert screen.view.step == 1 and screen.view.unit == 1


def test_a_scenario_keeps_its_own_float64_in_the_explorer():
    from pathlib import Path

    from rnn_tui.engine.subject import Spec
    from rnn_tui.ui.source import EngineSource, TraceRequest

    path = Path(__file__).resolve().parents[2] / "assets" / "scenarios" / "lstm-one-unit.toml"
    source = EngineSource.from_spec(Spec(scenario=str(path)))
    trace = source.build(TraceRequest(cell="lstm", hidden=1, text=""))
    assert trace.dtype == "float64"


def test_a_request_may_name_a_run_directory_which_keeps_its_own_model_and_task():
    from rnn_tui.engine.assets import MODELS
    from rnn_tui.ui.source import run_request

    source = EngineSource.from_spec(Spec(checkpoint=str(MODELS / "chars-lstm")))
    main = source.build(source.initial_request())
    assert main.extras["task"] == "chars"  # the run's task, where the request says only "text"
    source.use_weights({k: v * 0 for k, v in main.params.items()})  # weights "trained" on screen
    request = run_request(str(MODELS / "recall-rnn"))
    assert (request.cell, request.hidden, request.task, request.text) == ("rnn", 64, "recall", "")
    trace = source.build(request)
    assert trace.config.cell == "rnn" and trace.extras["task"] == "recall"
    assert "trained 1000 steps" in trace.extras["title"]
    assert abs(trace.params["weight_hh_l0"]).max() > 0  # its own weights, not the ones handed over
    fresh = source.build(request.replace(hidden=8))  # another shape asked of a run: a fresh model
    assert fresh.config.hidden_size == 8 and "untrained" in fresh.extras["title"]
    with pytest.raises(EngineError):
        run_request(str(MODELS / "no-such-run"))


def test_a_fresh_request_is_never_the_file_nor_the_weights_trained_here():
    from rnn_tui.engine.assets import MODELS

    source = EngineSource.from_spec(Spec(checkpoint=str(MODELS / "recall-lstm")))
    trained = source.build(source.initial_request())
    request = source.initial_request().replace(**shape_fields(trained.config), task="recall")
    assert "trained 300 steps" in source.build(request).extras["title"]  # same shape: the file's model
    source.use_weights(dict(trained.params))
    fresh = source.build(request.replace(fresh=True))  # what the Compare tab asks for its untrained partner
    assert "untrained" in fresh.extras["title"] and fresh.tokens == trained.tokens
    assert not np.array_equal(fresh.params["weight_hh_l0"], trained.params["weight_hh_l0"])


def test_a_new_vocabulary_is_said_never_silent():
    source = EngineSource()
    request = TraceRequest(cell="rnn", hidden=3, text="abab")
    first = source.build(request)
    assert "assumed" not in first.extras
    assert "assumed" not in source.build(request.replace(text="baba")).extras  # the same tokens
    other = source.build(request.replace(text="abcd"))
    assert "another vocabulary (4 tokens" in other.extras["assumed"]
    assert other.extras["assumed"] in other.extras["notes"]  # the Model tab says it too


def test_trained_weights_never_meet_tokens_they_were_not_trained_on():
    source = EngineSource()
    request = TraceRequest(cell="rnn", hidden=3, text="abab")
    first = source.build(request)
    source.use_weights({k: v * 0 for k, v in first.params.items()})
    # as many tokens, other ones: the ids would mean other things
    same_size = source.build(request.replace(text="cdcd"))
    assert any((v != 0).any() for v in same_size.params.values())
    assert "trained weights are for another vocabulary" in same_size.extras["assumed"]
    bigger = source.build(request.replace(text="abcabc"))
    assert "assumed" in bigger.extras and any((v != 0).any() for v in bigger.params.values())
    kept = source.build(request.replace(text="baab"))  # the trained tokens: the trained weights
    assert all((v == 0).all() for v in kept.params.values()) and "assumed" not in kept.extras


def test_a_prepared_trace_handed_out_again_is_the_vocabulary_trained_on():
    from rnn_tui.serve.prepared import PreparedSource

    source = PreparedSource()
    request = TraceRequest(cell="rnn", hidden=3, text="abab")
    source.prepare(request)
    source.build(request.replace(text="abcd"))
    held = source.build(request)  # the prepared trace again: its tokens are the ones shown
    source.use_weights({k: v * 0 for k, v in held.params.items()})
    kept = source.build(request.replace(text="baab"))
    assert all((v == 0).all() for v in kept.params.values()) and "assumed" not in kept.extras
