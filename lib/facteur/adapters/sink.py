"""Posting a CloudEvent to K_SINK (the Broker in Knative, the next function locally)."""

from __future__ import annotations

import asyncio
import socket
import threading
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, urlsplit

from facteur import telemetry
from facteur.adapters.envelope import CloudEvent, encode, sealed, structured
from facteur.errors import SinkError

# One keep-alive connection per server thread: a new TCP connection per event cost more CPU
# than the rest of the command path.
_local = threading.local()


def deliver(url: str, event: CloudEvent, timeout: float) -> None:
    """POST one event; raise SinkError unless the sink answers 2xx within `timeout`."""
    send(url, *encode(event), timeout)


def _problem(err: Exception) -> str:
    """The class, and a socket error's message ("[Errno 111] Connection refused", host and
    port at most). A ValueError's can quote what the sink answered: its class alone."""
    text = str(err) if isinstance(err, OSError) else ""
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def send(url: str, headers: dict[str, str], body: bytes, timeout: float) -> None:
    """POST an encoded event; raise SinkError unless the sink answers 2xx within `timeout`."""
    parts = urlsplit(url)
    request = _request(parts, headers, body)
    for attempt in (1, 2):
        reused = False
        try:
            connection, reused = _connection(parts, timeout)
            status, reusable = connection.exchange(request, timeout)
        except (OSError, ValueError) as err:
            _drop(parts.netloc)
            # A kept-alive connection the sink had already closed: retry once on a fresh one.
            # Harmless if the first attempt did arrive: receivers drop duplicates by event id.
            # Not after a timeout, which would spend the caller's deadline twice.
            if reused and attempt == 1 and not isinstance(err, TimeoutError):
                continue
            raise SinkError(f"sink unreachable: {_problem(err)}") from None
        if not reusable:
            _drop(parts.netloc)
        if not 200 <= status < 300:
            raise SinkError(f"sink answered {status}")
        return


def _request(parts: SplitResult, headers: dict[str, str], body: bytes) -> bytes:
    # One buffer, one send: headers and body in separate writes cost a syscall and can meet
    # Nagle's algorithm. Header names and values are facteur's own constants, never user text.
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Host never carries a userinfo: a K_SINK holding user:password@ must not send it.
    lines = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc.rpartition('@')[2]}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection:
    """One kept-alive HTTP/1.1 connection to the sink, speaking just what a hand-off needs.

    http.client spent more CPU parsing the sink's three-line answer (through the email
    package) than facteur spent on the rest of a command; h11 was no cheaper. This reads the
    status line and the headers it needs, and keeps the connection only when the answer says
    exactly where it ends (Content-Length) and does not ask to close.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def exchange(self, request: bytes, timeout: float) -> tuple[int, bool]:
        """Send one request; the answer's status, and whether the connection can be reused."""
        self._sock.settimeout(timeout)
        self._sock.sendall(request)
        head, rest = self._read_head()
        code, length, close = _answer_head(head)
        if length is None:
            return code, False  # where the body ends is unknown: do not reuse
        while len(rest) < length:
            chunk = self._sock.recv(length - len(rest))
            if not chunk:
                raise ConnectionResetError("sink closed the connection mid-answer")
            rest += chunk
        return code, not close and len(rest) == length

    def _read_head(self) -> tuple[bytes, bytes]:
        buffer = b""
        while True:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("sink closed the connection")
            buffer += chunk
            head, found, rest = buffer.partition(b"\r\n\r\n")
            if found:
                return head, rest
            if len(buffer) > _MAX_ANSWER:
                raise ValueError("the sink's answer has no end of headers")

    def close(self) -> None:
        self._sock.close()


# An answer to a hand-off is a few hundred bytes; anything much larger is not a sink's answer.
_MAX_ANSWER = 65536


