"""One browser visitor's process: forked from the preloader, it runs that visitor's explorer.

    become_visitor(fds, width, height, environ)   in the fresh fork: a process of its own
    run_visitor(make_app)                          the explorer until the visitor leaves; exits

The explorer draws with Textual's web driver, exactly as under textual-serve's own subprocess:
packets on stdout, keys and resizes in packets on stdin (`VisitorDriver`, which also ends the
visitor when its stdin closes: nobody can see it any more). What a fork inherits and must not
keep is dropped here: the preloader's session (so a Ctrl-C typed at the server reaches the
server alone), its descriptors (the control socket, the signal pipe), its signal handlers, its
random state. The process dies with the preloader (PR_SET_PDEATHSIG), stops at an address-space
limit of its own, and after its first frame runs at a lower CPU priority.

Imported by the preloader before it forks (Textual names the driver class by this module).
"""

from __future__ import annotations

import os
import signal
import sys

from textual import messages
from textual.drivers.web_driver import WebDriver

from rnn_tui.serve import VISITOR_NICE

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
HEADROOM = 4 << 30  # address space a visitor may add to what it inherits (a trace is at most 2 GiB)


class VisitorDriver(WebDriver):
    """Textual's web driver; when stdin ends (the server closed the visitor's pipe, or is gone)
    the app is asked to exit, where the web driver would leave it running for nobody."""

    def run_input_thread(self) -> None:
        super().run_input_thread()
        if not self.exit_event.is_set():  # not a normal exit: the input ran dry
            self._app.post_message(messages.ExitApp())


def prctl(option: int, value) -> bool:
    """Linux prctl(2); False where there is none."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_name(name: bytes) -> None:
    """What `ps -o comm` and `top` call this process (15 bytes at most)."""
    prctl(PR_SET_NAME, name[:15])


def die_with_parent(sig: int) -> None:
    """Receive `sig` when the parent process ends; if it already has, end now."""
    parent = os.getppid()
    if prctl(PR_SET_PDEATHSIG, int(sig)) and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def virtual_size() -> int | None:
    """Bytes of address space this process maps now (VmSize), None where /proc cannot say."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def limit_memory(headroom: int = HEADROOM) -> None:
    """An address-space limit a little above what the fork inherited: a visitor that asks for
    too much gets a MemoryError (shown in its explorer as one line), never the machine's memory."""
    import resource

    size = virtual_size()
    if size is None:
        return
    limit = size + headroom
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def become_visitor(fds: list[int], width: int, height: int, environ: dict[str, str]) -> None:
    """In the forked child, first thing: stdin, stdout and stderr are the visitor's pipes and
    nothing else of the preloader's is left open or in charge."""
    signal.set_wakeup_fd(-1)  # the preloader's signal pipe, before its descriptor goes
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setsid()
    die_with_parent(signal.SIGKILL)
    set_name(b"rnn-tui visitor")
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    keep = {0, 1, 2}
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the descriptor of the listing itself, closed already
    os.environ.clear()
    os.environ.update(environ)
    os.environ["COLUMNS"], os.environ["ROWS"] = str(width), str(height)
    limit_memory()
    reseed()
    from rnn_tui.engine import threads

    threads.apply()


def reseed() -> None:
    """Fresh random state: every fork starts as a copy of the preloader's generators. (The
    engine seeds what it builds itself, so models and training stay as repeatable as ever.)"""
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def lower_priority(step: int = VISITOR_NICE) -> None:
    """Every thread of this process `step` nicer (Linux keeps a nice value per thread)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + step))
        except OSError:
            pass  # a thread that has just ended


async def after_first_frame(pilot) -> None:
    """Textual's auto-pilot, run once the app is ready: lower the priority after the next refresh,
    so newcomers' first frames (and the server) come before what this visitor does next."""
    pilot.app.call_after_refresh(lower_priority)


def run_visitor(make_app) -> None:
    """Build the visitor's app, run it until the visitor leaves, and end the process (never
    return into the preloader's loop)."""
    code = 1
    try:
        from rnn_tui.ui.app import run_frozen

        app = make_app()
        run_frozen(app, auto_pilot=after_first_frame)
        code = app.return_code or 0
    except BaseException:  # noqa: BLE001 - whatever it is, it goes to the server's log
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - a pipe the server has closed
            pass
        os._exit(code)
