"""The Redis client behind the session store: one server by URL, or the primary Sentinels name.

- `redis://`, `rediss://`, `unix://`: redis-py's own reading of the URL (`Redis.from_url`).
- `redis+sentinel://host:26379,.../<service_name>/<db>` (decisions/redis_url.py): a
  `redis.sentinel.Sentinel` over those Sentinels and its `master_for(service_name)`. Every new
  connection asks the Sentinels where the primary is, so after a failover the client follows the
  promoted replica; a connection still open to a demoted primary gets READONLY, which redis-py
  turns into a reconnection, so it asks again.

`password`, when given (redis.password), is sent instead of any password in the URL, to the
Sentinels too: the operator's RedisSentinel requires the same password as the RedisReplication
it watches when both name the same Secret (kubernetes/overlays/production-sentinel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from facteur.decisions.redis_url import SentinelURL, is_sentinel_url, parse_sentinel_url

if TYPE_CHECKING:
    import redis

SOCKET_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 2.0
HEALTH_CHECK_INTERVAL_SECONDS = 30
# A Sentinel answers from memory: a short timeout, and no retry of its own, moves on to the next
# Sentinel instead of waiting on one that is gone (the list is the retry).
SENTINEL_TIMEOUT_SECONDS = 1.0


def connect(url: str, *, password: str | None = None) -> redis.Redis:
    """A client for `url` (no I/O yet: it connects on first use)."""
    import redis

    options: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
    }
    if is_sentinel_url(url):
        return _primary(parse_sentinel_url(url), password, options)
    if password is None:
        return redis.Redis.from_url(url, **options)
    from redis.connection import parse_url

    # from_url lets the URL's password win over a keyword; the setting must win instead.
    pool = redis.ConnectionPool(**{**options, **parse_url(url), "password": password})
    return redis.Redis.from_pool(pool)


def _primary(address: SentinelURL, password: str | None, options: dict[str, Any]) -> redis.Redis:
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    auth: dict[str, Any] = {}
    if address.username:
        auth["username"] = address.username
    if password or address.password:
        auth["password"] = password or address.password
    sentinel = Sentinel(
        list(address.sentinels),
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
            "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
            "retry": Retry(NoBackoff(), 0),
            **auth,
        },
    )
    return sentinel.master_for(address.service_name, db=address.db, **options, **auth)
