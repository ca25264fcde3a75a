"""The hand-off to K_SINK: keep-alive reuse, stale connections, errors and timeouts."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from facteur.adapters.envelope import seal
from facteur.adapters.sink import deliver
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


def _event(n: int = 1):
    return seal(EVENT_KEY, event_type=COMMAND_RECEIVED, source="/t", event_id=str(n), data={})


def test_one_connection_serves_many_events(sink: KeepAliveSink) -> None:
    for n in range(5):
        deliver(sink.url, _event(n), timeout=2)
    assert sink.events == 5
    assert sink.connections == 1


def test_a_connection_the_sink_closed_is_replaced(sink: KeepAliveSink) -> None:
    sink.close_after_each = True
    for n in range(3):
        deliver(sink.url, _event(n), timeout=2)
    assert sink.events == 3


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_error_answers_raise(sink: KeepAliveSink, status: int) -> None:
    sink.status = status
    with pytest.raises(SinkError, match=str(status)):
        deliver(sink.url, _event(), timeout=2)


def test_a_slow_sink_times_out_once_not_twice(sink: KeepAliveSink) -> None:
    deliver(sink.url, _event(1), timeout=2)  # a kept-alive connection now exists
    sink.delay = 1.0
    started = time.monotonic()
    with pytest.raises(SinkError, match="unreachable"):
        deliver(sink.url, _event(2), timeout=0.3)
    assert time.monotonic() - started < 0.9


def test_nothing_listening(sink: KeepAliveSink) -> None:
    with pytest.raises(SinkError, match="unreachable"):
        deliver("http://127.0.0.1:9/", _event(), timeout=1)