def _answer_head(head: bytes) -> tuple[int, int | None, bool]:
    """The status, the body's length (None when unknown or too long), and whether to close."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, remainder = status_line.partition(" ")
    code = remainder[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ValueError("not an HTTP/1.x status line")
    length, close = None, version == "HTTP/1.0"
    for line in header_lines:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length" and value.isdigit():
            length = int(value)
        elif name in ("connection", "transfer-encoding"):
            close = close or value.lower() != "keep-alive"
    if length is not None and length > _MAX_ANSWER:
        length = None
    return int(code), length, close


def _connection(parts: SplitResult, timeout: float) -> tuple[_Connection, bool]:
    pool: dict[str, _Connection] = _local.__dict__.setdefault("pool", {})
    connection = pool.get(parts.netloc)
    if connection is not None:
        return connection, True
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    sock = socket.create_connection((host, parts.port or default), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if parts.scheme == "https":
        import ssl  # only for a TLS sink

        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    connection = pool[parts.netloc] = _Connection(sock)
    return connection, False


def _drop(netloc: str) -> None:
    connection = _local.__dict__.get("pool", {}).pop(netloc, None)
    if connection is not None:
        connection.close()


class Sink:
    """The Deliver port: seal an event as `source`, carry the trace, and POST it to K_SINK."""

    def __init__(
        self,
        url: str,
        signing_key: str,
        source: str,
        timeout: float,
        post: Callable[[str, dict[str, str], bytes, float], None] = send,
    ) -> None:
        self._url = url
        self._key = signing_key
        self._source = source
        self._timeout = timeout
        self._post = post

    def __call__(self, event_type: str, event_id: str, data: dict[str, Any]) -> None:
        attributes = sealed(
            self._key, event_type=event_type, source=self._source, event_id=event_id, data=data
        )
        telemetry.carry(attributes)
        self._post(self._url, *structured(attributes, data), self._timeout)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AsyncSink:
    """The hand-off as Sink does it, for an event loop: no thread waits on a slow sink.

    Kept-alive connections wait in a free list of the loop they belong to; a hand-off takes
    one, or opens one, and gives it back when the answer says it may be reused.
    """

    def __init__(self, url: str, signing_key: str, source: str, timeout: float) -> None:
        self._parts = urlsplit(url)
        self._key = signing_key
        self._source = source
        self._timeout = timeout
        self._free: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Streams]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, event_type: str, event_id: str, data: dict[str, Any]) -> None:
        attributes = sealed(
            self._key, event_type=event_type, source=self._source, event_id=event_id, data=data
        )
        telemetry.carry(attributes)
        request = _request(self._parts, *structured(attributes, data))
        free = self._free.setdefault(asyncio.get_running_loop(), [])
        for attempt in (1, 2):
            streams, reused = (free.pop(), True) if free else (None, False)
            try:
                if streams is None:
                    streams = await asyncio.wait_for(self._open(), self._timeout)
                code, reusable = await asyncio.wait_for(
                    self._exchange(*streams, request), self._timeout
                )
            except (OSError, ValueError, asyncio.IncompleteReadError) as err:
                if streams is not None:
                    streams[1].close()
                # As Sink: a kept-alive connection the sink had closed is retried once, fresh.
                if reused and attempt == 1 and not isinstance(err, TimeoutError):
                    continue
                raise SinkError(f"sink unreachable: {_problem(err)}") from None
            if reusable:
                free.append(streams)
            else:
                streams[1].close()
            if not 200 <= code < 300:
                raise SinkError(f"sink answered {code}")
            return

    async def _open(self) -> Streams:
        parts = self._parts
        tls = parts.scheme == "https"
        default = 443 if tls else 80
        return await asyncio.open_connection(
            parts.hostname or "", parts.port or default, ssl=tls or None, limit=_MAX_ANSWER
        )

    @staticmethod
    async def _exchange(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bool]:
        writer.write(request)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise ValueError("the sink's answer has no end of headers") from None
        code, length, close = _answer_head(head[:-4])
        if length is None:
            return code, False
        await reader.readexactly(length)
        return code, not close
