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


# ---- keys ------------------------------------------------------------------------------------------------
def app_on(**request) -> ExplorerApp:
    request.setdefault("hidden", 12)
    request.setdefault("text", "hello world, hello recurrent world")
    return ExplorerApp(FakeSource(), TraceRequest(**request))


def burst(app, *keys: str) -> None:
    """Keys as a terminal delivers a fast typist's: all queued before the first is handled
    (pilot.press waits for each key to be handled before sending the next)."""
    from textual import events

    chars = {"enter": "\r", "backspace": "\x7f", "escape": "\x1b", "tab": "\t"}
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else chars.get(key)))


async def open_tab(pilot, tab: str) -> None:
    pilot.app.screen.query_one(TabbedContent).active = tab
    await settle(pilot)


async def test_keys_typed_fast_into_a_model_field_arrive_in_order():
    app = app_on(hidden=128)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        app.screen.query_one("#hidden", Input).focus()
        await pilot.pause()
        burst(app, "backspace", "backspace", "backspace", "3", "2", "enter")
        await settle(pilot)
        assert app.focused.value == "32"
        assert app.screen.request.hidden == 32


@pytest.mark.parametrize("key", ["enter", "escape"])
async def test_leaving_the_input_box_stays_in_the_open_tab(key):
    app = app_on()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-modelpane")
        await pilot.press("i", "x", key)
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-modelpane"
        assert not isinstance(app.focused, Input)


async def test_escape_in_a_training_field_stays_in_the_training_tab():
    app = app_on()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await open_tab(pilot, "tab-trainingpane")
        app.screen.query_one("#train-steps", Input).focus()
        await pilot.press("5", "escape")
        await settle(pilot)
        assert app.screen.query_one(TabbedContent).active == "tab-trainingpane"
        assert not isinstance(app.focused, Input)


def footer_keys(app) -> dict[str, str]:
    return {key: b.binding.description for key, b in app.screen.active_bindings.items() if b.binding.show}


async def test_ctrl_c_quits_even_while_typing_and_the_footer_says_so():
    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert footer_keys(app).get("q") == "quit" and "ctrl+c" not in footer_keys(app)
        await pilot.press("i")
        await pilot.press("end", "q")  # q is a letter in the box
        assert app.focused.value.endswith("q") and app.is_running
        assert footer_keys(app).get("ctrl+c") == "quit"
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running


async def test_ctrl_c_quits_from_the_maps():
    app = app_on()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running
