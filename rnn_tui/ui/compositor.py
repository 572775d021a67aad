"""A compositor that draws, on a partial update, only the widgets that meet what changed, and
cuts a widget's line into pieces only where a widget in front has not covered them already.

Textual's compositor crops a partial update to the union of the changed regions: on a step the
status line (top), the token strip and the heatmap's rows (bottom) make that union the whole
screen, so every widget on it was asked for its lines again, the tab bar and the footer
included, though none of their lines is written. Here a widget is drawn only when its visible
region meets one of the changed regions. The lines written are the same: a line of a widget that
meets no changed region lies outside every span the update writes (the update writes, on each
line, only the pieces that meet a span, and a piece lies within one widget's region).

A widget's clip is its container's area (the footer's is the whole screen): what it shows is
its region within that clip, and that is what must meet a changed region.

Nor is a widget drawn for a changed region that a widget drawn before it (in front) holds whole:
the front widget takes every piece there, so a container is not drawn for the changes of the
widgets inside it (the equations' bordered pane was drawn on every step for its border, ~0.2 ms,
though none of it is written).

Widgets are composed front to back, and a piece of a line goes to the first widget that covers
it. The containers behind the panes (and the screen) cover every line of the screen, but their
pieces are nearly all taken by the widgets in front: Textual cut each of their lines into pieces
anyway (~450 cuts a step at 200x60, each a new Strip). Here a line is cut only when one of its
pieces is still free (a count per line answers at once for a line whose pieces are all taken);
the pieces kept are the same.

A partial update is written as Textual writes it, except that a piece of a line that starts
before a changed span is cut at the span (Textual writes it from its start), and the cursor moves
are written as text. A widget that knows its changed cells (the heatmaps: on a step only the old
and the new step's columns change) may answer `render_changed` with lines exact only inside the
changed regions: its `SparseStrip` lines name the pieces that lie there, and only those are
written. A piece may hold several cells apart on its line, with cursor moves forward (CUF)
between them: one cursor move per line, not one per cell.

The changed regions of a step are mostly tall and thin (one step's column of each heatmap
panel, ~45 lines): Textual turned each into a span on every line it covers, then sorted and
merged the spans of each line. Here the regions that span the same lines are merged once, and
their spans shared by those lines (`line_spans`).
"""

from __future__ import annotations

from typing import Callable, Sequence

from rich.console import Console
from textual._compositor import ChopsUpdate, Compositor
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


Spans = list[tuple[int, int]]  # (x1, x2) on one line, in order, apart


def merged(spans: Spans) -> Spans:
    """Spans in order, those that overlap or touch joined (as Textual's `_regions_to_spans`)."""
    if len(spans) == 1:
        return spans
    spans = sorted(spans)
    out = [spans[0]]
    for x1, x2 in spans[1:]:
        last1, last2 = out[-1]
        if x1 <= last2:
            if x2 > last2:
                out[-1] = (last1, x2)
        else:
            out.append((x1, x2))
    return out


def line_spans(regions) -> dict[int, Spans]:
    """{line: its spans} of the lines the regions cover, lines in order: what Textual's
    `_regions_to_spans` yields, grouped by line. The regions that span the same lines are merged
    once for all of them (the lists are shared: read them only)."""
    bands: dict[tuple[int, int], Spans] = {}
    for x, y, width, height in regions:
        if width > 0 and height > 0:
            bands.setdefault((y, height), []).append((x, x + width))
    lines: dict[int, Spans] = {}
    get = lines.get
    for (y, height), spans in bands.items():
        spans = merged(spans)
        for line in range(y, y + height):
            got = get(line)
            lines[line] = spans if got is None else merged(got + spans)
    return {y: lines[y] for y in sorted(lines)}


_FORWARD: dict[int, str] = {}


def forward(columns: int) -> str:
    """The cursor moved `columns` to the right (CUF), as text."""
    text = _FORWARD.get(columns)
    if text is None:
        text = _FORWARD[columns] = f"\x1b[{columns}C" if columns else ""
    return text


