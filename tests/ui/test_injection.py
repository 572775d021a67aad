"""The explorer draws no control character it was handed: a scenario whose title, text and
vocabulary are full of ESC sequences, C1 and bidi controls, a run trained on such a text, and
errors that quote such names. Every tab is drawn and the screen checked for raw controls (the
corpus and the check are tests/test_injection.py's)."""

from __future__ import annotations

import json

from textual.widgets import TabbedContent

from rnn_tui.engine.subject import Spec
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.panes import PANES, tab_id
from rnn_tui.ui.source import EngineSource
from tests.test_injection import CORPUS, EVERYTHING, forbidden
from tests.ui.conftest import settle


def screen_text(app) -> str:
    """What the terminal gets, as the screenshot records it (Rich's SVG of the same segments)."""
    return app.export_screenshot()


async def every_tab_is_clean(pilot, where: str) -> None:
    app = pilot.app
    for cls in PANES:
        app.screen.query_one(TabbedContent).active = tab_id(cls)
        await settle(pilot)
        bad = forbidden(screen_text(app))
        assert not bad, f"{where}, {cls.TITLE} tab: raw {bad} on screen"


def hostile_scenario(tmp_path):
    text = "ab" + "".join(ch for ch in EVERYTHING if ch not in "\x00\r") + "ab"
    doc = (f"title = {json.dumps(EVERYTHING)}\n[model]\ncell = \"lstm\"\nhidden_size = 3\n"
           f"[input]\ntext = {json.dumps(text)}\nvocab = {json.dumps(sorted(set(text)))}\n")  # fmt: skip
    path = tmp_path / "hostile.toml"
    path.write_text(doc, encoding="utf-8")
    return path


async def test_a_hostile_scenario_is_drawn_escaped_in_every_tab(tmp_path):
    source = EngineSource.from_spec(Spec(scenario=str(hostile_scenario(tmp_path))))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert app.screen.view is not None, app.screen.error
        assert "\\x1b]0;owned\\x07" in app.screen.view.trace.extras["title"]  # shown, escaped
        await every_tab_is_clean(pilot, "scenario")


async def test_a_run_trained_on_a_hostile_text_is_drawn_escaped(tmp_path):
    from rnn_tui.cli import main

    text = tmp_path / "text.txt"
    text.write_text(("the cat sat " + "".join(CORPUS[:8]).replace("\x00", "")) * 30, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--task", "chars", "--text", str(text), "--hidden", "6", "--steps", "2", "--batch", "4",
                 "--seq-len", "12", "--snapshot-every", "1", "--quiet", "--out", str(run)]) == 0  # fmt: skip
    source = EngineSource.from_spec(Spec(checkpoint=str(run), input="the c\x1bt"))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.view is not None, app.screen.error
        await every_tab_is_clean(pilot, "run")


async def test_errors_that_quote_a_hostile_name_are_drawn_escaped(tmp_path):
    bad = tmp_path / f"bad{EVERYTHING.replace(chr(0), '')}.toml"
    bad.write_text("[model\n", encoding="utf-8")
    source = EngineSource.from_spec(Spec(scenario=str(bad)))
    app = ExplorerApp(source, source.initial_request())
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.error and "\\x1b" in app.screen.error
        assert not forbidden(screen_text(app)), "an error drew raw controls"
