"""The tabs of the main screen, in order, named without importing them: a pane's module (and
what it imports: numpy's analysis, plotext's plots, ...) loads when its tab is first opened.

To add a pane: write a `Pane` subclass in its own file under `widgets/` (with TITLE and
DESCRIPTION) and list it here; a test checks that the two agree. A pane that needs more at
construction defines `create(context)` (context: {"tasks": [...]}).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from rnn_tui.ui.widgets.pane import Pane


@dataclass(frozen=True)
class PaneInfo:
    """One tab: where its pane class lives, and what the tab bar and the palette call it."""

    module: str  # under rnn_tui.ui.widgets
    name: str  # the Pane subclass in it
    title: str  # the tab's title (the class's TITLE)
    description: str  # one line for the palette (the class's DESCRIPTION)

    @property
    def tab_id(self) -> str:
        """The id of the pane's tab in the main screen's TabbedContent."""
        return f"tab-{self.name.lower()}"

    def load(self) -> type["Pane"]:
        """The pane class (importing its module the first time)."""
        return getattr(import_module(f"rnn_tui.ui.widgets.{self.module}"), self.name)


PANES: tuple[PaneInfo, ...] = (
    PaneInfo("explore_pane", "ExplorePane", "States",
             "heatmaps of h, c and every gate, and the cell's equations at the current step"),
    PaneInfo("model_pane", "ModelPane", "Model",
             "cell, size, layers, direction, task and tokens; every tensor and the parameter count"),
    PaneInfo("gradients_pane", "GradientsPane", "Gradients",
             "‖dL/dh_t‖ per step, the gradient-flow matrix, step Jacobians, fitted γ and the W_hh spectrum"),
    PaneInfo("training_pane", "TrainingPane", "Training",
             "train the model on its task: live loss curve, metric, pause, stop; the trace follows"),
    PaneInfo("generate_pane", "GeneratePane", "Generate",
             "type a prime and the model writes, token by token, with bars for the top candidates"),
    PaneInfo("compare_pane", "ComparePane", "Compare",
             "two cells side by side on the same input: heatmaps and gradient norms, step for step"),
    PaneInfo("interventions_pane", "InterventionsPane", "Interventions",
             "clamp a gate, pin or zero a unit, edit h_t; see what changes downstream"),
    PaneInfo("saturation_pane", "SaturationPane", "Saturation",
             "the share of each gate's values below 0.1 and above 0.9, per unit and overall"),
    PaneInfo("timelapse_pane", "TimelapsePane", "Time-lapse",
             "scrub through training snapshots: the same sequence's states and gradients as the model learns"),
    PaneInfo("unitfinder_pane", "UnitFinderPane", "Units",
             "unit finder: rank units by how well they follow a feature of the text or a selected span"),
    PaneInfo("presenter_pane", "PresenterPane", "Present",
             "for a projector: zoomed heatmap with values, narration of each step, freeze, high contrast"),
    PaneInfo("lessons_pane", "LessonsPane", "Lessons",
             "guided lessons on live models: memory, BPTT, exploding gradients, gates, task modes, unit finder"),
)


def tab_id(pane: PaneInfo | type) -> str:
    """The id of a pane's tab (from its PaneInfo or its class)."""
    return pane.tab_id if isinstance(pane, PaneInfo) else f"tab-{pane.__name__.lower()}"


def info_of_tab(tab: str) -> PaneInfo | None:
    """The pane of the tab with this id (None for an unknown id); nothing is imported."""
    return next((info for info in PANES if info.tab_id == tab), None)


def pane_of_tab(tab: str) -> type["Pane"] | None:
    """The pane class of the tab with this id (None for an unknown id); imports it if need be."""
    info = info_of_tab(tab)
    return None if info is None else info.load()


def pane_classes() -> list[type["Pane"]]:
    """Every pane class, in tab order (imports every pane module: for the palette and help)."""
    return [info.load() for info in PANES]


def make_pane(cls: type["Pane"], context: dict) -> "Pane":
    create = getattr(cls, "create", None)
    return create(context) if create is not None else cls()
