"""A slow-client probe, on loopback: do clients that trickle their requests, or a slow K_SINK,
hold up everyone else's answers?

Run from the repository root, as a module, so that `tests.helpers` imports:

    cd /work/main && .venv/bin/python -m bench.slow_clients
    .venv/bin/python -m bench.slow_clients --connections 32 --duration 4   # a quick look

Servers: facteur's interaction_verify and status_callback as deployed (bench.processes: the same
command line and THREADS as bench_peers), status_callback with a redis-server and the loopback
Argo and Discord fakes as the chain benchmarks start them. Phases, each on a fresh server, each
`--duration` s, while probes arrive at `--rate` per second, each on a fresh connection with a
`--timeout` s budget:

* baseline: nothing else;
* headers: `--connections` connections that sent a request line and then trickle a header, one
  byte a second;
* body: as many that sent whole headers (Content-Length 4096) and trickle the body, one byte a
  second;
* slow-sink (interaction_verify only): K_SINK takes `--sink-delay` s per hand-off while signed
  /plan commands arrive at `--plan-rate` per second (each given up after 3 s, as Discord does).

Probes: a signed PING for interaction_verify (200 and type 1); for status_callback, in turn,
`GET /healthz` and a bearer-authenticated callback for a workflow it does not know (202 after
one Redis lookup). Target: every probe answered, p99 < 100 ms.

Bounded: every connection and probe has a timeout, every loop a count and a deadline, and every
child dies with the script; with the defaults it takes about two minutes. Markdown to stdout,
JSON to bench/results/slow_clients.json.
"""

from __future__ import annotations

import argparse
import http.client
import math
import resource
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.chain import chain_env
from bench.fakes import Recorder, Sink
from bench.interactions import Sent, answer_type, plan_commands
from bench.load import nearest_rank, paced, send
from bench.processes import (
    DEPLOYED_THREADS,
    HOST,
    STATUS,
    VERIFY,
    Children,
    RedisProcess,
    Server,
    Target,
    run_entry,
    server_env,
    session,
)
from bench.report import (
    RESULTS,
    VERIFY_PACKAGES,
    machine_facts,
    machine_line,
    progress,
    publish,
)
from tests.helpers.support import APP, CALLBACK_TOKEN, base_env, encode, sign

TARGET_P99_MS = 100.0
SETTLE_S = 1.0  # after the slow connections are open, before the probes start
READY_TIMEOUT_S = 30.0  # a fresh server's first good answer
RECOVER_TIMEOUT_S = 10.0  # after a phase, how long the server may take to answer again
TRICKLE_BODY_BYTES = 4096
PLAN_TIMEOUT_S = 3.0  # Discord gives up on an interaction after 3 s
FD_MARGIN = 256  # descriptors besides the slow connections: probes, servers' pipes, logs


# --------------------------------------------------------------------------------------------
# Probes: one request on a fresh connection, as Discord and Argo's exit handlers send them.


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    make: Callable[[], tuple[bytes, dict[str, str]]]  # body and headers, made when sent
    good: Callable[[int, bytes], bool]


@dataclass
class Outcome:
    probe: str
    seconds: float
    error: str | None  # None: answered as expected within the budget


def _ping() -> tuple[bytes, dict[str, str]]:
    body = encode({"id": "930000000000000001", "application_id": APP, "type": 1, "version": 1})
    return body, sign(body)  # signed now: verify refuses a stale timestamp


CALLBACK = encode({"name": "plan-1500000000000000001", "namespace": "agents", "status": "Failed"})
BEARER = {"Authorization": f"Bearer {CALLBACK_TOKEN}", "Content-Type": "application/json"}

VERIFY_PROBES = (
    Probe("signed PING", "POST", "/", _ping, lambda s, d: s == 200 and answer_type(d) == 1),
)
STATUS_PROBES = (
    Probe("GET /healthz", "GET", "/healthz", lambda: (b"", {}), lambda s, d: s == 200),
    Probe("bearer callback", "POST", "/", lambda: (CALLBACK, BEARER), lambda s, d: s == 202),
)


