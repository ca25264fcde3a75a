"""Warm end-to-end latency of the whole chain, on loopback.

    .venv/bin/python -m bench.bench_chain [--commands 200] [--warmup 20] [--threads 1]

Runs interaction_verify -> command_route -> workflow_submit as real functions-framework processes
chained by K_SINK, with a real redis-server and minimal loopback fakes of Argo and Discord that
timestamp what they receive. Sends signed /plan commands one at a time and reports p50/p99 from
the signed request to: the ack (verify's answer), the Argo create, and the Discord edit.

The pieces are shared with bench.load_chain and bench.fault_chain: `Recorder` (the Argo and
Discord fakes, with optional faults), `Broker` (a Knative Broker stand-in), `chain()` (the three
functions, every child stopped on the way out), `fire()` (signed commands from many threads).
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import http.client
import http.server
import itertools
import json
import os
import platform
import random
import re
import signal
import socketserver
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from tests.helpers.servers import FunctionProcess, post, redis_server
from tests.helpers.support import base_env, command, sign

RESULTS = Path(__file__).parent / "results"

_WEBHOOK_EDIT = re.compile(r"/webhooks/\d+/(?P<token>[^/]+)/messages/@original$")
_FOLLOW_UP = re.compile(r"/webhooks/\d+/(?P<token>[^/]+)$")
_CHANNEL_POST = re.compile(r"/channels/\d+/messages$")
_MENTION = re.compile(r"<@(?P<user>\d+)>")
# Not a real token: the bot token only lets facteur post in the channel, which the fake records.
BOT_TOKEN = "bench-bot-token"  # noqa: S105


class QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server with a deep accept queue that does not print client hang-ups."""

    daemon_threads = True
    # socketserver's default of 5 would refuse connections when many hops connect at once.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left (the point of the slow-Argo fault) is not news.
        pass


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; Nagle would hold the second for 40 ms.
    disable_nagle_algorithm = True

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[str]:
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Faults:
    """What the fakes do wrong, and when: windows are seconds after `Recorder.start`."""

    argo_unavailable: tuple[float, float] | None = None  # answer 503 inside this window
    argo_slow: tuple[float, float] | None = None  # answer after `argo_delay` inside this window
    argo_delay: float = 0.0
    discord_429_share: float = 0.0  # share of Discord requests answered 429
    discord_retry_after: float = 0.2
    seed: int = 7


@dataclass
class Message:
    """One message Discord took (a 2xx answer), as the fake recorded it."""

    at: float  # perf_counter() on arrival
    route: str  # edit, follow-up or channel
    key: str  # the interaction token, or for a channel post the user it mentions
    content: str


