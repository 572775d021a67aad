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

Widgets are composed front to back, and a piece of a line goes to the first widget that covers
it. The containers behind the panes (and the screen) cover every line of the screen, but their
pieces are nearly all taken by the widgets in front: Textual cut each of their lines into pieces
anyway (~450 cuts a step at 200x60, each a new Strip). Here a line is cut only when one of its
pieces is still free (a count per line answers at once for a line whose pieces are all taken);
the pieces kept are the same.
"""

from __future__ import annotations

from typing import Callable

from textual._compositor import Compositor
from textual.geometry import Region


class ChangedOnlyCompositor(Compositor):
    def __init__(self) -> None:
        super().__init__()
        self._changed: list[Region] | None = None  # the regions of the partial update being drawn

    def render_partial_update(self):
        self._changed = list(self._dirty_regions)
        try:
            return super().render_partial_update()
        finally:
            self._changed = None

    def _get_renders(self, crop: Region | None = None):
        changed = self._changed
        if not changed or crop is None:
            yield from super()._get_renders(crop)
            return
        intersection = Region.intersection
        for widget, (region, clip) in self.visible_widgets.items():
            # what of the widget is on screen (a widget's clip is its container's area: the
            # footer's is the whole screen)
            overlaps = intersection(region, clip).overlaps
            if not any(overlaps(r) for r in changed):
                continue
            if clip.contains_region(region):
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
                for cut, piece in zip(final_cuts, strip.divide([cut - render_x for cut in final_cuts[1:]])):
                    if get(cut) is None:
                        chops_line[cut] = piece
                        free[y] -= 1
        return chops
