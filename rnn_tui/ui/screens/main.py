"""The explorer's main screen: it owns what is looked at (a `View`) and what was asked for (a
`TraceRequest`), builds traces in a thread worker, and hands both down to the panes.

    StatusBar                     model · params · loss · t · unit · play
    SequencePane                  input line; tokens, targets, top-k predictions
    TabbedContent of PANES        States (heatmaps + equations), Model, ...
    Footer

A step touches only what is seen: the status line and the sequence strip (always on screen) are
bound to the View, and the View goes to the open tab's pane alone. A tab's pane is built (its
module imported) when the tab is first opened, and brought up to date each time it is opened.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer, Input, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from rnn_tui.safe_text import safe
from rnn_tui.served import served
from rnn_tui.ui.actions import bindings, own_bindings
from rnn_tui.ui.compositor import ChangedOnlyCompositor
from rnn_tui.ui.messages import MoveTo, RequestChange, ShowTrace, TraceFailed, TraceReady
from rnn_tui.ui.palette import matrix_names
from rnn_tui.ui.panes import PANES, PaneInfo, info_of_tab, make_pane, pane_of_tab, tab_titles
from rnn_tui.ui.source import NEW_VOCABULARY, TraceRequest, TraceSource, shape_fields
from rnn_tui.ui.state import View
from rnn_tui.ui.themes import THEME_NAMES, short_name, theme_name
from rnn_tui.ui.widgets.heatmap_view import HeatmapView
from rnn_tui.ui.widgets.pane import Pane
from rnn_tui.ui.widgets.sequence_pane import SequencePane
from rnn_tui.ui.widgets.status_bar import StatusBar
from rnn_tui.ui.work import one_line, uninterruptible

MIN_SIZE = (60, 16)  # below this the screen says so instead of drawing a broken layout
SPEEDS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # steps per second when playing
LOADING = "loading the model…"


class PaneTabs(TabbedContent):
    """The tabs. A widget focused in a hidden tab opens that tab, as in Textual, except while a
    pane is taking the focus as its tab opens (`Pane.opened`): then a focus arriving from another
    tab (that pane's, after the person moved on; or a hidden pane's) leaves the tab where the
    person put it (a quick m m went back one tab)."""

    opening_focus: str | None = None  # the tab whose pane took the focus as it opened, not yet followed

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        tab, opening = event.tab_pane.id, self.opening_focus
        focused = self.screen.focused
        if tab != self.active and (focused is None or event.tab_pane not in focused.ancestors):
            # the focus has moved on since (the messages of two tabs' focus may arrive out of
            # order under load): the tab stays where the person put it
            event.stop()
            event.prevent_default()
            return
        if opening is None:
            return  # TabbedContent's own handler: the tab follows the focus
        if tab == opening:
            self.opening_focus = None
        if tab != self.active and opening in (tab, self.active):
            event.stop()
            event.prevent_default()  # TabbedContent's own handler would open it again


class MainScreen(Screen):
    BINDINGS = bindings()
    # A step's frame spans the screen from the status line down to the maps, and Textual draws
    # every widget in that span again, containers included, line by line (~20 us a line). The
    # screen and the containers between it and the panes draw nothing but their background:
    # BLANK (Textual's flag for "no border, no content") draws each as one blank strip instead.
    BLANK = True
    KEYS_TITLE = ""  # a subclass with keys of its own names them (the palette's prefix, help's heading)

    # the screen draws nothing itself: its state is handed down to the panes (repaint=False, or
    # every step would redraw the whole screen)
    view: reactive[View | None] = reactive(None, repaint=False)
    # what the status line and the token strip show: the view, or (ShowTrace) the same place in
    # the trace the open tab shows instead, a Time-lapse snapshot's
    shown_view: reactive[View | None] = reactive(None, repaint=False)
    busy: reactive[str] = reactive(LOADING, repaint=False)
    request: reactive[TraceRequest | None] = reactive(None, repaint=False)
    playing: reactive[bool] = reactive(False, repaint=False)
    speed: reactive[float] = reactive(4.0, repaint=False)
    error: reactive[str] = reactive("", repaint=False)

    def __init__(self, source: TraceSource, request: TraceRequest, *, screenshot_dir: str | None = None,
                 restore=None) -> None:
        super().__init__()
        self._compositor = ChangedOnlyCompositor()  # a step draws only the widgets it changes
        self.source = source
        self._first_request = request
        self.screenshot_dir = screenshot_dir
        self._restore = restore  # a saved session (engine.session.Session) to open on, or None
        # View options chosen before the first trace arrives (a session's place in it)
        self._options: dict = dict(restore.view) if restore is not None else {}
        self._timer: Timer | None = None
        self._panes: dict[str, Pane] = {}  # tab id -> its pane, once built
        self._open_tab = PANES[0].tab_id  # the tab whose pane is given the View
        self._tasks: list[tuple[str, str]] | None = None  # see task_list

    @property
    def task_list(self) -> list[tuple[str, str]]:
        """(name, description) of the tasks the Model tab offers (asked of the source when first needed)."""
        if self._tasks is None:
            try:
                self._tasks = self.source.tasks()
            except Exception:  # a source without a task list still explores its traces
                self._tasks = [(self._first_request.task, "")]
        return self._tasks

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar().data_bind(
            MainScreen.busy, MainScreen.request, MainScreen.playing, MainScreen.speed, MainScreen.error,
            view=MainScreen.shown_view,
        )
        yield SequencePane().data_bind(MainScreen.busy, MainScreen.request, view=MainScreen.shown_view)
        with PaneTabs(id="panes"):
            for k, info in enumerate(PANES):
                with TabPane(info.title, id=info.tab_id):
                    if k == 0:  # the first tab draws in the first frame; the others when opened
                        yield self._new_pane(info)
        yield Static(id="too-small")
        yield Footer(compact=True)

    def _new_pane(self, info: PaneInfo) -> Pane:
        pane = make_pane(info.load(), {"tasks": self.task_list})
        pane.busy, pane.request = self.busy, self.request
        self._panes[info.tab_id] = pane
        state = self._restore.panes.get(info.title) if self._restore is not None else None
        if state and hasattr(pane, "restore"):  # what a saved session kept of this tab
            pane.restore(state)
        return pane

    @property
    def panes(self) -> list[Pane]:
        """The panes built so far (a tab's pane is built when the tab is first opened)."""
        return list(self._panes.values())

    def explorer_commands(self) -> list[tuple[str, str, str]]:
        """(pane id, title, description) for the command palette."""
        return [(info.tab_id, info.title, info.description) for info in PANES]

    def screen_bindings(self) -> tuple[str, list]:
        """(name, bindings) of the keys a subclass adds to the explorer's (a lesson's)."""
        return self.KEYS_TITLE or type(self).__name__, own_bindings(type(self), MainScreen)

    def open_pane(self):
        """The pane class of the open tab (None before the tabs exist)."""
        try:
            return pane_of_tab(self.query_one(TabbedContent).active)
        except Exception:  # noqa: BLE001 - no tabs mounted yet
            return None

    def run_pane_action(self, tab: str, action: str) -> None:
        """Open a pane's tab and run one of the pane's own actions there: the command palette's
        way to every pane key. The tab is shown first, so the action finds its pane on screen."""
        self.action_show_pane(tab)
        self.call_after_refresh(self._run_in_pane, tab, action, 20)

    async def _run_in_pane(self, tab: str, action: str, tries: int) -> None:
        cls = pane_of_tab(tab)
        panes = list(self.query(cls)) if cls is not None else []
        if not panes or not panes[0].is_mounted:  # a tab's pane mounts just after the first frame
            if tries > 0:
                self.call_after_refresh(self._run_in_pane, tab, action, tries - 1)
            return
        await panes[0].run_action(action)

    def _reset_focus(self, widget, avoiding=None) -> None:
        """A widget of a tab just closed loses the focus as it is hidden: Textual would pass the
        focus to a sibling of it, in that closed tab, whose tab would then open again (m went back
        one tab, or stayed, under load). Nothing there takes it: the pane of the open tab takes
        the focus as it opens (`Pane.opened`), or the screen's keys answer with none."""
        if self.focused is widget and widget is not None and self._in_closed_tab(widget):
            self.set_focus(None)
            return
        super()._reset_focus(widget, avoiding)

    @staticmethod
    def _in_closed_tab(widget) -> bool:
        for node in widget.ancestors:
            tabs = getattr(node.parent, "parent", None)
            if isinstance(node, TabPane) and isinstance(tabs, PaneTabs):
                return node.id != tabs.active
        return False

    # ---- handing the state down ----------------------------------------------------------------
    def watch_view(self, view: View | None) -> None:
        pane = self._panes.get(self._open_tab)
        if pane is not None:
            pane.view = view
        self.shown_view = self._shown(view)

    _shown_trace = None  # see ShowTrace

    def _shown(self, view: View | None) -> View | None:
        trace = self._shown_trace
        if view is None or trace is None or trace.config != view.trace.config or trace.T != view.trace.T:
            return view
        return View(trace, step=view.step, unit=view.unit, layer=view.layer, direction=view.direction,
                    matrix=view.matrix, all_maps=view.all_maps, equations=view.equations)

    @on(ShowTrace)
    def show_trace(self, message: ShowTrace) -> None:
        message.stop()
        if message.trace is not None and message._sender is not self._panes.get(self._open_tab):
            return  # from a tab closed since: the explorer's own trace stays
        if message.trace is self._shown_trace:
            return
        self._shown_trace = message.trace
        self.shown_view = self._shown(self.view)

    def watch_busy(self, busy: str) -> None:
        for pane in self._panes.values():
            pane.busy = busy

    def watch_request(self, request: TraceRequest | None) -> None:
        for pane in self._panes.values():
            pane.request = request

    def on_mount(self) -> None:
        tabs = self.query_one(TabbedContent)
        for container in (tabs, tabs.query_one(ContentSwitcher), *tabs.query(TabPane)):
            container.BLANK = True  # see BLANK above
        self.request = self._first_request
        self.query_one("#explore-map", HeatmapView).focus()
        self._fit(self.size.width, self.size.height)
        held = getattr(self.source, "ready", None)  # a trace the source holds already (see TraceSource)
        trace = held(self._first_request) if held is not None else None
        if trace is not None:  # drawn in the first frame, no worker: a served visitor's, built before it came
            self.post_message(TraceReady(self._first_request, trace))
            return
        # build after the first frame is on screen: the worker imports torch (~1 s)
        self.call_after_refresh(self.build_trace, self._first_request)
        if self._restore is not None:  # a saved session's tab
            from rnn_tui.ui.session import tab_of

            tab = tab_of(self._restore)
            if tab is not None:
                self.call_after_refresh(self.action_show_pane, tab)

    def on_resize(self, event) -> None:
        self._fit(event.size.width, event.size.height)

    def on_screen_resume(self) -> None:
        # back from an overlay (help, the command palette, a lesson): the terminal may have been
        # resized while another screen was on top, so measure again rather than trust that this
        # screen saw the Resize
        self._fit(*self.app.size)

    def _fit(self, width: int, height: int) -> None:
        small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.set_class(small, "-too-small")
        self.set_class(height < 30, "-short")
        self._fit_tabs(width)
        if self.is_mounted and getattr(self, "_footer_width", None) != width:
            self._footer_width = width
            self.refresh_bindings()  # the footer fits its keys to the width (active_bindings)
        if small:
            self.query_one("#too-small", Static).update(
                f"The terminal is {width}×{height}.\n"
                f"rnn-tui needs at least {MIN_SIZE[0]}×{MIN_SIZE[1]}.\n"
                "Make it larger, or press q to quit."
            )

    def _fit_tabs(self, width: int) -> None:
        """Every tab's name on the bar: the short names, one space apart, where the full ones
        would run past the edge (at 80 columns the bar stopped at "Saturatio")."""
        titles = tab_titles(width)
        narrow = titles != [info.title for info in PANES]
        self.set_class(narrow, "-narrow-tabs")
        try:
            tabs = self.query_one(TabbedContent)
        except Exception:  # noqa: BLE001 - not composed yet
            return
        for info, title in zip(PANES, titles):
            tab = tabs.get_tab(info.tab_id)
            if tab.label_text != title:
                tab.label = title

    # ---- traces ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="trace", exit_on_error=False)
    def build_trace(self, request: TraceRequest) -> None:
        worker = get_current_worker()
        try:
            with uninterruptible():
                trace = self.source.build(request)
        except Exception as error:  # shown, never raised: the explorer stays up
            if not worker.is_cancelled:
                self.post_message(TraceFailed(request, one_line(error)))
            return
        if not worker.is_cancelled:
            self.post_message(TraceReady(request, trace))

    def on_trace_ready(self, message: TraceReady) -> None:
        if message.request != self.request:
            return  # a newer request is being built
        freeze = getattr(self.app, "freeze_heap", None)  # once the engine is loaded (see ExplorerApp)
        if freeze is not None:
            freeze()
        said = None
        if self.view is None:
            self.view = View(message.trace, **self._options)
            # a scenario, run directory or imported weights sets the model's shape: show it
            self.request = self.request.replace(**shape_fields(message.trace.config))
        else:
            said = new_vocabulary(self.view.trace, message.trace, message.request.seed)
            self.view = self.view.with_trace(message.trace)
        self.busy = ""
        self.error = ""
        # the model shown is not quite the one asked for: say so, once (the tokens gained and lost
        # where only the text's tokens changed; what happened to trained weights where they did not fit)
        assumed = message.trace.extras.get("assumed")
        if said and (not assumed or assumed.startswith(NEW_VOCABULARY)):
            self.notify(said, title="a new model", timeout=8, markup=False)
        elif assumed:
            self.notify(safe(assumed), severity="warning", timeout=8, markup=False)

    def on_trace_failed(self, message: TraceFailed) -> None:
        if message.request != self.request:
            return
        self.busy = "" if self.view is not None else f"could not build the model: {message.error}"
        self.error = message.error
        self.notify(safe(message.error), title="could not build the model", severity="error", timeout=8, markup=False)

    @on(RequestChange)
    def change_request(self, message: RequestChange) -> None:
        message.stop()
        self._change(**message.changes)
        if isinstance(self.focused, Input) and self.focused.id == "sequence-input":
            self.leave_input()  # typed and entered: back to stepping, in the tab that is open

    def _change(self, **changes) -> None:
        current = self.request or self._first_request
        try:
            request = current.replace(**changes)
            request.check()
        except ValueError as error:
            self.error = one_line(error)
            self.notify(self.error, severity="error", markup=False)
            return
        if request == self.request:
            return
        self.request = request
        self.busy = "rebuilding…" if self.view is not None else LOADING
        self.build_trace(request)

    # ---- moving ------------------------------------------------------------------------------
    def _move(self, **changes) -> None:
        if self.view is None:
            self._options.update({k: v for k, v in changes.items() if k in ("matrix", "all_maps", "equations")})
            return
        self.view = self.view.moved(**changes)

    @on(MoveTo)
    def move_to(self, message: MoveTo) -> None:
        message.stop()
        changes = {k: v for k, v in (("step", message.step), ("unit", message.unit), ("matrix", message.matrix))
                   if v is not None}
        self._move(**changes)

    @on(HeatmapView.Picked)
    def picked(self, message: HeatmapView.Picked) -> None:
        message.stop()
        self._move(step=message.step, unit=message.unit, matrix=message.matrix)

    def action_step(self, delta: int) -> None:
        if self.view is not None:
            self._move(step=self.view.step + delta)

    def action_step_to(self, where: int) -> None:
        if self.view is not None:
            self._move(step=where if where >= 0 else self.view.trace.T - 1)

    def action_unit(self, delta: int) -> None:
        if self.view is not None:
            self._move(unit=self.view.unit + delta)

    def action_layer(self, delta: int) -> None:
        if self.view is None:
            return
        entries = self.view.entries
        k = entries.index((self.view.layer, self.view.direction))
        layer, direction = entries[(k + delta) % len(entries)]
        self._move(layer=layer, direction=direction)

    def action_matrix(self, delta: int) -> None:
        if self.view is None:
            return
        names = matrix_names(self.view.trace.config)
        k = names.index(self.view.matrix) if self.view.matrix in names else 0
        self._move(matrix=names[(k + delta) % len(names)])

    def action_toggle_all_maps(self) -> None:
        current = self.view.all_maps if self.view is not None else self._options.get("all_maps", True)
        self._move(all_maps=not current)

    def action_toggle_equations(self) -> None:
        from rnn_tui.ui.widgets.explore_pane import ExplorePane

        shown = not self.query_one(ExplorePane).has_class("-no-equations")
        self._move(equations=not shown)

    # ---- playing -----------------------------------------------------------------------------
    def action_toggle_play(self) -> None:
        if self.view is None:
            return
        if self.playing:
            self._stop()
            return
        if self.view.step >= self.view.trace.T - 1:
            self._move(step=0)
        self.playing = True
        self._restart_timer()

    def _restart_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(1.0 / self.speed, self._tick) if self.playing else None

    def _tick(self) -> None:
        view = self.view
        if view is None or view.step >= view.trace.T - 1:
            self._stop()
            return
        self._move(step=view.step + 1)
        if self.view is not None and self.view.step >= self.view.trace.T - 1:
            self._stop()

    def _stop(self) -> None:
        self.playing = False
        self._restart_timer()

    def action_speed(self, delta: int) -> None:
        k = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[min(max(k + delta, 0), len(SPEEDS) - 1)]
        self._restart_timer()

    # ---- everything else -----------------------------------------------------------------------
    def action_focus_input(self) -> None:
        self.query_one(SequencePane).query_one(Input).focus()

    def action_escape(self) -> None:
        if isinstance(self.focused, Input):
            self.leave_input()

    def leave_input(self) -> None:
        """Out of an input box, into the open tab (its pane takes the focus as when it is opened):
        focusing the States map from another tab would switch to the States tab."""
        self.set_focus(None)
        pane = self._panes.get(self._open_tab)
        if pane is not None and pane.shown:
            pane.opened()

    @property
    def active_bindings(self):
        """What the footer shows: Ctrl+C (the app's, it quits everywhere) only while a box has the
        focus, where q types a q; elsewhere the footer's "q quit" says it."""
        shown = super().active_bindings
        if not isinstance(self.focused, Input):
            shown.pop("ctrl+c", None)
        return fit_footer(shown, self.size.width, self.app.get_key_display, self)

    def action_next_pane(self) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [info.tab_id for info in PANES]
        k = ids.index(tabs.active) if tabs.active in ids else -1
        tabs.active = ids[(k + 1) % len(ids)]

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one(TabbedContent).active = pane_id

    @on(TabbedContent.TabActivated, "#panes")
    async def tab_opened(self, event: TabbedContent.TabActivated) -> None:
        """Build the pane of the tab just opened if it is new, give it the View, and tell it
        (see `Pane.opened`) once it is laid out."""
        info = info_of_tab(event.pane.id or "")
        if info is None:
            return
        self._open_tab = info.tab_id
        if self._shown_trace is not None:  # the tab that showed another trace is closed
            self._shown_trace = None
            self.shown_view = self.view
        pane = self._panes.get(info.tab_id)
        if pane is None:
            pane = self._new_pane(info)
            await event.pane.mount(pane)
        if self._open_tab == info.tab_id:  # still the open tab (the person may have moved on)
            pane.view = self.view
            self.call_after_refresh(self._open, pane)

    def _open(self, pane: Pane) -> None:
        if not pane.shown:
            return
        tabs, tab, before = self.query_one(PaneTabs), pane.parent, self.focused
        if isinstance(tab, TabPane):
            tabs.opening_focus = tab.id
        pane.opened()  # a focus it asks for is set later (Widget.focus goes through call_later) ...

        def focus_settled() -> None:  # ... and before this: no new focus inside it, no TabPane.Focused to expect
            now = self.focused
            unmoved = now is before or now is None or pane not in (now, *now.ancestors)
            if unmoved and tabs.opening_focus == getattr(tab, "id", None):
                tabs.opening_focus = None

        self.app.call_later(focus_settled)

    def action_next_theme(self) -> None:
        names = list(THEME_NAMES)
        current = short_name(self.app.theme)
        k = names.index(current) if current in names else -1
        self.action_set_theme(names[(k + 1) % len(names)])

    def action_set_theme(self, name: str) -> None:
        self.app.theme = theme_name(name)
        names = list(THEME_NAMES)
        where = f" ({names.index(name) + 1} of {len(names)}: {', '.join(names)})" if name in names else ""
        self.notify(f"theme: {name}{where}", title="t: next theme", timeout=3, markup=False)

    def action_set_shape(self, field: str, value) -> None:
        """The palette's hidden size, layers and direction (the Model tab's fields)."""
        if field in ("hidden", "layers", "bidirectional"):
            self._change(**{field: value})

    def action_set_cell(self, cell: str) -> None:
        changes: dict = {"cell": cell}
        if cell != "rnn":
            changes["activation"] = "tanh"
        self._change(**changes)

    def action_help(self) -> None:
        from rnn_tui.ui.screens.help import HelpScreen

        sections = []
        heading, own = self.screen_bindings()
        sections.append((f"Keys of the {heading.lower()}", own))
        pane = self.open_pane()
        if pane is not None:
            sections.append((f"Keys in the {pane.TITLE} tab", list(pane.BINDINGS)))
        self.app.push_screen(HelpScreen(sections))

    def action_screenshot(self) -> None:
        """An SVG of the screen: saved in the screenshot folder, or, in a browser (`rnn-tui serve`),
        sent to the visitor as a download and written nowhere on the server."""
        svg, name = self.app.export_screenshot(), self._screenshot_name()
        if served() or self.app.is_web:
            if not self.app.is_web:  # served, yet not drawn in a browser: nowhere to send it
                self.notify("screenshots are sent to the browser, and this is not one", severity="error", markup=False)
                return
            self.app.deliver_text(io.StringIO(svg), save_filename=name, open_method="download",
                                  mime_type="image/svg+xml")  # fmt: skip
            self.notify(f"{name}: sent to your browser as a download", title="screenshot", timeout=4, markup=False)
            return
        path = save_svg(svg, self.screenshot_dir, name)
        self.notify(safe(f"saved {path}"), title="screenshot", timeout=4, markup=False)

    def action_save_session(self) -> None:
        """Input, model, step, tab and each tab's own state (holds, the compared cell) to a file
        that `rnn-tui --session FILE` opens again; in a browser, sent as a download."""
        from rnn_tui.ui.session import save_action

        if type(self) is not MainScreen:  # a lesson's screen: its model is the lesson's own, in no file
            self.notify("a session saves the explorer's screen; a lesson opens again with rnn-tui lesson NAME",
                        severity="warning", timeout=5, markup=False)
            return
        save_action(self)

    def _screenshot_name(self) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if self.view is None:
            return f"rnn-tui-{stamp}.svg"
        cfg = self.view.trace.config
        return f"rnn-tui-{cfg.cell}-t{self.view.step}-{stamp}.svg"

    async def action_quit(self) -> None:
        self._stop()
        await self.app.action_quit()


def new_vocabulary(before, after, seed: int) -> str | None:
    """One line when a new input made a new model without being asked: a next-token model made
    for its input (no task, no file) has the input's own tokens as its vocabulary, so another
    text with other tokens is another model, with weights drawn afresh (the Generate tab keeps
    such a model's sequence for the same reason). None when the model is the same."""
    if not (before.extras.get("vocab_from_input") and after.extras.get("vocab_from_input")):
        return None
    old, new = before.extras.get("token_vocab"), after.extras.get("token_vocab")
    if old is None or new is None or tuple(old) == tuple(new):
        return None
    from rnn_tui.engine.tokens import label

    gained = [label(t) for t in new if t not in set(old)][:4]
    lost = [label(t) for t in old if t not in set(new)][:4]
    change = ", ".join(part for part in (f"adds {' '.join(gained)}" if gained else "",
                                         f"drops {' '.join(lost)}" if lost else "") if part)
    return (f"new vocabulary, new model: this untrained model's vocabulary is its input's own tokens, and this "
            f"text {change} ({len(new)} tokens, were {len(old)}), so it is another model, its weights drawn "
            f"afresh (seed {seed})")


FOOTER_KEEPS = ("help", "quit", "quit_or_copy")  # actions the footer shows at any width
PALETTE_HINT = 14  # columns the footer's "^p palette" takes at its right edge


def fit_footer(shown: dict, width: int, key_display, screen) -> dict:
    """The bindings the footer shows, cut to its width: past the width its keys ran on under the
    palette hint and overprinted it. The screen's stepping keys go first (the help lists them),
    then the open tab's own from the last; help and quit stay."""
    from dataclasses import replace

    actions: dict[str, list[str]] = {}  # action -> its keys, in the footer's order
    for key, active in shown.items():
        if active.binding.show and key != "ctrl+p":
            actions.setdefault(active.binding.action, []).append(key)
    cost = {a: len(key_display(shown[keys[0]].binding)) + len(shown[keys[0]].binding.description) + 2
            for a, keys in actions.items()}  # fmt: skip
    total, budget = sum(cost.values()), max(width - PALETTE_HINT, 0)
    if total <= budget:
        return shown
    order = [a for a in reversed(actions) if shown[actions[a][0]].node is screen]
    order += [a for a in reversed(actions) if a not in order]
    out = dict(shown)
    for action in order:
        if total <= budget:
            break
        if action in FOOTER_KEEPS:
            continue
        for key in actions[action]:
            out[key] = out[key]._replace(binding=replace(out[key].binding, show=False))
        total -= cost[action]
    return out


def save_svg(svg: str, directory: str | None, name: str) -> Path:
    """Write atomically (a temporary file in the same folder, then a rename); a name already
    taken gets a counter rather than overwriting what is there."""
    folder = Path(directory or os.getcwd()).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    n = 1
    while path.exists():
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".rnn-tui-", suffix=".svg.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(svg)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
