"""Loopback stand-ins for what the functions talk to: Argo and Discord (`Recorder`), and the
K_SINK of bench_verify (`Sink`). bench.broker holds the Knative Broker stand-in."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import random
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from bench.processes import CTX, HOST, Children
from tests.helpers.servers import serving

# --------------------------------------------------------------------------------------------
# HTTP plumbing shared by the fakes and the Broker.


class QuietServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server with a deep accept queue that does not print client hang-ups."""

    daemon_threads = True
    # socketserver's default of 5 would refuse connections when many hops connect at once.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left (the point of the slow-Argo fault) is not news.
        pass


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    """A handler that answers for `owner`, which `serve_http` sets."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; Nagle would hold the second for 40 ms.
    disable_nagle_algorithm = True
    owner: Any

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(
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
def serve_http(handler: type[KeepAliveHandler], owner: object) -> Iterator[str]:
    """Serve `handler`, answering for `owner`, on a free loopback port; yields the base URL."""
    bound = type(handler.__name__, (handler,), {"owner": owner})
    with serving(QuietServer((HOST, 0), bound)) as port:
        yield f"http://{HOST}:{port}"


# --------------------------------------------------------------------------------------------
# Argo and Discord.

_WEBHOOK_EDIT = re.compile(r"/webhooks/\d+/(?P<token>[^/]+)/messages/@original$")
_FOLLOW_UP = re.compile(r"/webhooks/\d+/(?P<token>[^/]+)$")
_CHANNEL_POST = re.compile(r"/channels/\d+/messages$")
_ONE_WORKFLOW = re.compile(r"/api/v1/workflows/(?P<ns>[^/?]+)/(?P<name>[^/?]+)(?:\?|$)")
# Discord keeps a post's nonce for a few minutes: a second post with it, under enforce_nonce,
# gets the first message back and creates nothing.
NONCE_SECONDS = 120.0
_MENTION = re.compile(r"<@(?P<user>\d+)>")


@dataclass
class Faults:
    """What the fakes do wrong, and when: windows are seconds after `Recorder.start`."""

    argo_unavailable: tuple[float, float] | None = None  # answer 503 inside this window
    argo_slow: tuple[float, float] | None = None  # answer after `argo_delay` inside this window
    argo_delay: float = 0.0
    discord_429_share: float = 0.0  # share of Discord requests answered 429
    discord_retry_after: float = 0.2
    # Refuse every edit through an interaction token, as Discord does once it has expired
    # (404 Unknown Webhook): every reply becomes a channel post.
    tokens_expired: bool = False
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
        self.metadata: dict[str, dict[str, Any]] = {}  # workflow name -> its metadata
        self.nonces: dict[str, float] = {}  # channel post nonce -> when first seen
        self.collapsed = 0  # channel posts Discord dropped for their nonce
        self.argo_answers: Counter[int] = Counter()
        self.discord_answers: Counter[int] = Counter()
        self.lock = threading.Lock()
        self._random = random.Random(self.faults.seed)

    def serve(self) -> AbstractContextManager[str]:
        """Both fakes on one loopback port; yields the base URL (Discord's API is below it)."""
        return serve_http(_RecorderHandler, self)

    def told(self) -> set[str]:
        """The keys (interaction tokens, mentioned users) that have a message."""
        with self.lock:
            return {m.key for m in self.messages}

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
                self.metadata[name] = dict(body["workflow"].get("metadata") or {})
            status = 409 if exists else 200
            self.argo_answers[status] += 1
        if exists:
            message = f'workflows.argoproj.io "{name}" already exists'
            return 409, {"code": 6, "message": message}, delay
        meta = {"name": name, "namespace": "agents", "uid": f"uid-{name}"}
        return 200, {"metadata": meta}, delay

    def argo_get(self, path: str) -> tuple[int, dict]:
        """GET of one workflow: what was created, Running, or 404."""
        match = _ONE_WORKFLOW.search(path)
        with self.lock:
            meta = self.metadata.get(match["name"]) if match else None
        if meta is None:
            return 404, {"code": 5, "message": "workflow not found"}
        meta = {"namespace": "agents", **meta, "uid": f"uid-{meta.get('name')}"}
        return 200, {"metadata": meta, "spec": {}, "status": {"phase": "Running"}}

    def discord(self, path: str, body: dict[str, Any], arrived: float) -> tuple[int, dict]:
        route, key = "other", ""
        if match := _WEBHOOK_EDIT.search(path):
            route, key = "edit", match["token"]
        elif match := _FOLLOW_UP.search(path):
            route, key = "follow-up", match["token"]
        elif _CHANNEL_POST.search(path):
            mention = _MENTION.search(str(body.get("content") or ""))
            route, key = "channel", mention["user"] if mention else ""
        if route == "edit" and self.faults.tokens_expired:
            with self.lock:
                self.discord_answers[404] += 1
            return 404, {"message": "Unknown Webhook", "code": 10015}
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
            nonce = body.get("nonce") if body.get("enforce_nonce") else None
            if route == "channel" and isinstance(nonce, str):
                seen = self.nonces.get(nonce)
                if seen is not None and arrived - seen < NONCE_SECONDS:
                    self.collapsed += 1
                    return 200, {"id": "1100000000000000001", "content": body.get("content")}
                self.nonces[nonce] = arrived
            self.messages.append(Message(arrived, route, key, str(body.get("content") or "")))
            if route == "edit":
                self.edited.setdefault(key, arrived)
        return 200, {"id": "1100000000000000001", "content": body.get("content")}


class _RecorderHandler(KeepAliveHandler):
    owner: Recorder

    def do_POST(self) -> None:
        arrived = time.perf_counter()
        body = json.loads(self.body())
        if self.path.startswith("/api/v1/workflows"):
            status, payload, delay = self.owner.argo_create(body, arrived)
            if delay:
                time.sleep(delay)
            self.answer(status, payload)
        else:
            self._discord(body, arrived)

    def do_PATCH(self) -> None:
        self._discord(json.loads(self.body()), time.perf_counter())

    def do_DELETE(self) -> None:
        # A refusal deletes the deferred reply before its private follow-up (flows/tell.py).
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path.startswith("/api/v1/workflows"):
            self.answer(*self.owner.argo_get(self.path))
        else:
            self.answer(404, {"message": "not found"})

    def _discord(self, body: dict[str, Any], arrived: float) -> None:
        status, payload = self.owner.discord(self.path, body, arrived)
        # Discord's 429 carries retry_after in the body; the header is whole seconds.
        self.answer(status, payload, {"Retry-After": "1"} if status == 429 else None)


# --------------------------------------------------------------------------------------------
# The sink: K_SINK for bench_verify. asyncio in its own process, so that it never competes for
# our GIL and its CPU is counted apart (tests.helpers.servers.Sink is a thread of the caller).

MAX_REQUESTS_PER_CONNECTION = 10_000_000  # every loop is bounded, even against a rogue peer
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
    """Answers 202 to every request after `delay` seconds and counts them."""

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
