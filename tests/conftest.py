from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .servers import redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session (or FACTEUR_TEST_REDIS_URL if set)."""
    existing = os.environ.get("FACTEUR_TEST_REDIS_URL")
    if existing:
        yield existing
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url