class Recorder:
    """Loopback Argo and Discord that answer at once and note when each request arrived.

    Argo answers 409 for a name it already created, as the real server does. `faults` makes
    either misbehave for a while; a slow Argo commits the workflow before answering late, as a
    real server that outlives its client's timeout would.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.start = time.perf_counter()
        self.created: dict[str, float] = {}  # workflow name -> arrival of the creating request
        self.edited: dict[str, float] = {}  # interaction token -> arrival of the first edit
        self.messages: list[Message] = []
        self.argo_answers: Counter[int] = Counter()
        self.discord_answers: Counter[int] = Counter()
        self.lock = threading.Lock()
        self._random = random.Random(self.faults.seed)

    def _within(self, window: tuple[float, float] | None, now: float) -> bool:
        return window is not None and window[0] <= now - self.start < window[1]

    def argo_create(self, body: dict[str, Any], arrived: float) -> tuple[int, dict, float]:
        """(status, payload, seconds to wait before answering)."""
        name = body["workflow"]["metadata"]["name"]
        if self._within(self.faults.argo_unavailable, arrived):
            with self.lock:
                self.argo_answers[503] += 1
            return 503, {"code": 14, "message": "the Argo server is unavailable"}, 0.0
        delay = self.faults.argo_delay if self._within(self.faults.argo_slow, arrived) else 0.0
        with self.lock:
            exists = name in self.created
            if not exists:
                self.created[name] = arrived
            status = 409 if exists else 200
            self.argo_answers[status] += 1
        if exists:
            message = f'workflows.argoproj.io "{name}" already exists'
            return 409, {"code": 6, "message": message}, delay
        meta = {"name": name, "namespace": "agents", "uid": f"uid-{name}"}
        return 200, {"metadata": meta}, delay

    def discord(self, path: str, body: dict[str, Any], arrived: float) -> tuple[int, dict]:
        route, key = "other", ""
        if match := _WEBHOOK_EDIT.search(path):
            route, key = "edit", match["token"]
        elif match := _FOLLOW_UP.search(path):
            route, key = "follow-up", match["token"]
        elif _CHANNEL_POST.search(path):
            mention = _MENTION.search(str(body.get("content") or ""))
            route, key = "channel", mention["user"] if mention else ""
        with self.lock:
            if self.faults.discord_429_share and (
                self._random.random() < self.faults.discord_429_share
            ):
                self.discord_answers[429] += 1
                retry_after = self.faults.discord_retry_after
                return 429, {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": False,
                }
            self.discord_answers[200] += 1
            self.messages.append(Message(arrived, route, key, str(body.get("content") or "")))
            if route == "edit":
                self.edited.setdefault(key, arrived)
        return 200, {"id": "1100000000000000001", "content": body.get("content")}

    @contextmanager
    def serve(self) -> Iterator[str]:
        recorder = self

        class Handler(KeepAliveHandler):
            def do_POST(self) -> None:
                arrived = time.perf_counter()
                body = json.loads(self._body())
                if self.path.startswith("/api/v1/workflows"):
                    status, payload, delay = recorder.argo_create(body, arrived)
                    if delay:
                        time.sleep(delay)
                    self._answer(status, payload)
                else:
                    self._discord(body, arrived)

            def do_PATCH(self) -> None:
                self._discord(json.loads(self._body()), time.perf_counter())

            def _discord(self, body: dict[str, Any], arrived: float) -> None:
                status, payload = recorder.discord(self.path, body, arrived)
                # Discord's 429 carries retry_after in the body; the header is whole seconds.
                self._answer(status, payload, {"Retry-After": "1"} if status == 429 else None)

        with serving(QuietServer(("127.0.0.1", 0), Handler)) as url:
            yield url


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    event_id: str = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes = field(compare=False)
    copy: int = field(compare=False)
    attempt: int = field(compare=False, default=1)


class Broker:
    """A loopback stand-in for a Knative Broker and one Trigger, between two functions.

    Asynchronous (the default), like Knative: it answers 202 at once, then delivers each event to
    `target` from a pool of workers and redelivers on 5xx, 404, 408, 409, 429 and failures to
    connect or answer, `retries` times with exponential backoff from `backoff` seconds (the
    Triggers use retry 5 from PT1S; scaled down here so a run ends in seconds). `copies=2`
    delivers every event twice, the second copy `copy_delay` seconds later (0: concurrently),
    as at-least-once delivery may.

    Synchronous, it forwards the first copy itself and relays the answer, with no redelivery:
    the direct K_SINK chain of ./scripts/dev, plus any extra copies in the background.
    """

    RETRY_STATUSES = frozenset({404, 408, 409, 429, *range(500, 600)})

    def __init__(
        self,
        name: str,
        *,
        synchronous: bool = False,
        copies: int = 1,
        copy_delay: float = 0.0,
        retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 30.0,
        workers: int = 16,
    ) -> None:
        self.name = name
        self.target = ""
        self.synchronous = synchronous
        self.copies = copies
        self.copy_delay = copy_delay
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.received = 0
        self.answers: Counter[str] = Counter()  # subscriber's status (or error) per delivery
        self.redeliveries = 0
        self.dead_letters: list[str] = []  # event ids given up on
        self._heap: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]

    @contextmanager
    def serve(self) -> Iterator[str]:
        broker = self

        class Handler(KeepAliveHandler):
            def do_POST(self) -> None:
                body = self._body()
                skip = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                event_id = _event_id(headers, body)
                with broker._cond:
                    broker.received += 1
                if not broker.synchronous:
                    for copy in range(broker.copies):
                        broker._schedule(event_id, headers, body, copy, copy * broker.copy_delay)
                    self._answer(202, {})
                    return
                for copy in range(1, broker.copies):
                    broker._schedule(event_id, headers, body, copy, copy * broker.copy_delay)
                connection = _Connection(broker.target, broker.timeout)
                try:
                    status = broker._forward(connection, headers, body)
                finally:
                    connection.close()
                self._answer(status if isinstance(status, int) else 502, {})

        for worker in self._workers:
            worker.start()
        try:
            with serving(QuietServer(("127.0.0.1", 0), Handler)) as url:
                yield url
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            for worker in self._workers:
                worker.join(timeout=self.timeout + 1)

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and self._in_flight == 0

    def _schedule(
        self, event_id: str, headers: dict[str, str], body: bytes, copy: int, delay: float
    ) -> None:
        item = _Delivery(time.monotonic() + delay, next(self._seq), event_id, headers, body, copy)
        with self._cond:
            heapq.heappush(self._heap, item)
            self._cond.notify()

    def _next(self) -> _Delivery | None:
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._heap)
                wait = self._heap[0].due - now if self._heap else 0.1
                self._cond.wait(timeout=min(wait, 0.1))
            return None

    def _work(self) -> None:
        connection = _Connection(self.target, self.timeout)
        try:
            while (item := self._next()) is not None:
                try:
                    status = self._forward(connection, item.headers, item.body)
                    retry = not isinstance(status, int) or status in self.RETRY_STATUSES
                    with self._cond:
                        if retry and item.attempt <= self.retries:
                            self.redeliveries += 1
                            item.due = time.monotonic() + self.backoff * 2 ** (item.attempt - 1)
                            item.attempt += 1
                            heapq.heappush(self._heap, item)
                            self._cond.notify()
                        elif retry:
                            self.dead_letters.append(item.event_id)
                finally:
                    with self._cond:
                        self._in_flight -= 1
        finally:
            connection.close()

    def _forward(self, connection: _Connection, headers: dict[str, str], body: bytes) -> int | str:
        status = connection.post(headers, body)
        with self._cond:
            self.answers[str(status)] += 1
        return status

    def summary(self) -> dict[str, Any]:
        with self._cond:
            return {
                "received": self.received,
                "answers": dict(self.answers),
                "redeliveries": self.redeliveries,
                "dead_letters": list(self.dead_letters),
            }


class _Connection:
    """One keep-alive HTTP/1.1 connection to a subscriber, reopened after any failure."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = parts.path or "/"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, headers: dict[str, str], body: bytes) -> int | str:
        """The subscriber's status, or the name of the error that stopped the exchange."""
        for attempt in (1, 2):
            reused = self._conn is not None
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request("POST", self._path, body=body, headers=headers)
                response = self._conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as err:
                self.close()
                # A kept-alive connection the server had closed: once more on a fresh one.
                if reused and attempt == 1 and not isinstance(err, TimeoutError):
                    continue
                return type(err).__name__
            if response.will_close:
                self.close()
            return response.status
        return "unreachable"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _event_id(headers: dict[str, str], body: bytes) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    if "ce-id" in lowered:
        return lowered["ce-id"]
    try:
        return str(json.loads(body).get("id", "?"))
    except ValueError:
        return "?"


