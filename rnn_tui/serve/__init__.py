"""`rnn-tui serve` behind the command line: a class of browsers on one machine.

Three kinds of process, each with one job:

    server      rnn_tui.serve.server     the web page, one websocket per visitor, the cap, the
                                         operator's status line (aiohttp, textual-serve's page
                                         and protocol); imports neither torch nor the explorer
    preloader   rnn_tui.serve.preloader  one process, started by the server: imports torch,
                                         Textual and every explorer module once, builds and
                                         traces the model (or sets the lesson up) once, draws
                                         one frame to warm the caches, then forks a visitor
                                         for each websocket; it runs on one thread, so the
                                         fork copies no lock another thread was holding
    visitor     rnn_tui.serve.visitor    one forked process per browser tab: the explorer of
                                         that visitor alone (own input, training,
                                         interventions), drawn with Textual's web driver over
                                         pipes, as textual-serve's own subprocess would be

A visitor's process shares the preloader's pages copy-on-write (torch, Textual, the traced
model: ~250 MiB read by all, held once) and owns only what it changes, about 20-30 MiB; it
needs no import and no model build, so its first frame costs about 0.1 s of CPU instead of
~2.8 s. A visitor that crashes or hangs is one process that the server ends on its own, a
memory-hungry one stops at its own address-space limit; the others and the server never
notice. Past the first frame a visitor runs at a lower CPU priority than the server and the
visitors still drawing their first frame.

The server and the preloader talk over a Unix socketpair: JSON messages, and the three pipe
ends of a new visitor passed along with its `open` message (`rnn_tui.serve.protocol`).
"""

VISITOR_NICE = 5  # a visitor past its first frame, against the server and newcomers (0)
