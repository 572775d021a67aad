"""A scrollable block of pre-wrapped lines, drawn with the line API from cached strips.

The panes that change on every step (equations, the token strip, the legend, the status bar)
hand it lines as tuples of (text, style) pieces. A line that did not change keeps its Strip (and
Textual's filter cache on it), and only the lines that changed are repainted — far cheaper than
re-wrapping a Rich Text or Content on every keypress. While the view has nothing for Textual's
per-line styling pass to do (no border, padding, tint, opacity or scrollbar), `render_lines` hands
over these strips as they are: that pass would copy every repainted line into a new Strip, so
the copy's rendered text and cut pieces would be made again on every step.
"""

from __future__ import annotations

from functools import lru_cache

from rich.segment import Segment
from rich.style import Style
from textual.filter import ANSIToTruecolor
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rnn_tui.ui.compositor import repaint


def finish_strips(widget, strips: list[Strip], crop: Region) -> list[Strip]:
    """What remains of Textual's styling pass for a `plain_box` widget's own lines: its line
    filters (a theme's dimming, mono) and the crop to the part asked for."""
    filters = widget.get_line_filters()
    if filters:
        background = widget.background_colors[1]
        for line_filter in filters:
            strips = [strip.apply_filter(line_filter, background) for strip in strips]
    x1, x2 = crop.column_span
    if (x1, x2) != (0, widget.size.width):
        strips = [strip.crop(x1, x2) for strip in strips]
    return strips


def fit(strip: Strip, width: int, style: Style) -> Strip:
    """`strip.adjust_cell_length(width, style)`, but the strip itself where it fits already:
    Textual would keep the strip in its own cache, a cycle that only the garbage collector frees
    (a step's lines are thousands of objects: collections of ~20 ms)."""
    return strip if strip.cell_length == width else strip.adjust_cell_length(width, style)


def plain_box(widget) -> bool:
    """Textual's styling pass (`Widget.render_lines`) would leave this widget's lines as they
    are: no border, outline, padding, tint, text opacity, opacity or hatch."""
    styles = widget.styles
    return not (any(edge for edge, _ in styles.border) or any(edge for edge, _ in styles.outline)
                or any(styles.padding) or styles.tint.a or styles.text_opacity != 1 or widget.opacity != 1
                or (styles.has_rule("hatch") and styles.hatch != "none"))


Piece = tuple[str, "Style | str"]  # text, and a Rich Style or a style string ("bold", "dim")
Line = tuple[Piece, ...]


@lru_cache(maxsize=256)
def _parse(spec: str) -> Style:
    return Style.parse(spec) if spec else Style()


class LinesView(ScrollView, can_focus=False):
    DEFAULT_CSS = """
    LinesView { height: 1fr; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Line] = []
        self._base: Style | None = None
        self._combined: dict[Style | str, Style] = {}
        self._drawn: dict[int, Strip] = {}  # row -> its strip as drawn at `_drawn_at`
        self._drawn_at: tuple | None = None  # (scroll x, width, base style) those strips are for

    @property
    def lines(self) -> list[Line]:
        return self._lines

    def set_lines(self, lines: list[Line]) -> None:
        old = self._lines
        self._lines = list(lines)
        # lines are wrapped to the width already: only their number sets the virtual size, so a
        # new number of a different width does not cost a layout of the whole screen
        width, height = self.size  # a compositor lookup each time it is read: once
        size = Size(width, len(self._lines))
        if size != self.virtual_size:
            self.virtual_size = size
            self._drawn.clear()
            self.refresh()
            return
        top = self.scroll_offset.y
        drawn = self._drawn
        changed = []
        for i, line in enumerate(self._lines):
            if i >= len(old) or old[i] != line:
                drawn.pop(i, None)
                if 0 <= i - top < height:
                    changed.append(Region(0, i - top, width, 1))
        if changed:
            repaint(self, *changed)

    def get_line_filters(self):
        """The app's filters, less the ANSI-to-truecolor conversion (as the heatmaps): the styles
        drawn here are the theme's (truecolor, or under an ANSI theme meant as ANSI), and that
        filter would walk every segment of every line repainted on a step. NO_COLOR's monochrome
        filter still applies."""
        return [f for f in super().get_line_filters() if not isinstance(f, ANSIToTruecolor)]

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._combined.clear()
        self._drawn.clear()
        self._base = None

    def _style(self, style: Style | str) -> Style:
        combined = self._combined.get(style)
        if combined is None:
            if self._base is None:
                self._base = self.rich_style
            combined = self._combined[style] = self._base + (
                style if isinstance(style, Style) else _parse(style))
        return combined

    def _strip(self, line: Line) -> Strip:
        style_of = self._style
        segments: list[Segment] = []
        texts: list[str] = []
        last = None
        for text, style in line:  # neighbours in one style are one segment: less to cut and write
            if style is not last and texts:
                segments.append(Segment("".join(texts), style_of(last)))
                texts = []
            texts.append(text)
            last = style
        if texts:
            segments.append(Segment("".join(texts), style_of(last)))
        return Strip(segments)

    def render_lines(self, crop: Region) -> list[Strip]:
        """The lines as `render_line` draws them, without Textual's styling pass while it would
        change nothing (see `plain_box`; with a scrollbar shown, Textual's own path)."""
        if self.scrollbar_gutter.width or self.scrollbar_gutter.height or not plain_box(self):
            return super().render_lines(crop)
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        line_at = self._line_at
        return finish_strips(self, [line_at(y + scroll_y, scroll_x, width) for y in crop.line_range], crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        return self._line_at(y + scroll_y, scroll_x, self.size.width)

    def _line_at(self, i: int, scroll_x: int, width: int) -> Strip:
        """Row i of the lines, cut or padded to the view at `scroll_x` (kept until it changes)."""
        if self._base is None:
            self._base = self.rich_style
        at = (scroll_x, width, self._base)
        if at != self._drawn_at:
            self._drawn.clear()
            self._drawn_at = at
        strip = self._drawn.get(i)
        if strip is None:
            if i >= len(self._lines):
                strip = Strip.blank(width, self._base)
            else:
                strip = self._strip(self._lines[i])
                if scroll_x or strip.cell_length != width:
                    strip = strip.crop_extend(scroll_x, scroll_x + width, self._base)
            self._drawn[i] = strip
        return strip
