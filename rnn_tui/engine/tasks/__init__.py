"""The tasks a model can be trained on: every one generated or read offline, nothing downloaded.

    from rnn_tui.engine.tasks import TASKS, get_task
    task = get_task("recall", distance=30)
    batch = task.sample(32, torch.Generator().manual_seed(0))

`TASKS` lists name -> TaskInfo (description, mode, options) without importing torch, so
`rnn-tui tasks` and the UI's task picker stay fast; `get_task` imports the task's module.
"""

from __future__ import annotations

from rnn_tui.engine.tasks.base import (
    IGNORE,
    MODES,
    Batch,
    EncDecBatch,
    EncDecExample,
    Example,
    Task,
    TaskError,
    TrainDefaults,
)
from rnn_tui.engine.tasks.catalog import TASKS, TaskInfo


def get_task(name: str, **options) -> Task:
    """A task by name, with its options (None values mean "the task's default")."""
    info = TASKS.get(name)
    if info is None:
        raise TaskError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(info.options))
    if unknown:
        known = ", ".join(info.options) or "none"
        raise TaskError(f"task {name!r} has no option {unknown[0]!r} (its options: {known})")
    return info.load()(**given)


__all__ = [
    "IGNORE",
    "MODES",
    "TASKS",
    "Batch",
    "EncDecBatch",
    "EncDecExample",
    "Example",
    "Task",
    "TaskError",
    "TaskInfo",
    "TrainDefaults",
    "get_task",
]
