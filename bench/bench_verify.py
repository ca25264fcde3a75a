"""Benchmark interaction_verify beside an empty functions-framework function (the floor).

Run from the repository root, as a module, so that `tests.helpers` imports:

    cd /work/main && .venv/bin/python -m bench.bench_verify

Other forms:

    .venv/bin/python -m bench.bench_verify --mode both          # THREADS=1, then THREADS=8
    .venv/bin/python -m bench.bench_verify --threads 4 --workers 2 --duration 5
    .venv/bin/python -m bench.bench_verify --loadgen python     # even when wrk is on PATH

What it measures, each for the empty function and for interaction_verify in the same run:

* cold start: from spawning the `functions-framework` CLI to the first good answer (a signed
  PING for verify), median of interleaved runs;
* warm: requests/s, p50/p99 latency and errors for signed PINGs and for allowed `/plan`
  commands (which verify hands to a loopback sink), at C keep-alive connections;
* server CPU per request: user+sys of the gunicorn master and its workers from /proc.

The load comes from wrk when it is on PATH (Debian package `wrk`), else from forked Python
processes, each an epoll loop over raw keep-alive sockets; `--loadgen httpclient` uses threads
with http.client instead, which costs about twice the client CPU per request. Either way the
client shares the machine's cores with the servers; the table shows how the CPU was split.

Everything listens on 127.0.0.1, every loop is bounded, and every child dies with the script.
Results go to stdout as Markdown and to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.cold_start import ColdResult, cold_start, first_answer
from bench.cpu import idle_check
from bench.fakes import Sink
from bench.interactions import ping_pool
from bench.load import Load
from bench.processes import EMPTY, VERIFY, Children, run_entry, server_env, session
from bench.report import RESULTS, progress, publish
from bench.warm import WarmResult, add_options, check_options, choose_load, load_facts, warm_row
from tests.helpers.support import base_env

IDLE_PROBE_S = 1.0
BOTH_THREADS = (1, 8)  # --mode both: one sync worker vs gthread (framework default is 4 x CPUs)


@dataclass
class ModeResult:
    threads: int
    workers: int | None
    cold: ColdResult | None
    warm: list[WarmResult] = field(default_factory=list)


def verify_env(sink: Sink, threads: int, workers: int | None) -> dict[str, str]:
    settings = base_env(K_SINK=sink.url, THREADS=str(threads))
    if workers is not None:
        settings["WORKERS"] = str(workers)
    return server_env(**settings)


def run_mode(
    children: Children, load: Load, sink: Sink, threads: int, args: argparse.Namespace
) -> ModeResult:
    env = verify_env(sink, threads, args.workers)
    tag = f"t{threads}"
    cold = None
    if args.cold_runs > 0:
        progress(f"THREADS={threads}: cold start, {args.cold_runs} interleaved runs each")
        cold = cold_start(children, env, args.cold_runs, tag)
    result = ModeResult(threads, args.workers, cold)
    if args.duration <= 0:
        return result
    servers = {t.key: children.spawn_server(t, env, f"warm-{tag}") for t in (EMPTY, VERIFY)}
    try:
        for server in servers.values():
            first_answer(server, ping_pool(1)[0], 1, time.monotonic())
        for key, workload in ((EMPTY.key, "PING"), (VERIFY.key, "PING"), (VERIFY.key, "/plan")):
            progress(f"THREADS={threads}: warm {key} {workload}, {args.duration:g} s")
            row = warm_row(
                children,
                load,
                servers[key],
                sink,
                workload,
                connections=args.connections,
                warmup=args.warmup,
                duration=args.duration,
                workers=args.workers,
            )
            result.warm.append(row)
    finally:
        for server in servers.values():
            children.stop_server(server)
    return result


# --------------------------------------------------------------------------------------------
# Report.


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render(facts: dict[str, Any], modes: list[ModeResult], args: argparse.Namespace) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items())
    workers = args.workers if args.workers is not None else "1 (default)"
    lines = [
        "## interaction_verify vs empty function",
        "",
        f"- machine: nproc {facts['nproc']} ({facts['cpu_model']}), Linux {facts['kernel']}, "
        f"Python {facts['python']}; {facts['busy_before_start_pct']:.0f}% busy before the run",
        f"- packages: {packages}",
        f"- load generator: {facts['load_generator']}; it shares the {facts['nproc']} cores "
        "with the servers and the sink",
        "- sink (K_SINK): asyncio HTTP server in its own process, answers 202 after "
        f"{args.sink_delay_ms:g} ms",
        "- THREADS=1 makes gunicorn use its sync worker: no keep-alive, one TCP connection per "
        "request; THREADS>1 uses the gthread worker with keep-alive",
        f"- WORKERS={workers}; warm rows: {args.duration:g} s each after {args.warmup:g} s "
        f"warm-up, {args.connections} connections",
        "",
    ]
    if any(m.cold for m in modes):
        lines += [
            f"### Cold start: spawn to first good answer, median of {args.cold_runs} "
            "interleaved runs (one discarded pair first)",
            "",
            "| THREADS | empty ms | empty min-max | verify ms | verify min-max | verify/empty |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in modes:
            if mode.cold is None:
                continue
            e, v = mode.cold.runs_ms[EMPTY.key], mode.cold.runs_ms[VERIFY.key]
            lines.append(
                f"| {mode.threads} | {mode.cold.median_ms[EMPTY.key]:.0f} "
                f"| {min(e):.0f}-{max(e):.0f} | {mode.cold.median_ms[VERIFY.key]:.0f} "
                f"| {min(v):.0f}-{max(v):.0f} | {mode.cold.ratio(VERIFY.key, EMPTY.key):.2f} |"
            )
        lines.append("")
    if any(m.warm for m in modes):
        lines += [
            "### Warm",
            "",
            "| THREADS | function | request | req/s | p50 ms | p99 ms | errors | server µs/req "
            "| client µs/req | CPU % server/client/sink/other | machine busy % | limited by |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for mode in modes:
            for row in mode.warm:
                split = "/".join(
                    f"{pct:.0f}"
                    for pct in (
                        row.server_cpu_pct,
                        row.client_cpu_pct,
                        row.sink_cpu_pct,
                        row.other_cpu_pct,
                    )
                )
                lines.append(
                    f"| {mode.threads} | {row.function} | {row.workload} "
                    f"| {row.requests_per_s:.0f} | {_ms(row.p50_ms)} | {_ms(row.p99_ms)} "
                    f"| {row.errors} | {row.server_us_per_request:.0f} "
                    f"| {row.client_us_per_request:.0f} | {split} "
                    f"| {row.machine_busy_pct:.0f} | {row.limited_by} |"
                )
        lines += [
            "",
            f"CPU % is of one core over the window (the machine has {facts['nproc']}); "
            "other = busy time charged to none of our processes (loopback softirq, anything "
            "else running). Machine busy % is of all cores. Limited by: server CPU when the "
            "server used >= 85% of its worker cores, shared CPU when the machine was >= 80% "
            "busy short of that, else waiting.",
            "",
            "### verify/empty, PING",
            "",
            "| THREADS | cold start | req/s | p50 | p99 | server µs/req |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in modes:
            rows = {(r.function, r.workload): r for r in mode.warm}
            e, v = rows[(EMPTY.function, "PING")], rows[(VERIFY.function, "PING")]
            cold = f"{mode.cold.ratio(VERIFY.key, EMPTY.key):.2f}" if mode.cold else "-"
            lines.append(
                f"| {mode.threads} | {cold} | {v.requests_per_s / e.requests_per_s:.2f} "
                f"| {v.p50_ms / e.p50_ms:.2f} | {v.p99_ms / e.p99_ms:.2f} "
                f"| {v.server_us_per_request / e.server_us_per_request:.2f} |"
            )
        lines.append("")
        for mode in modes:
            for row in mode.warm:
                if row.workload == "/plan":
                    lines.append(
                        f"THREADS={mode.threads}: the sink received {row.sink_events} events "
                        f"while verify answered {row.requests} /plan commands (window counts)."
                    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry point.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_verify", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--mode",
        choices=("single", "both"),
        default="single",
        help=f"single: --threads only; both: THREADS={BOTH_THREADS[0]} then {BOTH_THREADS[1]}",
    )
    parser.add_argument("--threads", type=int, default=1, help="THREADS for the servers")
    parser.add_argument("--workers", type=int, default=None, help="WORKERS for the servers")
    parser.add_argument(
        "--sink-delay-ms",
        type=float,
        default=0.0,
        help="the sink waits this long before its 202, like a Broker across the network",
    )
    add_options(parser, cold_runs=7, output=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    check_options(parser, args, noisy=5)
    if args.threads < 1 or (args.workers is not None and args.workers < 1):
        parser.error("--threads and --workers must be at least 1")
    if not 0 <= args.sink_delay_ms <= 2000:
        parser.error("--sink-delay-ms must be within 0..2000 (verify gives up after 2 s)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    idle_busy = idle_check(IDLE_PROBE_S)
    started = time.monotonic()
    with session("") as (children, scratch):
        load = choose_load(args, scratch)
        facts = load_facts(load, args.connections, idle_busy)
        sink = Sink(children, args.sink_delay_ms / 1000)
        thread_modes = BOTH_THREADS if args.mode == "both" else (args.threads,)
        modes = [run_mode(children, load, sink, t, args) for t in thread_modes]
    text = render(facts, modes, args)
    publish(text, facts, args, started, children.log_dir, modes=[asdict(m) for m in modes])
    return 0


if __name__ == "__main__":
    run_entry(main)
