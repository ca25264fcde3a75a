"""Benchmark interaction_verify beside its peers and the floor, in one interleaved run.

Run from the repository root, as a module, so that `tests.helpers` imports:

    cd /work/main && .venv/bin/python -m bench.bench_peers
    .venv/bin/python -m bench.bench_peers --duration 3 --cold-runs 3   # a quick look

The servers, all given the same public key and sent the same signed pools (bench.interactions):

* floor: the empty functions-framework function, served as facteur is (bench.processes);
* python-peer: PyPI's discord-interactions behind functions-framework's defaults
  (bench/peers/python, its own virtualenv in bench/.peers/venv, made on first use);
* node-peer: npm's discord-interactions and express, shaped like Discord's example app
  (bench/peers/node, `npm ci` into bench/.peers/node on first use); skipped, with the reason
  printed, when node or npm is missing or the install fails;
* verify: facteur's interaction_verify as deployed, handing each /plan to a loopback sink that
  answers at once.

For each: cold start (spawn to first good answer, median of interleaved runs), PING and /plan
throughput, p50/p99 and server CPU per request (bench.warm), and the resident memory of the
server's process tree after the warm rows. Then the ratios the performance targets name, each
marked met or missed. Markdown to stdout, JSON to bench/results/peers.json.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.cold_start import ColdResult, cold_start, first_answer
from bench.cpu import Resident, idle_check, process_tree, resident
from bench.fakes import Sink
from bench.interactions import ping_pool
from bench.load import Load
from bench.peer_servers import PeerUnavailable, node_peer, python_peer
from bench.processes import (
    DEPLOYED_THREADS,
    EMPTY,
    VERIFY,
    Children,
    Target,
    run_entry,
    server_env,
    session,
)
from bench.report import (
    RESULTS,
    progress,
    publish,
)
from bench.warm import (
    WarmResult,
    add_options,
    check_options,
    choose_load,
    load_facts,
    warm_row,
)
from tests.helpers.support import PUBLIC_KEY_HEX, ROOT, base_env

IDLE_PROBE_S = 1.0
WORKLOADS = ("PING", "/plan")
PYTHON, NODE = "python-peer", "node-peer"
LABELS = {
    EMPTY.key: "floor (empty function)",
    PYTHON: "Python peer (discord-interactions)",
    NODE: "Node peer (discord-interactions + express)",
    VERIFY.key: "facteur interaction_verify",
}


@dataclass
class PeerResult:
    key: str
    command_line: str
    threads: str  # THREADS as the server sees it, when it is a functions-framework server
    warm: dict[str, WarmResult]  # by workload
    memory: Resident | None


@dataclass
class Ratio:
    name: str
    target: str  # "<= 1.1" or ">= 1.5"
    numerator: float | None  # None: a server it needs was skipped, or not measured
    denominator: float | None

    @property
    def value(self) -> float | None:
        if self.numerator is None or not self.denominator:
            return None
        return self.numerator / self.denominator

    @property
    def met(self) -> bool | None:
        value = self.value
        if value is None:
            return None
        bound = float(self.target.split()[1])
        return value <= bound if self.target.startswith("<=") else value >= bound


# The performance targets: (name, numerator, denominator, target), each side (server, metric).
TARGETS = (
    (
        "facteur PING req/s ÷ Python peer's",
        (VERIFY.key, "ping_rps"),
        (PYTHON, "ping_rps"),
        ">= 1.5",
    ),
    ("facteur CPU per PING ÷ Node peer's", (VERIFY.key, "ping_us"), (NODE, "ping_us"), "<= 1.0"),
    (
        "facteur CPU per /plan ack ÷ facteur CPU per PING",
        (VERIFY.key, "plan_us"),
        (VERIFY.key, "ping_us"),
        "<= 1.5",
    ),
    ("facteur cold start ÷ floor's", (VERIFY.key, "cold_ms"), (EMPTY.key, "cold_ms"), "<= 1.1"),
    ("facteur cold start ÷ Python peer's", (VERIFY.key, "cold_ms"), (PYTHON, "cold_ms"), "<= 1.0"),
    ("facteur RSS ÷ Python peer's", (VERIFY.key, "rss_mib"), (PYTHON, "rss_mib"), "<= 1.2"),
)


def peer_targets() -> tuple[list[Target], dict[str, str]]:
    """The servers in run order (floor first, facteur last), and those skipped with why."""
    targets, skipped = [EMPTY], {}
    for key, make in ((PYTHON, python_peer), (NODE, node_peer)):
        try:
            targets.append(make())
        except PeerUnavailable as err:
            skipped[key] = str(err)
            progress(f"skipping the {LABELS[key]}: {err}")
    targets.append(VERIFY)
    return targets, skipped


def threads_note(target: Target, env: dict[str, str]) -> str:
    if not Path(target.argv[0]).name.startswith("functions-framework"):
        return "one process"
    threads = target.environment(env).get("THREADS")
    return f"THREADS={threads}" if threads else "THREADS unset (the framework's 4 per CPU)"


def run_warm(
    children: Children,
    targets: Sequence[Target],
    env: dict[str, str],
    sink: Sink,
    load: Load,
    args: argparse.Namespace,
) -> list[PeerResult]:
    servers = [children.spawn_server(t, env, "warm") for t in targets]
    try:
        for server in servers:
            first_answer(server, ping_pool(1)[0], 1, time.monotonic())
        rows: dict[str, dict[str, WarmResult]] = {t.key: {} for t in targets}
        for workload in WORKLOADS:  # a workload across all servers, then the next
            for server in servers:
                progress(f"warm {server.target.key} {workload}, {args.duration:g} s")
                rows[server.target.key][workload] = warm_row(
                    children,
                    load,
                    server,
                    sink,
                    workload,
                    connections=args.connections,
                    warmup=args.warmup,
                    duration=args.duration,
                    workers=None,
                )
        return [
            PeerResult(
                s.target.key,
                " ".join(s.target.command_line(s.port)).replace(f"{ROOT}/", ""),
                threads_note(s.target, env),
                rows[s.target.key],
                resident(process_tree(s.proc.pid)),
            )
            for s in servers
        ]
    finally:
        for server in servers:
            children.stop_server(server)


def metrics(cold: ColdResult | None, results: list[PeerResult]) -> dict[str, dict[str, float]]:
    """The figures the targets compare, by server and metric."""
    values: dict[str, dict[str, float]] = {}
    for result in results:
        ping, plan = result.warm["PING"], result.warm["/plan"]
        values[result.key] = {
            "ping_rps": ping.requests_per_s,
            "ping_us": ping.server_us_per_request,
            "plan_us": plan.server_us_per_request,
        }
        if result.memory is not None:
            values[result.key]["rss_mib"] = result.memory.rss_mib
        if cold is not None:
            values[result.key]["cold_ms"] = cold.median_ms[result.key]
    return values


def ratios(values: dict[str, dict[str, float]]) -> list[Ratio]:
    def get(side: tuple[str, str]) -> float | None:
        return values.get(side[0], {}).get(side[1])

    return [Ratio(name, target, get(a), get(b)) for name, a, b, target in TARGETS]


# --------------------------------------------------------------------------------------------
# Report.


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render(
    facts: dict[str, Any],
    cold: ColdResult | None,
    results: list[PeerResult],
    checks: list[Ratio],
    skipped: dict[str, str],
    args: argparse.Namespace,
) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items())
    lines = [
        "## interaction_verify beside its peers and the floor",
        "",
        f"- machine: nproc {facts['nproc']} ({facts['cpu_model']}), Linux {facts['kernel']}, "
        f"Python {facts['python']}, {facts['node']}; {facts['busy_before_start_pct']:.0f}% busy "
        "before the run",
        f"- facteur's packages: {packages}; code {facts['code']}",
        f"- load generator: {facts['load_generator']}; it shares the {facts['nproc']} cores "
        "with the servers and the sink",
        f"- warm rows: {args.duration:g} s each after {args.warmup:g} s warm-up, "
        f"{args.connections} keep-alive connections, PING on every server then /plan on every "
        "server; cold start: median of "
        f"{args.cold_runs} interleaved runs after one discarded round",
        "- the floor answers PONG to everything, so its /plan row is the framework taking a "
        "/plan-sized body; facteur hands each /plan to a sink that answers 202 at once",
        "",
    ]
    for result in results:
        lines.append(f"- {result.key}: `{result.command_line}`, {result.threads}")
    for key, reason in skipped.items():
        lines.append(f"- {key}: skipped ({reason})")
    lines += [
        "",
        "| server | cold start ms (min-max) | PING req/s | p50 / p99 ms | CPU µs/PING "
        "| /plan req/s | p50 / p99 ms | CPU µs/plan | errors | RSS MiB (PSS) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        cold_cell = "-"
        if cold is not None:
            runs = cold.runs_ms[result.key]
            cold_cell = f"{cold.median_ms[result.key]:.0f} ({min(runs):.0f}-{max(runs):.0f})"
        ping, plan = result.warm["PING"], result.warm["/plan"]
        memory = (
            f"{result.memory.rss_mib:.1f} ({result.memory.pss_mib:.1f})" if result.memory else "-"
        )
        lines.append(
            f"| {LABELS[result.key]} | {cold_cell} | {ping.requests_per_s:.0f} "
            f"| {_ms(ping.p50_ms)} / {_ms(ping.p99_ms)} | {ping.server_us_per_request:.0f} "
            f"| {plan.requests_per_s:.0f} | {_ms(plan.p50_ms)} / {_ms(plan.p99_ms)} "
            f"| {plan.server_us_per_request:.0f} | {ping.errors + plan.errors} | {memory} |"
        )
    lines += [
        "",
        "CPU µs per request: user+sys of the server's process tree over the window, divided by "
        "the requests it answered (errors included). RSS: summed over the tree after the warm "
        "rows (a forked worker's pages shared with its master count twice); PSS splits them.",
        "",
        "### Targets",
        "",
        "| ratio | numerator | denominator | value | target | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    verdicts = {True: "met", False: "**missed**", None: "n/a (a server was skipped)"}
    for check in checks:
        cells = [
            "-" if figure is None else f"{figure:.2f}" if figure < 10 else f"{figure:.0f}"
            for figure in (check.numerator, check.denominator, check.value)
        ]
        lines.append(
            f"| {check.name} | {' | '.join(cells)} | {check.target} | {verdicts[check.met]} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry point.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_peers", description=__doc__.splitlines()[0]
    )
    add_options(parser, cold_runs=9, output=RESULTS / "peers.json")
    args = parser.parse_args(argv)
    check_options(parser, args, noisy=9)
    return args


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "no node"
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    return f"node {done.stdout.strip()}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    targets, skipped = peer_targets()  # installs first: they must not count as idle time
    idle_busy = idle_check(IDLE_PROBE_S)
    started = time.monotonic()
    with session("peers") as (children, scratch):
        load = choose_load(args, scratch)
        facts = load_facts(load, args.connections, idle_busy, node=node_version())
        sink = Sink(children, 0.0)
        # One environment for all: facteur's settings, the peers' public key, and THREADS as
        # deployed (the Python peer's Target removes it, to keep the framework's default).
        env = server_env(
            **base_env(K_SINK=sink.url, THREADS=str(DEPLOYED_THREADS)),
            DISCORD_PUBLIC_KEY=PUBLIC_KEY_HEX,
        )
        cold = None
        if args.cold_runs > 0:
            progress(f"cold start, {args.cold_runs} interleaved runs of {len(targets)} servers")
            cold = cold_start(children, env, args.cold_runs, "peers", targets)
        results = run_warm(children, targets, env, sink, load, args)
    checks = ratios(metrics(cold, results))
    publish(
        render(facts, cold, results, checks, skipped, args),
        facts,
        args,
        started,
        children.log_dir,
        skipped=skipped,
        cold=asdict(cold) if cold else None,
        servers=[asdict(r) for r in results],
        ratios=[{**asdict(c), "value": c.value, "met": c.met} for c in checks],
    )
    return 0


if __name__ == "__main__":
    run_entry(main)
