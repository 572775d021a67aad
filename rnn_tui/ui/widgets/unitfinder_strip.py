"""A unit's activation as colour over the text it read (Karpathy's "visualizing and understanding
recurrent networks" pictures, in a terminal): each character on a background from the heatmaps'
diverging palette, wrapped to the widget's width; in monochrome, a glyph ramp under each line.

`strip_lines(tokens, values, width, palette)` is the pure function; `UnitStrip` shows one
`UnitFinderResult`'s best units, one after the other.
"""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from rnn_tui.ui.palette import LEVELS, Palette, Scale, glyph, palette_for_theme

VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def _ramp(stops: tuple[str, ...]) -> list[Color]:
    rgb = np.array([Color.parse(s).get_truecolor()[:3] for s in stops], dtype=np.float64)
    pos = np.linspace(0.0, 1.0, len(stops))
    return [Color.from_rgb(*[int(round(np.interp(x, pos, rgb[:, k]))) for k in range(3)])
            for x in np.linspace(0.0, 1.0, LEVELS)]


def strip_lines(tokens: list[str], values: np.ndarray, width: int, palette: Palette,
                scale: Scale | None = None, mode: str = "colour") -> list[Text]:
    """Tokens coloured by value, wrapped to `width` cells. Without background colours (a
    monochrome palette, mode "glyph"; 16 colours, mode "glyph+colour") a second line of glyphs
    (▁..█, coloured in glyph+colour) sits under each line of text."""
    values = np.asarray(values, dtype=np.float64)
    if scale is None:
        finite = np.abs(values[np.isfinite(values)])
        m = float(finite.max()) if finite.size else 1.0
        scale = Scale("diverging", -(m or 1.0), m or 1.0)
    levels = scale.levels(values)
    colours = _ramp(palette.diverging)
    glyphs = palette.glyphs or mode != "colour"
    lines: list[Text] = []
    text, marks, used = Text(no_wrap=True), Text(no_wrap=True), 0
    for tok, level in zip(tokens, levels.tolist()):
        shown = "".join(VISIBLE.get(ch, ch) for ch in tok) or "∅"
        w = cell_len(shown)
        if used + w > width and used > 0:
            lines.append(text)
            if glyphs:
                lines.append(marks)
            text, marks, used = Text(no_wrap=True), Text(no_wrap=True), 0
        if glyphs:
            text.append(shown)
            coloured = mode == "glyph+colour" and not palette.glyphs
            marks.append(glyph(level) * w, Style(color=colours[level] if level >= 0 else None) if coloured else "")
        else:
            bg = colours[level] if level >= 0 else Color.parse(palette.nan)
            r, g, b = bg.get_truecolor()[:3]
            fg = "black" if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else "white"
            text.append(shown, Style(bgcolor=bg, color=fg))
        used += w
    if used:
        lines.append(text)
        if glyphs:
            lines.append(marks)
    return lines


class UnitStrip(Widget):
    """The best units of a unit-finder result, each coloured over the text."""

    DEFAULT_CSS = """
    UnitStrip { height: auto; }
    """

    result = reactive(None, always_update=True)  # a UnitFinderResult (holds arrays: never compared)
    units: reactive[int] = reactive(2)  # how many of the best units to show
    max_tokens: reactive[int] = reactive(400)

    def render(self) -> Text:
        return self._text(self.size.width)

    def _text(self, width: int) -> Text:
        res = self.result
        if res is None:
            return Text("")
        from rnn_tui.ui.widgets.heatmap_view import render_mode

        palette = palette_for_theme(self.app.theme)
        mode = render_mode(self.app, palette)
        width = max(width, 10)
        out = Text()
        n = min(self.max_tokens, len(res.tokens))
        out.append(f"the feature: {res.description}\n", style="bold")
        for line in strip_lines(res.tokens[:n], res.values[:n], width, palette, mode=mode):
            out.append_text(line)
            out.append("\n")
        for k, score in enumerate(res.scores[: self.units]):
            key = (score.layer, score.direction, score.matrix, score.unit)
            if key not in res.best:
                continue
            out.append(f"{score.name}  r = {score.r:+.3f} with {res.description}\n", style="bold")
            for line in strip_lines(res.tokens[:n], res.best[key][:n], width, palette, mode=mode):
                out.append_text(line)
                out.append("\n")
        return out

    def get_content_height(self, container, viewport, width: int) -> int:
        res = self.result
        if res is None:
            return 1
        return max(1, len(self._text(width).plain.splitlines()))
