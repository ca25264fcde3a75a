"""The whole chain under faults, one scenario per row, on loopback.

    .venv/bin/python -m bench.fault_chain [--commands 100] [--spread 3] [--hop broker]
                                          [--only NAME ...]

Each scenario starts interaction_verify -> command_route -> workflow_submit afresh as real
functions-framework processes (THREADS=4) with a real redis-server and the loopback Argo and
Discord fakes of bench.fakes, sends N signed /plan commands paced evenly over `--spread`
seconds (so that commands are in flight when a fault starts and ends), injects its fault, and
waits until every accepted command has been answered in Discord and the hops are idle (at most
`--deadline` seconds).

Between the hops sits bench.broker.Broker, a Knative Broker stand-in: it answers 202 at once,
delivers in the background and redelivers on 5xx (retry 5, exponential backoff from 0.2 s where
the Triggers use PT1S), because facteur relies on that redelivery when Discord cannot be reached.
`--hop direct` chains the functions by K_SINK instead (./scripts/dev); duplicates then come
from a proxy that relays the first copy's answer and sends the second in the background.

For each scenario: commands accepted (type 5), workflows created (distinct names at the Argo
fake), users told the outcome (an edit, follow-up or channel post for that command, success or
failure), and 5xx answers to the callers. Markdown to stdout, JSON to bench/results/faults.json,
function logs to bench/results/logs/faults/ (`--hop direct`: faults-direct.json).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.broker import Broker
from bench.chain import chain, chain_env, wait_until
from bench.fakes import Faults, Message, Recorder
from bench.interactions import Sent, plan_commands
from bench.load import fire
from bench.processes import RedisProcess, signals_raise
from bench.report import CHAIN_PACKAGES, RESULTS, machine_facts, machine_line, write_json
from facteur.decisions import delivery
from tests.helpers.support import sign

THREADS = 4
ARGO_TIMEOUT = 1.0  # FACTEUR_ARGO_TIMEOUT_SECONDS where Argo is made slow
SUCCESS = "Started `/"
_MENTION_FIRST = re.compile(r"^<@\d+> ")
# The one notice facteur gives while Knative redelivers: not an outcome.
RETRYING = "is not started yet"
FAILURE_MARKS = ("was not started", "couldn't accept", "could not", "couldn't")
# How long the Triggers' budget runs (decisions/delivery.py), and a margin for the attempts.
BUDGET_LOW, BUDGET_HIGH = delivery.budget_seconds()
REDIS_REFUSAL = "session store is unavailable"
NOT_RECORDED = "could not record this run"


@dataclass
class Scenario:
    name: str
    what: str
    faults: Faults = field(default_factory=Faults)
    copies: tuple[int, int] = (1, 1)  # deliveries of every event: to route, to submit
    copy_delay: float = 0.0
    redis_down: tuple[float, float] | None = None  # stop at, start again at (s after the start)
    replays: int = 1  # posts of each signed request to verify (a replay attack when > 1)
    env: dict[str, str] = field(default_factory=dict)
    # SIGKILL these functions at `kills` random moments while commands are sent, each started
    # again `restart_after` seconds later, as Knative starts a new pod.
    kill: tuple[str, ...] = ()
    kills: int = 3
    restart_after: float = 0.3
    deadline: float | None = None  # seconds to settle, when longer than --deadline
    # False where the fault outlasts the delivery budget: no workflow may start, and every
    # user hears once that nothing did.
    starts: bool = True


def scenarios() -> list[Scenario]:
    slow_env = {"FACTEUR_ARGO_TIMEOUT_SECONDS": str(ARGO_TIMEOUT)}
    slow = ARGO_TIMEOUT + 0.5
    return [
        Scenario("baseline", "no fault"),
        Scenario(
            "redis-restart",
            "redis-server stopped at 1.0 s, started again at 2.0 s",
            redis_down=(1.0, 2.0),
        ),
        Scenario(
            "argo-503",
            "Argo answers 503 for the first 2 s",
            Faults(argo_unavailable=(0.0, 2.0)),
        ),
        Scenario(
            "argo-503-30s",
            "Argo answers 503 for 30 s, as in a rolling upgrade",
            Faults(argo_unavailable=(0.0, 30.0)),
            deadline=BUDGET_HIGH + 30,
        ),
        Scenario(
            "argo-down-past-budget",
            f"Argo answers 503 for longer than the delivery budget ({BUDGET_LOW}-{BUDGET_HIGH} s)",
            Faults(argo_unavailable=(0.0, 3600.0)),
            # Seven attempts of 100 events, each attempt spending the Argo client's own retries,
            # on four threads of one workflow_submit (Knative would add pods).
            deadline=BUDGET_HIGH + 300,
            starts=False,
        ),
        Scenario(
            "kill-route",
            "command_route killed (SIGKILL) at 3 random moments, started again 0.3 s later",
            kill=("command_route",),
            deadline=BUDGET_HIGH + 30,
        ),
        Scenario(
            "kill-submit",
            "workflow_submit killed (SIGKILL) at 3 random moments, started again 0.3 s later",
            kill=("workflow_submit",),
            deadline=BUDGET_HIGH + 30,
        ),
        Scenario(
            "argo-slow",
            f"Argo answers after {slow:g} s (timeout {ARGO_TIMEOUT:g} s) for the first 2 s; "
            "it commits the workflow before answering",
            Faults(argo_slow=(0.0, 2.0), argo_delay=slow),
            env=slow_env,
        ),
        Scenario(
            "argo-slow-5s",
            "as argo-slow, for the first 5 s: longer than facteur's 4 attempts",
            Faults(argo_slow=(0.0, 5.0), argo_delay=slow),
            env=slow_env,
        ),
        Scenario(
            "discord-429",
            "30% of Discord requests answered 429, retry_after 0.2 s",
            Faults(discord_429_share=0.3, discord_retry_after=0.2),
        ),
        Scenario(
            "twice-delayed",
            "every event delivered twice on both hops, the copy 0.3 s later",
            copies=(2, 2),
            copy_delay=0.3,
        ),
        Scenario(
            "twice-concurrent",
            "every event delivered twice on both hops, both copies at once",
            copies=(2, 2),
        ),
        Scenario(
            "twice-redis-restart",
            "every event to command_route delivered twice, the copy 0.3 s later, "
            "with Redis down 1.0-2.0 s",
            copies=(2, 1),
            copy_delay=0.3,
            redis_down=(1.0, 2.0),
        ),
        Scenario(
            "twice-redis-down-token-expired",
            "every event delivered twice on both hops, 0.3 s apart, with Redis down for the "
            "whole run and every interaction token refused as expired (so every reply is a "
            "channel post)",
            Faults(tokens_expired=True),
            copies=(2, 2),
            copy_delay=0.3,
            redis_down=(0.0, 3600.0),
        ),
        Scenario(
            "replayed",
            "every signed request posted to verify twice at once, same body and signature",
            replays=2,
        ),
        Scenario(
            "all",
            "all at once: Redis down 1.0-2.0 s, Argo 503 0-1 s then slow 1-2.5 s, "
            "30% Discord 429, every event twice 0.3 s apart",
            Faults(
                argo_unavailable=(0.0, 1.0),
                argo_slow=(1.0, 2.5),
                argo_delay=slow,
                discord_429_share=0.3,
                discord_retry_after=0.2,
            ),
            copies=(2, 2),
            copy_delay=0.3,
            redis_down=(1.0, 2.0),
            env=slow_env,
        ),
    ]


def _after(start: float, seconds: float, stop: threading.Event) -> bool:
    """Sleep until `seconds` after `start`; False if told to stop first."""
    return not stop.wait(max(0.0, start + seconds - time.perf_counter()))


def brokers_for(scenario: Scenario, hop: str) -> tuple[Broker, Broker] | None:
    """Knative-like brokers between the hops; for the direct chain, a relaying proxy that
    duplicates events, or nothing."""
    if hop == "direct" and scenario.copies == (1, 1):
        return None
    synchronous = hop == "direct"
    to_route, to_submit = scenario.copies
    delay = scenario.copy_delay
    return (
        Broker("to-route", synchronous=synchronous, copies=to_route, copy_delay=delay),
        Broker("to-submit", synchronous=synchronous, copies=to_submit, copy_delay=delay),
    )


def run(
    scenario: Scenario, commands: int, spread: float, deadline: float, hop: str, index: int
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"facteur-fault-{scenario.name}-"))
    recorder = Recorder(scenario.faults)
    redis = RedisProcess(workdir)
    brokers = brokers_for(scenario, hop)
    items = plan_commands(commands, run=index)
    # A replay is the very same bytes: body, signature and timestamp, as captured.
    sends = [
        replace(item, headers=sign(item.body)) if scenario.replays > 1 else item for item in items
    ]
    sends = [replace(item) for item in sends for _ in range(scenario.replays)]
    stop = threading.Event()
    with redis.running(), recorder.serve() as fake_url:
        env = chain_env(redis.url, fake_url, THREADS, **scenario.env)
        with chain(env, workdir, brokers) as running:
            recorder.start = start = time.perf_counter()

            def outage() -> None:
                # Bounded: two waits, each ending at a fixed time or when told to stop.
                assert scenario.redis_down is not None
                if _after(start, scenario.redis_down[0], stop):
                    redis.stop()
                if _after(start, scenario.redis_down[1], stop):
                    redis.start()

            crashed_at: list[float] = []

            def crashes() -> None:
                victims = [p for p in running.processes if p.name in scenario.kill]
                chance = random.Random(index)  # when to crash: not a secret
                for at in sorted(chance.uniform(0.2, spread) for _ in range(scenario.kills)):
                    if not _after(start, at, stop):
                        return
                    for proc in victims:
                        proc.kill()
                    time.sleep(scenario.restart_after)
                    for proc in victims:
                        proc.restart()
                    crashed_at.append(round(time.perf_counter() - start, 2))

            fault = threading.Thread(target=outage, daemon=True) if scenario.redis_down else None
            killer = threading.Thread(target=crashes, daemon=True) if scenario.kill else None
            try:
                for thread in (fault, killer):
                    if thread:
                        thread.start()
                fire(running.verify_url, sends, concurrency=32, spread=spread)
                for thread in (fault, killer):
                    if thread:
                        thread.join(timeout=spread + 20)
            finally:
                stop.set()
                if fault and fault.is_alive():
                    # Before Redis is stopped for good, so no restart can outlive the run.
                    fault.join(timeout=20)
            wait = max(deadline, scenario.deadline or 0.0)
            settled = wait_until(lambda: _settled(running.idle, recorder, sends), wait)
            # Late copies of events may still make a second reply: give them a moment.
            time.sleep(0.5)
            wait_until(running.idle, 5)
            finished = time.perf_counter()
            logs_dir = RESULTS / "logs" / ("faults" if hop == "broker" else "faults-direct")
            logs_dir = logs_dir / scenario.name
            logs_dir.mkdir(parents=True, exist_ok=True)
            for proc in running.processes:
                shutil.copyfile(proc.log_path, logs_dir / f"{proc.name}.log")
    for item in items:
        copies = [sent for sent in sends if sent.interaction_id == item.interaction_id]
        answered = next((c for c in copies if c.accepted), copies[0])
        item.sent_at, item.answered_at = answered.sent_at, answered.answered_at
        item.status, item.kind, item.error = answered.status, answered.kind, answered.error
    result = analyse(scenario, items, recorder, brokers, hop)
    result["posts_to_verify"] = len(sends)
    result["posts_acknowledged"] = sum(1 for sent in sends if sent.accepted)
    result["verify_5xx"] = sum(1 for s in sends if s.status is not None and s.status >= 500)
    result["settled"] = settled
    result["seconds"] = finished - start
    result["redis_events"] = [(what, at - start) for what, at in redis.events]
    result["crashed_at"] = crashed_at
    result["channel_posts_collapsed"] = recorder.collapsed
    return result


def _settled(idle: Callable[[], bool], recorder: Recorder, sends: list[Sent]) -> bool:
    """The hops are idle and every acknowledged command has a message."""
    told = recorder.told()
    return idle() and all(s.token in told or s.user_id in told for s in sends if s.accepted)


def kind(message: Message) -> str:
    # A channel post opens with the mention of its user.
    if _MENTION_FIRST.sub("", message.content).startswith(SUCCESS):
        return "success"
    if RETRYING in message.content:
        return "retrying"
    if any(mark in message.content for mark in FAILURE_MARKS):
        return "failure"
    return "other"


def reason(message: Message) -> str:
    text = message.content
    if "was not started:" in text:
        return text.split("was not started:", 1)[1].strip()
    return text[:80]


def analyse(
    scenario: Scenario,
    items: list[Sent],
    recorder: Recorder,
    brokers: tuple[Broker, Broker] | None,
    hop: str,
) -> dict[str, Any]:
    with recorder.lock:
        messages = sorted(recorder.messages, key=lambda m: m.at)
        created = set(recorder.created)
    by_key: dict[str, list[Message]] = {}
    for message in messages:
        by_key.setdefault(message.key, []).append(message)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    sequences: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}

    def note(what: str, item: Sent) -> None:
        counts[what] += 1
        examples.setdefault(what, [])
        if len(examples[what]) < 5:
            examples[what].append(item.interaction_id)

    for item in items:
        made = f"plan-{item.interaction_id}" in created
        said = by_key.get(item.token, []) + by_key.get(item.user_id, [])
        said.sort(key=lambda m: m.at)
        notices = [m for m in said if kind(m) == "retrying"]
        if notices:
            note("told_retrying", item)
            if len(notices) > 1:
                note("told_retrying_more_than_once", item)
        # Outcomes only: the "keeps trying" notice is edited over by the outcome.
        said = [m for m in said if kind(m) != "retrying"] or said
        if not item.accepted:
            note("not_accepted", item)
            if made:
                note("created_not_accepted", item)
            continue
        note("accepted", item)
        if made:
            note("created", item)
        if not said:
            note("lost", item)
            continue
        note("told", item)
        final = said[-1]
        final_kind = kind(final)
        note(f"final_{final_kind}", item)
        if final_kind != "success":
            reasons[reason(final)] += 1
        if len(said) > 1:
            note("replied_more_than_once", item)
            sequence = " -> ".join(kind(m) for m in said)
            sequences[sequence] += 1
            if len(examples.setdefault(sequence, [])) < 5:
                examples[sequence].append(item.interaction_id)
        if any(m.route == "channel" for m in said):
            note("channel_post", item)
        if final_kind == "failure" and not made and REDIS_REFUSAL in final.content:
            note("refused_told", item)
        elif final_kind != "success" and not made:
            note("failed_told", item)
        if made and final_kind != "success":
            note("created_told_failure", item)
        if not made and final_kind == "success":
            note("success_without_workflow", item)
        if final_kind == "success" and NOT_RECORDED in final.content:
            note("not_recorded", item)
    hops = {b.name: b.summary() for b in brokers} if brokers else {}
    hop_5xx = sum(
        n for h in hops.values() for status, n in h["answers"].items() if status.startswith("5")
    )
    dead = sum(len(h["dead_letters"]) for h in hops.values())
    expected_created = counts["accepted"] - counts["refused_told"] if scenario.starts else 0
    return {
        "scenario": scenario.name,
        "what": scenario.what,
        "hop": hop,
        "env": scenario.env,
        "sent": len(items),
        "counts": dict(counts),
        "expected_created": expected_created,
        "meets_targets": (
            counts["created"] == expected_created
            and counts["told"] == counts["accepted"]
            and not counts["created_told_failure"]
            and not counts["success_without_workflow"]
            and not counts["told_retrying_more_than_once"]
            # While redeliveries remain, nobody is told "not started"; once the budget is
            # spent, everybody is, once.
            and (
                not counts["failed_told"]
                if scenario.starts
                else counts["final_failure"] == counts["accepted"]
                and not counts["replied_more_than_once"]
            )
        ),
        "failure_reasons": dict(reasons),
        "reply_sequences": dict(sequences),
        "examples": examples,
        "verify_5xx": sum(1 for i in items if i.status is not None and i.status >= 500),
        "client_errors": Counter(i.error for i in items if i.error),
        "verify_answers": dict(Counter(str(i.status) for i in items)),
        "hop_5xx": hop_5xx,
        "dead_letters": dead,
        "brokers": hops,
        "argo_answers": dict(recorder.argo_answers),
        "discord_answers": dict(recorder.discord_answers),
    }


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| scenario | accepted | created | told | told success | told failure | refused, told "
        "| created, told failure | replied >1 | told retrying (>1) | lost | 5xx to Discord "
        "| 5xx between hops | dead letters | targets |",
        "| --- |" + " ---: |" * 13 + " :---: |",
    ]
    for r in results:
        c: Counter[str] = Counter(r["counts"])
        rows.append(
            f"| {r['scenario']} | {c['accepted']}/{r['sent']} "
            f"| {c['created']}/{r['expected_created']} | {c['told']}/{c['accepted']} "
            f"| {c['final_success']} | {c['final_failure'] + c['final_other']} "
            f"| {c['refused_told']} | {c['created_told_failure']} "
            f"| {c['replied_more_than_once']} "
            f"| {c['told_retrying']} ({c['told_retrying_more_than_once']}) "
            f"| {c['lost']} | {r['verify_5xx']} "
            f"| {r['hop_5xx']} | {r['dead_letters']} "
            f"| {'met' if r['meets_targets'] else 'MISSED'} |"
        )
    return "\n".join(rows)


def findings(r: dict[str, Any]) -> list[str]:
    """What departs from the targets, or could surprise a user, in plain words."""
    c: Counter[str] = Counter(r["counts"])
    out: list[str] = []

    def when(count: str, text: str) -> None:
        # `text` may name {n}, the count; {e}, up to three of its interaction IDs; any of `r`.
        if c[count]:
            out.append(text.format(n=c[count], e=r["examples"].get(count, [])[:3], **r))

    if r["posts_to_verify"] != r["sent"]:
        out.append(
            f"{r['posts_to_verify']} posts for {r['sent']} commands, {r['posts_acknowledged']} "
            "acknowledged with type 5 (verify does not deduplicate; command_route does)"
        )
    when("not_accepted", "{n} not acknowledged with type 5: {verify_answers}")
    when("created_not_accepted", "{n} of those got a workflow anyway (e.g. {e})")
    if c["created"] != r["expected_created"]:
        out.append(f"{c['created']} workflows for {r['expected_created']} accepted and not refused")
    when("failed_told", "{n} told a failure instead of getting a workflow")
    when(
        "created_told_failure",
        "{n} workflows created whose user was last told a failure (e.g. {e})",
    )
    when("success_without_workflow", "{n} told success without a workflow")
    when("lost", "{n} never told anything (e.g. {e})")
    when(
        "replied_more_than_once",
        "{n} got more than one message, in this order: {reply_sequences} "
        "(README promises one reply for a duplicated event)",
    )
    meanings = {
        "success -> failure": "a failure edit overwrote the success reply of a created run",
        "failure -> success": "told the command was not started, then a copy of its event "
        "started it",
    }
    for sequence, meaning in meanings.items():
        if sequence in r["reply_sequences"]:
            examples = r["examples"][sequence][:3]
            out.append(f"'{sequence}': {meaning} (e.g. {examples})")
    when("not_recorded", "{n} success replies say the run could not be recorded")
    if r["failure_reasons"]:
        out.append(f"failure messages: {r['failure_reasons']}")
    if r["dead_letters"]:
        out.append(f"{r['dead_letters']} events dead-lettered")
    if not r["settled"]:
        out.append("did not settle before the deadline")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=100)
    parser.add_argument("--spread", type=float, default=3.0, help="seconds to send over")
    parser.add_argument("--deadline", type=float, default=30.0, help="seconds to wait after")
    parser.add_argument("--hop", choices=("broker", "direct"), default="broker")
    parser.add_argument("--only", nargs="*", help="scenario names")
    args = parser.parse_args()
    chosen = [s for s in scenarios() if not args.only or s.name in args.only]
    facts = machine_facts(CHAIN_PACKAGES)
    results = []
    with signals_raise():
        for index, scenario in enumerate(chosen):
            results.append(
                run(scenario, args.commands, args.spread, args.deadline, args.hop, index)
            )
    print(machine_line(facts))
    hop = (
        "through a Broker stand-in (202 at once, redelivery on 5xx)"
        if args.hop == "broker"
        else "chained directly by K_SINK"
    )
    print(
        f"{args.commands} signed /plan commands per scenario over {args.spread:g} s, "
        f"THREADS={THREADS}, hops {hop}\n"
    )
    print(table(results))
    print(
        "\ncreated: distinct workflows at the Argo fake / accepted commands not refused for "
        "Redis. told: accepted commands with at least one message in Discord (edit or channel "
        "post), success or failure; told success/failure count each command's last message. "
        "refused, told: command_route could not reach Redis and said the command was not "
        "started (designed behaviour; not expected to create a workflow).\n"
    )
    for r in results:
        print(f"- {r['scenario']} ({r['what']}):")
        for line in findings(r) or [
            "as designed: every accepted command has its workflow and was told"
        ]:
            print(f"  - {line}")
    out = {"machine": facts, "args": vars(args), "results": results}
    # The direct chain is a side experiment: it must not overwrite the default results.
    write_json(RESULTS / ("faults.json" if args.hop == "broker" else "faults-direct.json"), out)


if __name__ == "__main__":
    main()
