from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from facteur.adapters.sessions import SessionStore
from tests.helpers.asgi_client import client_for
from tests.helpers.chain import chain  # noqa: F401 - a fixture shared by the flow tests
from tests.helpers.servers import Sink, redis_server


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the session (or FACTEUR_TEST_REDIS_URL if set)."""
    existing = os.environ.get("FACTEUR_TEST_REDIS_URL")
    if existing:
        yield existing
        return
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def sink() -> Iterator[Sink]:
    sink = Sink()
    yield sink
    sink.close()


@pytest.fixture
def load_function(monkeypatch: pytest.MonkeyPatch):
    """Load functions/<name>/main.py under functions-framework with the given environment."""

    def load(name: str, env: dict[str, str]):
        for key in list(os.environ):
            if key.startswith("FACTEUR_") or key == "K_SINK":
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return client_for(name)

    return load


@pytest.fixture
def store(redis_url: str) -> Iterator[SessionStore]:
    """A session store on an emptied Redis."""
    store = SessionStore.from_url(redis_url, ttl_seconds=600, last_dispatch_ttl_seconds=900)
    store._redis.flushdb()
    yield store
    store._redis.close()
