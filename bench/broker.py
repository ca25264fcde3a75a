"""A loopback stand-in for a Knative Broker and one Trigger, between two functions."""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.fakes import KeepAliveHandler, serve_http
from facteur.decisions import delivery

# Hop-by-hop headers: the Broker's own connection's business, not the event's.
_HOP_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}
)


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
    connect or answer, `retries` times with exponential backoff from `backoff` seconds: the
    Triggers' own budget (lib/facteur/decisions/delivery.py) unless told otherwise. Then it
    sends the event to `dead_letter` (command_route's /dead-letter path), as the Triggers'
    deadLetterSink does, once. `copies=2` delivers every event twice, the second copy
    `copy_delay` seconds later (0: concurrently), as at-least-once delivery may.

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
        retries: int = delivery.RETRIES,
        backoff: float = delivery.BACKOFF_DELAY_SECONDS,
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
        self.dead_letter = ""  # where those go, when set
        self.dead_letter_answers: Counter[str] = Counter()
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
        for worker in self._workers:
            worker.start()
        try:
            with serve_http(_BrokerHandler, self) as url:
                yield url
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            for worker in self._workers:
                worker.join(timeout=self.timeout + 1)

    def accept(self, headers: dict[str, str], body: bytes) -> int:
        """Take one event from the sender; the status to answer it with."""
        event_id = _event_id(headers, body)
        with self._cond:
            self.received += 1
        if not self.synchronous:
            for copy in range(self.copies):
                self._schedule(event_id, headers, body, copy, copy * self.copy_delay)
            return 202
        for copy in range(1, self.copies):
            self._schedule(event_id, headers, body, copy, copy * self.copy_delay)
        connection = _Connection(self.target, self.timeout)
        try:
            status = self._forward(connection, headers, body)
        finally:
            connection.close()
        return status if isinstance(status, int) else 502

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
                    given_up = False
                    with self._cond:
                        if retry and item.attempt <= self.retries:
                            self.redeliveries += 1
                            item.due = time.monotonic() + self.backoff * 2 ** (item.attempt - 1)
                            item.attempt += 1
                            heapq.heappush(self._heap, item)
                            self._cond.notify()
                        elif retry:
                            self.dead_letters.append(item.event_id)
                            given_up = True
                    if given_up and self.dead_letter:
                        self._dead_letter(item)
                finally:
                    with self._cond:
                        self._in_flight -= 1
        finally:
            connection.close()

    def _dead_letter(self, item: _Delivery) -> None:
        connection = _Connection(self.dead_letter, self.timeout)
        try:
            status = connection.post(item.headers, item.body)
        finally:
            connection.close()
        with self._cond:
            self.dead_letter_answers[str(status)] += 1

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
                "dead_letter_answers": dict(self.dead_letter_answers),
            }


class _BrokerHandler(KeepAliveHandler):
    owner: Broker

    def do_POST(self) -> None:
        body = self.body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        self.answer(self.owner.accept(headers, body), {})


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
