"""Posting a CloudEvent to K_SINK (the Broker in Knative, the next function locally)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from facteur import telemetry
from facteur.adapters.envelope import CloudEvent, encode, seal
from facteur.errors import SinkError

# One keep-alive connection per server thread: a new TCP connection per event cost more CPU
# than the rest of the command path. http.client rather than requests: it is already loaded.
_local = threading.local()


def deliver(url: str, event: CloudEvent, timeout: float) -> None:
    """POST one event; raise SinkError unless the sink answers 2xx within `timeout`."""
    headers, body = encode(event)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for attempt in (1, 2):
        connection, reused = _connection(parts.scheme, parts.netloc, timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read(65536)
        except (OSError, http.client.HTTPException) as err:
            _drop(parts.netloc)
            # A kept-alive connection the sink had already closed: retry once on a fresh one.
            # Harmless if the first attempt did arrive: receivers drop duplicates by event id.
            # Not after a timeout, which would spend the caller's deadline twice.
            if reused and attempt == 1 and not isinstance(err, TimeoutError):
                continue
            raise SinkError(f"sink unreachable: {type(err).__name__}") from None
        if response.will_close:
            _drop(parts.netloc)
        if not 200 <= response.status < 300:
            raise SinkError(f"sink answered {response.status}")
        return


def _connection(
    scheme: str, netloc: str, timeout: float
) -> tuple[http.client.HTTPConnection, bool]:
    pool: dict[str, http.client.HTTPConnection] = _local.__dict__.setdefault("pool", {})
    connection = pool.get(netloc)
    if connection is not None:
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection, True
    if scheme == "https":
        connection = http.client.HTTPSConnection(netloc, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(netloc, timeout=timeout)
    pool[netloc] = connection
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
        post: Callable[[str, CloudEvent, float], None] = deliver,
    ) -> None:
        self._url = url
        self._key = signing_key
        self._source = source
        self._timeout = timeout
        self._post = post

    def __call__(self, event_type: str, event_id: str, data: dict[str, Any]) -> None:
        event = seal(
            self._key, event_type=event_type, source=self._source, event_id=event_id, data=data
        )
        telemetry.carry(event)
        self._post(self._url, event, self._timeout)
