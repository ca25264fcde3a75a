"""The ASGI side of functions-framework (`--asgi`), for the two HTTP functions.

A waiting connection is a coroutine here, not a thread, so slow clients cannot stall the
function. What blocks (the hand-off to K_SINK, Redis, Argo, Discord) runs in a bounded pool of
threads, so the event loop only ever waits; quick CPU work (reading and verifying a request)
stays on the loop. Bodies are read against a size
limit and a deadline, and every failure is a short JSON answer, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from facteur.health import Check, Readiness

T = TypeVar("T")

log = logging.getLogger("facteur")

# A whole body must arrive within this, however slowly it trickles.
BODY_SECONDS = 10.0
# Threads for blocking work, per event loop: enough for hand-offs that wait on a slow sink (each
# bounded at events.sink_timeout_seconds) without a flood of them exhausting the machine.
BLOCKING_THREADS = 16
# One limiter per event loop (a worker runs one; tests start several).
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


class BodyTooSlow(Exception):
    """The body did not arrive within BODY_SECONDS."""


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(status, {"error": message}, headers)


def alive() -> Response:
    """The answer to a plain GET: a cheap liveness check."""
    return json_response(200, {"status": "ok"})


async def read_body(request: Request, limit: int, seconds: float = BODY_SECONDS) -> bytes | None:
    """The raw body, or None when it exceeds `limit` bytes (read no further than that).

    Raises BodyTooSlow when it has not all arrived within `seconds`.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow from None
    return b"".join(chunks)


async def blocking(work: Callable[..., T], *args: Any) -> T:
    """Run blocking `work` in the bounded thread pool and wait for it without blocking."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(BLOCKING_THREADS)
    return await anyio.to_thread.run_sync(work, *args, limiter=limiter)


def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[..., Any]:
    """Answer every failure with a short JSON body: size, deadline, a vanished client, a bug."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except BodyTooSlow:
            return error(408, "body not received in time", {"Connection": "close"})
        except ClientDisconnect:
            return error(400, "client went away")
        except Exception as exc:
            # Its class and message for the logs (every line is scrubbed of configured
            # secrets); the caller learns nothing of it.
            log.error("unhandled %s in %s", described(exc), request.url.path)
            return error(500, "internal error")

    return run


def described(exc: BaseException, limit: int = 500) -> str:
    """`ClassName: message` (the class alone when there is none), for a log line only. (The
    same as facteur.web.described: the two sides of functions-framework import nothing of
    each other.)"""
    text = str(exc)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Edge:
    """What an HTTP function answers besides its own POSTs: liveness and readiness."""

    def __init__(self, checks: Mapping[str, Check]) -> None:
        self._readiness = Readiness(checks)

    async def get(self, request: Request) -> Response:
        if request.url.path == "/readyz":
            status, body = await blocking(self._readiness)
            return json_response(status, body)
        return alive()  # /, /healthz and any other GET

    async def posted(self, request: Request, limit: int) -> bytes | Response:
        """A POST's body; for a GET, another method or an oversized body, the answer instead."""
        if request.method == "GET":
            return await self.get(request)
        if request.method != "POST":
            return method_not_allowed()
        body = await read_body(request, limit)
        return too_large(limit) if body is None else body


def too_large(limit: int) -> Response:
    # Closing the connection spares the server reading the rest of an oversized body.
    return error(413, f"body exceeds {limit} bytes", {"Connection": "close"})


def method_not_allowed() -> Response:
    return error(405, "method not allowed", {"Allow": "GET, POST"})
