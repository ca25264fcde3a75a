"""Reconciliation ticks against a real Redis: after how many ticks is a run behind many long
ones reported?

    .venv/bin/python -m bench.tick_rotation [--running 200] [--tick-batch 50] [--max-ticks 40]

Starts a redis-server, records `--running` runs that Argo shows still Running (received one
second apart, the oldest first) and, newest of all, one run Argo no longer knows (deleted:
Argo's 404, which only a tick can report), then runs status_callback's Reporter.tick with the
real SessionStore until that run is reported. Argo and Discord are the in-memory fakes of
tests/helpers/fakes.py: what is measured is which runs each tick takes from Redis.

Two orders, in the same run:
- rotation (facteur's): each tick takes the runs checked least recently and marks them checked,
  so every pending run is checked within ceil(pending / tick_batch) ticks;
- oldest first (before it): the same store with `checked` doing nothing, so the pending set
  keeps its received_at scores and every tick takes the same oldest runs.

Markdown to stdout, JSON to bench/results/tick_rotation.json.
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import RESULTS, machine_facts, machine_line, progress, write_json
from facteur.adapters.sessions import SessionStore
from facteur.flows.status_callback import Reporter
from tests.helpers.fakes import NAMESPACE, UI, MemoryArgo, MemoryDiscord
from tests.helpers.servers import redis_server
from tests.helpers.support import run_record

TOKEN_TTL = 840


class _OldestFirst:
    """The store as it was before rotation: ticks mark nothing, so the order never changes."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def checked(self, correlation_ids: list[str], at: float) -> None:
        pass


def measure(redis_url: str, *, running: int, batch: int, max_ticks: int, rotate: bool) -> dict:
    store = SessionStore.from_url(redis_url, ttl_seconds=3600)
    store._redis.flushdb()
    argo, discord = MemoryArgo(), MemoryDiscord()
    start = time.time() - 2 * (running + 1)
    for n in range(running + 1):
        session = run_record(namespace=NAMESPACE, received_at=start + n, ref=None)
        store.save(session)
        if n < running:
            argo.add_workflow(NAMESPACE, session.workflow_name or "", "Running")
        else:
            deleted = session  # never created in Argo: it answers 404
    clock = itertools.count(time.time(), 1.0)
    reporter = Reporter(
        store=store if rotate else _OldestFirst(store),  # type: ignore[arg-type]
        discord=discord,
        ui_url=UI,
        token_ttl_seconds=TOKEN_TTL,
        argo=argo,
        tick_batch=batch,
        clock=lambda: next(clock),
    )
    reported_at: int | None = None
    durations: list[float] = []
    for tick in range(1, max_ticks + 1):
        began = time.perf_counter()
        body = reporter.tick().body
        durations.append((time.perf_counter() - began) * 1000)
        if body["reported"]:
            reported_at = tick
            break
    looked = [name for operation, _, name in argo.calls if operation == "get_workflow"]
    store._redis.close()
    assert reported_at is None or [s.content for s in discord.sent] == [
        "`/plan` finished: **Deleted**"
    ], discord.sent
    return {
        "order": "rotation" if rotate else "oldest first",
        "reported_after_ticks": reported_at,
        "ticks_run": len(durations),
        "runs_checked": len(set(looked)),
        "checks": len(looked),
        "deleted_run": deleted.workflow_name,
        "tick_ms_median": sorted(durations)[len(durations) // 2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--running", type=int, default=200, help="long runs still going")
    parser.add_argument("--tick-batch", type=int, default=50)
    parser.add_argument("--max-ticks", type=int, default=40, help="give up after this many")
    parser.add_argument("--output", type=Path, default=RESULTS / "tick_rotation.json")
    args = parser.parse_args()
    pending = args.running + 1
    bound = math.ceil(pending / args.tick_batch)
    workdir = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    results = []
    with redis_server(workdir) as redis_url:
        for rotate in (True, False):
            progress(f"{'rotation' if rotate else 'oldest first'}: {pending} pending runs")
            results.append(
                measure(
                    redis_url,
                    running=args.running,
                    batch=args.tick_batch,
                    max_ticks=args.max_ticks,
                    rotate=rotate,
                )
            )
    facts = machine_facts(("redis",))
    print(machine_line(facts))
    print(
        f"\n{args.running} running runs + 1 deleted (the newest), tick_batch {args.tick_batch}: "
        f"ceil({pending}/{args.tick_batch}) = {bound} ticks to check every run\n"
    )
    print("| order | deleted run reported after | runs checked | checks | tick p50 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for result in results:
        after = result["reported_after_ticks"]
        said = f"{after} ticks" if after else f"never (gave up after {result['ticks_run']})"
        print(
            f"| {result['order']} | {said} | {result['runs_checked']} of {pending} "
            f"| {result['checks']} | {result['tick_ms_median']:.1f} ms |"
        )
    write_json(
        args.output,
        {"machine": facts, "settings": vars(args), "bound_ticks": bound, "results": results},
    )


if __name__ == "__main__":
    main()
