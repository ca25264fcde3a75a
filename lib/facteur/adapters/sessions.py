"""The Redis session store: what facteur dispatched, for whom, and how it ended.

Keys (all under `facteur:`):
- `session:<correlation_id>`: the DispatchResult as JSON, expiring after redis.session_ttl_seconds;
- `workflow:<namespace>/<name>`: the correlation ID of a submitted workflow (same TTL);
- `user:<user_id>:last`: that user's last dispatch, for redis.last_dispatch_ttl_seconds;
- `token:<correlation_id>`: the interaction token, expiring when Discord stops honouring it;
- `seen:<interaction_id>`, `replied:<interaction_id>` and the other claims: "busy" while a
  delivery holds the claim's lease, "done" once its effect happened (decisions/claims.py);
- `pending`: a sorted set of runs submitted but not yet reported, scored by when a tick last
  checked each one (a new run by its received_at: never checked), least recently checked first;
- `reported:<namespace>/<name>#<attempt>`: set once per attempt, by the one outcome reported;
- `ref:<ref>`: the correlation ID behind a button's opaque reference;
- `acted:<correlation_id>:<action>#<attempt>`: a claim (busy while the click acts, done once it
  did), so a double click acts once;
- `user:<user_id>:recent`: a sorted set of that user's started runs (correlation IDs scored by
  received_at), the newest RECENT_RUNS kept, for redis.session_ttl_seconds after the last, as
  the sessions it lists;
- `values:<guild_id>:<command>:<option>`: a sorted set of the values a guild used for an option
  (scored by when), the newest RECENT_VALUES kept, for redis.session_ttl_seconds after the last;
- `limit:<command>:user:<user_id>`, `limit:<command>:guild:<guild_id>`: a sliding-window log of
  the interactions a limit counted (decisions/limits.py), expiring with its window.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from facteur.decisions import ids
from facteur.decisions.claims import LEASE_SECONDS, SEEN, Claim
from facteur.decisions.journey import DispatchResult
from facteur.errors import SessionStoreError

if TYPE_CHECKING:
    import redis

PREFIX = "facteur:"
_PENDING = f"{PREFIX}pending"
_BUSY, _DONE = b"busy", b"done"
_DETAIL_LIMIT = 200
# How many of a user's runs are kept for /status and autocomplete (Discord shows 25 choices).
RECENT_RUNS = 25
# How many values are kept per guild, command and option; a longer value is not kept at all:
# an autocomplete choice carries at most 100 characters, and a cut value would be another one.
RECENT_VALUES = 200
VALUE_LIMIT = 100

# A sliding-window log in one round trip: forget what left the window; a member already
# counted (a redelivery) fits again; a new one is counted if there is room. Scores are
# milliseconds. Answers -1 when it fits, else when enough have left the window for one more
# (the oldest, unless the limit was lowered since they were counted).
_SPEND = """
local key, member = KEYS[1], ARGV[1]
local limit, window, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZSCORE', key, member) then
  return -1
end
local counted = redis.call('ZCARD', key)
if counted < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
  return -1
