"""The README's two set-up commands, and CI running the same test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    ")]


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = setup_commands()
    assert len(commands) == 2
    explore, test = commands
    assert explore.endswith("rnn-tui") and "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci


def test_readme_names_only_shipped_assets():
    text = (ROOT / "README.md").read_text()
    for path in re.findall(r"assets/[\w./-]+", text):
        assert (ROOT / path.rstrip(".")).exists(), path
