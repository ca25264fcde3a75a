"""Who is calling status_callback: Argo's exit handler (a bearer token) or a PingSource tick (a
token in the event's data). Framework-neutral: headers are looked up case-insensitively, and
every secret is compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Protocol

PING_EVENT_TYPE = "dev.knative.sources.ping"


class Headers(Protocol):
    def get(self, key: str) -> str | None: ...

    def items(self) -> Iterable[tuple[str, str]]: ...


def bearer_matches(headers: Headers, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, supplied = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not supplied:
        return False
    return hmac.compare_digest(supplied.strip().encode("utf-8", "surrogatepass"), token.encode())


def is_cloudevent(headers: Headers) -> bool:
    """A CloudEvent in binary (ce-* headers) or structured mode."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return headers.get("ce-specversion") is not None or content_type == (
        "application/cloudevents+json"
    )


def tick_token_matches(headers: Headers, body: bytes, expected: str | None) -> bool:
    """A PingSource tick whose data carries the tick token."""
    if not expected:
        return False
    from cloudevents.http import from_http

    try:
        event = from_http(dict(headers.items()), body)
    except Exception:  # the SDK raises several types (and UnicodeDecodeError): all mean "no tick"
        return False
    data = event.get_data()
    supplied = data.get("token") if isinstance(data, dict) else None
    if event["type"] != PING_EVENT_TYPE or not isinstance(supplied, str):
        return False
    return hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"), expected.encode())
