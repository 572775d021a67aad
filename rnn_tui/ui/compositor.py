"""A compositor that draws, on a partial update, only the widgets that meet what changed.

Textual's compositor crops a partial update to the union of the changed regions: on a step the
status line (top), the token strip and the heatmap's rows (bottom) make that union the whole
screen, so every widget on it was asked for its lines again, the tab bar and the footer
included, though none of their lines is written. Here a widget is drawn only when its visible
region meets one of the changed regions. The lines written are the same: a line of a widget that
meets no changed region lies outside every span the update writes (the update writes, on each
line, only the pieces that meet a span, and a piece lies within one widget's region).
"""

from __future__ import annotations

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
        for widget, (region, clip) in self.visible_widgets.items():
            overlaps = clip.overlaps
            if not any(overlaps(r) for r in changed):
                continue
            if clip.contains_region(region):
                yield region, clip, widget.render_lines(Region(0, 0, region.width, region.height))
            else:
                x, y, width, height = region.intersection(clip)
                if width and height:
                    yield region, clip, widget.render_lines(Region(x - region.x, y - region.y, width, height))
