"""One warm row of bench_verify or bench_peers: a load against one running server, and where the
CPU went."""

from __future__ import annotations

import argparse
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cpu import Measure
from bench.fakes import Sink
from bench.interactions import command_pool, ping_pool
from bench.load import Job, Load, PythonLoad
from bench.processes import Children, Server
from bench.report import VERIFY_PACKAGES, machine_facts, progress
from bench.wrk import WrkLoad


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
    pool, expect = (
        (ping_pool(), 1) if workload == "PING" else (command_pool(), server.target.plan_answer)
    )
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


# --------------------------------------------------------------------------------------------
# What bench_verify and bench_peers share around their warm rows: options, load, facts.


def add_options(parser: argparse.ArgumentParser, *, cold_runs: int, output: Path) -> None:
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per warm row")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--cold-runs", type=int, default=cold_runs, help="cold starts each")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python", "httpclient"),
        default="auto",
        help="auto: wrk when on PATH, else python (raw sockets); httpclient: threads with "
        "http.client, slower per request but a strict parser, for cross-checking",
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="python load generator: processes (connections are split among them)",
    )
    parser.add_argument("--output", type=Path, default=output)


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace, noisy: int) -> None:
    """Refuse what cannot be measured; warn when fewer than `noisy` cold runs were asked for."""
    if args.connections < 1 or args.client_procs < 1:
        parser.error("--connections and --client-procs must be at least 1")
    if not 0 < args.duration <= 120:
        parser.error("--duration must be within (0, 120] s (a signed pool lives 300 s)")
    if args.cold_runs < 0:
        parser.error("--cold-runs must be at least 0")
    if 0 < args.cold_runs < noisy:
        progress(f"warning: --cold-runs {args.cold_runs} is below {noisy}: noisy medians")


def choose_load(args: argparse.Namespace, work_dir: Path) -> Load:
    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("--loadgen wrk: no wrk on PATH")
    if wrk is not None and args.loadgen in ("auto", "wrk"):
        return WrkLoad(wrk, len(os.sched_getaffinity(0)), work_dir)
    return PythonLoad("httpclient" if args.loadgen == "httpclient" else "python", args.client_procs)


def load_facts(load: Load, connections: int, idle_busy: float, **extra: Any) -> dict[str, Any]:
    """The machine facts, with the load generator and how busy the machine was before."""
    return machine_facts(
        VERIFY_PACKAGES,
        load_generator=load.describe(connections),
        busy_before_start_pct=round(idle_busy, 1),
        **extra,
    )
