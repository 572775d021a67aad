"""A terminal, in a few lines, for tests of what the explorer writes: cursor moves (to a place,
and forward), SGR styles and text (what Textual and Rich write into a frame), kept as a grid of
(character, style) cells.
Two writers are equal to a person when they leave equal grids, whatever bytes they used."""

from __future__ import annotations

import re

from rich.cells import cell_len

_TOKEN = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[([0-9;]*)m|\x1b\[(\d*)C|\n|[^\x1b\n]")


class Grid:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[(" ", ())] * width for _ in range(height)]
        self.x = self.y = 0
        self.sgr: tuple[str, ...] = ()  # the SGR parameters written since the last reset

    def feed(self, data: str) -> "Grid":
        for match in _TOKEN.finditer(data):
            row, col, sgr = match.group(1), match.group(2), match.group(3)
            if row is not None:
                self.y, self.x = int(row) - 1, int(col) - 1
            elif sgr is not None:
                self.sgr = () if sgr in ("", "0") else self.sgr + (sgr,)
            elif match.group(4) is not None:  # the cursor forward (CUF), writing nothing
                self.x += int(match.group(4) or 1)
            elif match.group(0) == "\n":
                self.y, self.x = self.y + 1, 0
            else:
                char = match.group(0)
                assert 0 <= self.y < self.height and 0 <= self.x < self.width, (self.x, self.y, char)
                self.cells[self.y][self.x] = (char, self.sgr)
                self.x += max(cell_len(char), 1)
        return self

    def text(self, y: int) -> str:
        return "".join(char for char, _ in self.cells[y])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grid) and self.cells == other.cells

    def differences(self, other: "Grid") -> list[int]:
        return [y for y in range(self.height) if self.cells[y] != other.cells[y]]


def screen_grid(app) -> Grid:
    """The app's screen drawn whole, as Textual draws it."""
    compositor = app.screen._compositor
    width, height = compositor.size
    lines = compositor.render_strips()
    return Grid(width, height).feed("".join(
        f"\x1b[{y + 1};1H" + line.render(app.console) for y, line in enumerate(lines)))


def watch_terminal(app) -> Grid:
    """A grid fed every update the screen's compositor writes from now on (on the screen as it
    is now): what a terminal would show."""
    compositor = app.screen._compositor
    grid = screen_grid(app)
    render_update = compositor.render_update

    def writing(*args, **kwargs):
        update = render_update(*args, **kwargs)
        if update is not None:
            grid.feed(update.render_segments(app.console))
        return update

    compositor.render_update = writing  # the screen asks its compositor: this instance answers
    return grid
