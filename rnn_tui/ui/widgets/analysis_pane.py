"""The base of the analysis tabs (Gradients, Training, Compare, Interventions, Saturation,
Time-lapse): a focusable pane, so its key bindings work (and show in the footer) while its tab
is open, that does its work only while it is on screen.

A subclass implements `refresh_analysis()`: called when the pane is opened, whenever the view
changes while it is shown (a new trace, another step, layer or unit), and when a result of one
of its jobs arrives while it is shown. Anything slow is a `rnn_tui.ui.work.Job`: computed in a
thread worker, kept by the key of what it depends on (a late answer for an old trace is kept
under the old trace's key, never shown for the new one), its failure one line.
"""

from __future__ import annotations

from rnn_tui.ui.keys import KeysUp
from rnn_tui.ui.lab import Lab, lab_for, source_for
from rnn_tui.ui.state import View
from rnn_tui.ui.widgets.pane import Pane


class AnalysisPane(KeysUp, Pane, can_focus=True):
    DEFAULT_CSS = """
    AnalysisPane { height: 1fr; layout: vertical; }
    AnalysisPane:focus { background-tint: $foreground 0%; }
    """

    @property
    def lab(self) -> Lab:
        return lab_for(self)

    @property
    def source(self):
        return source_for(self)

    def opened(self) -> None:
        self.claim_focus()
        self.refresh_analysis()

    def watch_view(self, old: View | None, new: View | None) -> None:
        if self.shown:
            self.refresh_analysis()

    def computed(self, job, key) -> None:
        if self.shown:
            self.refresh_analysis()

    def refresh_analysis(self) -> None:  # pragma: no cover - every subclass overrides it
        """Bring what is drawn up to date with `self.view` (start workers as needed)."""
