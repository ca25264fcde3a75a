"""uvicorn as facteur serves it: a connection whose headers trickle in is closed at the deadline,
while prompt requests, kept-alive ones included, are answered as usual."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from facteur.serving import HeaderDeadlineProtocol
from tests.helpers.servers import free_port


class QuickDeadline(HeaderDeadlineProtocol):
    header_seconds = 0.3


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def port() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=QuickDeadline, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(5)


def _answered(sock: socket.socket) -> bool:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"ok"):  # the headers and the body may come in two segments
        chunk = sock.recv(1024)
        if not chunk:
            return False
        answer += chunk
    return answer.startswith(b"HTTP/1.1 200")


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False


def test_trickled_headers_are_cut_off_at_the_deadline(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):  # a byte at a time: each one would reset uvicorn's own timer
            time.sleep(0.05)
            sock.sendall(b"X")
        assert _closed_within(sock, 2.0)


def test_prompt_requests_on_a_kept_alive_connection_are_answered(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(3):
            assert _answered(sock)
            time.sleep(0.2)  # under the deadline each time: it starts again per request


def test_an_idle_kept_alive_connection_is_closed_at_the_deadline(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _answered(sock)
        sock.sendall(b"GET / HT")  # the next request stalls
        assert _closed_within(sock, 2.0)
