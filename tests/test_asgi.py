"""The ASGI edge: bodies cut off at the limit while they arrive, stalled bodies timed out, and
every failure a short JSON answer."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from starlette.requests import Request

from facteur import asgi


def _request(chunks: list[bytes], *, stall: bool = False, length: int | None = None) -> Request:
    """A POST whose body arrives in `chunks`, then (with `stall`) never finishes."""
    pulled: list[bytes] = []
    headers = [] if length is None else [(b"content-length", str(length).encode())]

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            pulled.append(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or stall}
        await asyncio.sleep(3600)  # a client that stopped sending
        raise AssertionError("unreachable")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8080),
        "scheme": "http",
    }
    request = Request(scope, receive)
    request.state.pulled = pulled
    return request


def test_a_body_is_read_whole_within_the_limit() -> None:
    request = _request([b"ab", b"cd", b"e"])
    assert asyncio.run(asgi.read_body(request, limit=5)) == b"abcde"


def test_a_body_over_the_limit_is_cut_off_while_it_arrives() -> None:
    request = _request([b"x" * 400] * 10)
    assert asyncio.run(asgi.read_body(request, limit=1000)) is None
    # It stopped reading at the chunk that crossed the limit, not at the end of the body.
    assert len(request.state.pulled) == 3


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    request = _request([b"x" * 10], length=5000)
    assert asyncio.run(asgi.read_body(request, limit=1000)) is None
    assert request.state.pulled == []


def test_a_stalled_body_times_out() -> None:
    request = _request([b'{"type":'], stall=True)
    with pytest.raises(asgi.BodyTooSlow):
        asyncio.run(asgi.read_body(request, limit=1000, seconds=0.2))


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        (asgi.BodyTooSlow(), 408, "body not received in time"),
        (RuntimeError("secret detail"), 500, "internal error"),
    ],
)
def test_failures_are_short_json_answers(failure: Exception, status: int, message: str) -> None:
    @asgi.guarded
    async def handler(request: Request) -> Any:
        raise failure

    response = asyncio.run(handler(_request([])))
    assert response.status_code == status
    assert json.loads(response.body) == {"error": message}
    assert b"secret detail" not in response.body


def test_blocking_work_runs_off_the_event_loop() -> None:
    released = threading.Event()

    async def main() -> bool:
        # The work waits for the loop to release it: on the loop itself it would wait in vain.
        pending = asyncio.ensure_future(asgi.blocking(released.wait, 5))
        await asyncio.sleep(0)
        released.set()
        return await pending

    assert asyncio.run(main()) is True
