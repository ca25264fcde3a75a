"""The whole chain under a burst of concurrent commands, on loopback.

    .venv/bin/python -m bench.load_chain [--commands 200] [--concurrency 200] [--hop both]

Runs interaction_verify -> command_route -> workflow_submit as real functions-framework processes
(THREADS=4, the deploy default) with a real redis-server and the loopback Argo and Discord fakes
of bench.fakes, then fires N signed /plan commands at once from N threads, each with its own
interaction ID and token, on a fresh connection as Discord does.

Two ways to join the hops (`--hop`):
- direct: K_SINK names the next function, as ./scripts/dev does; verify's answer then waits for
  route, which waits for submit (the Argo create and the Discord edit).
- broker: a Knative Broker stand-in (bench.broker.Broker) between the hops answers 202 at once
  and delivers in the background, as the Broker does in production.

Reports, per hop: the share of commands acknowledged (200 with type 5) within Discord's 3 s, p50
and p99 from the signed request to the ack, to the Argo create and to the Discord edit, the
workflows created (must equal the accepted commands), the messages lost (accepted commands with
no Discord message by the deadline; must be 0) and 5xx answers. Markdown to stdout, JSON to
bench/results/load.json. The load generator and the fakes share the 2 cores with the functions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.broker import Broker
from bench.chain import chain, chain_env, wait_until
from bench.fakes import Recorder
from bench.interactions import Sent, plan_commands
from bench.load import fire
from bench.processes import signals_raise
from bench.report import (
    CHAIN_PACKAGES,
    RESULTS,
    machine_facts,
    machine_line,
    percentile,
    write_json,
)
from tests.helpers.servers import redis_server

THREADS = 4
ACK_DEADLINE = 3.0  # Discord drops an interaction whose first answer takes longer
MESSAGE_DEADLINE = 30.0  # after the last answer, how long an accepted command may wait


def run(hop: str, commands: int, concurrency: int, run_index: int) -> dict[str, Any]:
    recorder = Recorder()
    workdir = Path(tempfile.mkdtemp(prefix=f"facteur-load-{hop}-"))
    brokers = (Broker("to-route"), Broker("to-submit")) if hop == "broker" else None
    items = plan_commands(commands, run=run_index)
    with redis_server(workdir) as redis_url, recorder.serve() as fake_url:
        env = chain_env(redis_url, fake_url, THREADS)
        with chain(env, workdir, brokers) as running:
            started = time.perf_counter()
            fire(running.verify_url, items, concurrency)
            accepted = [item for item in items if item.accepted]

            def settled() -> bool:
                told = recorder.told()
                return running.idle() and all(item.token in told for item in accepted)

            wait_until(settled, MESSAGE_DEADLINE)
            finished = time.perf_counter()
            logs = {proc.name: proc.logs() for proc in running.processes}
    return summarise(hop, items, recorder, brokers, started, finished, logs)


def summarise(
    hop: str,
    items: list[Sent],
    recorder: Recorder,
    brokers: tuple[Broker, Broker] | None,
    started: float,
    finished: float,
    logs: dict[str, str],
) -> dict[str, Any]:
    with recorder.lock:
        messages = list(recorder.messages)
        created = dict(recorder.created)
    first_message: dict[str, float] = {}
    failures = 0
    for message in sorted(messages, key=lambda m: m.at):
        first_message.setdefault(message.key, message.at)
        failures += not message.content.startswith("Started ")
    accepted = [item for item in items if item.accepted]
    ours = {f"plan-{item.interaction_id}": item for item in items}
    ack = [item.ack_seconds for item in items if item.status is not None]
    to_create = [created[name] - item.sent_at for name, item in ours.items() if name in created]
    to_edit = [first_message[i.token] - i.sent_at for i in accepted if i.token in first_message]
    lost = [item.interaction_id for item in accepted if item.token not in first_message]
    created_declined = [
        item.interaction_id
        for item in items
        if not item.accepted and f"plan-{item.interaction_id}" in created
    ]
    last = max([*first_message.values(), *(i.answered_at for i in items)], default=started)
    return {
        "hop": hop,
        "threads": THREADS,
        "sent": len(items),
        "accepted": len(accepted),
        "acked_within_3s": sum(1 for i in accepted if i.ack_seconds <= ACK_DEADLINE),
        "declined": sum(1 for i in items if i.status == 200 and i.kind != 5),
        "client_errors": sum(1 for i in items if i.error),
        "status_5xx": sum(1 for i in items if i.status is not None and i.status >= 500),
        "other_status": sum(1 for i in items if i.status is not None and i.status not in (200,)),
        "workflows_created": sum(1 for name in ours if name in created),
        "created_but_not_accepted": created_declined,
        "lost": lost,
        "failure_messages": failures,
        "messages": len(messages),
        "argo_answers": dict(recorder.argo_answers),
        "brokers": {b.name: b.summary() for b in brokers} if brokers else None,
        "seconds_until_last_message": last - started,
        "seconds_until_settled": finished - started,
        "ack": ack,
        "create": to_create,
        "edit": to_edit,
        "log_errors": {
            name: [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line][
                :20
            ]
            for name, text in logs.items()
        },
    }


def _p(values: list[float]) -> str:
    if not values:
        return "n/a"
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.0f} / {percentile(ms, 0.99):.0f}"


def table(results: list[dict[str, Any]]) -> str:
    labels = {"direct": "direct K_SINK (./scripts/dev)", "broker": "via a Broker stand-in"}
    head = "| | " + " | ".join(labels[r["hop"]] for r in results) + " |"
    rows = [head, "| --- |" + " ---: |" * len(results)]

    def row(label: str, cell: Any) -> None:
        rows.append(f"| {label} | " + " | ".join(str(cell(r)) for r in results) + " |")

    row("commands sent at once", lambda r: r["sent"])
    row(
        "acknowledged (200, type 5) within 3 s",
        lambda r: f"{100 * r['acked_within_3s'] / r['sent']:.1f}% ({r['acked_within_3s']})",
    )
    row("accepted (type 5, any time)", lambda r: r["accepted"])
    row(
        "declined at once (type 4) / client errors",
        lambda r: f"{r['declined']} / {r['client_errors']}",
    )
    row("ack p50 / p99 ms", lambda r: _p(r["ack"]))
    row("Argo create p50 / p99 ms", lambda r: _p(r["create"]))
    row("Discord edit p50 / p99 ms", lambda r: _p(r["edit"]))
    row("workflows created (target: = accepted)", lambda r: r["workflows_created"])
    row("messages lost (target: 0)", lambda r: len(r["lost"]))
    row("failure messages", lambda r: r["failure_messages"])
    row("5xx answers to Discord", lambda r: r["status_5xx"])
    row("last message after (s)", lambda r: f"{r['seconds_until_last_message']:.2f}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200, help="client threads")
    parser.add_argument("--hop", choices=("direct", "broker", "both"), default="both")
    args = parser.parse_args()
    hops = ("direct", "broker") if args.hop == "both" else (args.hop,)
    facts = machine_facts(CHAIN_PACKAGES)
    results = []
    with signals_raise():
        for index, hop in enumerate(hops):
            results.append(run(hop, args.commands, args.concurrency, index))
    print(machine_line(facts))
    print(
        f"{args.commands} signed /plan commands from {min(args.concurrency, args.commands)} "
        f"threads released together, THREADS={THREADS} per function, Redis and the fakes "
        "on loopback\n"
    )
    print(table(results))
    for result in results:
        problems = []
        if result["workflows_created"] != result["accepted"]:
            problems.append(
                f"{result['workflows_created']} workflows for {result['accepted']} accepted"
            )
        if result["lost"]:
            problems.append(f"lost: {result['lost'][:10]}")
        if result["created_but_not_accepted"]:
            problems.append(
                f"created though not acknowledged: {result['created_but_not_accepted'][:10]}"
            )
        for name, lines in result["log_errors"].items():
            if lines:
                problems.append(f"{name} logged {len(lines)}+ errors, first: {lines[0]}")
        if problems:
            print(f"\n{result['hop']}: " + "; ".join(problems))
    out = {"machine": facts, "args": vars(args), "results": results}
    write_json(RESULTS / "load.json", out)


if __name__ == "__main__":
    main()
