"""A run's live message: how fast a nudge shows, how few edits a long run costs, and where a run
that outlives its token ends.

    .venv/bin/python -m bench.live_card [--runs 30] [--steps 40] [--interval 1]

A real redis-server, Argo and Discord as the spec-checking fakes on loopback, and status_callback
as a real functions-framework process (`--asgi`). Runs are seeded through workflow_submit's flow
on the real clients (bench.redis_flush), then:

1. latency: each of `--runs` runs gets Argo progress and one nudge (an ApiServerSource update),
   with pacing off; the time from sending the nudge to its answer, by which the edit of the run's
   message has been made (status_callback answers once Discord took it);
2. pacing: one run goes through `--steps` steps over `--steps / 4` seconds, two nudges a step (the
   controller updates a workflow more than once a step), with card.min_edit_interval_seconds
   `--interval`, then ends: edits of its message, against duration / interval + 2;
3. past the token: a run whose interaction token has expired (a 1 s token lifetime stands in
   for two hours) ends: where its outcome lands.

Markdown to stdout, JSON to bench/results/live_card.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.processes import signals_raise
from bench.redis_flush import EDIT, NAMESPACE, TIMEOUT_S, _seed, callback_env
from bench.report import (
    CHAIN_PACKAGES,
    RESULTS,
    fresh_log_dir,
    machine_facts,
    machine_line,
    publish,
)
from facteur.adapters.sessions import SessionStore
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.discord_fake import DiscordFake
from tests.helpers.servers import FunctionProcess, redis_server
from tests.helpers.support import nudge_event

BOT_EDIT = ("PATCH", "/channels/{channel_id}/messages/{message_id}")


def _nudge(url: str, workflow: str) -> tuple[float, str]:
    body, headers = nudge_event(workflow, "update", NAMESPACE)
    started = time.perf_counter()
    response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
    return (time.perf_counter() - started) * 1000, str(response.json().get("result"))


def _progress(argo: FakeArgo, workflow: str, done: int, steps: int) -> None:
    argo.set_phase(NAMESPACE, workflow, "Running")
    argo.workflows[(NAMESPACE, workflow)]["status"]["progress"] = f"{done}/{steps}"


def _edits(discord: DiscordFake, token: str) -> int:
    return sum(1 for r in discord.to(*EDIT) if r.params.get("webhook_token") == token)


def run(args: argparse.Namespace, log_dir: Path, scratch: Path) -> dict[str, Any]:
    with (
        redis_server(scratch) as redis_url,
        FakeArgo.served() as argo,
        DiscordFake.served() as discord,
    ):
        env = callback_env(redis_url, argo, discord)
        results: dict[str, Any] = {}
        # 1. Latency, pacing off.
        fast = FunctionProcess(
            "status_callback",
            env | {"FACTEUR_CARD_MIN_EDIT_INTERVAL_SECONDS": "0"},
            log_dir / "latency.log",
        )
        try:
            fast.wait_ready()
            names = _seed(args.runs, redis_url, argo, discord)
            latencies, answers = [], []
            for workflow in names:
                _progress(argo, workflow, 1, args.steps)
                ms, answer = _nudge(fast.url, workflow)
                latencies.append(ms)
                answers.append(answer)
        finally:
            fast.stop()
        cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
        results["latency"] = {
            "runs": len(latencies),
            "updated": answers.count("updated"),
            "p50_ms": statistics.median(latencies),
            "p99_ms": cuts[98],
        }
        # 2. Pacing over a long run.
        paced = FunctionProcess(
            "status_callback",
            env | {"FACTEUR_CARD_MIN_EDIT_INTERVAL_SECONDS": str(args.interval)},
            log_dir / "pacing.log",
        )
        try:
            paced.wait_ready()
            [workflow] = _seed(1, redis_url, argo, discord)
            token = discord.to(*EDIT)[-1].params["webhook_token"]
            before = _edits(discord, token)
            started = time.perf_counter()
            for done in range(1, args.steps + 1):
                _progress(argo, workflow, done, args.steps)
                for _ in range(2):
                    _nudge(paced.url, workflow)
                time.sleep(0.25)
            argo.set_phase(NAMESPACE, workflow, "Succeeded")
            _, final = _nudge(paced.url, workflow)
            duration = time.perf_counter() - started
        finally:
            paced.stop()
        edits = _edits(discord, token) - before
        results["pacing"] = {
            "steps": args.steps,
            "nudges": args.steps * 2 + 1,
            "seconds": round(duration, 1),
            "interval_s": args.interval,
            "edits": edits,
            "bound": int(duration / args.interval) + 2,
            "final": final,
        }
        # 3. Past the token.
        late = FunctionProcess(
            "status_callback",
            env | {"FACTEUR_DISCORD_INTERACTION_TOKEN_TTL_SECONDS": "1"},
            log_dir / "token.log",
        )
        try:
            late.wait_ready()
            [workflow] = _seed(1, redis_url, argo, discord)
            store = SessionStore.from_url(redis_url, 604800, 900)
            session = store.find_workflow(NAMESPACE, workflow)
            original = session.message_id if session else None
            time.sleep(1.5)  # the token's lifetime is over
            argo.set_phase(NAMESPACE, workflow, "Succeeded")
            _, final = _nudge(late.url, workflow)
        finally:
            late.stop()
        bot_edits = discord.to(*BOT_EDIT)
        results["past_the_token"] = {
            "final": final,
            "bot_edits": len(bot_edits),
            "same_message": bool(bot_edits) and bot_edits[-1].params["message_id"] == original,
            "channel_posts": len(discord.channel_messages),
        }
        results["violations"] = list(argo.violations) + list(discord.violations)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=RESULTS / "live_card.json")
    args = parser.parse_args()
    started = time.monotonic()
    facts = machine_facts(CHAIN_PACKAGES)
    log_dir = fresh_log_dir("live_card")
    with signals_raise(), tempfile.TemporaryDirectory(prefix="bench-live-card-") as scratch:
        r = run(args, log_dir, Path(scratch))
    lat, pace, past = r["latency"], r["pacing"], r["past_the_token"]
    text = "\n".join(
        [
            machine_line(facts),
            "| measure | figure | target |",
            "| --- | ---: | --- |",
            f"| nudge to edit, p50 / p99 (pacing off, {lat['runs']} runs) "
            f"| {lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms | p50 within 2 s |",
            f"| edits of one {pace['steps']}-step run over {pace['seconds']} s, "
            f"{pace['nudges']} nudges, interval {pace['interval_s']:g} s "
            f"| {pace['edits']} | at most {pace['bound']} |",
            f"| a run past its token ends | {past['bot_edits']} bot edit(s) of "
            f"{'the same message' if past['same_message'] else 'another message'}, "
            f"{past['channel_posts']} channel post(s) | its original message, edited |",
            f"\nspec violations: {len(r['violations'])}",
        ]
    )
    publish(text, facts, args, started, log_dir, results=r)


if __name__ == "__main__":
    main()