@dataclass
class Chain:
    verify_url: str
    processes: list[FunctionProcess]
    brokers: list[Broker]

    def idle(self) -> bool:
        return all(broker.idle() for broker in self.brokers)


@contextmanager
def chain(
    env: dict[str, str],
    workdir: Path,
    brokers: tuple[Broker, Broker] | None = None,
) -> Iterator[Chain]:
    """verify -> route -> submit as real processes, chained by K_SINK directly or through two
    brokers; every process is stopped on the way out, whatever happened."""
    processes: list[FunctionProcess] = []
    with contextlib.ExitStack() as stack:
        try:
            submit = FunctionProcess("workflow_submit", env, workdir / "submit.log")
            processes.append(submit)
            route_sink = submit.url
            if brokers:
                brokers[1].target = submit.url
                route_sink = stack.enter_context(brokers[1].serve()) + "/"
            route = FunctionProcess("command_route", env | {"K_SINK": route_sink}, workdir / "r")
            processes.append(route)
            verify_sink = route.url
            if brokers:
                brokers[0].target = route.url
                verify_sink = stack.enter_context(brokers[0].serve()) + "/"
            verify = FunctionProcess(
                "interaction_verify", env | {"K_SINK": verify_sink}, workdir / "v"
            )
            processes.append(verify)
            for proc in processes:
                proc.wait_ready()
            yield Chain(verify.url, processes, list(brokers or ()))
        finally:
            stop_all(processes)


def stop_all(processes: list[FunctionProcess]) -> None:
    """Terminate every process at once, then wait for each (killing after 10 s). Signals are
    held until the end, so a second Ctrl-C cannot leave a gunicorn master behind."""
    with signals_deferred():
        for proc in processes:
            if proc.proc.poll() is None:
                proc.proc.terminate()
        for proc in processes:
            proc.stop()


def chain_env(redis_url: str, fake_url: str, threads: int, **extra: str) -> dict[str, str]:
    return base_env(
        FACTEUR_REDIS_URL=redis_url,
        FACTEUR_ARGO_SERVER_URL=fake_url,
        FACTEUR_DISCORD_API_BASE_URL=f"{fake_url}/api/v10",
        FACTEUR_DISCORD_BOT_TOKEN=BOT_TOKEN,
        THREADS=str(threads),
        **extra,
    )