def probe_once(port: int, probe: Probe, timeout: float) -> Outcome:
    body, headers = probe.make()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    started = time.monotonic()
    error: str | None = None
    try:
        conn.request(probe.method, probe.path, body or None, headers)
        response = conn.getresponse()
        data = response.read()
        if not probe.good(response.status, data):
            error = f"answer {response.status}"
    except TimeoutError:
        error = "timeout"
    except (OSError, http.client.HTTPException) as err:
        error = type(err).__name__
    finally:
        conn.close()
    seconds = time.monotonic() - started
    if error is None and seconds > timeout:  # the timeout is per socket call; this is the total
        error = "late"
    return Outcome(probe.name, seconds, error)


def probe_steadily(
    port: int, probes: Sequence[Probe], rate: float, duration: float, timeout: float
) -> list[Outcome]:
    """`rate` probes a second for `duration` s, the kinds in turn; enough threads that a probe
    waiting out its timeout never delays the next one."""
    count = max(1, round(rate * duration))
    outcomes: list[Outcome] = []  # list.append is atomic: the threads share it as is

    def one(index: int) -> None:
        outcomes.append(probe_once(port, probes[index % len(probes)], timeout))

    paced(count, math.ceil(rate * timeout) + 4, duration, one, timeout)
    return outcomes


def until_good(port: int, probe: Probe, timeout: float, budget: float) -> float | None:
    """Seconds until `probe` is answered well, probing every 50 ms; None after `budget` s."""
    started = time.monotonic()
    for _ in range(math.ceil(budget / 0.05) + 1):
        if probe_once(port, probe, min(timeout, budget)).error is None:
            return time.monotonic() - started
        if time.monotonic() - started > budget:
            break
        time.sleep(0.05)
    return None


# --------------------------------------------------------------------------------------------
# Slow clients.


@dataclass
class TrickleReport:
    kind: str
    wanted: int
    opened: int = 0
    connect_errors: int = 0
    bytes_sent: int = 0
    # Connections the server closed or answered while they trickled, and after how long.
    ended_by_server: list[float] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # first line of what the server said


