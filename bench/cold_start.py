"""Cold start: from spawning a server (the functions-framework CLI, a peer) to its first good
answer."""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.interactions import Request, answer_type, ping_pool
from bench.load import REQUEST_TIMEOUT_S
from bench.processes import EMPTY, HOST, VERIFY, Children, Server, Target

COLD_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.002  # connect-retry period while a server boots: 2 ms of resolution


def first_answer(
    server: Server, request: Request, expect: int, started: float, timeout: float = COLD_TIMEOUT_S
) -> float:
    """Seconds from `started` until the server answers `request` with 200 and type `expect`.

    A good answer, not an open port (tests.helpers.servers.wait_for_port): the function has
    to have imported and validated everything before it can answer."""
    deadline = started + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.target.function} exited with {server.proc.returncode}:\n"
                + server.log_tail()
            )
        conn = http.client.HTTPConnection(HOST, server.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request("POST", "/", request.body, request.headers)
            response = conn.getresponse()
            data = response.read()
        except ConnectionRefusedError:
            time.sleep(POLL_INTERVAL_S)
            continue
        finally:
            conn.close()
        elapsed = time.monotonic() - started
        if response.status != 200 or answer_type(data) != expect:
            raise RuntimeError(
                f"{server.target.function} answered {response.status} {data[:200]!r}"
            )
        return elapsed
    raise RuntimeError(f"{server.target.function} gave no answer within {timeout:.0f} s")


@dataclass
class ColdResult:
    runs_ms: dict[str, list[float]]  # by Target.key, in the order run
    median_ms: dict[str, float]

    def ratio(self, key: str, over: str) -> float:
        return self.median_ms[key] / self.median_ms[over]


def cold_start(
    children: Children,
    env: dict[str, str],
    runs: int,
    tag: str,
    targets: Sequence[Target] = (EMPTY, VERIFY),
) -> ColdResult:
    times: dict[str, list[float]] = {target.key: [] for target in targets}
    # One discarded round first: it pays for page-cache misses and .pyc writes.
    for run in range(runs + 1):
        for target in targets:  # interleaved, so all see the same machine noise
            request = ping_pool(1)[0]  # signed fresh each time; the empty one ignores it
            started = time.monotonic()
            server = children.spawn_server(target, env, f"cold-{tag}")
            try:
                seconds = first_answer(server, request, 1, started)
            finally:
                children.stop_server(server)
            if run > 0:
                times[target.key].append(seconds * 1000)
    return ColdResult(times, {key: statistics.median(values) for key, values in times.items()})
