"""Redis loses its data while runs are pending: how many outcomes still reach their users.

    .venv/bin/python -m bench.redis_flush [--runs 20] [--output bench/results/redis_flush.json]

Each scenario starts a real redis-server, Argo as the swagger-validating fake and Discord as the
spec-checking fake (tests/helpers/argo_fake.py, discord_fake.py, both on loopback), and
status_callback as a real functions-framework process (`--asgi`, as deployed). `--runs` /plan
commands go through workflow_submit's flow on the real clients, in this process: each run is
created in Argo with facteur's labels and annotations, recorded in Redis with its interaction
token, pending, and its user told "Started". Then FLUSHALL, and the runs end:

1. the first half with their exit handler: Argo shows the entrypoint ended and the handler POSTs
   its callback to status_callback (bearer token), as the WorkflowTemplate's exit handler does;
2. a reconciliation tick (the PingSource's CloudEvent, with the tick token);
3. the second half terminated, which runs no exit handler; another tick;
4. a callback for every run (late copies, each with Argo's status) and a third tick, which must
   tell nobody anything new.

Counted: the workflows whose outcome reached Discord (a channel post naming the user: the tokens
went with Redis), and those told more than once. The control scenario leaves argo.namespace
unset, so status_callback rebuilds nothing: facteur as it was before the workflows carried what
it takes to report them. Markdown to stdout, JSON to --output, status_callback's log to
bench/results/logs/redis_flush/.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
import requests

from bench.processes import signals_raise
from bench.report import (
    CHAIN_PACKAGES,
    RESULTS,
    fresh_log_dir,
    machine_facts,
    machine_line,
    publish,
)
from facteur.adapters.argo import ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.adapters.sessions import SessionStore
from facteur.flows.workflow_submit import Submitter
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.chain import journey
from tests.helpers.discord_fake import DiscordFake
from tests.helpers.servers import FunctionProcess, redis_server
from tests.helpers.support import APP, CALLBACK_TOKEN, base_env, ping_event

NAMESPACE = "agents"
TEMPLATE = "facteur-dispatch"
UI = "https://argo.example.test"
# Not real secrets: the fakes only compare them.
TICK_TOKEN = "bench-tick-token-0123456789abcdef0123"  # noqa: S105
BOT_TOKEN = "bench-bot-token"  # noqa: S105
CHANNEL_POST = ("POST", "/channels/{channel_id}/messages")
EDIT = ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
PENDING_KEY = "facteur:pending"
TIMEOUT_S = 15.0


def _post_callback(url: str, name: str, status: str) -> tuple[int, dict[str, Any], float]:
    body = {"name": name, "namespace": NAMESPACE, "status": status}
    headers = {"Authorization": f"Bearer {CALLBACK_TOKEN}", "Content-Type": "application/json"}
    started = time.perf_counter()
    response = requests.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    return response.status_code, response.json(), (time.perf_counter() - started) * 1000


def _tick(url: str) -> dict[str, Any]:
    body, headers = ping_event(TICK_TOKEN)
    response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
    response.raise_for_status()
    return dict(response.json())


def _seed(runs: int, redis_url: str, argo: FakeArgo, discord: DiscordFake) -> list[str]:
    """`runs` /plan commands through workflow_submit's flow on the real clients."""
    store = SessionStore.from_url(redis_url, 604800, 900)
    submitter = Submitter(
        argo=ArgoClient(server_url=argo.base_url, token=None),
        store=store,
        discord=DiscordClient(api_base_url=discord.url, application_id=APP, bot_token=BOT_TOKEN),
        namespace=NAMESPACE,
        ui_url=UI,
        token_ttl_seconds=840,
    )
    names = []
    for _ in range(runs):
        trip = replace(
            journey("plan"),
            parameters={"objective": "ship it", "action": "plan"},
            workflow_template=TEMPLATE,
        )
        outcome = submitter.handle(trip)
        if outcome.result != "submitted":
            raise RuntimeError(f"seeding failed: {outcome}")
        names.append(outcome.workflow or "")
    return names


def callback_env(redis_url: str, argo: FakeArgo, discord: DiscordFake) -> dict[str, str]:
    """status_callback's settings against these peers."""
    return base_env(
        FACTEUR_REDIS_URL=redis_url,
        FACTEUR_ARGO_SERVER_URL=argo.base_url,
        FACTEUR_ARGO_UI_URL=UI,
        FACTEUR_DISCORD_API_BASE_URL=discord.url,
        FACTEUR_DISCORD_BOT_TOKEN=BOT_TOKEN,
        FACTEUR_CALLBACK_TICK_TOKEN=TICK_TOKEN,
    )


