"""One warm row of bench_verify: a load against one running server, and where the CPU went."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench.cpu import Measure
from bench.fakes import Sink
from bench.interactions import command_pool, ping_pool
from bench.load import Job, Load
from bench.processes import Children, Server


@dataclass
class WarmResult:
    function: str
    workload: str
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_us_per_request: float
    client_us_per_request: float
    # CPU use over the window in % of one core; "other" is busy time no process of ours was
    # charged for: the kernel's loopback work in softirq, and anything else on the machine.
    server_cpu_pct: float
    client_cpu_pct: float
    sink_cpu_pct: float
    other_cpu_pct: float
    machine_busy_pct: float  # of all cores
    sink_events: int
    limited_by: str


def limited_by(server_cores: float, machine_busy: float, worker_cores: int) -> str:
    # A rough label, not a proof: it says where the CPU went during the window.
    if server_cores >= 0.85 * worker_cores:
        return "server CPU"
    if machine_busy >= 80:
        return "shared CPU"
    return "waiting"


def warm_row(
    children: Children,
    load: Load,
    server: Server,
    sink: Sink,
    workload: str,
    *,
    connections: int,
    warmup: float,
    duration: float,
    workers: int | None,
) -> WarmResult:
    pool, expect = (ping_pool(), 1) if workload == "PING" else (command_pool(), 5)
    measure = Measure(server, sink)
    job = Job(server.port, pool, expect, connections, warmup, duration)
    outcome = load.run(children, job, measure)
    assert measure.before is not None and measure.after is not None
    before, after = measure.before, measure.after
    wall = measure.wall[1] - measure.wall[0]
    server_cpu = after.server - before.server
    client_cpu = (
        outcome.client_cpu_s if outcome.client_cpu_s is not None else after.client - before.client
    )
    sink_cpu = after.sink - before.sink
    busy = (after.machine_busy - before.machine_busy) / (
        (after.machine_total - before.machine_total) or 1
    )
    ncpu = len(os.sched_getaffinity(0))
    other = busy * ncpu * wall - server_cpu - client_cpu - sink_cpu
    served = (outcome.requests + outcome.errors) or 1  # failures cost CPU too
    return WarmResult(
        function=server.target.function,
        workload=workload,
        requests=outcome.requests,
        seconds=outcome.seconds,
        requests_per_s=outcome.requests / outcome.seconds,
        p50_ms=outcome.p50_ms,
        p99_ms=outcome.p99_ms,
        errors=outcome.errors,
        server_us_per_request=server_cpu / served * 1e6,
        client_us_per_request=client_cpu / served * 1e6,
        server_cpu_pct=100 * server_cpu / wall,
        client_cpu_pct=100 * client_cpu / wall,
        sink_cpu_pct=100 * sink_cpu / wall,
        other_cpu_pct=100 * other / wall,
        machine_busy_pct=100 * busy,
        sink_events=after.sink_count - before.sink_count,
        limited_by=limited_by(server_cpu / wall, 100 * busy, min(workers or 1, ncpu)),
    )