class SparseStrip:
    """A line known only inside the regions that changed: `pieces` are (x, terminal text) of
    what lies there, all that a partial update writes of it; `line()` draws it whole (wanted
    only where a widget in front cuts the line)."""

    __slots__ = ("cell_length", "pieces", "line")

    def __init__(self, cell_length: int, pieces: list[tuple[int, str]], line: Callable[[], Strip]) -> None:
        self.cell_length = cell_length
        self.pieces = pieces  # (x, rendered text), each piece inside a changed region
        self.line = line


class SpanUpdate(ChopsUpdate):
    """Textual's ChopsUpdate, each piece cut to the span it meets; the spans given by line."""

    def __init__(self, chops: list[dict], by_line: dict[int, Spans], chop_ends: list[list[int]]) -> None:
        self.chops = chops
        self.by_line = by_line
        self.chop_ends = chop_ends

    @property
    def spans(self) -> list[tuple[int, int, int]]:
        """(y, x1, x2) of each span, as Textual's ChopsUpdate has them."""
        return [(y, x1, x2) for y, spans in self.by_line.items() for x1, x2 in spans]

    def render_segments(self, console: Console) -> str:
        sequences: list[str] = []
        append = sequences.append
        chops, chop_ends = self.chops, self.chop_ends
        by_line = self.by_line
        last_y = next(reversed(by_line))
        for y, spans in by_line.items():
            row = y + 1
            for end, (x, strip) in zip(chop_ends[y], chops[y].items()):
                if strip is None:
                    continue
                if isinstance(strip, SparseStrip):  # its pieces lie inside the changed regions
                    if any(x < x2 and end > x1 for x1, x2 in spans):
                        append("".join([f"\x1b[{row};{x + px + 1}H{text}" for px, text in strip.pieces]))
                    continue
                for x1, x2 in spans:
                    if x >= x2 or end <= x1:
                        continue
                    if x >= x1 and end <= x2:
                        append(f"\x1b[{row};{x + 1}H")
                        append(strip.render(console))
                    else:
                        start = max(x, x1)
                        append(f"\x1b[{row};{start + 1}H")
                        append(strip.crop(start - x, min(end, x2) - x).render(console))
            if y != last_y:
                append("\n")
        return "".join(sequences)

    def __rich_console__(self, console, options):
        """(Textual writes `render_segments`; as a Rich renderable, the sparse lines are drawn whole.)"""
        self.chops = [{x: strip.line() if isinstance(strip, SparseStrip) else strip for x, strip in line.items()}
                      for line in self.chops]
        yield from super().__rich_console__(console, options)


