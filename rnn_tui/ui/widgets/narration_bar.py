"""One line that says what just happened at the current step ("the forget gate of unit 3 closed:
c dropped from 0.91 to 0.12"), from `rnn_tui.engine.narrate` (numpy only, no torch)."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.ui.state import View


class NarrationBar(Widget):
    """Bound to a View; `frozen` keeps the line of the moment it was frozen."""

    DEFAULT_CSS = """
    NarrationBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    view: reactive[View | None] = reactive(None)
    frozen: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None, classes: str | None = None, wrap: bool = False) -> None:
        super().__init__(id=id, classes=classes)
        self._key: tuple | None = None
        self._line = ""
        self._unit: int | None = None
        self.wrap = wrap  # wrap onto the lines the bar's height allows (the Present tab), else one line

    def unit(self) -> int | None:
        """The unit the line is about (None: no one unit)."""
        self.line()
        return self._unit

    def line(self) -> str:
        """The narration of the view's step (cached per trace, step, layer and direction)."""
        view = self.view
        if view is None:
            return ""
        key = (id(view.trace), view.step, view.layer, view.direction)
        if self.frozen and self._key is not None:
            return self._line
        if key != self._key:
            from rnn_tui.engine.narrate import narrate

            try:
                told = narrate(view.trace, view.step, view.layer, view.direction)
                self._line, self._unit = told.text, told.main.unit
            except ValueError as error:  # an engine error: say it, never crash the bar
                self._line, self._unit = str(error), None
            self._key = key
        return self._line

    def render(self) -> Text:
        out = Text(no_wrap=not self.wrap, overflow="fold" if self.wrap else "ellipsis")
        if self.frozen:
            out.append("❚❚ frozen  ", style="bold reverse")
        out.append(self.line())
        return out
