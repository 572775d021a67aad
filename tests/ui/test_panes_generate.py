"""The Generate tab: type a prime, tokens arrive one by one from a worker (the explorer keeps
stepping meanwhile), Escape stops, and afterwards the explorer's sequence is the prime and what was
generated, so every tab shows it; every probability is the model's own."""

from __future__ import annotations

import numpy as np
import pytest
from textual.widgets import Input, Static, TabbedContent

import rnn_tui.ui.widgets.generate_pane as generate_pane
from rnn_tui.engine.subject import Spec
from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.source import EngineSource, TraceRequest
from rnn_tui.ui.widgets.generate_pane import GeneratePane
from tests.test_cli import ROOT
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource
from tests.ui.test_panes_training import wait_until

TAB = "tab-generatepane"
CHARS = str(ROOT / "assets/models/chars-lstm")


def chars_app() -> ExplorerApp:
    source = EngineSource.from_spec(Spec(checkpoint=CHARS))
    return ExplorerApp(source, source.initial_request())


async def open_tab(pilot, prime: str = "", length: str = "", seed: str = "") -> GeneratePane:
    await settle(pilot)
    pilot.app.screen.query_one(TabbedContent).active = TAB
    await settle(pilot)
    pane = pilot.app.screen.query_one(GeneratePane)
    pane.query_one("#gen-prime", Input).value = prime
    if length:
        pane.query_one("#gen-length", Input).value = length
    pane.query_one("#gen-seed", Input).value = seed
    return pane


def status(pane) -> str:
    return str(pane.query_one("#gen-status", Static).render())


async def test_greedy_generation_becomes_the_explorers_sequence_and_every_tab_follows(monkeypatch):
    monkeypatch.setattr(generate_pane, "PACE", 0.0)
    app = chars_app()
    async with app.run_test(size=(100, 32)) as pilot:
        pane = await open_tab(pilot, prime="Beautiful is", length="30")
        for _ in range(12):
            await pilot.press("less_than_sign")
        assert pane.settings.temperature == 0.0
        await pilot.press("g")
        await wait_until(pilot, lambda: pane.state.status == "done")
        await settle(pilot)
        generated = "".join(pane._job.vocab[i] for i in pane.state.ids)
        assert len(pane.state.steps) == 30
        text = app.screen.request.text
        assert text == "Beautiful is" + generated and text.startswith("Beautiful is better than ugly.")
        trace = app.screen.view.trace
        assert trace.T == 12 + 30 and "".join(trace.tokens[:12]) == "Beautiful␣is"
        assert "the explorer's sequence is now" in status(pane)
        # every probability the tab showed is the model's own: the trace of the same sequence agrees
        for k, step in enumerate(pane.state.steps):
            z = trace.outputs[12 + k - 1].astype(np.float64)
            p = np.exp(z - z.max())
            p /= p.sum()
            assert step.p == pytest.approx(p[step.id], abs=1e-5)
            assert step.id == int(np.argmax(p))  # greedy
        # another tab shows the same sequence
        app.screen.query_one(TabbedContent).active = "tab-gradientspane"
        await settle(pilot)
        from rnn_tui.ui.widgets.gradients_pane import GradientsPane

        assert app.screen.query_one(GradientsPane).view.trace is trace
        # back in Generate, the bars follow the step, read from the trace's outputs
        app.screen.query_one(TabbedContent).active = TAB
        await settle(pilot)
        await pilot.press("right", "right")
        await pilot.pause()
        bars = str(pane.query_one("#gen-bars", Static).render())
        assert "after step 2" in bars and "▶" in bars


async def test_tokens_arrive_one_by_one_the_loop_stays_free_and_escape_stops():
    app = chars_app()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_tab(pilot, prime="Now", length="2000", seed="3")
        step0 = app.screen.view.step
        await pilot.press("g")
        await wait_until(pilot, lambda: len(pane.state.steps) >= 3)
        seen = len(pane.state.steps)
        assert pane.state.status == "running" and seen < 2000
        await pilot.press("right")  # the explorer steps while the worker generates
        await pilot.pause()
        assert app.screen.view.step == step0 + 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: pane.state.status == "stopped")
        await settle(pilot)
        n = len(pane.state.steps)
        assert seen <= n < 2000 and "stopped after" in status(pane)
        assert app.screen.request.text == "Now" + "".join(pane._job.vocab[i] for i in pane.state.ids)
        assert pane.state.seed == 3
        await pilot.press("escape")  # nothing to stop: Escape does what it does elsewhere, no error
        await pilot.pause()
        pane.query_one("#gen-prime", Input).focus()
        await pilot.press("escape")  # out of the prime box, and still in this tab
        await pilot.pause()
        assert app.screen.focused is pane and app.screen.query_one(TabbedContent).active == TAB


async def test_the_same_seed_repeats_a_sample(monkeypatch):
    monkeypatch.setattr(generate_pane, "PACE", 0.0)
    app = chars_app()
    async with app.run_test(size=(100, 32)) as pilot:
        pane = await open_tab(pilot, prime="Errors", length="20", seed="11")
        samples = []
        for _ in range(2):
            pane.query_one("#gen-prime", Input).value = "Errors"
            await pilot.press("g")
            await wait_until(pilot, lambda: pane.state.status == "done")
            await settle(pilot)
            samples.append(pane.state.ids)
        assert samples[0] == samples[1]


async def test_bad_primes_and_models_that_do_not_generate_get_one_line():
    app = chars_app()
    async with app.run_test(size=(100, 32)) as pilot:
        pane = await open_tab(pilot, prime="Now~")
        await pilot.press("g")
        await pilot.pause()
        assert pane.state.status == "failed" and "'~' is not in the model's vocabulary" in status(pane)
        pane.query_one("#gen-length", Input).value = "0"
        pane.query_one("#gen-prime", Input).value = "Now"
        await pilot.press("g")
        await pilot.pause()
        assert "length must be from 1" in status(pane)
    app = ExplorerApp(FakeSource(), TraceRequest(text="hello world", hidden=4, bidirectional=True))
    async with app.run_test(size=(100, 32)) as pilot:
        pane = await open_tab(pilot)
        assert "cannot generate text: it is bidirectional" in status(pane)  # said on opening the tab
        await pilot.press("g")
        await pilot.pause()
        assert "cannot generate text: it is bidirectional" in status(pane)


async def test_a_fresh_model_keeps_its_sequence_when_a_prime_would_change_its_vocabulary(monkeypatch):
    monkeypatch.setattr(generate_pane, "PACE", 0.0)
    source = FakeSource()
    app = ExplorerApp(source, TraceRequest(text="hello world", hidden=4))
    async with app.run_test(size=(100, 32)) as pilot:
        pane = await open_tab(pilot, prime="he", length="3", seed="1")
        await pilot.press("g")
        await wait_until(pilot, lambda: pane.state.status == "done")
        await settle(pilot)
        assert app.screen.request.text == "hello world"  # "he" + 3 tokens would be another vocabulary
        assert "it stays here" in status(pane)
        pane.query_one("#gen-prime", Input).value = ""  # from the explorer's own sequence: same tokens
        await pilot.press("g")
        await wait_until(pilot, lambda: pane.state.status == "done")
        await settle(pilot)
        assert app.screen.request.text.startswith("hello world") and len(app.screen.request.text) == 14
        assert app.screen.view.trace.T == 14