class ChangedOnlyCompositor(Compositor):
    def __init__(self) -> None:
        super().__init__()
        self._changed: list[Region] | None = None  # the regions of the partial update being drawn
        self._changed_lines: dict[int, Spans] | None = None  # and their spans, by line

    def render_partial_update(self) -> SpanUpdate | None:
        """Textual's `render_partial_update`, written as a `SpanUpdate`."""
        update_regions = self._dirty_regions.copy()
        self._dirty_regions.clear()
        if not update_regions:
            return None
        crop = Region.from_union(update_regions).intersection(self.size.region)
        by_line = line_spans(update_regions)
        if not by_line:
            return None
        self._changed = list(update_regions)
        self._changed_lines = by_line
        try:
            chops = self._render_chops(crop, by_line.__contains__)
        finally:
            self._changed = self._changed_lines = None
        return SpanUpdate(chops, by_line, [cut_set[1:] for cut_set in self.cuts])

    def _get_renders(self, crop: Region | None = None):
        changed = self._changed
        if not changed or crop is None:
            yield from super()._get_renders(crop)
            return
        intersection = Region.intersection
        # changed lines above each line: a widget on none of them is passed over at once
        lines = self._changed_lines or {}
        above = [0]
        height = self.size.height
        for y in range(height):
            above.append(above[-1] + (y in lines))
        # the changed regions that no widget drawn so far (in front) holds whole: a widget
        # behind one that holds a region adds nothing to it (the front widget takes every piece
        # there), so a container is not drawn for the changes of the widgets inside it
        open_regions = list(changed)
        for widget, (region, clip) in self.visible_widgets.items():
            # what of the widget is on screen (a widget's clip is its container's area: the
            # footer's is the whole screen)
            shown = intersection(region, clip)
            if above[min(shown.bottom, height)] == above[min(max(shown.y, 0), height)]:
                continue
            overlaps = shown.overlaps
            if not any(overlaps(r) for r in open_regions):
                continue
            holds = shown.contains_region
            open_regions = [r for r in open_regions if not holds(r)]
            render_changed = getattr(widget, "render_changed", None)
            if render_changed is not None and clip.contains_region(region):
                offset = -region.offset
                local = [r.intersection(region).translate(offset) for r in changed if overlaps(r)]
                yield region, clip, render_changed(Region(0, 0, region.width, region.height), local)
            elif clip.contains_region(region):
                yield region, clip, widget.render_lines(Region(0, 0, region.width, region.height))
            else:
                x, y, width, height = region.intersection(clip)
                if width and height:
                    yield region, clip, widget.render_lines(Region(x - region.x, y - region.y, width, height))

    def _render_chops(self, crop: Region, is_rendered_line: Callable[[int], bool]) -> list[dict]:
        """Textual's `Compositor._render_chops`, less the cutting of lines whose pieces are all
        taken already."""
        cuts = self.cuts
        chops: list[dict] = [dict.fromkeys(cut_set[:-1]) for cut_set in cuts]
        free = [len(cut_set) - 1 for cut_set in cuts]  # per line, its pieces not yet taken
        intersection = Region.intersection
        for region, clip, strips in self._get_renders(crop):
            render_region = intersection(region, clip)
            render_x = render_region.x
            first_cut, last_cut = render_region.column_span
            for y, strip in zip(render_region.line_range, strips):
                if not free[y] or not is_rendered_line(y):
                    continue  # every piece of this line is a front widget's, or it is not written
                chops_line = chops[y]
                final_cuts = [cut for cut in cuts[y] if last_cut >= cut >= first_cut]
                get = chops_line.get
                if all(get(cut) is not None for cut in final_cuts[:-1]):
                    continue  # every piece of this widget's part of the line is a front widget's
                if len(final_cuts) == 2 and final_cuts[1] - render_x == strip.cell_length:
                    pieces: Sequence = (strip,)  # one piece: the strip (Strip.divide would keep
                    # [strip] in the strip's own cache, a cycle only the collector frees)
                else:
                    if isinstance(strip, SparseStrip):  # a widget in front cuts it: the whole line
                        strip = strip.line()
                    pieces = strip.divide([cut - render_x for cut in final_cuts[1:]])
                for cut, piece in zip(final_cuts, pieces):
                    if get(cut) is None:
                        chops_line[cut] = piece
                        free[y] -= 1
        return chops


def repaint(widget: Widget, *regions: Region) -> None:
    """`widget.refresh(*regions)`, handed to its screen at once. Textual's `refresh` wakes the
    widget's own message loop (a Prompt, then its idle), which posts an Update for the screen:
    two messages and a task switch for each widget repainted, five widgets on a step."""
    screen = widget.screen if widget.is_mounted else None
    if not regions or screen is None or not widget.display or screen not in screen._compositor:
        widget.refresh(*regions)
        return
    # what `Widget.refresh(*regions)` does, less the wait for the widget's idle
    widget._layout_cache.clear()
    widget._set_dirty(*regions)
    widget.clear_cached_dimensions()
    widget._rich_style_cache.clear()
    # and what the widget's idle (`_check_refresh`) and the screen's Update handler do
    screen._dirty_widgets.add(widget)
    screen.check_idle()
