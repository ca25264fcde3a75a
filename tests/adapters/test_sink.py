"""The hand-off to K_SINK: keep-alive reuse, stale connections, errors and timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facteur.adapters.envelope import seal
from facteur.adapters.sink import AsyncSink, deliver
from facteur.decisions.journey import COMMAND_RECEIVED
from facteur.errors import SinkError
from tests.helpers.support import EVENT_KEY


class KeepAliveSink:
    """An HTTP/1.1 sink that counts connections and can close idle ones or answer late."""

    def __init__(self) -> None:
        self.connections = 0
        self.events = 0
        self.status = 202
        self.delay = 0.0
        self.close_after_each = False
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                sink.connections += 1

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                sink.events += 1
                time.sleep(sink.delay)
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if sink.close_after_each:
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[KeepAliveSink]:
    sink = KeepAliveSink()
    yield sink
    sink.close()


Hand = Callable[[str, int, float], None]


@pytest.fixture(params=["thread", "loop"])
def hand(request: pytest.FixtureRequest) -> Iterator[Hand]:
    """One hand-off: Sink's, blocking a thread, or AsyncSink's, awaited on one event loop."""
    if request.param == "thread":
        yield lambda url, n, timeout: deliver(url, _event(n), timeout)
        return
    loop = asyncio.new_event_loop()
    sinks: dict[tuple[str, float], AsyncSink] = {}

    def on_the_loop(url: str, n: int, timeout: float) -> None:
        sink = sinks.setdefault((url, timeout), AsyncSink(url, EVENT_KEY, "/t", timeout))
        loop.run_until_complete(sink(COMMAND_RECEIVED, str(n), {}))

    yield on_the_loop
    loop.close()


def _event(n: int = 1):
    return seal(EVENT_KEY, event_type=COMMAND_RECEIVED, source="/t", event_id=str(n), data={})


def test_one_connection_serves_many_events(sink: KeepAliveSink, hand: Hand) -> None:
    for n in range(5):
        hand(sink.url, n, 2)
    assert sink.events == 5
    assert sink.connections == 1


def test_a_connection_the_sink_closed_is_replaced(sink: KeepAliveSink, hand: Hand) -> None:
    sink.close_after_each = True
    for n in range(3):
        hand(sink.url, n, 2)
    assert sink.events == 3


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_error_answers_raise(sink: KeepAliveSink, status: int, hand: Hand) -> None:
    sink.status = status
    with pytest.raises(SinkError, match=str(status)):
        hand(sink.url, 1, 2)


def test_a_slow_sink_times_out_once_not_twice(sink: KeepAliveSink, hand: Hand) -> None:
    hand(sink.url, 1, 2)  # a kept-alive connection now exists
    sink.delay = 1.0
    started = time.monotonic()
    with pytest.raises(SinkError, match="unreachable"):
        hand(sink.url, 2, 0.3)
    assert time.monotonic() - started < 0.9


def test_nothing_listening(sink: KeepAliveSink, hand: Hand) -> None:
    with pytest.raises(SinkError, match="unreachable"):
        hand("http://127.0.0.1:9/", 1, 1)


class ScriptedSink:
    """A raw TCP sink that reads each request and writes back the bytes it is told to."""

    def __init__(self, answers: list[bytes], *, trickle: bool = False) -> None:
        self.answers, self.trickle = list(answers), trickle
        self.connections = 0
        self.requests: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/events?x=1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while self.answers:
                    request = _read_request(conn)
                    if request is None:
                        break
                    self.requests.append(request)
                    answer = self.answers.pop(0)
                    for piece in (
                        [answer[i : i + 1] for i in range(len(answer))]
                        if self.trickle
                        else [answer]
                    ):
                        conn.sendall(piece)
                    if b"close" in answer.lower() or b"content-length" not in answer.lower():
                        break

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> ScriptedSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head)[1])
    while len(body) < length:
        body += conn.recv(65536)
    return data


OK = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "reused"),
    [
        (OK, True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", True),
        (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", False),
        (b"HTTP/1.0 202 Accepted\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
        (b"HTTP/1.1 202 Accepted\r\n\r\n", False),
    ],
)
def test_the_answer_decides_whether_the_connection_is_kept(
    answer: bytes, reused: bool, hand: Hand
) -> None:
    with ScriptedSink([answer, OK]) as sink:
        hand(sink.url, 1, 2)
        hand(sink.url, 2, 2)
        assert sink.connections == (1 if reused else 2)
        # One request line with the path and query, the Host header, and the exact length.
        first = sink.requests[0]
        assert first.startswith(b"POST /events?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"content-type: application/cloudevents+json" in first


def test_a_password_in_k_sink_never_goes_out(hand: Hand) -> None:
    with ScriptedSink([OK]) as sink:
        hand(sink.url.replace("http://", "http://facteur:s3cret-sink-pass@"), 1, 2)
        [sent] = sink.requests
        assert b"s3cret-sink-pass" not in sent
        assert b"\r\nHost: 127.0.0.1:" in sent


def test_an_answer_that_trickles_in_is_read_whole(hand: Hand) -> None:
    answer = b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello"
    with ScriptedSink([answer, OK], trickle=True) as sink:
        hand(sink.url, 1, 2)
        hand(sink.url, 2, 2)
        assert sink.connections == 1


@pytest.mark.parametrize(
    "answer",
    [b"garbage\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"SMTP 220 hello\r\n\r\n", b"HTTP/1.1 202"],
)
def test_a_malformed_answer_is_a_sink_error(answer: bytes, hand: Hand) -> None:
    with ScriptedSink([answer]) as sink, pytest.raises(SinkError):
        hand(sink.url, 1, 1)


@settings(max_examples=60, deadline=None)
@given(answer=st.binary(max_size=300))
def test_whatever_the_sink_answers_is_success_or_a_sink_error(answer: bytes) -> None:
    with ScriptedSink([answer]) as sink, contextlib.suppress(SinkError):
        deliver(sink.url, _event(), timeout=0.5)
