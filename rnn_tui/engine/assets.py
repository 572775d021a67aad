"""Where the shipped data lives: demo models, scenarios and texts (`assets/` in the repository,
`rnn_tui/assets/` inside the installed package; the first is a link to the second)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MODELS = ASSETS / "models"
SCENARIOS = ASSETS / "scenarios"
TEXTS = ASSETS / "texts"
DEFAULT_DEMO = MODELS / "chars-lstm"  # what `rnn-tui` opens with no model flags
