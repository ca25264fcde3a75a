"""Liveness and readiness. Liveness is free; readiness asks whether this function's own
dependencies answer, and reports only true or false per dependency, never configuration."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

Check = Callable[[], bool]


def reachable(url: str | None, timeout: float = 0.5) -> Check:
    """A TCP connect to the URL's host and port: cheap, and needs no credentials."""

    def check() -> bool:
        if not url:
            return False
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme in ("https", "rediss") else 80)
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=timeout):
                return True
        except OSError:
            return False

    return check


class _Probe:
    """One dependency's last answer, and at most one check of it in flight."""

    def __init__(self, check: Check, clock: Callable[[], float]) -> None:
        self._check = check
        self._clock = clock
        self._lock = threading.Lock()
        self._result: bool | None = None
        self._at = float("-inf")

    def result(self, max_age: float) -> bool:
        if self._fresh(max_age):
            return bool(self._result)
        if not self._lock.acquire(blocking=self._result is None):
            # Another caller is probing: answer with what is known rather than queue behind it.
            return bool(self._result)
        try:
            if not self._fresh(max_age):  # unless a caller we waited for just refreshed it
                self._result = self._check()
                self._at = self._clock()
            return bool(self._result)
        finally:
            self._lock.release()

    def _fresh(self, max_age: float) -> bool:
        return self._result is not None and self._clock() - self._at < max_age


class Readiness:
    """GET /readyz: each dependency's answer, cached for `max_age` seconds.

    However many probes arrive at once (kubelet, Knative's queue-proxy, a flood), each
    dependency is checked by one caller at a time and at most once per `max_age`, so a hanging
    dependency costs one probe's timeout, not one per request.
    """

    def __init__(
        self,
        checks: Mapping[str, Check],
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probes = {name: _Probe(check, clock) for name, check in checks.items()}
        self._max_age = max_age

    def __call__(self) -> tuple[int, dict[str, object]]:
        results = {name: probe.result(self._max_age) for name, probe in self._probes.items()}
        ready = all(results.values())
        return (200 if ready else 503), {"ready": ready, "checks": results}