@dataclass
class Sent:
    """One signed /plan command and what verify answered."""

    index: int
    interaction_id: str
    token: str
    user_id: str
    body: bytes
    headers: dict[str, str] | None = None  # set to replay these exact headers
    sent_at: float = 0.0
    answered_at: float = 0.0
    status: int | None = None
    kind: int | None = None  # the interaction response type: 5 deferred, 4 a message
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.kind == 5

    @property
    def ack_seconds(self) -> float:
        return self.answered_at - self.sent_at


def plan_commands(count: int, run: int = 0) -> list[Sent]:
    """Signed-to-be /plan commands, each with its own interaction ID, token and user."""
    items = []
    for index in range(count):
        interaction = str(1_300_000_000_000_000_000 + run * 100_000 + index)
        user = str(1_400_000_000_000_000_000 + run * 100_000 + index)
        payload = command("plan", interaction_id=interaction)
        payload["token"] = f"bench-token-{run}-{index}"
        payload["member"]["user"]["id"] = user  # so a channel post names its command
        items.append(Sent(index, interaction, payload["token"], user, json.dumps(payload).encode()))
    return items


def send(url: str, item: Sent, timeout: float = 10.0) -> None:
    """POST one signed command on a fresh connection, as Discord does, and note the answer."""
    parts = urlsplit(url)
    headers = item.headers or sign(item.body)  # signed now: the timestamp must be fresh
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    item.sent_at = time.perf_counter()
    try:
        connection.request("POST", parts.path or "/", body=item.body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        item.answered_at = time.perf_counter()
        item.status = response.status
        with contextlib.suppress(ValueError, AttributeError):
            item.kind = json.loads(data).get("type")
    except (OSError, http.client.HTTPException) as err:
        item.answered_at = time.perf_counter()
        item.error = type(err).__name__
    finally:
        connection.close()


def fire(url: str, items: list[Sent], concurrency: int, spread: float = 0.0) -> None:
    """Send every item from `concurrency` threads released together; with `spread` > 0 the
    sends are paced evenly over that many seconds instead of all at once."""
    threads = max(1, min(concurrency, len(items)))
    barrier = threading.Barrier(threads)
    order = iter(range(len(items)))
    lock = threading.Lock()
    start: list[float] = []

    def worker() -> None:
        barrier.wait(timeout=30)
        with lock:
            if not start:
                start.append(time.perf_counter())
        while True:
            with lock:
                index = next(order, None)
            if index is None:
                return
            due = start[0] + spread * index / len(items)
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            send(url, items[index])

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        # Bounded: each send times out after 10 s, and `spread` bounds the pacing.
        thread.join(timeout=spread + 10.0 * len(items) / threads + 30)


def wait_until(done: Any, timeout: float, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(poll)
    return bool(done())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def package_versions(*packages: str) -> dict[str, str]:
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def machine_facts() -> dict[str, Any]:
    return {
        "code": code_state(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "packages": package_versions("functions-framework", "gunicorn", "redis", "requests"),
    }


def code_state() -> str:
    """The commit measured, and whether lib/ or functions/ differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, timeout=10
            )
            .stdout.decode()
            .strip()
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "lib", "functions"],
            cwd=root,
            capture_output=True,
            timeout=10,
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" with uncommitted changes in lib/ or functions/" if changed.strip() else "")


def machine_line(facts: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items())
    return (
        f"machine: nproc {facts['nproc']}, {facts['cpu_model']}, Python {facts['python']}, "
        f"Linux {facts['kernel']}; {packages}\ncode: {facts['code']}"
    )


def _raise_on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while cleaning up; raise KeyboardInterrupt after."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; it is the one signals interrupt
        return
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt(f"signal {caught[0]}")


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` stops its children.

    SIGINT too: a shell starts background jobs with it ignored, and they must stop on it."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, _raise_on_term) for s in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(commands: int, warmup: int, threads: int) -> dict:
    recorder = Recorder()
    workdir = Path(tempfile.mkdtemp(prefix="facteur-bench-"))
    with redis_server(workdir) as redis_url, recorder.serve() as fake_url:
        env = chain_env(redis_url, fake_url, threads)
        with chain(env, workdir) as running:
            ack, to_submit, to_edit = [], [], []
            for index in range(warmup + commands):
                interaction = str(1_200_000_000_000_000_000 + index)
                payload = command("plan", interaction_id=interaction)
                payload["token"] = f"bench-token-{index}"
                body = json.dumps(payload).encode()
                headers = sign(body)
                started = time.perf_counter()
                status, _, _ = post(running.verify_url, body, headers)
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
    facts = machine_facts()
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
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chain.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
