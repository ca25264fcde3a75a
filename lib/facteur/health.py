"""Liveness and readiness. Liveness is free; readiness asks whether this function's own
dependencies answer, and reports only true or false per dependency, never configuration."""

from __future__ import annotations

import socket
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


def readiness(checks: Mapping[str, Check]) -> tuple[int, dict[str, object]]:
    results = {name: check() for name, check in checks.items()}
    ready = all(results.values())
    return (200 if ready else 503), {"ready": ready, "checks": results}
