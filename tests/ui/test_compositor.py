"""The explorer's compositor writes each frame exactly as Textual's own does, while it draws only
the widgets that meet the changed regions."""

from __future__ import annotations

from textual._compositor import Compositor

from rnn_tui.ui.app import ExplorerApp
from rnn_tui.ui.compositor import ChangedOnlyCompositor
from rnn_tui.ui.source import TraceRequest
from tests.ui.conftest import settle
from tests.ui.fakes import FakeSource

TEXT = "the quick brown fox jumps over the lazy dog " * 3


async def test_partial_updates_write_what_textuals_compositor_writes():
    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT))
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        compositor = app.screen._compositor
        assert isinstance(compositor, ChangedOnlyCompositor)
        frames: list[tuple[str, str]] = []
        drawn: list[int] = []
        ours = compositor.render_partial_update

        def both():
            changed = set(compositor._dirty_regions)
            theirs = Compositor.render_partial_update(compositor)  # Textual's, every widget drawn
            compositor._dirty_regions.update(changed)
            seen: list = []
            get_renders = compositor._get_renders

            def counting(crop=None):
                for render in get_renders(crop):
                    seen.append(render)
                    yield render

            compositor._get_renders = counting
            try:
                update = ours()
            finally:
                del compositor._get_renders
            drawn.append(len(seen))
            if update is not None:
                frames.append((update.render_segments(app.console), theirs.render_segments(app.console)))
            return update

        compositor.render_partial_update = both
        for keys in (["right"] * 4, ["down"] * 3, ["m"], ["right"] * 2, ["left"], ["e"], ["right"]):
            await pilot.press(*keys)
            await pilot.pause()
        assert len(frames) >= 5
        for k, (a, b) in enumerate(frames):
            assert a == b, f"frame {k} differs"
        assert min(drawn) < len(compositor.visible_widgets)  # some widgets were left undrawn


async def test_whole_frames_are_cut_as_textual_cuts_them():
    app = ExplorerApp(FakeSource(), TraceRequest(text=TEXT))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for keys in ([], ["right"] * 3, ["m"], ["tab"], ["e"]):
            await pilot.press(*keys)
            await pilot.pause()
            compositor = app.screen._compositor
            crop = compositor.size.region
            ours = compositor._render_chops(crop, lambda y: True)
            theirs = Compositor._render_chops(compositor, crop, lambda y: True)
            assert [{x: list(s) for x, s in line.items()} for line in ours] == \
                   [{x: list(s) for x, s in line.items()} for line in theirs]
