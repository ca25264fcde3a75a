"""Load generators.

bench_verify's warm load: keep-alive connections for a fixed window, from forked Python
processes (each one epoll loop over raw sockets, or with `httpclient` threads with http.client);
bench.wrk drives wrk instead when it is on PATH. The chain benchmarks' load: `fire`, signed
commands each on a fresh connection, as Discord sends them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import re
import selectors
import signal
import socket
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from typing import Protocol
from urllib.parse import urlsplit

from bench.cpu import Measure
from bench.interactions import Request, Sent, answer_type
from bench.processes import CTX, HOST, Children
from tests.helpers.support import sign

REQUEST_TIMEOUT_S = 10.0
MAX_REQUESTS_PER_CONNECTION = 10_000_000  # every loop is bounded, even against a hung server


@dataclass(frozen=True)
class Job:
    """One warm row's load: what to send to which port, how hard and for how long."""

    port: int
    pool: Sequence[Request]
    expect: int  # the interaction response type that counts as a good answer
    connections: int
    warmup: float
    duration: float


@dataclass
class LoadOutcome:
    requests: int  # answered as expected; errors are counted apart
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu_s: float | None  # None: measured by the caller from /proc


class Load(Protocol):
    name: str

    def describe(self, connections: int) -> str: ...

    def run(self, children: Children, job: Job, measure: Measure) -> LoadOutcome: ...


