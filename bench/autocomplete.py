"""Autocomplete on loopback: how fast interaction_verify suggests values as the user types.

    .venv/bin/python -m bench.autocomplete [--values 10000] [--requests 300]

A real redis-server and interaction_verify as a real functions-framework process (`--asgi`, as
deployed), with a catalog whose /plan `project` suggests the guild's recent values and whose
/review `deadline` suggests from a list in the catalog. Signed AUTOCOMPLETE interactions, one
at a time on one keep-alive connection, each typing a prefix or a piece of a known value (or
nothing yet); the time from sending one to its answer (type 8), for each source:

1. recent, remembered: `--values` values recorded through the store's own remember_values, as
   command_route records them (the store keeps only the newest of them);
2. recent, `--values` in the key: the same key filled to `--values` members directly, so that
   each answer reads and ranks them all (the issue's case: 10,000 recent values);
3. values: a catalog list of `--values` values.

The first answer of a fresh process (which builds the store's client, importing redis) is
reported apart. The target is < 50 ms p99 for recent with 10,000 values. Markdown to stdout,
JSON to bench/results/autocomplete.json, interaction_verify's log to
bench/results/logs/autocomplete/.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import requests
import yaml

from bench.processes import signals_raise
from bench.report import (
    CHAIN_PACKAGES,
    RESULTS,
    fresh_log_dir,
    machine_facts,
    machine_line,
    percentile,
    progress,
    publish,
)
from facteur.adapters.sessions import PREFIX, SessionStore, values_key
from facteur.config import DEFAULT_CATALOG_FILE
from tests.helpers.servers import FunctionProcess, Sink, redis_server
from tests.helpers.support import GUILD, base_env, command, encode, sign

TARGET_P99_MS = 50.0
TIMEOUT_S = 5.0
WARM_UP = 10
WORDS = ("api", "web", "data", "infra", "mobile", "search", "billing", "auth", "ops", "ml")


def project_names(count: int, seed: int = 17) -> list[str]:
    """Project names as a guild might use them, distinct: `billing-api-00042`."""
    rng = random.Random(seed)
    return [f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i:05d}" for i in range(count)]


def write_catalog(path: Path, values: list[str]) -> Path:
    data = yaml.safe_load(DEFAULT_CATALOG_FILE.read_text())
    commands = {entry["name"]: entry for entry in data["commands"]}
    commands["plan"]["options"][1]["autocomplete"] = {"source": "recent"}
    deadline = commands["review"]["options"][3]
    deadline.update(max_length=100, autocomplete={"source": "values", "values": values})
    path.write_text(yaml.safe_dump(data))
    return path


def typed_texts(values: list[str], count: int, seed: int = 23) -> list[str]:
    """What users have typed so far: nothing yet, a prefix of a known value (in any case), or
    a piece from its middle."""
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        value, kind = rng.choice(values), rng.random()
        if kind < 0.1:
            texts.append("")
        elif kind < 0.6:
            prefix = value[: rng.randint(1, 8)]
            texts.append(prefix.upper() if rng.random() < 0.2 else prefix)
        else:
            start = rng.randint(1, len(value) - 4)
            texts.append(value[start : start + 3])
    return texts


def typing_body(name: str, option: str, typed: str, index: int) -> bytes:
    payload = command(name, [{"name": option, "type": 3, "value": typed, "focused": True}])
    payload.update(type=4, id=str(930_000_000_000_000_000 + index))
    return encode(payload)


def measure(url: str, name: str, option: str, texts: list[str]) -> dict[str, Any]:
    """Each text typed once, in turn, on one keep-alive connection; after WARM_UP answers."""
    session = requests.Session()
    latencies, empty, wrong = [], 0, 0
    for index, typed in enumerate(texts):
        body = typing_body(name, option, typed, index)
        headers = sign(body)  # signed before the clock starts, as Discord's are
        started = time.perf_counter()
        response = session.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
        elapsed = (time.perf_counter() - started) * 1000
        answer = response.json()
        if response.status_code != 200 or answer.get("type") != 8:
            wrong += 1
            continue
        empty += not answer["data"]["choices"]
        if index >= WARM_UP:
            latencies.append(elapsed)
    session.close()
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "empty": empty,
        "not_suggestions": wrong,
    }


def first_answer_ms(url: str) -> float:
    """A fresh process's first lookup in the store: it builds the client and imports redis."""
    body = typing_body("plan", "project", "", 0)
    started = time.perf_counter()
    requests.post(url, data=body, headers=sign(body), timeout=TIMEOUT_S)
    return (time.perf_counter() - started) * 1000


