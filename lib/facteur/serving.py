"""How the two HTTP functions are served: uvicorn (functions-framework's `--asgi`), with a
deadline for each request's headers.

uvicorn has no header timeout of its own: its keep-alive timer is reset by any byte, so a
client that trickles its headers would keep a connection forever. functions-framework's
launcher fixes uvicorn's options, so the deadline is installed through the worker class's
settings, before gunicorn forks its workers (main.py runs in the master first).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

# The request line and headers must all arrive within this. Discord sends them at once.
HEADER_SECONDS = 10.0


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers come too slowly."""

    header_seconds = HEADER_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._deadline is not None and self._reading_body_or_answering():
            self._deadline.cancel()
            self._deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request on this kept-alive connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()  # type: ignore[union-attr]
        self._deadline = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _reading_body_or_answering(self) -> bool:
        # A cycle exists from the moment a request's headers are complete.
        return self.cycle is not None and not self.cycle.response_complete

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self._reading_body_or_answering():
            self.transport.close()


def install_header_deadline() -> None:
    """Serve with HeaderDeadlineProtocol in every uvicorn worker gunicorn starts from here on."""
    try:
        from uvicorn_worker import UvicornWorker
    except ImportError:  # not served by gunicorn's uvicorn worker: nothing to configure
        return
    settings: dict[str, Any] = dict(UvicornWorker.CONFIG_KWARGS)
    settings["http"] = f"{__name__}:{HeaderDeadlineProtocol.__name__}"
    UvicornWorker.CONFIG_KWARGS = settings
