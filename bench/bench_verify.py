"""Benchmark interaction_verify beside an empty functions-framework function (the floor).

Run from the repository root, as a module, so that `tests.helpers` imports:

    cd /work/main && .venv/bin/python -m bench.bench_verify

Other forms:

    .venv/bin/python -m bench.bench_verify --mode both          # THREADS=1, then THREADS=8
    .venv/bin/python -m bench.bench_verify --threads 4 --workers 2 --duration 5
    .venv/bin/python -m bench.bench_verify --loadgen python     # even when wrk is on PATH

What it measures, each for the empty function and for interaction_verify in the same run:

* cold start: from spawning the `functions-framework` CLI to the first good answer (a signed
  PING for verify), median of interleaved runs;
* warm: requests/s, p50/p99 latency and errors for signed PINGs and for allowed `/plan`
  commands (which verify hands to a loopback sink), at C keep-alive connections;
* server CPU per request: user+sys of the gunicorn master and its workers from /proc.

The load comes from wrk when it is on PATH (Debian package `wrk`), else from forked Python
processes, each an epoll loop over raw keep-alive sockets; `--loadgen httpclient` uses threads
with http.client instead, which costs about twice the client CPU per request. Either way the
client shares the machine's cores with the servers; the table shows how the CPU was split.

Everything listens on 127.0.0.1, every loop is bounded, and every child dies with the script.
Results go to stdout as Markdown and to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from types import FrameType
from typing import IO, Any

from tests.helpers.support import APP, base_env, command, encode, sign

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CTX = mp.get_context("fork")  # workers inherit the pre-signed pool without pickling it

# Bounds: nothing here may run forever, even against a server that hangs.
COLD_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.002  # connect-retry period while a server boots: 2 ms of resolution
MAX_REQUESTS_PER_CONNECTION = 10_000_000
POOL_SIZE = 64
IDLE_PROBE_S = 1.0
BOTH_THREADS = (1, 8)  # --mode both: one sync worker vs gthread (framework default is 4 x CPUs)


@dataclass(frozen=True)
class Target:
    key: str
    function: str
    source: Path


EMPTY = Target("empty", "empty", ROOT / "bench" / "empty_function" / "main.py")
VERIFY = Target(
    "verify", "interaction_verify", ROOT / "functions" / "interaction_verify" / "main.py"
)


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]


# --------------------------------------------------------------------------------------------
# Child processes: every one is registered here so that an exception or Ctrl-C kills it.


@dataclass
class Server:
    target: Target
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Children:
    """Owns every process the script starts and stops them all, by pid, on the way out."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[Server] = []
        self.procs: list[mp.process.BaseProcess] = []

    def spawn_server(self, target: Target, env: dict[str, str], tag: str) -> Server:
        port = free_port()
        log_path = self.log_dir / f"{target.key}-{tag}.log"
        log = log_path.open("ab")
        command_line = [
            str(FUNCTIONS_FRAMEWORK),
            "--target",
            target.function,
            "--source",
            str(target.source),
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        # Own session: the gunicorn master and its workers form one group we can signal.
        proc = subprocess.Popen(
            command_line,
            cwd=str(ROOT),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(target, port, proc, log_path, log)
        self.servers.append(server)
        return server

    def stop_server(self, server: Server) -> None:
        proc = server.proc
        if proc.poll() is None:
            # SIGINT is gunicorn's quick shutdown; the group reaches the workers too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        server.log.close()
        if server in self.servers:
            self.servers.remove(server)

    def start(self, proc: mp.process.BaseProcess) -> mp.process.BaseProcess:
        self.procs.append(proc)
        proc.start()
        return proc

    def reap(self, proc: mp.process.BaseProcess, timeout: float = STOP_TIMEOUT_S) -> None:
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for server in list(self.servers):
            self.stop_server(server)
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()  # the sink never ends by itself: don't wait for it first
        for proc in list(self.procs):
            self.reap(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _raise_on_term(signum: int, frame: FrameType | None) -> None:
    # Turns `kill <pid>` into an exception, so the finally blocks stop the children.
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------------------------
# /proc accounting.


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses; the fields after its last ')' are fixed.
    return text[text.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """root and all its descendants (the gunicorn master and its forked workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [root], [root]
    while todo and len(found) < 10_000:
        children = parents.get(todo.pop(), [])
        found.extend(children)
        todo.extend(children)
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """user+sys of live processes, all their threads included."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def busy_pct(seconds: float) -> float:
    """How busy all cores are over `seconds`, in %: someone else's load skews every number."""
    busy0, total0 = machine_ticks()
    time.sleep(seconds)
    busy1, total1 = machine_ticks()
    return 100 * (busy1 - busy0) / ((total1 - total0) or 1)


@dataclass
class CpuSnapshot:
    server: float
    client: float
    sink: float
    machine_busy: int
    machine_total: int
    sink_count: int


def snapshot(server_pids: Sequence[int], client_pids: Sequence[int], sink: Sink) -> CpuSnapshot:
    busy, total = machine_ticks()
    return CpuSnapshot(
        cpu_seconds(server_pids),
        cpu_seconds(client_pids),
        cpu_seconds([sink.pid]),
        busy,
        total,
        sink.count,
    )


# --------------------------------------------------------------------------------------------
# The sink: K_SINK for verify. asyncio in its own process so it never competes for our GIL.

ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
ACCEPTED_CLOSE = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def _sink_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counter: Synchronized[int],
    delay: float,
) -> None:
    try:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            head = await reader.readuntil(b"\r\n\r\n")
            length, close = 0, head.startswith(b"HTTP/1.0") or b" HTTP/1.0\r\n" in head
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            if length:
                await reader.readexactly(length)
            if delay > 0:  # a real Broker is a network hop away; this costs no CPU
                await asyncio.sleep(delay)
            counter.value += 1
            writer.write(ACCEPTED_CLOSE if close else ACCEPTED)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass  # a peer that hung up or spoke nonsense: just drop it
    finally:
        writer.close()


async def _sink_serve(sock: socket.socket, counter: Synchronized[int], delay: float) -> None:
    server = await asyncio.start_server(
        functools.partial(_sink_connection, counter=counter, delay=delay), sock=sock, backlog=1024
    )
    async with server:
        await server.serve_forever()


def _sink_main(sock: socket.socket, counter: Synchronized[int], delay: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    asyncio.run(_sink_serve(sock, counter, delay))


class Sink:
    def __init__(self, children: Children, delay: float) -> None:
        # Bound and listening before the fork: no start-up race, no readiness poll.
        sock = socket.socket()
        sock.bind((HOST, 0))
        sock.listen(1024)
        self.url = f"http://{HOST}:{sock.getsockname()[1]}/"
        self._counter: Synchronized[int] = CTX.Value("Q", 0)
        self._proc = children.start(
            CTX.Process(target=_sink_main, args=(sock, self._counter, delay))
        )
        sock.close()

    @property
    def pid(self) -> int:
        return self._proc.pid or 0

    @property
    def count(self) -> int:
        return int(self._counter.value)


# --------------------------------------------------------------------------------------------
# Requests.


def ping_pool(size: int = POOL_SIZE) -> list[Request]:
    """Signed PINGs, distinct ids, stamped now (verify accepts them for 300 s)."""
    pool = []
    for i in range(size):
        body = encode(
            {
                "id": str(910_000_000_000_000_000 + i),
                "application_id": APP,
                "type": 1,
                "token": "interaction-token-bench",
                "version": 1,
            }
        )
        pool.append(Request(body, sign(body)))
    return pool


def command_pool(size: int = POOL_SIZE) -> list[Request]:
    """Signed /plan commands that the test role map allows, so verify forwards each one."""
    pool = []
    for i in range(size):
        body = encode(command("plan", interaction_id=str(920_000_000_000_000_000 + i)))
        pool.append(Request(body, sign(body)))
    return pool


def answer_type(data: bytes) -> Any:
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload.get("type") if isinstance(payload, dict) else None


def first_answer(
    server: Server, request: Request, expect: int, started: float, timeout: float
) -> float:
    """Seconds from `started` until the server answers `request` with 200 and type `expect`."""
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


# --------------------------------------------------------------------------------------------
# Cold start.


@dataclass
class ColdResult:
    runs_ms: dict[str, list[float]]
    median_ms: dict[str, float]
    ratio: float


def cold_start(children: Children, env: dict[str, str], runs: int, tag: str) -> ColdResult:
    times: dict[str, list[float]] = {EMPTY.key: [], VERIFY.key: []}
    # One discarded pair first: it pays for page-cache misses and .pyc writes.
    for run in range(runs + 1):
        for target in (EMPTY, VERIFY):  # interleaved, so both see the same machine noise
            request = ping_pool(1)[0]  # signed fresh each time; the empty one ignores it
            started = time.monotonic()
            server = children.spawn_server(target, env, f"cold-{tag}")
            try:
                seconds = first_answer(server, request, 1, started, COLD_TIMEOUT_S)
            finally:
                children.stop_server(server)
            if run > 0:
                times[target.key].append(seconds * 1000)
    medians = {key: statistics.median(values) for key, values in times.items()}
    return ColdResult(times, medians, medians[VERIFY.key] / medians[EMPTY.key])


# --------------------------------------------------------------------------------------------
# Warm load: wrk when it is on PATH, else forked Python processes (raw sockets by default).


@dataclass
class Window:
    """When measuring starts and stops, on the shared CLOCK_MONOTONIC of every process."""

    begin: float
    end: float


def _drive(
    port: int,
    pool: Sequence[Request],
    offset: int,
    expect: int,
    window: Window,
    latencies: array[float],
    errors: list[int],
) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    for i in range(offset, offset + MAX_REQUESTS_PER_CONNECTION):
        started = time.monotonic()
        if started >= window.end:
            break
        request = pool[i % len(pool)]
        try:
            # http.client reconnects by itself after a `Connection: close` answer.
            conn.request("POST", "/", request.body, request.headers)
            response = conn.getresponse()
            ok = response.status == 200 and answer_type(response.read()) == expect
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
    port: int,
    pool: Sequence[Request],
    expect: int,
    window: Window,
    first: int,
    connections: int,
) -> tuple[array[float], int]:
    """One thread per connection, each a blocking http.client loop."""
    results = [(array("d"), [0]) for _ in range(connections)]
    threads = [
        threading.Thread(
            target=_drive,
            args=(port, pool, (first + n) * 7919, expect, window, *results[n]),
            daemon=True,
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
    port: int,
    pool: Sequence[Request],
    expect: int,
    window: Window,
    first: int,
    connections: int,
) -> tuple[array[float], int]:
    """All connections in one thread: pre-built request bytes, epoll, minimal parsing.

    Costs a fraction of http.client's CPU per request, which matters when the client and
    the server share two cores.
    """
    wires = [wire_request(request, port) for request in pool]
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
                conn.sock = socket.create_connection((HOST, port), timeout=REQUEST_TIMEOUT_S)
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
            ok = parsed is not None and parsed[0] == 200 and answer_type(parsed[2]) == expect
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
    client: str,
    port: int,
    pool: Sequence[Request],
    expect: int,
    window: Window,
    first: int,
    connections: int,
    out: mp.Queue[tuple[bytes, int]],
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    drive = _selector_raw if client == "python" else _threads_httpclient
    latencies, errors = drive(port, pool, expect, window, first, connections)
    out.put((latencies.tobytes(), errors))


@dataclass
class LoadOutcome:
    requests: int  # answered as expected; errors are counted apart
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu_s: float | None  # None: measured by the caller from /proc


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))  # nearest-rank
    return sorted_values[rank - 1]


class PythonLoad:
    def __init__(self, name: str, procs: int) -> None:
        self.name = name  # "python" (raw sockets + epoll) or "httpclient" (threads)
        self.procs = procs

    def describe(self, connections: int) -> str:
        per = "+".join(str(n) for n in _split(connections, self.procs))
        if self.name == "python":
            return (
                f"python: {self.procs} forked processes holding {per} keep-alive connections, "
                "each process one epoll loop over raw sockets with pre-built requests"
            )
        return (
            f"httpclient: {self.procs} forked processes with {per} threads, one persistent "
            "http.client connection per thread"
        )

    def run(
        self,
        children: Children,
        server: Server,
        pool: Sequence[Request],
        expect: int,
        connections: int,
        warmup: float,
        duration: float,
        measure: Measure,
    ) -> LoadOutcome:
        begin = time.monotonic() + 0.2 + warmup  # 0.2 s: time for the forks to get going
        window = Window(begin, begin + duration)
        out: mp.Queue[tuple[bytes, int]] = CTX.Queue()
        procs = []
        first = 0
        for count in _split(connections, self.procs):
            args = (self.name, server.port, pool, expect, window, first, count, out)
            procs.append(children.start(CTX.Process(target=_load_main, args=args)))
            first += count
        client_pids = [p.pid or 0 for p in procs]
        _sleep_until(window.begin)
        measure.start(client_pids)
        _sleep_until(window.end)
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
            duration,
            errors,
            percentile(ordered, 50) * 1000,
            percentile(ordered, 99) * 1000,
            None,
        )


WRK_SCRIPT = """\
-- Written by bench/bench_verify.py: pre-signed requests in turn, answers checked.
local pool = {
%(pool)s
}
local expect = %(expect)s
local prepared = {}
local turn = 0
local threads = {}
bad = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  turn = tonumber(args[1]) or 0
  for i, item in ipairs(pool) do
    prepared[i] = wrk.format("POST", "/", {
      ["Content-Type"] = "application/json",
      ["X-Signature-Ed25519"] = item[2],
      ["X-Signature-Timestamp"] = item[3],
    }, item[1])
  end
end

function request()
  turn = turn %% #prepared + 1
  return prepared[turn]
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do
    wrong = wrong + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"socket\\":%%d,\\"status\\":%%d," ..
    "\\"wrong\\":%%d,\\"p50_us\\":%%.1f,\\"p99_us\\":%%.1f}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    wrong, latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(data: bytes) -> str:
    escaped = []
    for byte in data:
        char = chr(byte)
        if char in '\\"':
            escaped.append("\\" + char)
        elif 32 <= byte < 127:
            escaped.append(char)
        else:
            escaped.append(f"\\{byte:03d}")
    return '"' + "".join(escaped) + '"'


class WrkLoad:
    name = "wrk"

    def __init__(self, binary: str, threads: int, work_dir: Path) -> None:
        self.binary = binary
        self.threads = threads
        self.work_dir = work_dir

    def describe(self, connections: int) -> str:
        return f"wrk ({self.binary}) with {self.threads} threads and a Lua script"

    def _script(self, pool: Sequence[Request], expect: int) -> Path:
        rows = []
        for r in pool:
            signature = lua_string(r.headers["X-Signature-Ed25519"].encode())
            timestamp = lua_string(r.headers["X-Signature-Timestamp"].encode())
            rows.append(f"  {{{lua_string(r.body)}, {signature}, {timestamp}}},")
        path = self.work_dir / f"wrk-{expect}.lua"
        expected = lua_string(f'"type":{expect}'.encode())
        text = WRK_SCRIPT % {"pool": "\n".join(rows), "expect": expected}
        path.write_text(text)
        return path

    def _wrk(self, server: Server, script: Path, connections: int, seconds: float) -> str:
        command_line = [
            self.binary,
            f"--threads={min(self.threads, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={REQUEST_TIMEOUT_S:.0f}s",
            f"--script={script}",
            f"http://{HOST}:{server.port}/",
        ]
        done = subprocess.run(
            command_line,
            capture_output=True,
            text=True,
            timeout=seconds + REQUEST_TIMEOUT_S + 10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def run(
        self,
        children: Children,
        server: Server,
        pool: Sequence[Request],
        expect: int,
        connections: int,
        warmup: float,
        duration: float,
        measure: Measure,
    ) -> LoadOutcome:
        script = self._script(pool, expect)
        if warmup > 0:
            self._wrk(server, script, connections, warmup)
        # wrk is reaped inside the window, so RUSAGE_CHILDREN grows by exactly its CPU.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        measure.start([])
        output = self._wrk(server, script, connections, duration)
        measure.stop([])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        match = re.search(r"^BENCH_JSON (.*)$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no summary:\n{output}")
        summary = json.loads(match.group(1))
        # "wrong" counts every non-200 or unexpected answer, so wrk's own status count would
        # count some twice; socket errors never produced an answer at all.
        wrong = int(summary["wrong"])
        return LoadOutcome(
            int(summary["requests"]) - wrong,
            summary["duration_us"] / 1e6,
            int(summary["socket"]) + wrong,
            summary["p50_us"] / 1000,
            summary["p99_us"] / 1000,
            (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        )


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


class Measure:
    """CPU snapshots around the measured window: servers, client, sink and the machine."""

    def __init__(self, server: Server, sink: Sink) -> None:
        self.server_pids = process_tree(server.proc.pid)
        self.sink = sink
        self.before: CpuSnapshot | None = None
        self.after: CpuSnapshot | None = None
        self.wall = (0.0, 0.0)

    def start(self, client_pids: Sequence[int]) -> None:
        self.wall = (time.monotonic(), 0.0)
        self.before = snapshot(self.server_pids, client_pids, self.sink)

    def stop(self, client_pids: Sequence[int]) -> None:
        self.after = snapshot(self.server_pids, client_pids, self.sink)
        self.wall = (self.wall[0], time.monotonic())


# --------------------------------------------------------------------------------------------
# One warm row, one mode, the whole run.


@dataclass
class WarmResult:
    function: str
    workload: str
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_us_per_request: float
    client_us_per_request: float
    # CPU use over the window in % of one core; "other" is busy time no process of ours was
    # charged for: the kernel's loopback work in softirq, and anything else on the machine.
    server_cpu_pct: float
    client_cpu_pct: float
    sink_cpu_pct: float
    other_cpu_pct: float
    machine_busy_pct: float  # of all cores
    sink_events: int
    limited_by: str


def limited_by(server_cores: float, machine_busy: float, worker_cores: int) -> str:
    # A rough label, not a proof: it says where the CPU went during the window.
    if server_cores >= 0.85 * worker_cores:
        return "server CPU"
    if machine_busy >= 80:
        return "shared CPU"
    return "waiting"


def warm_row(
    children: Children,
    load: PythonLoad | WrkLoad,
    server: Server,
    sink: Sink,
    workload: str,
    args: argparse.Namespace,
) -> WarmResult:
    pool, expect = (ping_pool(), 1) if workload == "PING" else (command_pool(), 5)
    measure = Measure(server, sink)
    outcome = load.run(
        children, server, pool, expect, args.connections, args.warmup, args.duration, measure
    )
    assert measure.before is not None and measure.after is not None
    before, after = measure.before, measure.after
    wall = measure.wall[1] - measure.wall[0]
    server_cpu = after.server - before.server
    client_cpu = (
        outcome.client_cpu_s if outcome.client_cpu_s is not None else after.client - before.client
    )
    sink_cpu = after.sink - before.sink
    busy = (after.machine_busy - before.machine_busy) / (
        (after.machine_total - before.machine_total) or 1
    )
    ncpu = len(os.sched_getaffinity(0))
    other = busy * ncpu * wall - server_cpu - client_cpu - sink_cpu
    served = (outcome.requests + outcome.errors) or 1  # failures cost CPU too
    workers = args.workers or 1
    return WarmResult(
        function=server.target.function,
        workload=workload,
        requests=outcome.requests,
        seconds=outcome.seconds,
        requests_per_s=outcome.requests / outcome.seconds,
        p50_ms=outcome.p50_ms,
        p99_ms=outcome.p99_ms,
        errors=outcome.errors,
        server_us_per_request=server_cpu / served * 1e6,
        client_us_per_request=client_cpu / served * 1e6,
        server_cpu_pct=100 * server_cpu / wall,
        client_cpu_pct=100 * client_cpu / wall,
        sink_cpu_pct=100 * sink_cpu / wall,
        other_cpu_pct=100 * other / wall,
        machine_busy_pct=100 * busy,
        sink_events=after.sink_count - before.sink_count,
        limited_by=limited_by(server_cpu / wall, 100 * busy, min(workers, ncpu)),
    )


@dataclass
class ModeResult:
    threads: int
    workers: int | None
    cold: ColdResult | None
    warm: list[WarmResult] = field(default_factory=list)


def server_env(sink: Sink, threads: int, workers: int | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FACTEUR_") and k not in ("THREADS", "WORKERS", "K_SINK")
    }
    env.update(base_env(K_SINK=sink.url))
    env["THREADS"] = str(threads)
    if workers is not None:
        env["WORKERS"] = str(workers)
    return env


def run_mode(
    children: Children,
    load: PythonLoad | WrkLoad,
    sink: Sink,
    threads: int,
    args: argparse.Namespace,
) -> ModeResult:
    env = server_env(sink, threads, args.workers)
    tag = f"t{threads}"
    cold = None
    if args.cold_runs > 0:
        progress(f"THREADS={threads}: cold start, {args.cold_runs} interleaved runs each")
        cold = cold_start(children, env, args.cold_runs, tag)
    result = ModeResult(threads, args.workers, cold)
    if args.duration <= 0:
        return result
    servers = {t.key: children.spawn_server(t, env, f"warm-{tag}") for t in (EMPTY, VERIFY)}
    try:
        for server in servers.values():
            first_answer(server, ping_pool(1)[0], 1, time.monotonic(), COLD_TIMEOUT_S)
        for key, workload in ((EMPTY.key, "PING"), (VERIFY.key, "PING"), (VERIFY.key, "/plan")):
            progress(f"THREADS={threads}: warm {key} {workload}, {args.duration:g} s")
            row = warm_row(children, load, servers[key], sink, workload, args)
            result.warm.append(row)
    finally:
        for server in servers.values():
            children.stop_server(server)
    return result


def progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Report.


def machine_facts(load_description: str) -> dict[str, Any]:
    from bench.bench_chain import cpu_model, package_versions

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": package_versions("functions-framework", "gunicorn", "Flask", "PyNaCl"),
        "load_generator": load_description,
    }


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def render(facts: dict[str, Any], modes: list[ModeResult], args: argparse.Namespace) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items())
    workers = args.workers if args.workers is not None else "1 (default)"
    lines = [
        "## interaction_verify vs empty function",
        "",
        f"- machine: nproc {facts['nproc']} ({facts['cpu_model']}), Linux {facts['kernel']}, "
        f"Python {facts['python']}; {facts['busy_before_start_pct']:.0f}% busy before the run",
        f"- packages: {packages}",
        f"- load generator: {facts['load_generator']}; it shares the {facts['nproc']} cores "
        "with the servers and the sink",
        "- sink (K_SINK): asyncio HTTP server in its own process, answers 202 after "
        f"{args.sink_delay_ms:g} ms",
        "- THREADS=1 makes gunicorn use its sync worker: no keep-alive, one TCP connection per "
        "request; THREADS>1 uses the gthread worker with keep-alive",
        f"- WORKERS={workers}; warm rows: {args.duration:g} s each after {args.warmup:g} s "
        f"warm-up, {args.connections} connections",
        "",
    ]
    if any(m.cold for m in modes):
        lines += [
            f"### Cold start: spawn to first good answer, median of {args.cold_runs} "
            "interleaved runs (one discarded pair first)",
            "",
            "| THREADS | empty ms | empty min-max | verify ms | verify min-max | verify/empty |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in modes:
            if mode.cold is None:
                continue
            e, v = mode.cold.runs_ms[EMPTY.key], mode.cold.runs_ms[VERIFY.key]
            lines.append(
                f"| {mode.threads} | {mode.cold.median_ms[EMPTY.key]:.0f} "
                f"| {min(e):.0f}-{max(e):.0f} | {mode.cold.median_ms[VERIFY.key]:.0f} "
                f"| {min(v):.0f}-{max(v):.0f} | {mode.cold.ratio:.2f} |"
            )
        lines.append("")
    if any(m.warm for m in modes):
        lines += [
            "### Warm",
            "",
            "| THREADS | function | request | req/s | p50 ms | p99 ms | errors | server µs/req "
            "| client µs/req | CPU % server/client/sink/other | machine busy % | limited by |",
            "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for mode in modes:
            for row in mode.warm:
                split = "/".join(
                    f"{pct:.0f}"
                    for pct in (
                        row.server_cpu_pct,
                        row.client_cpu_pct,
                        row.sink_cpu_pct,
                        row.other_cpu_pct,
                    )
                )
                lines.append(
                    f"| {mode.threads} | {row.function} | {row.workload} "
                    f"| {row.requests_per_s:.0f} | {_ms(row.p50_ms)} | {_ms(row.p99_ms)} "
                    f"| {row.errors} | {row.server_us_per_request:.0f} "
                    f"| {row.client_us_per_request:.0f} | {split} "
                    f"| {row.machine_busy_pct:.0f} | {row.limited_by} |"
                )
        lines += [
            "",
            f"CPU % is of one core over the window (the machine has {facts['nproc']}); "
            "other = busy time charged to none of our processes (loopback softirq, anything "
            "else running). Machine busy % is of all cores. Limited by: server CPU when the "
            "server used >= 85% of its worker cores, shared CPU when the machine was >= 80% "
            "busy short of that, else waiting.",
            "",
            "### verify/empty, PING",
            "",
            "| THREADS | cold start | req/s | p50 | p99 | server µs/req |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for mode in modes:
            rows = {(r.function, r.workload): r for r in mode.warm}
            e, v = rows[(EMPTY.function, "PING")], rows[(VERIFY.function, "PING")]
            cold = f"{mode.cold.ratio:.2f}" if mode.cold else "-"
            lines.append(
                f"| {mode.threads} | {cold} | {v.requests_per_s / e.requests_per_s:.2f} "
                f"| {v.p50_ms / e.p50_ms:.2f} | {v.p99_ms / e.p99_ms:.2f} "
                f"| {v.server_us_per_request / e.server_us_per_request:.2f} |"
            )
        lines.append("")
        for mode in modes:
            for row in mode.warm:
                if row.workload == "/plan":
                    lines.append(
                        f"THREADS={mode.threads}: the sink received {row.sink_events} events "
                        f"while verify answered {row.requests} /plan commands (window counts)."
                    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Entry point.


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_verify", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--mode",
        choices=("single", "both"),
        default="single",
        help=f"single: --threads only; both: THREADS={BOTH_THREADS[0]} then {BOTH_THREADS[1]}",
    )
    parser.add_argument("--threads", type=int, default=1, help="THREADS for the servers")
    parser.add_argument("--workers", type=int, default=None, help="WORKERS for the servers")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per warm row")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--cold-runs", type=int, default=7, help="cold starts per function")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python", "httpclient"),
        default="auto",
        help="auto: wrk when on PATH, else python (raw sockets); httpclient: threads with "
        "http.client, slower per request but a strict parser, for cross-checking",
    )
    parser.add_argument(
        "--client-procs",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="python load generator: processes (connections are split among them)",
    )
    parser.add_argument(
        "--sink-delay-ms",
        type=float,
        default=0.0,
        help="the sink waits this long before its 202, like a Broker across the network",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.client_procs < 1 or args.threads < 1:
        parser.error("--connections, --client-procs and --threads must be at least 1")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if 0 < args.cold_runs < 5:
        progress(f"warning: --cold-runs {args.cold_runs} is below 5: medians will be noisy")
    if not 0 <= args.sink_delay_ms <= 2000:
        parser.error("--sink-delay-ms must be within 0..2000 (verify gives up after 2 s)")
    if args.duration > 120:
        parser.error("--duration is capped at 120 s (the signed pool lives 300 s)")
    return args


def choose_load(args: argparse.Namespace, work_dir: Path) -> PythonLoad | WrkLoad:
    wrk = shutil.which("wrk")
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("--loadgen wrk: no wrk on PATH")
    if wrk is not None and args.loadgen in ("auto", "wrk"):
        return WrkLoad(wrk, len(os.sched_getaffinity(0)), work_dir)
    return PythonLoad("httpclient" if args.loadgen == "httpclient" else "python", args.client_procs)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    previous = {s: signal.signal(s, _raise_on_term) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS_DIR / "logs"
    log_dir.mkdir(exist_ok=True)
    for old_log in log_dir.glob("*.log"):  # this run's logs only
        old_log.unlink()
    idle_busy = busy_pct(IDLE_PROBE_S)
    if idle_busy > 10:
        progress(f"warning: the machine was {idle_busy:.0f}% busy before we started anything")
    started = time.monotonic()
    with signals_raise(), tempfile.TemporaryDirectory(prefix="bench-verify-") as scratch:
        children = Children(log_dir)
        try:
            load = choose_load(args, Path(scratch))
            facts = machine_facts(load.describe(args.connections))
            facts["busy_before_start_pct"] = round(idle_busy, 1)
            sink = Sink(children, args.sink_delay_ms / 1000)
            thread_modes = BOTH_THREADS if args.mode == "both" else (args.threads,)
            modes = [run_mode(children, load, sink, t, args) for t in thread_modes]
        finally:
            children.close()
    elapsed = time.monotonic() - started
    report = render(facts, modes, args)
    print(report)
    print(f"\n(total run time {elapsed:.0f} s; server logs in {log_dir.relative_to(ROOT)})")
    payload = {
        "machine": facts,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "modes": [asdict(m) for m in modes],
        "elapsed_s": elapsed,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # the children are already stopped by then
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
