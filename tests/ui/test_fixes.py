"""The explorer does what its flags, keys and labels say: one test per thing a walk through it
found wrong (each failed before its fix)."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TabbedContent

from rnn_tui.cli import build_parser, given_flags, spec_from_args
from rnn_tui.engine.subject import Spec
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.launch import DEMO, with_default_demo
from rnn_tui.ui.source import EngineSource, TraceRequest
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

HAS_DEMO = (DEMO / "model.safetensors").is_file()


def spec_of(argv: list[str]) -> Spec:
    args = build_parser().parse_args(argv)
    return with_default_demo(spec_from_args(args), given_flags(args))


# ---- flags -------------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAS_DEMO, reason="the demo model is not in this checkout")
@pytest.mark.parametrize("argv", [["--hidden", "16"], ["--seed", "0"], ["--layers", "1"], ["--tokenize", "char"]])
def test_a_flag_typed_with_its_default_value_is_a_choice(argv):
    assert spec_of([]).checkpoint == str(DEMO)  # nothing typed: the trained demo
    assert spec_of(["--device", "cpu"]).checkpoint == str(DEMO)  # where to compute is no choice of model
    assert spec_of(argv).checkpoint is None


async def test_the_explorer_opens_the_model_hidden_16_asks_for():
    source = EngineSource.from_spec(spec_of(["--hidden", "16"]))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        cfg = app.screen.view.trace.config
        assert (cfg.hidden_size, cfg.cell) == (16, "lstm")
        assert source.run_directory is None  # not the demo run


# ---- --tokenize word ---------------------------------------------------------------------------------
async def test_words_separated_by_spaces_stay_words_in_the_explorer():
    text = "南开 大学 很 好 ， 我 爱 南开 大学"
    source = EngineSource.from_spec(spec_of(["--tokenize", "word", "--input", text, "--hidden", "4"]))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        trace = app.screen.view.trace
        assert trace.tokens == ["南开", "大学", "很", "好", "，", "我", "爱", "南开", "大学"]
        assert trace.config.vocab_size == 7
