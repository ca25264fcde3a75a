"""Warm end-to-end latency of the whole chain, on loopback.

    .venv/bin/python -m bench.bench_chain [--commands 200] [--warmup 20] [--threads 1]

Runs interaction_verify -> command_route -> workflow_submit as real functions-framework processes
chained by K_SINK, with a real redis-server and minimal loopback fakes of Argo and Discord that
timestamp what they receive. Sends signed /plan commands one at a time and reports p50/p99 from
the signed request to: the ack (verify's answer), the Argo create, and the Discord edit.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import FunctionProcess, post, redis_server
from tests.support import base_env, command, sign

_WEBHOOK_EDIT = re.compile(r"/webhooks/\d+/(?P<token>[^/]+)/messages/@original$")


class Recorder:
    """Loopback Argo and Discord that answer at once and note when each request arrived."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}  # workflow name -> arrival
        self.edited: dict[str, float] = {}  # interaction token -> arrival
        self.lock = threading.Lock()

    @contextmanager
    def serve(self) -> Iterator[str]:
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; Nagle would hold the second for 40 ms.
            disable_nagle_algorithm = True

            def _answer(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                arrived = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = body["workflow"]["metadata"]["name"]
                with recorder.lock:
                    recorder.created.setdefault(name, arrived)
                self._answer(200, {"metadata": {"name": name, "namespace": "agents"}})

            def do_PATCH(self) -> None:
                arrived = time.perf_counter()
                self.rfile.read(int(self.headers["Content-Length"]))
                match = _WEBHOOK_EDIT.search(self.path)
                if match:
                    with recorder.lock:
                        recorder.edited.setdefault(match["token"], arrived)
                self._answer(200, {"id": "1100000000000000001"})

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(commands: int, warmup: int, threads: int) -> dict:
    recorder = Recorder()
    workdir = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    procs: list[FunctionProcess] = []
    with redis_server(workdir) as redis_url, recorder.serve() as fake_url:
        env = base_env(
            FACTEUR_REDIS_URL=redis_url,
            FACTEUR_ARGO_SERVER_URL=fake_url,
            FACTEUR_DISCORD_API_BASE_URL=f"{fake_url}/api/v10",
            THREADS=str(threads),
        )
        try:
            submit = FunctionProcess("workflow_submit", env, workdir / "submit.log")
            route = FunctionProcess("command_route", env | {"K_SINK": submit.url}, workdir / "r")
            verify = FunctionProcess(
                "interaction_verify", env | {"K_SINK": route.url}, workdir / "v"
            )
            procs = [submit, route, verify]
            for proc in procs:
                proc.wait_ready()
            ack, to_submit, to_edit = [], [], []
            for index in range(warmup + commands):
                interaction = str(1_200_000_000_000_000_000 + index)
                payload = command("plan", interaction_id=interaction)
                payload["token"] = f"bench-token-{index}"
                body = json.dumps(payload).encode()
                headers = sign(body)
                started = time.perf_counter()
                status, _, _ = post(verify.url, body, headers)
                acked = time.perf_counter()
                if status != 200:
                    raise RuntimeError(f"verify answered {status}")
                deadline = time.monotonic() + 10
                while payload["token"] not in recorder.edited and time.monotonic() < deadline:
                    time.sleep(0.0005)
                if index < warmup:
                    continue
                ack.append(acked - started)
                to_submit.append(recorder.created[f"plan-{interaction}"] - started)
                to_edit.append(recorder.edited[payload["token"]] - started)
        finally:
            for proc in procs:
                proc.stop()
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
    result = run(args.commands, args.warmup, args.threads)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
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
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "chain.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