end
local last_out = redis.call('ZRANGE', key, counted - limit, counted - limit, 'WITHSCORES')
return tonumber(last_out[2]) + window
"""


@contextmanager
def _guard(what: str) -> Iterator[None]:
    import redis

    try:
        yield
    except redis.RedisError as err:
        problem = type(err).__name__
        # A connection's message names the host and port (or socket path), never the password.
        # Others can quote a command's arguments (a pipeline's ResponseError names the whole
        # SET, token included): their class alone.
        detail = str(err) if isinstance(err, redis.ConnectionError | redis.TimeoutError) else ""
        if detail:
            problem += f": {detail[:_DETAIL_LIMIT]}"
        raise SessionStoreError(f"{what}: {problem}") from None


class SessionStore:
    """Sessions on a real Redis; every key carries a TTL."""

    def __init__(
        self, client: redis.Redis, ttl_seconds: int, last_dispatch_ttl_seconds: int = 900
    ) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._last_ttl = last_dispatch_ttl_seconds
        # EVALSHA, with EVAL only when Redis does not hold the script yet (redis-py's Script).
        self._spend = client.register_script(_SPEND)

    @classmethod
    def from_url(
        cls,
        url: str,
        ttl_seconds: int,
        last_dispatch_ttl_seconds: int = 900,
        *,
        password: str | None = None,
    ) -> SessionStore:
        """One Redis by URL, or the primary behind Sentinels (redis+sentinel://); `password`
        wins over one in the URL (adapters/redis_client.py)."""
        # Only the functions that keep sessions pay for importing redis.
        from facteur.adapters.redis_client import connect

        return cls(connect(url, password=password), ttl_seconds, last_dispatch_ttl_seconds)

    def save(
        self,
        result: DispatchResult,
        token: str | None = None,
        token_expires_at: float | None = None,
        *,
        started: bool = False,
    ) -> None:
        """Store a session, index it by workflow (and, once `started`, as its user's last run),
        and keep its token while it lives."""
        with _guard("saving a session"):
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(_session_key(result.correlation_id), result.model_dump_json(), ex=self._ttl)
            if started:
                # The user's last run is the last one started: a later save (an outcome, a
                # click) of an older run must not take its place.
                last_key = f"{PREFIX}user:{result.user_id}:last"
                pipe.set(last_key, result.correlation_id, ex=self._last_ttl)
                # The list /status shows lives as long as the last run does, so both agree.
                recent = _recent_key(result.user_id)
                pipe.zadd(recent, {result.correlation_id: result.received_at})
                pipe.zremrangebyrank(recent, 0, -(RECENT_RUNS + 1))
                # As long as the runs it lists: /status and autocomplete show the week's.
                pipe.expire(recent, self._ttl)
            if result.workflow_name and result.namespace:
                key = _workflow_key(result.namespace, result.workflow_name)
                pipe.set(key, result.correlation_id, ex=self._ttl)
            if result.ref:
                pipe.set(f"{PREFIX}ref:{result.ref}", result.correlation_id, ex=self._ttl)
            if result.workflow_name and result.finished_at is None:
                # NX: saving a pending run again keeps when it was last checked; a run saved
                # after its report was made (a Retry) is pending again, never checked.
                pipe.zadd(_PENDING, {result.correlation_id: result.received_at}, nx=True)
            else:
                pipe.zrem(_PENDING, result.correlation_id)
            pipe.expire(_PENDING, self._ttl)
            seconds = int((token_expires_at or 0) - time.time())
            if token and seconds > 0:
                pipe.set(f"{PREFIX}token:{result.correlation_id}", token, ex=seconds)
            pipe.execute()

    def get(self, correlation_id: str) -> DispatchResult | None:
        with _guard("reading a session"):
            raw = self._redis.get(_session_key(correlation_id))
        return None if raw is None else DispatchResult.model_validate_json(raw)

    def last_for_user(self, user_id: str) -> DispatchResult | None:
        with _guard("reading a user's last dispatch"):
            correlation_id = self._redis.get(f"{PREFIX}user:{user_id}:last")
        return None if correlation_id is None else self.get(_text(correlation_id))

    def recent_for_user(self, user_id: str, limit: int = 10) -> list[DispatchResult]:
        """That user's started runs whose sessions Redis still holds, newest first."""
        if limit <= 0:
            return []  # ZREVRANGE 0 -1 would list them all
        with _guard("reading a user's recent runs"):
            found = self._redis.zrevrange(_recent_key(user_id), 0, limit - 1)
            raws = self._redis.mget([_session_key(_text(cid)) for cid in found]) if found else []
        return [DispatchResult.model_validate_json(raw) for raw in raws if raw is not None]

    def remember_values(
        self, guild_id: str, command: str, values: Mapping[str, str], at: float
    ) -> None:
        """Record each option's value as used `at` in this guild (autocomplete's `recent`);
        options, guilds or commands that could not name a key, and values empty or over
        VALUE_LIMIT characters, are not recorded."""
        kept = {
            key: value
            for option, value in values.items()
            if (key := _values_key(guild_id, command, option))
            and value.strip()
            and len(value) <= VALUE_LIMIT
        }
        if not kept:
            return
        with _guard("remembering option values"):
            pipe = self._redis.pipeline(transaction=True)
            for key, value in kept.items():
                pipe.zadd(key, {value: at})
                pipe.zremrangebyrank(key, 0, -(RECENT_VALUES + 1))
                pipe.expire(key, self._ttl)
            pipe.execute()

    def recent_values(self, guild_id: str, command: str, option: str, limit: int) -> list[str]:
        key = _values_key(guild_id, command, option)
        if key is None or limit <= 0:
            return []
        with _guard("reading recent option values"):
            return [_text(raw) for raw in self._redis.zrevrange(key, 0, limit - 1)]

    def spend(
        self, key: str, member: str, limit: int, window_seconds: float, now: float
    ) -> float | None:
        """Count `member` under `key` if `limit` allows in the sliding window, atomically (one
        Lua script); None when it fits, else the unix time there is room again (when the
        oldest counted leaves the window, unless the limit was lowered since)."""
        window = max(1, round(window_seconds * 1000))
        with _guard("spending a limit"):
            answer = self._spend(
                keys=[PREFIX + key], args=[member, limit, window, round(now * 1000)]
            )
        retry_at = int(answer)
        return None if retry_at < 0 else retry_at / 1000

    def find_workflow(self, namespace: str, name: str) -> DispatchResult | None:
        with _guard("finding a workflow's session"):
            correlation_id = self._redis.get(_workflow_key(namespace, name))
        return None if correlation_id is None else self.get(_text(correlation_id))

    def by_ref(self, ref: str) -> DispatchResult | None:
        """The session a button's reference points at."""
        with _guard("resolving a button reference"):
            correlation_id = self._redis.get(f"{PREFIX}ref:{ref}")
        return None if correlation_id is None else self.get(_text(correlation_id))

    def token(self, correlation_id: str) -> str | None:
        with _guard("reading a token"):
            raw = self._redis.get(f"{PREFIX}token:{correlation_id}")
        return None if raw is None else _text(raw)

    def take(self, kind: str, ident: str, lease_seconds: float = LEASE_SECONDS) -> Claim:
        """Take (kind, ident) in progress for a lease, unless it is done or held (decisions/
        claims.py). Atomic: of concurrent takers, one gets TAKEN."""
        key = f"{PREFIX}{kind}:{ident}"
        with _guard(f"claiming {kind}"):
            # Twice: the holder's lease may end between the SET and the GET.
            for _ in range(2):
                if self._redis.set(key, _BUSY, nx=True, px=max(1, int(lease_seconds * 1000))):
                    return Claim.TAKEN
                held = self._redis.get(key)
                if held is not None:
                    # Anything but a live lease is done, the "1" of claim_once included.
                    return Claim.BUSY if held == _BUSY else Claim.DONE
            return Claim.BUSY

    def finish(self, kind: str, ident: str) -> None:
        """Mark (kind, ident) done: its effect happened, and every later take is a duplicate."""
        with _guard(f"finishing {kind}"):
            self._redis.set(f"{PREFIX}{kind}:{ident}", _DONE, ex=self._ttl)

    def claim_once(self, kind: str, ident: str, ttl_seconds: int | None = None) -> bool:
        """True the first time (kind, ident) is claimed; False for every later claim. Atomic."""
        key = f"{PREFIX}{kind}:{ident}"
        with _guard(f"claiming {kind}"):
            return bool(self._redis.set(key, b"1", nx=True, ex=ttl_seconds or self._ttl))

    def release_once(self, kind: str, ident: str) -> None:
        """Forget a claim, so that a retry after a failure is handled again."""
        with _guard(f"releasing {kind}"):
            self._redis.delete(f"{PREFIX}{kind}:{ident}")

    def claim(self, interaction_id: str, ttl_seconds: int | None = None) -> bool:
        """True the first time an interaction is seen; False for every duplicate."""
        return self.claim_once(SEEN, interaction_id, ttl_seconds)

    def pending(self, limit: int) -> list[str]:
        """Correlation IDs of submitted runs not yet reported, least recently checked first."""
        with _guard("listing pending sessions"):
            return [_text(raw) for raw in self._redis.zrange(_PENDING, 0, limit - 1)]

    def checked(self, correlation_ids: list[str], at: float) -> None:
        """Mark pending runs as checked `at` (unix seconds), so the next ticks take the others
        first. Runs no longer pending stay so (ZADD XX); one command for the lot."""
        if not correlation_ids:
            return  # ZADD needs at least one member
        with _guard("marking pending sessions checked"):
            self._redis.zadd(_PENDING, dict.fromkeys(correlation_ids, at), xx=True)

    def forget_pending(self, correlation_id: str) -> None:
        with _guard("forgetting a pending session"):
            self._redis.zrem(_PENDING, correlation_id)

    def ping(self) -> bool:
        """Whether Redis answers (for readiness)."""
        try:
            with _guard("pinging"):
                return bool(self._redis.ping())
        except SessionStoreError:
            return False

    def release(self, interaction_id: str) -> None:
        """Forget a claim, so that a redelivery after a failure is handled again."""
        self.release_once(SEEN, interaction_id)


def _session_key(correlation_id: str) -> str:
    return f"{PREFIX}session:{correlation_id}"


def _recent_key(user_id: str) -> str:
    return f"{PREFIX}user:{user_id}:recent"


def values_key(guild_id: str, command: str, option: str) -> str | None:
    """The key of an option's recent values (without PREFIX); None unless every part is an ID
    or a name the catalog allows, so that no user text names a key."""
    if not (ids.is_snowflake(guild_id) and ids.COMMAND.fullmatch(command)):
        return None
    if not ids.COMMAND.fullmatch(option):
        return None
    return f"values:{guild_id}:{command}:{option}"


def _values_key(guild_id: str, command: str, option: str) -> str | None:
    key = values_key(guild_id, command, option)
    return None if key is None else PREFIX + key


def _workflow_key(namespace: str, name: str) -> str:
    return f"{PREFIX}workflow:{namespace}/{name}"


def _text(raw: object) -> str:
    # The client is built without decode_responses, so Redis answers bytes.
    return raw.decode() if isinstance(raw, bytes) else str(raw)
