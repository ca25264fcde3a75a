"""CPU and memory accounting from /proc: who spent the machine's cores during a measured window,
and what a server holds resident.

A server's requests per second mean little on a shared 2-core machine unless one also knows
what the server, the load generator, the sink and everything else cost meanwhile.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.report import progress

if TYPE_CHECKING:
    from bench.fakes import Sink
    from bench.processes import Server

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses; the fields after its last ')' are fixed.
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """root and all its descendants (the gunicorn master and its forked workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [root], [root]
    while todo and len(found) < 10_000:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """user+sys of live processes, all their threads included."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


@dataclass
class Resident:
    """Memory of a process tree, in MiB: RSS summed over the processes (what the targets name;
    pages a forked worker shares with its master count twice) and PSS (each shared page split
    among its sharers, so the tree's real share)."""

    processes: int
    rss_mib: float
    pss_mib: float


def _kib(path: Path, field: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def resident(pids: Sequence[int]) -> Resident:
    """RSS and PSS of live processes, from /proc/<pid>/status and smaps_rollup."""
    live = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    rss = sum(_kib(Path(f"/proc/{pid}/status"), "VmRSS:") for pid in live)
    pss = sum(_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") for pid in live)
    return Resident(len(live), rss / 1024, pss / 1024)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def busy_pct(seconds: float) -> float:
    """How busy all cores are over `seconds`, in %: someone else's load skews every number."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return 100 * (busy1 - busy0) / ((total1 - total0) or 1)


def idle_check(seconds: float = 1.0) -> float:
    """How busy the machine is before a benchmark starts anything, in %; warns above 10%."""
    busy = busy_pct(seconds)
    if busy > 10:  # someone else's load skews every figure
        progress(f"warning: the machine was {busy:.0f}% busy before we started anything")
    return busy


@dataclass
class CpuSnapshot:
    server: float
    client: float
    sink: float
    machine_busy: int
    machine_total: int
    sink_count: int


def snapshot(server_pids: Sequence[int], client_pids: Sequence[int], sink: Sink) -> CpuSnapshot:
    busy, total = machine_ticks()
    return CpuSnapshot(
        cpu_seconds(server_pids),
        cpu_seconds(client_pids),
        cpu_seconds([sink.pid]),
        busy,
        total,
        sink.count,
    )


class Measure:
    """CPU snapshots around the measured window: servers, client, sink and the machine.

    The load generator calls start and stop, because only it knows when its window opens and
    which pids are its own."""

    def __init__(self, server: Server, sink: Sink) -> None:
        self.server_pids = process_tree(server.proc.pid)
        self.sink = sink
        self.before: CpuSnapshot | None = None
        self.after: CpuSnapshot | None = None
        self.wall = (0.0, 0.0)

    def start(self, client_pids: Sequence[int]) -> None:
        self.wall = (time.monotonic(), 0.0)
        self.before = snapshot(self.server_pids, client_pids, self.sink)

    def stop(self, client_pids: Sequence[int]) -> None:
        self.after = snapshot(self.server_pids, client_pids, self.sink)
        self.wall = (self.wall[0], time.monotonic())