def run(args: argparse.Namespace, log_dir: Path, scratch: Path) -> dict[str, Any]:
    values = project_names(args.values)
    # Each scenario types what its own values would match (a few pieces match none).
    texts = typed_texts(values, args.requests + WARM_UP)
    results: dict[str, Any] = {}
    with redis_server(scratch) as redis_url, contextlib.closing(Sink()) as sink:
        env = base_env(
            K_SINK=sink.url,
            FACTEUR_REDIS_URL=redis_url,
            FACTEUR_COMMANDS_CATALOG_FILE=str(write_catalog(scratch / "commands.yaml", values)),
        )
        progress(f"remembering {len(values)} values through the store")
        store = SessionStore.from_url(redis_url, ttl_seconds=86_400)
        now = time.time()
        for at, value in enumerate(values):
            store.remember_values(GUILD, "plan", {"project": value}, now + at / 1000)
        key = PREFIX + (values_key(GUILD, "plan", "project") or "")
        client = redis.Redis.from_url(redis_url)
        kept = [raw.decode() for raw in client.zrange(key, 0, -1)]
        results["remembered_kept"] = len(kept)
        verify = FunctionProcess("interaction_verify", env, log_dir / "verify.log")
        try:
            verify.wait_ready()
            results["first_answer_ms"] = first_answer_ms(verify.url)
            progress(f"{len(texts)} autocompletes, recent, as remembered")
            kept_texts = typed_texts(kept, args.requests + WARM_UP)
            results["recent_remembered"] = measure(verify.url, "plan", "project", kept_texts)
            # The same key, filled to every value: what each answer reads and ranks.
            client.zadd(key, {value: now + at / 1000 for at, value in enumerate(values)})
            results["recent_full_kept"] = client.zcard(key)
            progress(
                f"{len(texts)} autocompletes, recent, {results['recent_full_kept']} in the key"
            )
            results["recent_full"] = measure(verify.url, "plan", "project", texts)
            progress(f"{len(texts)} autocompletes, values, {len(values)} in the catalog")
            results["values"] = measure(verify.url, "review", "deadline", texts)
        finally:
            verify.stop()
        client.close()
    return results


def _row(what: str, ranked: int, r: dict[str, Any], target: str) -> str:
    return (
        f"| {what} | {ranked} | {r['requests']} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} / "
        f"{r['max_ms']:.1f} ms | {r['empty']} | {r['not_suggestions']} | {target} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--output", type=Path, default=RESULTS / "autocomplete.json")
    args = parser.parse_args()
    started = time.monotonic()
    facts = machine_facts(CHAIN_PACKAGES)
    log_dir = fresh_log_dir("autocomplete")
    with signals_raise(), tempfile.TemporaryDirectory(prefix="bench-autocomplete-") as scratch:
        r = run(args, log_dir, Path(scratch))
    target = f"p99 < {TARGET_P99_MS:.0f} ms"
    text = "\n".join(
        [
            machine_line(facts),
            "| source | values ranked per answer | answers | p50 / p99 / max | empty | "
            "not type 8 | target |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
            _row("recent, remembered", r["remembered_kept"], r["recent_remembered"], target),
            _row(
                f"recent, {args.values} in the key", r["recent_full_kept"], r["recent_full"], target
            ),
            _row(f"values, {args.values} in the catalog", args.values, r["values"], "—"),
            f"\nfirst answer of a fresh process (builds the store's client): "
            f"{r['first_answer_ms']:.1f} ms",
        ]
    )
    publish(text, facts, args, started, log_dir, results=r)


if __name__ == "__main__":
    main()