def run(name: str, runs: int, recovery: bool, log_dir: Path, scratch: Path) -> dict[str, Any]:
    workdir = scratch / name
    workdir.mkdir()
    with (
        redis_server(workdir) as redis_url,
        FakeArgo.served() as argo,
        DiscordFake.served() as discord,
    ):
        env = callback_env(redis_url, argo, discord)
        if not recovery:
            env.pop("FACTEUR_ARGO_NAMESPACE")
        callback = FunctionProcess("status_callback", env, log_dir / f"{name}.log")
        try:
            callback.wait_ready()
            names = _seed(runs, redis_url, argo, discord)
            client = redis.Redis.from_url(redis_url)
            pending_before = int(client.zcard(PENDING_KEY))
            started_replies = len(discord.to(*EDIT))
            client.flushall()
            keys_after = int(client.dbsize())
            half = runs // 2

            answers: Counter[str] = Counter()
            latencies = []
            for workflow in names[:half]:
                argo.set_phase(NAMESPACE, workflow, "Running", entry="Succeeded")
                status, body, ms = _post_callback(callback.url, workflow, "Succeeded")
                answers[f"{status} {body.get('result')}"] += 1
                latencies.append(ms)
                argo.set_phase(NAMESPACE, workflow, "Succeeded")
            ticks = [_tick(callback.url)]
            for workflow in names[half:]:
                argo.set_phase(
                    NAMESPACE, workflow, "Failed", message="Stopped with strategy 'Terminate'"
                )
            ticks.append(_tick(callback.url))
            late: Counter[str] = Counter()
            for index, workflow in enumerate(names):
                outcome = "Succeeded" if index < half else "Failed"
                status, body, _ = _post_callback(callback.url, workflow, outcome)
                late[f"{status} {body.get('result')}"] += 1
            ticks.append(_tick(callback.url))
        finally:
            callback.stop()
        prefix = f"{UI}/workflows/{NAMESPACE}/"
        told = Counter(
            post.json["embeds"][0]["url"].removeprefix(prefix) for post in discord.to(*CHANNEL_POST)
        )
        argo_requests = Counter(r.operation for r in argo.requests)
        violations = list(argo.violations) + list(discord.violations)
    return {
        "scenario": name,
        "recovery": recovery,
        "runs": runs,
        "pending_before_flush": pending_before,
        "started_replies": started_replies,
        "keys_after_flush": keys_after,
        "told": sum(1 for workflow in names if told[workflow]),
        "told_twice": sum(1 for workflow in names if told[workflow] > 1),
        "edits_after_flush": len(discord.to(*EDIT)) - started_replies,
        "callback_answers": dict(answers),
        "late_callback_answers": dict(late),
        "callback_ms_median": statistics.median(latencies) if latencies else None,
        "ticks": ticks,
        "reported_by_ticks": sum(int(t.get("reported", 0)) for t in ticks),
        "recovered_by_ticks": sum(int(t.get("recovered", 0)) for t in ticks),
        "argo_requests": dict(argo_requests),
        "contract_violations": violations,
    }


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| scenario | pending before FLUSHALL | keys after | told | told twice "
        "| by callbacks | by ticks | re-added by ticks | callback answers | late copies "
        "| callback ms (median) | spec violations |",
        "| --- |" + " ---: |" * 7 + " --- | --- | ---: | ---: |",
    ]
    for r in results:
        by_callbacks = r["told"] - r["reported_by_ticks"]
        answers = ", ".join(f"{k} x{n}" for k, n in sorted(r["callback_answers"].items()))
        late = ", ".join(f"{k} x{n}" for k, n in sorted(r["late_callback_answers"].items()))
        median = r["callback_ms_median"]
        rows.append(
            f"| {r['scenario']} | {r['pending_before_flush']}/{r['runs']} "
            f"| {r['keys_after_flush']} | {r['told']}/{r['runs']} | {r['told_twice']} "
            f"| {by_callbacks} | {r['reported_by_ticks']} | {r['recovered_by_ticks']} "
            f"| {answers} | {late} | {'-' if median is None else f'{median:.1f}'} "
            f"| {len(r['contract_violations'])} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--output", type=Path, default=RESULTS / "redis_flush.json")
    args = parser.parse_args()
    started = time.monotonic()
    facts = machine_facts(CHAIN_PACKAGES)
    log_dir = fresh_log_dir("redis_flush")
    scenarios = [("recovery", True), ("control: argo.namespace unset", False)]
    with signals_raise(), tempfile.TemporaryDirectory(prefix="bench-redis-flush-") as scratch:
        results = [
            run(name.split(":")[0], args.runs, recovery, log_dir, Path(scratch))
            for name, recovery in scenarios
        ]
    text = "\n".join(
        [
            machine_line(facts),
            f"{args.runs} /plan runs pending, then FLUSHALL; half end with their exit handler, "
            "half are terminated; three ticks; then every callback again.\n",
            table(results),
            "\ntold: workflows whose outcome reached Discord (a channel post naming the user); "
            "by callbacks: told on an exit handler's callback, by ticks: told by a "
            "reconciliation tick; re-added by ticks: unfinished runs the ticks saved in Redis "
            "again. control: status_callback without argo.namespace rebuilds nothing, as "
            "facteur did before.",
        ]
    )
    publish(text, facts, args, started, log_dir, results=results)


if __name__ == "__main__":
    main()
