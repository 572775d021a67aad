"""How much memory a group of processes takes together, counted fairly for forked children.

RSS counts a page once in every process that maps it, so thirty visitors forked from one
preloader would each "hold" its 250 MiB of torch and Textual. PSS (proportional set size)
splits a shared page between the processes sharing it: summed over the processes it is the
memory they take together. USS (unique set size) is what a process holds alone, which is what
ending it frees. Both come from /proc/PID/smaps_rollup (Linux 4.14+).

    usage(pid)              Usage(pss, uss, rss) in bytes, or None (gone, or not Linux)
    tree(pid)               pid and every descendant of it
    together(pids)          the sum of their usages

Pure Python, no heavy imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    pss: int = 0  # bytes: proportional set size (shared pages split between their sharers)
    uss: int = 0  # bytes: pages this process alone maps (Private_Clean + Private_Dirty)
    rss: int = 0  # bytes: resident, shared pages counted in full

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.pss + other.pss, self.uss + other.uss, self.rss + other.rss)


def usage(pid: int) -> Usage | None:
    """The memory of one process (None when it is gone or /proc cannot say)."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    fields[parts[0].rstrip(b":").decode()] = int(parts[1]) * 1024
    except OSError:
        return None
    if "Pss" not in fields:  # a zombie, or a kernel thread: nothing mapped
        return Usage()
    return Usage(fields["Pss"], fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0), fields.get("Rss", 0))


def children_of() -> dict[int, list[int]]:
    """parent pid -> its children's pids, for every process /proc lists."""
    kids: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return kids
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # the name in parentheses may hold spaces and parentheses: the fields follow the last ")"
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (those alive now)."""
    kids = children_of()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(kids.get(p, ()))
    return found


def together(pids) -> Usage:
    total = Usage()
    for pid in pids:
        u = usage(pid)
        if u is not None:
            total = total + u
    return total


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def human(n: int) -> str:
    """Bytes as people read them: 812 MiB, 1.42 GiB."""
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    return f"{n / (1 << 20):.0f} MiB"
