"""Where the shipped data lives: demo models, scenarios and texts (`assets/` in the repository,
`rnn_tui/assets/` inside the installed package; the first is a link to the second)."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
MODELS = ASSETS / "models"
SCENARIOS = ASSETS / "scenarios"
TEXTS = ASSETS / "texts"
DEFAULT_DEMO = MODELS / "chars-lstm"  # what `rnn-tui` opens with no model flags


def demos() -> dict[tuple[str, str, str], Path]:
    """The shipped demo runs by (task, cell, activation): the trained partner the Compare tab
    offers for a cell on a task. Reads each run's config.json (JSON only, no torch); a folder
    that is not a readable run is left out."""
    from rnn_tui.engine.checkpoint import read_config
    from rnn_tui.engine.errors import EngineError

    found: dict[tuple[str, str, str], Path] = {}
    if not MODELS.is_dir():
        return found
    for folder in sorted(MODELS.iterdir()):
        if not (folder / "config.json").is_file():
            continue
        try:
            info = read_config(folder)
        except (EngineError, OSError):
            continue
        found.setdefault((info.task, info.model.cell, info.model.activation), folder)
    return found


def demo_for(task: str, cell: str, activation: str = "tanh") -> Path | None:
    """The shipped demo run of this cell trained on this task, or None."""
    return demos().get((task, cell, activation if cell == "rnn" else "tanh"))
