"""Warm end-to-end latency of the whole chain, on loopback.

    .venv/bin/python -m bench.bench_chain [--commands 200] [--warmup 20] [--threads 1]

Runs interaction_verify -> command_route -> workflow_submit as real functions-framework processes
chained by K_SINK, with a real redis-server and minimal loopback fakes of Argo and Discord that
timestamp what they receive. Sends signed /plan commands one at a time and reports p50/p99 from
the signed request to: the ack (verify's answer), the Argo create, and the Discord edit.

The pieces are shared with bench.load_chain and bench.fault_chain: bench.fakes.Recorder (the
Argo and Discord fakes, with optional faults), bench.broker.Broker (a Knative Broker stand-in),
bench.chain.chain() (the three functions, every child stopped on the way out) and
bench.load.fire() (signed commands from many threads).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chain import chain, chain_env
from bench.fakes import Recorder
from bench.interactions import plan_commands
from bench.processes import signals_raise
from bench.report import CHAIN_PACKAGES, RESULTS, machine_facts, percentile, write_json
from tests.helpers.servers import post, redis_server
from tests.helpers.support import sign

EDIT_TIMEOUT_S = 10.0  # a command whose edit takes longer fails the run below


def run(commands: int, warmup: int, threads: int) -> dict[str, Any]:
    recorder = Recorder()
    workdir = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    with redis_server(workdir) as redis_url, recorder.serve() as fake_url:
        env = chain_env(redis_url, fake_url, threads)
        with chain(env, workdir) as running:
            ack, to_submit, to_edit = [], [], []
            for item in plan_commands(warmup + commands):
                headers = sign(item.body)
                started = time.perf_counter()
                status, _, _ = post(running.verify_url, item.body, headers)
                acked = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"verify answered {status}")
                # One at a time: the next command leaves once this one's edit has arrived.
                deadline = time.monotonic() + EDIT_TIMEOUT_S
                while item.token not in recorder.edited and time.monotonic() < deadline:
                    time.sleep(0.0005)
                if item.index < warmup:
                    continue
                ack.append(acked - started)
                to_submit.append(recorder.created[f"plan-{item.interaction_id}"] - started)
                to_edit.append(recorder.edited[item.token] - started)
    return {
        "commands": commands,
        "threads": threads,
        "ack": ack,
        "submit": to_submit,
        "edit": to_edit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn THREADS per function")
    args = parser.parse_args()
    with signals_raise():
        result = run(args.commands, args.warmup, args.threads)
    facts = machine_facts(CHAIN_PACKAGES)
    print(f"machine: {facts['nproc']} cores, {facts['cpu_model']}, Python {facts['python']}")
    print(f"{result['commands']} sequential signed /plan commands, THREADS={result['threads']}\n")
    print("| from the signed request to | p50 ms | p99 ms | mean ms |")
    print("| --- | ---: | ---: | ---: |")
    for key, label in (
        ("ack", "the ack"),
        ("submit", "the Argo create"),
        ("edit", "the Discord edit"),
    ):
        values = [v * 1000 for v in result[key]]
        print(
            f"| {label} | {statistics.median(values):.1f} | {percentile(values, 0.99):.1f} "
            f"| {statistics.fmean(values):.1f} |"
        )
    write_json(RESULTS / "chain.json", result)


if __name__ == "__main__":
    main()
