"""The parts of `rnn-tui serve` on their own: the messages between the server and the preloader,
memory as forked processes share it, styles parsed once for the process, the prepared first
trace, and a visitor's process ending when its input does."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rnn_tui.serve import memory, protocol
from tests.serving import ROOT


# ---- messages ------------------------------------------------------------------------------------
def test_a_message_and_its_pipes_cross_the_socketpair():
    near, far = protocol.pair()
    r, w = os.pipe()
    try:
        protocol.send(near, {"op": "open", "id": 3, "width": 80, "height": 24}, [r, w])
        message, fds = protocol.receive(far)
        assert message == {"op": "open", "id": 3, "width": 80, "height": 24} and len(fds) == 2
        os.write(fds[1], b"through the passed pipe")
        assert os.read(r, 100) == b"through the passed pipe"
        protocol.close_all(fds)
        near.close()
        assert protocol.receive(far) == (None, [])  # the other end gone: the end
    finally:
        protocol.close_all([r, w])
        far.close()


def test_what_is_not_a_message_of_ours_is_refused():
    near, far = protocol.pair()
    with near, far:
        for bad in (b"not json", b"[1, 2]"):
            near.send(bad)
            with pytest.raises(protocol.ProtocolError):
                protocol.receive(far)
        with pytest.raises(protocol.ProtocolError):
            protocol.send(near, {"op": "open", "pad": "x" * protocol.MAX_MESSAGE})


# ---- memory --------------------------------------------------------------------------------------
def test_forked_children_are_counted_once_in_pss_and_in_full_in_rss():
    block = bytearray(64 << 20)  # 64 MiB, touched: resident in the parent
    for i in range(0, len(block), 4096):
        block[i] = 1
    r, w = os.pipe()
    kids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:  # a child that only reads: it shares the parent's pages
            os.close(w)
            os.read(r, 1)
            os._exit(0)
        kids.append(pid)
    try:
        time.sleep(0.2)
        me, children = memory.usage(os.getpid()), [memory.usage(k) for k in kids]
        rss = me.rss + sum(c.rss for c in children)
        pss = memory.together([os.getpid(), *kids]).pss
        assert all(c.rss > 64 << 20 for c in children)  # each maps the whole block ...
        assert all(c.uss < 32 << 20 for c in children)  # ... and owns little of it
        assert rss - pss > 100 << 20  # summed RSS counts the block three times; PSS once
        assert set(kids) <= set(memory.tree(os.getpid()))
    finally:
        os.close(w)
        os.close(r)
        for k in kids:
            os.waitpid(k, 0)
    del block
    assert memory.usage(kids[0]) is None  # gone
    assert memory.human(3 << 29) == "1.50 GiB" and memory.human(812 << 20) == "812 MiB"


# ---- styles, parsed once -------------------------------------------------------------------------
def test_styles_are_parsed_once_for_the_process_and_again_for_other_variables():
    from textual.css.stylesheet import Stylesheet

    from rnn_tui.serve.styles import share_parsed_styles

    assert share_parsed_styles()
    css = "Static { color: $accent; padding: 1 2; }"
    first, second = Stylesheet(variables={"accent": "red"}), Stylesheet(variables={"accent": "red"})
    other = Stylesheet(variables={"accent": "blue"})
    rules = [s._parse_rules(css, ("test", "")) for s in (first, second, other)]
    assert rules[0] is rules[1]  # a second stylesheet finds the first one's rules
    assert rules[2] is not rules[0]  # other variables, other rules
    colours = [str(r[0].styles.color) for r in (rules[0], rules[2])]
    assert colours[0] != colours[1]


# ---- the first trace, built ahead ----------------------------------------------------------------
def test_the_prepared_trace_is_what_the_build_gives_and_only_for_its_request():
    import numpy as np

    from rnn_tui.engine.subject import Spec
    from rnn_tui.serve.prepared import PreparedSource

    source = PreparedSource.from_spec(Spec(cell="gru", hidden=4, input="abcab"))
    request = source.initial_request()
    source.prepare(request)
    prepared = source.prepared[1]
    assert source.build(request) is prepared  # a visitor's first build: no work
    fresh = PreparedSource.from_spec(Spec(cell="gru", hidden=4, input="abcab")).build(request)
    for a, b in zip(prepared.layers, fresh.layers):  # and the same numbers its own build gives
        np.testing.assert_array_equal(a.h, b.h)
        np.testing.assert_array_equal(a.dL_dh, b.dL_dh)
    assert source.build(request.replace(text="cab")) is not prepared  # another input: built
    source.use_weights({k: np.zeros_like(v) for k, v in prepared.params.items()})
    assert source.build(request) is not prepared  # trained weights: built with them
    source.use_weights(None)
    assert source.build(request) is prepared
    assert "gru H=4" in source.describe() and "5 steps" in source.describe()


# ---- a visitor's process -----------------------------------------------------------------------------
VISITOR = """
import os, sys
from rnn_tui.serve.visitor import VisitorDriver
from textual.app import App
from textual.widgets import Static

class Hello(App):
    def compose(self):
        yield Static("hello from a visitor")

app = Hello()
app.driver_class = VisitorDriver
app.run()
print("exited", file=sys.stderr)
"""


def test_a_visitor_ends_when_its_input_ends():
    """The server gone or its pipe closed: no one can see the explorer, so it exits (Textual's
    web driver alone would keep it running for nobody)."""
    env = {**os.environ, "COLUMNS": "40", "ROWS": "10"}
    proc = subprocess.Popen([sys.executable, "-c", VISITOR], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)  # fmt: skip
    try:
        out = b""
        deadline = time.monotonic() + 30
        while b"hello from a visitor" not in out and time.monotonic() < deadline:
            out += os.read(proc.stdout.fileno(), 65536)
        assert b"hello from a visitor" in out
        proc.stdin.close()  # the input ends
        proc.wait(timeout=15)
        assert b"exited" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_size_a_visitor_asks_for_is_kept_to_what_a_screen_can_be():
    from rnn_tui.serve.preloader import clamp_size

    assert clamp_size(120, 36) == (120, 36)
    assert clamp_size(10**9, -5) == (1000, 10)
    assert clamp_size("wide", None) == (80, 24) and clamp_size(True, 30) == (80, 30)


def test_a_preloader_that_cannot_build_the_model_says_why_in_one_line(tmp_path):
    from rnn_tui.serve.errors import ServeError
    from rnn_tui.serve.server import PreloaderClient

    missing = tmp_path / "nope.safetensors"
    client = PreloaderClient({"lesson": None, "theme": None, "explorer_args": ["--weights", str(missing)]})
    with pytest.raises(ServeError) as caught:
        client.start(timeout=120)
    assert "nope.safetensors" in str(caught.value) and "\n" not in str(caught.value)
    assert client.proc.wait(timeout=10) == 2
