"""Liveness and readiness. Liveness is free; readiness asks whether this function's own
dependencies answer, and reports only true or false per dependency, never configuration."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

Check = Callable[[], bool]

log = logging.getLogger("facteur.health")


def reachable(url: str | None, timeout: float = 0.5, *, tls: bool | str | None = None) -> Check:
    """A TCP connect to the URL's host and port: cheap, and needs no credentials.

    With `tls` (a CA bundle's path, False to trust anything, True for the system's store) and an
    https URL, the TLS handshake too; given the client's own trust, a certificate the client
    would refuse makes the check false. Nothing is sent after the handshake.
    """
    contexts: list[ssl.SSLContext] = []  # built on first use, then kept
    failing = False

    def check() -> bool:
        nonlocal failing
        if not url:
            return False
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme in ("https", "rediss") else 80)
        handshake = tls is not None and parts.scheme == "https"
        try:
            with socket.create_connection((parts.hostname or "", port), timeout=timeout) as sock:
                if handshake:
                    if not contexts:
                        contexts.append(_tls_context(tls))
                    with contexts[0].wrap_socket(sock, server_hostname=parts.hostname):
                        pass
        except (OSError, ValueError) as err:
            # ssl's errors are OSErrors; a certificate refused is worth one line, not one a probe.
            detail = getattr(err, "verify_message", None) or getattr(err, "reason", None)
            if handshake and detail and not failing:
                log.warning(
                    "readiness: TLS handshake with %s:%d failed: %s", parts.hostname, port, detail
                )
            failing = bool(handshake and detail)
            return False
        failing = False
        return True

    return check


def _tls_context(verify: bool | str | None) -> ssl.SSLContext:
    """Trust a CA bundle's path, nothing (False), or the system's store (True)."""
    import ssl

    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


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