def nearest_rank(sorted_values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by nearest rank; NaN when there is nothing to rank."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def split(total: int, parts: int) -> list[int]:
    """`total` connections shared as evenly as can be among at most `parts` processes."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# --------------------------------------------------------------------------------------------
# The Python load generator: forked processes, so that it is not bound by one GIL.


@dataclass
class Window:
    """When measuring starts and stops, on the shared CLOCK_MONOTONIC of every process."""

    begin: float
    end: float


def _drive(
    job: Job, offset: int, window: Window, latencies: array[float], errors: list[int]
) -> None:
    conn = http.client.HTTPConnection(HOST, job.port, timeout=REQUEST_TIMEOUT_S)
    for i in range(offset, offset + MAX_REQUESTS_PER_CONNECTION):
        started = time.monotonic()
        if started >= window.end:
            break
        request = job.pool[i % len(job.pool)]
        try:
            # http.client reconnects by itself after a `Connection: close` answer.
            conn.request("POST", "/", request.body, request.headers)
            response = conn.getresponse()
            ok = response.status == 200 and answer_type(response.read()) == job.expect
        except (OSError, http.client.HTTPException):
            conn.close()
            ok = False
        done = time.monotonic()
        if window.begin <= done <= window.end:
            if ok:
                latencies.append(done - started)
            else:
                errors[0] += 1
    conn.close()


def _threads_httpclient(
    job: Job, window: Window, first: int, connections: int
) -> tuple[array[float], int]:
    """One thread per connection, each a blocking http.client loop."""
    results = [(array("d"), [0]) for _ in range(connections)]
    threads = [
        threading.Thread(
            target=_drive, args=(job, (first + n) * 7919, window, *results[n]), daemon=True
        )
        for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(window.end - time.monotonic() + REQUEST_TIMEOUT_S + 1)
    merged = array("d")
    for latencies, _ in results:
        merged.extend(latencies)
    return merged, sum(errors[0] for _, errors in results)


_CONTENT_LENGTH_RE = re.compile(rb"\r\ncontent-length:[ \t]*([0-9]+)")


def wire_request(request: Request, port: int) -> bytes:
    """The exact bytes of one keep-alive POST, built once."""
    headers = {
        "Host": f"{HOST}:{port}",
        **request.headers,
        "Content-Length": str(len(request.body)),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST / HTTP/1.1\r\n{head}\r\n".encode("latin-1") + request.body


def parse_response(buffer: bytearray) -> tuple[int, bool, bytes] | None:
    """(status, server closes, body) once `buffer` holds a whole response, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    match = _CONTENT_LENGTH_RE.search(head)
    if match is None:  # both functions always send Content-Length; anything else is a bug
        raise ValueError("response without Content-Length")
    body_end = end + 4 + int(match.group(1))
    if len(buffer) < body_end:
        return None
    status = int(head[9:12])
    return status, b"\r\nconnection: close" in head, bytes(buffer[end + 4 : body_end])


@dataclass
class _RawConnection:
    turn: int
    sock: socket.socket | None = None
    started: float = 0.0
    buffer: bytearray = field(default_factory=bytearray)


def _selector_raw(
    job: Job, window: Window, first: int, connections: int
) -> tuple[array[float], int]:
    """All connections in one thread: pre-built request bytes, epoll, minimal parsing.

    Costs a fraction of http.client's CPU per request, which matters when the client and
    the server share two cores.
    """
    wires = [wire_request(request, job.port) for request in job.pool]
    selector = selectors.DefaultSelector()
    latencies: array[float] = array("d")
    errors = 0

    def drop(conn: _RawConnection) -> None:
        if conn.sock is not None:
            selector.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None
        conn.buffer.clear()

    def send(conn: _RawConnection) -> bool:
        try:
            if conn.sock is None:  # first use, or the server closed after its answer
                conn.sock = socket.create_connection((HOST, job.port), timeout=REQUEST_TIMEOUT_S)
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(conn.sock, selectors.EVENT_READ, conn)
            conn.turn += 1
            conn.started = time.monotonic()
            conn.sock.sendall(wires[conn.turn % len(wires)])
        except OSError:
            drop(conn)
            return False
        return True

    active = 0
    conns = [_RawConnection((first + n) * 7919) for n in range(connections)]
    for conn in conns:
        active += send(conn)
    deadline = window.end + REQUEST_TIMEOUT_S
    for _ in range(MAX_REQUESTS_PER_CONNECTION * connections):
        if active == 0 or time.monotonic() > deadline:
            break
        for key, _ in selector.select(timeout=0.5):
            conn = key.data
            try:
                chunk = conn.sock.recv(65536) if conn.sock is not None else b""
            except OSError:
                chunk = b""
            parsed: tuple[int, bool, bytes] | None = None
            if chunk:
                conn.buffer += chunk
                try:
                    parsed = parse_response(conn.buffer)
                except ValueError:
                    chunk = b""
                if parsed is None and chunk:
                    continue  # the rest of the answer is still on its way
            done = time.monotonic()
            ok = parsed is not None and parsed[0] == 200 and answer_type(parsed[2]) == job.expect
            if window.begin <= done <= window.end:
                if ok:
                    latencies.append(done - conn.started)
                else:
                    errors += 1
            conn.buffer.clear()
            if parsed is None or parsed[1]:
                drop(conn)
            if done >= window.end or not send(conn):
                drop(conn)
                active -= 1
    for conn in conns:
        drop(conn)
    selector.close()
    return latencies, errors


def _load_main(
    client: str, job: Job, window: Window, first: int, connections: int, out: Queue
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    drive = _selector_raw if client == "python" else _threads_httpclient
    latencies, errors = drive(job, window, first, connections)
    out.put((latencies.tobytes(), errors))


class PythonLoad:
    def __init__(self, name: str, procs: int) -> None:
        self.name = name  # "python" (raw sockets + epoll) or "httpclient" (threads)
        self.procs = procs

    def describe(self, connections: int) -> str:
        per = "+".join(str(n) for n in split(connections, self.procs))
        if self.name == "python":
            return (
                f"python: {self.procs} forked processes holding {per} keep-alive connections, "
                "each process one epoll loop over raw sockets with pre-built requests"
            )
        return (
            f"httpclient: {self.procs} forked processes with {per} threads, one persistent "
            "http.client connection per thread"
        )

    def run(self, children: Children, job: Job, measure: Measure) -> LoadOutcome:
        begin = time.monotonic() + 0.2 + job.warmup  # 0.2 s: time for the forks to get going
        window = Window(begin, begin + job.duration)
        out: Queue = CTX.Queue()
        procs = []
        first = 0
        for count in split(job.connections, self.procs):
            args = (self.name, job, window, first, count, out)
            procs.append(children.start(CTX.Process(target=_load_main, args=args)))
            first += count
        client_pids = [p.pid or 0 for p in procs]
        sleep_until(window.begin)
        measure.start(client_pids)
        sleep_until(window.end)
        measure.stop(client_pids)
        latencies = array("d")
        errors = 0
        for _ in procs:
            raw, failed = out.get(timeout=REQUEST_TIMEOUT_S + 5)
            chunk = array("d")
            chunk.frombytes(raw)
            latencies.extend(chunk)
            errors += failed
        for proc in procs:
            children.reap(proc)
        ordered = sorted(latencies)
        return LoadOutcome(
            len(ordered),
            job.duration,
            errors,
            nearest_rank(ordered, 50) * 1000,
            nearest_rank(ordered, 99) * 1000,
            None,
        )


# --------------------------------------------------------------------------------------------
# The chain benchmarks' load: one signed command per fresh connection, from many threads.


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
    paced(len(items), concurrency, spread, lambda index: send(url, items[index]), 10.0)


def paced(
    count: int,
    concurrency: int,
    spread: float,
    action: Callable[[int], object],
    timeout: float,
) -> None:
    """`action(i)` for i in range(count) from `concurrency` threads released together, the i-th
    due at spread * i / count seconds after the release; `timeout` bounds one action."""
    threads = max(1, min(concurrency, count))
    barrier = threading.Barrier(threads)
    order = iter(range(count))
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
            due = start[0] + spread * index / count
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            action(index)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        # Bounded: each action is bounded by `timeout`, and `spread` bounds the pacing.
        thread.join(timeout=spread + timeout * count / threads + 30)
