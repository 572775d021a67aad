"""Messages between the server and the preloader: one JSON object per datagram of a Unix
SOCK_SEQPACKET socketpair (boundaries kept, so no framing), and file descriptors passed along
with a message (SCM_RIGHTS).

    server -> preloader   {"op": "open", "id": 7, "width": 120, "height": 36}  + 3 fds:
                          the visitor's stdin (read end), stdout and stderr (write ends)
                          {"op": "kill", "id": 7}       end visitor 7 now (SIGKILL)
                          {"op": "stop"}                end every visitor, then exit
    preloader -> server   {"op": "ready", "pid": P, "seconds": 3.1, "threads": 1, "warning": ""}
                          {"op": "error", "message": "one line"}   (then it exits)
                          {"op": "opened", "id": 7, "pid": 4242}
                          {"op": "exited", "id": 7, "pid": 4242, "status": 0}   (-N: signal N)

The end of the socket (either side gone) means stop. Pure Python, no heavy imports.
"""

from __future__ import annotations

import json
import socket

MAX_MESSAGE = 1 << 16
MAX_FDS = 4


class ProtocolError(Exception):
    """A message that is not one of ours (truncated, not JSON, not an object)."""


def pair() -> tuple[socket.socket, socket.socket]:
    """The server's end and the preloader's end."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode("utf-8")
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes is over {MAX_MESSAGE}")
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def receive(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """The next message and the descriptors that came with it; (None, []) at the end.

    BlockingIOError on a non-blocking socket with nothing to read."""
    data, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        close_all(fds)
        raise ProtocolError("a truncated message")
    if not data:
        close_all(fds)
        return None, []
    try:
        message = json.loads(data)
    except ValueError:
        close_all(fds)
        raise ProtocolError("a message that is not JSON") from None
    if not isinstance(message, dict):
        close_all(fds)
        raise ProtocolError("a message that is not an object")
    return message, fds


def close_all(fds) -> None:
    import os

    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
