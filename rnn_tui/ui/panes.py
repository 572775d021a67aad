"""The tabs of the main screen, in order. To add a pane: write a `Pane` subclass in its own file
under `widgets/` (with TITLE and DESCRIPTION), import it here and list it in PANES.

Each pane is bound to the screen's `view`, `busy` and `request`; a pane that needs more at
construction defines `create(context)` (context: {"tasks": [...]}).
"""

from __future__ import annotations

from rnn_tui.ui.widgets.compare_pane import ComparePane
from rnn_tui.ui.widgets.explore_pane import ExplorePane
from rnn_tui.ui.widgets.gradients_pane import GradientsPane
from rnn_tui.ui.widgets.interventions_pane import InterventionsPane
from rnn_tui.ui.widgets.lessons_pane import LessonsPane
from rnn_tui.ui.widgets.model_pane import ModelPane
from rnn_tui.ui.widgets.pane import Pane
from rnn_tui.ui.widgets.presenter_pane import PresenterPane
from rnn_tui.ui.widgets.saturation_pane import SaturationPane
from rnn_tui.ui.widgets.timelapse_pane import TimelapsePane
from rnn_tui.ui.widgets.training_pane import TrainingPane
from rnn_tui.ui.widgets.unitfinder_pane import UnitFinderPane

PANES: list[type[Pane]] = [
    ExplorePane,
    ModelPane,
    GradientsPane,
    TrainingPane,
    ComparePane,
    InterventionsPane,
    SaturationPane,
    TimelapsePane,
    UnitFinderPane,
    PresenterPane,
    LessonsPane,
]


def tab_id(cls: type[Pane]) -> str:
    """The id of the pane's tab in the main screen's TabbedContent."""
    return f"tab-{cls.__name__.lower()}"


def pane_of_tab(tab: str) -> type[Pane] | None:
    """The pane class whose tab has this id (None for an unknown id)."""
    return next((cls for cls in PANES if tab_id(cls) == tab), None)


def make_pane(cls: type[Pane], context: dict) -> Pane:
    create = getattr(cls, "create", None)
    return create(context) if create is not None else cls()
