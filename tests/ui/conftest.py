"""Shared set-up for the explorer's tests: a fake trace source (no torch, no training), a
true-colour console whatever the terminal running the tests, and a helper that waits for the
trace worker before anything is asserted or photographed."""

from __future__ import annotations

import asyncio
import inspect
import os

import pytest

# Textual picks its colour system from the environment when an App is created; pin it so
# snapshots and render-mode tests do not depend on the terminal that runs pytest.
os.environ["COLORTERM"] = "truecolor"
os.environ.pop("NO_COLOR", None)

from textual.worker import WorkerCancelled  # noqa: E402

from tests.ui.fakes import FakeSource  # noqa: E402


async def settle(pilot) -> None:
    """Wait until every worker has finished (cancelled ones included) and the screen is drawn."""
    app = pilot.app
    for _ in range(50):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            pass
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            break
    await pilot.pause()


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests in a fresh event loop (Textual's Pilot is async); no plugin needed."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None