class Trickle:
    """`count` connections that each sent `head` and then send one byte a second."""

    def __init__(self, port: int, count: int, kind: str, head: bytes, timeout: float) -> None:
        self.port, self.head, self.timeout = port, head, timeout
        self.report = TrickleReport(kind, count)
        self.selector = selectors.DefaultSelector()
        self.socks: dict[socket.socket, float] = {}  # open connection -> when it opened
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def open(self) -> None:
        for _ in range(self.report.wanted):
            try:
                sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(self.head)
                sock.setblocking(False)
            except OSError:
                self.report.connect_errors += 1
                continue
            self.socks[sock] = time.monotonic()
            self.selector.register(sock, selectors.EVENT_READ)
        self.report.opened = len(self.socks)

    def _end(self, sock: socket.socket, answer: bytes | None) -> None:
        self.report.ended_by_server.append(time.monotonic() - self.socks.pop(sock))
        if answer:
            self.report.answers[answer.split(b"\r\n", 1)[0].decode("latin-1")[:60]] += 1
        self.selector.unregister(sock)
        sock.close()

    def _drip(self, deadline: float) -> None:
        # One tick a second, at most one per second of the deadline: bounded either way.
        for _ in range(math.ceil(deadline - time.monotonic()) + 1):
            if self.stop.is_set() or time.monotonic() >= deadline:
                return
            for key, _ in self.selector.select(timeout=0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    answer: bytes | None = sock.recv(256)
                except BlockingIOError:
                    continue
                except OSError:
                    answer = None
                self._end(sock, answer)
            for sock in list(self.socks):
                try:
                    self.report.bytes_sent += sock.send(b"a")
                except BlockingIOError:
                    pass  # the server reads nothing and the buffers are full: it is still held
                except OSError:
                    self._end(sock, None)
            self.stop.wait(1.0)

    def start(self, deadline: float) -> None:
        self.thread = threading.Thread(target=self._drip, args=(deadline,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(5.0)
        for sock in list(self.socks):
            self.selector.unregister(sock)
            sock.close()
        self.socks.clear()
        self.selector.close()


def headers_trickle(port: int) -> bytes:
    """A request line and the start of a header whose end never comes."""
    return f"POST / HTTP/1.1\r\nHost: {HOST}:{port}\r\nX-Trickle: ".encode()


def body_trickle(port: int, headers: dict[str, str]) -> bytes:
    """Whole headers of a request whose body comes a byte a second."""
    lines = {"Host": f"{HOST}:{port}", **headers, "Content-Length": str(TRICKLE_BODY_BYTES)}
    head = "".join(f"{name}: {value}\r\n" for name, value in lines.items())
    return f"POST / HTTP/1.1\r\n{head}\r\n".encode()


# --------------------------------------------------------------------------------------------
# Phases.


@dataclass
class ProbeSummary:
    probe: str
    sent: int
    failed: int
    errors: dict[str, int]
    p50_ms: float  # of the answered ones
    p99_ms: float
    met: bool  # every probe answered and p99 under the target


@dataclass
class PhaseResult:
    server: str
    phase: str
    probes: list[ProbeSummary]
    trickle: TrickleReport | None
    plan: dict[str, int] | None  # the slow-sink phase: how the /plan commands were answered
    recovered_s: float | None  # after the phase; None: not within RECOVER_TIMEOUT_S


def summarise(outcomes: list[Outcome], probes: Sequence[Probe]) -> list[ProbeSummary]:
    summaries = []
    for probe in probes:
        mine = [o for o in outcomes if o.probe == probe.name]
        answered = sorted(o.seconds * 1000 for o in mine if o.error is None)
        errors = Counter(o.error for o in mine if o.error is not None)
        p99 = nearest_rank(answered, 99)
        summaries.append(
            ProbeSummary(
                probe.name,
                len(mine),
                sum(errors.values()),
                dict(errors),
                nearest_rank(answered, 50),
                p99,
                not errors and bool(answered) and p99 < TARGET_P99_MS,
            )
        )
    return summaries


def plan_tally(items: list[Sent]) -> dict[str, int]:
    tally: Counter[str] = Counter()
    for item in items:
        if item.error is not None:
            tally[item.error] += 1
        elif item.ack_seconds > PLAN_TIMEOUT_S:
            tally["late"] += 1
        else:
            tally[f"{item.status} type {item.kind}"] += 1
    return dict(tally)


@dataclass
class Bench:
    children: Children
    args: argparse.Namespace

    @contextmanager
    def server(
        self, target: Target, env: dict[str, str], probe: Probe, tag: str
    ) -> Iterator[Server]:
        server = self.children.spawn_server(target, env, tag)
        try:
            if until_good(server.port, probe, self.args.timeout, READY_TIMEOUT_S) is None:
                raise RuntimeError(f"{target.function} never answered:\n{server.log_tail()}")
            yield server
        finally:
            self.children.stop_server(server)

    def phase(
        self,
        target: Target,
        env: dict[str, str],
        probes: Sequence[Probe],
        phase: str,
        trickle_head: Callable[[int], bytes] | None = None,
        plans: list[Sent] | None = None,
    ) -> PhaseResult:
        args = self.args
        progress(f"{target.function}: {phase}, {args.duration:g} s")
        trickle: Trickle | None = None
        sender: threading.Thread | None = None
        with self.server(target, env, probes[0], phase) as server:
            try:
                if trickle_head is not None:
                    trickle = Trickle(
                        server.port,
                        args.connections,
                        phase,
                        trickle_head(server.port),
                        args.timeout,
                    )
                    trickle.open()
                    trickle.start(time.monotonic() + SETTLE_S + args.duration + args.timeout + 5)
                    time.sleep(SETTLE_S)  # the slow connections first, as an attacker's would be
                if plans:
                    url = f"http://{HOST}:{server.port}/"
                    sender = threading.Thread(
                        target=paced,
                        args=(
                            len(plans),
                            math.ceil(args.plan_rate * PLAN_TIMEOUT_S) + 4,
                            args.duration,
                            lambda i: send(url, plans[i], timeout=PLAN_TIMEOUT_S),
                            PLAN_TIMEOUT_S,
                        ),
                        daemon=True,
                    )
                    sender.start()
                outcomes = probe_steadily(
                    server.port, probes, args.rate, args.duration, args.timeout
                )
            finally:
                if sender is not None:
                    sender.join(args.duration + 2 * PLAN_TIMEOUT_S + 30)
                if trickle is not None:
                    trickle.close()
            recovered = until_good(server.port, probes[0], args.timeout, RECOVER_TIMEOUT_S)
        return PhaseResult(
            target.function,
            phase,
            summarise(outcomes, probes),
            trickle.report if trickle else None,
            plan_tally(plans) if plans else None,
            recovered,
        )

    def slow_phases(
        self,
        target: Target,
        env: dict[str, str],
        probes: Sequence[Probe],
        body_headers: dict[str, str],
    ) -> list[PhaseResult]:
        return [
            self.phase(target, env, probes, "baseline"),
            self.phase(target, env, probes, "headers", headers_trickle),
            self.phase(target, env, probes, "body", lambda port: body_trickle(port, body_headers)),
        ]


def run(children: Children, args: argparse.Namespace, scratch: Path) -> list[PhaseResult]:
    bench = Bench(children, args)
    results: list[PhaseResult] = []
    # Both sinks before any thread starts: a Sink is a forked process.
    fast, slow = Sink(children, 0.0), Sink(children, args.sink_delay)
    if "verify" in args.servers:

        def verify_env(sink: Sink) -> dict[str, str]:
            return server_env(**base_env(K_SINK=sink.url, THREADS=str(DEPLOYED_THREADS)))

        _, headers = _ping()  # a signature for another body: the body never arrives anyway
        results += bench.slow_phases(VERIFY, verify_env(fast), VERIFY_PROBES, headers)
        plans = plan_commands(max(1, round(args.plan_rate * args.duration)), run=7)
        results.append(
            bench.phase(VERIFY, verify_env(slow), VERIFY_PROBES, "slow-sink", plans=plans)
        )
    if "status" in args.servers:
        recorder = Recorder()
        with RedisProcess(scratch).running() as redis, recorder.serve() as fake_url:
            env = server_env(**chain_env(redis.url, fake_url, DEPLOYED_THREADS))
            results += bench.slow_phases(STATUS, env, STATUS_PROBES, BEARER)
    return results


# --------------------------------------------------------------------------------------------
# Report.


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def render(facts: dict[str, Any], results: list[PhaseResult], args: argparse.Namespace) -> str:
    lines = [
        "## Slow clients and a slow K_SINK",
        "",
        machine_line(facts),
        "",
        f"- servers: as deployed, THREADS={DEPLOYED_THREADS}; a fresh server for each phase",
        f"- phases of {args.duration:g} s; {args.connections} slow connections trickling one "
        f"byte a second (headers: after a request line; body: after whole headers, "
        f"Content-Length {TRICKLE_BODY_BYTES}); slow-sink: K_SINK answers after "
        f"{args.sink_delay:g} s, /plan at {args.plan_rate:g}/s",
        f"- probes: {args.rate:g}/s on fresh connections, each failed after {args.timeout:g} s; "
        f"target: none failed and p99 < {TARGET_P99_MS:.0f} ms",
        "",
        "| server | phase | probe | sent | failed | p50 ms | p99 ms | target "
        "| slow conns held | ended by server | recovered after |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for result in results:
        held = ended = "-"
        if result.trickle is not None:
            t = result.trickle
            held = f"{t.opened - len(t.ended_by_server)}/{t.wanted}"
            ended = str(len(t.ended_by_server))
        recovered = "-" if result.recovered_s is None else f"{result.recovered_s * 1000:.0f} ms"
        for s in result.probes:
            failed = str(s.failed)
            if s.errors:
                failed += " (" + ", ".join(f"{k} {v}" for k, v in s.errors.items()) + ")"
            lines.append(
                f"| {result.server} | {result.phase} | {s.probe} | {s.sent} | {failed} "
                f"| {_ms(s.p50_ms)} | {_ms(s.p99_ms)} | {'met' if s.met else '**missed**'} "
                f"| {held} | {ended} | {recovered} |"
            )
    probed = [(r, s) for r in results if r.phase != "baseline" for s in r.probes]
    missed = [f"{r.server} {r.phase} ({s.probe})" for r, s in probed if not s.met]
    lines += [
        "",
        f"**Target met in {len(probed) - len(missed)} of {len(probed)} rows under slow clients "
        "or a slow sink**" + (f"; missed: {', '.join(missed)}." if missed else "."),
        "",
    ]
    for result in results:
        if result.trickle is not None and result.trickle.answers:
            lines.append(
                f"- {result.server} {result.phase}: the server answered slow connections with "
                + ", ".join(f"{k!r} x{v}" for k, v in result.trickle.answers.items())
            )
        if result.plan is not None:
            lines.append(
                f"- {result.server} {result.phase}: /plan commands answered: "
                + ", ".join(f"{k}: {v}" for k, v in sorted(result.plan.items()))
            )
    lines.append(
        "- p50/p99 are of the answered probes; a failed probe waited out its timeout. "
        '"recovered after": from the end of the phase (slow connections closed) to the '
        'first good answer; "-" means not within '
        f"{RECOVER_TIMEOUT_S:.0f} s."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry point.


def raise_fd_limit(needed: int) -> int:
    """The soft limit on open files up to the hard one when `needed` is more; the soft limit.

    Servers spawned afterwards inherit it: they hold the slow connections too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.slow_clients", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--connections", type=int, default=256, help="slow connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--rate", type=float, default=20.0, help="probes per second")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds one probe may take")
    parser.add_argument("--sink-delay", type=float, default=2.0, help="slow K_SINK, seconds")
    parser.add_argument("--plan-rate", type=float, default=4.0, help="slow-sink: /plan per s")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=("verify", "status"),
        default=["verify", "status"],
        help="which functions to probe",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "slow_clients.json")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 4096:
        parser.error("--connections must be within 1..4096")
    if not 0 < args.duration <= 60:
        parser.error("--duration must be within (0, 60] s")
    if not 0 < args.rate <= 200 or not 0 < args.plan_rate <= 50:
        parser.error("--rate must be within (0, 200] and --plan-rate within (0, 50]")
    if not 0 < args.timeout <= 10 or not 0 <= args.sink_delay <= 10:
        parser.error("--timeout must be within (0, 10] s and --sink-delay within 0..10 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    needed = args.connections + math.ceil(args.rate * args.timeout) + FD_MARGIN
    limit = raise_fd_limit(needed)
    if limit != resource.RLIM_INFINITY and limit < needed:
        raise SystemExit(f"open-file limit {limit} < {needed}: lower --connections")
    started = time.monotonic()
    with session("slow") as (children, scratch):
        results = run(children, args, scratch)
    facts = machine_facts(VERIFY_PACKAGES, open_files_limit=limit)
    text = render(facts, results, args)
    publish(text, facts, args, started, children.log_dir, phases=[asdict(r) for r in results])
    return 0


if __name__ == "__main__":
    run_entry(main)
