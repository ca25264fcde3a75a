"""The Redis store's recent runs, recent option values and limits, on a real redis-server; and
the in-memory store answering the same calls the same way."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from facteur.adapters.sessions import RECENT_RUNS, RECENT_VALUES, SessionStore
from facteur.decisions.journey import DispatchResult
from tests.helpers.fakes import MemoryStore
from tests.helpers.support import GUILD, USER

SESSION_TTL, LAST_TTL = 600, 300


@pytest.fixture
def store(redis_url: str) -> Iterator[SessionStore]:
    store = SessionStore.from_url(
        redis_url, ttl_seconds=SESSION_TTL, last_dispatch_ttl_seconds=LAST_TTL
    )
    store._redis.flushdb()
    yield store
    store._redis.close()


def _run(n: int, **extra: Any) -> DispatchResult:
    fields: dict[str, Any] = {
        "correlation_id": f"{n:04d}" + uuid.uuid4().hex[4:],
        "interaction_id": str(10**17 + n),
        "command": "plan",
        "user_id": USER,
        "guild_id": GUILD,
        "received_at": 1_000_000.0 + n,
    }
    return DispatchResult(**(fields | extra))


# -- a user's recent runs ----------------------------------------------------------------------


def test_recent_runs_are_the_started_ones_newest_first_and_bounded(store: SessionStore) -> None:
    runs = [_run(n) for n in range(RECENT_RUNS + 5)]
    for run in runs:
        store.save(run, started=True)
    store.save(_run(999, received_at=2_000_000.0))  # recorded, never started: not a run of theirs
    assert store.recent_for_user(USER) == runs[::-1][:10]
    assert store.recent_for_user(USER, 3) == runs[::-1][:3]
    # Only the newest RECENT_RUNS are kept.
    assert store.recent_for_user(USER, 100) == runs[::-1][:RECENT_RUNS]
    assert store._redis.zcard(f"facteur:user:{USER}:recent") == RECENT_RUNS
    assert store.recent_for_user(USER, 0) == []
    assert store.recent_for_user("800000000000000998") == []
    # The list lives as long as the sessions it lists, longer than the last dispatch's note.
    ttl = store._redis.ttl(f"facteur:user:{USER}:recent")
    assert LAST_TTL < ttl <= SESSION_TTL
    assert abs(ttl - store._redis.ttl(f"facteur:session:{runs[-1].correlation_id}")) <= 1


def test_a_later_save_keeps_a_run_in_its_place(store: SessionStore) -> None:
    first, second = _run(1), _run(2)
    store.save(first, started=True)
    store.save(second, started=True)
    ended = first.model_copy(update={"status": "Succeeded", "finished_at": 5.0})
    store.save(ended)  # its outcome, reported later
    assert store.recent_for_user(USER) == [second, ended]


def test_runs_whose_sessions_are_gone_are_left_out(store: SessionStore) -> None:
    kept, lost = _run(1), _run(2)
    store.save(kept, started=True)
    store.save(lost, started=True)
    store._redis.delete(f"facteur:session:{lost.correlation_id}")
    assert store.recent_for_user(USER) == [kept]


# -- a guild's recent option values ------------------------------------------------------------


def test_recent_values_are_bounded_and_most_recent_first(store: SessionStore) -> None:
    for n in range(RECENT_VALUES + 20):
        store.remember_values(GUILD, "plan", {"project": f"p{n:03d}"}, 1000.0 + n)
    newest = [f"p{n:03d}" for n in range(RECENT_VALUES + 19, 19, -1)]
    assert store.recent_values(GUILD, "plan", "project", 1000) == newest
    assert store.recent_values(GUILD, "plan", "project", 3) == newest[:3]
    assert store.recent_values(GUILD, "plan", "project", 0) == []
    # Used again, a value comes first; nothing is listed twice.
    store.remember_values(GUILD, "plan", {"project": "p100"}, 5000.0)
    assert store.recent_values(GUILD, "plan", "project", 2) == ["p100", newest[0]]
    assert store.recent_values(GUILD, "plan", "project", 1000).count("p100") == 1
    key = f"facteur:values:{GUILD}:plan:project"
    assert 0 < store._redis.ttl(key) <= SESSION_TTL


def test_values_are_kept_per_guild_command_and_option(store: SessionStore) -> None:
    other = "800000000000000002"
    store.remember_values(GUILD, "plan", {"project": "facteur", "objective": "ship"}, 1.0)
    store.remember_values(other, "plan", {"project": "elsewhere"}, 2.0)
    store.remember_values(GUILD, "review", {"project": "reviewed"}, 3.0)
    assert store.recent_values(GUILD, "plan", "project", 5) == ["facteur"]
    assert store.recent_values(GUILD, "plan", "objective", 5) == ["ship"]
    assert store.recent_values(other, "plan", "project", 5) == ["elsewhere"]
    assert store.recent_values(GUILD, "review", "project", 5) == ["reviewed"]


def test_what_cannot_be_offered_back_is_not_kept(store: SessionStore) -> None:
    store.remember_values(
        GUILD, "plan", {"project": "x" * 101, "notes": " ", "ticket": "", "ok": "x" * 100}, 1.0
    )
    assert store.recent_values(GUILD, "plan", "project", 5) == []
    assert store.recent_values(GUILD, "plan", "ok", 5) == ["x" * 100]
    # No user text names a key: such parts are neither written nor read.
    store.remember_values("not-a-guild", "plan", {"project": "a"}, 1.0)
    store.remember_values(GUILD, "Plan:*", {"project": "a"}, 1.0)
    store.remember_values(GUILD, "plan", {"pro:ject": "a"}, 1.0)
    assert store.recent_values("not-a-guild", "plan", "project", 5) == []
    assert sorted(store._redis.keys("facteur:values:*")) == [
        f"facteur:values:{GUILD}:plan:ok".encode()
    ]


# -- limits ------------------------------------------------------------------------------------


def test_spend_counts_up_to_the_limit_then_says_when_again(store: SessionStore) -> None:
    key = "limit:plan:user:1"
    assert [store.spend(key, f"i{n}", 3, 600, 1000.0 + n) for n in range(3)] == [None] * 3
    # Full: again when the oldest counted leaves the window.
    assert store.spend(key, "i3", 3, 600, 1010.0) == 1600.0
    assert 0 < store._redis.pttl(f"facteur:{key}") <= 600_000
    # A refusal is not counted: the window is as full as before, no fuller.
    assert store._redis.zcard(f"facteur:{key}") == 3


def test_a_lowered_limit_says_when_there_is_room_again(store: SessionStore) -> None:
    key = "limit:plan:user:1"
    for n in range(4):
        assert store.spend(key, f"i{n}", 4, 60, 1000.0 + n) is None
    # Now two per minute: two of the four must leave first, i0 then i1.
    assert store.spend(key, "i4", 2, 60, 1010.0) == 1062.0
    assert store.spend(key, "i4", 2, 60, 1062.0) is None


def test_a_redelivery_is_counted_once(store: SessionStore) -> None:
    key = "limit:plan:user:1"
    assert store.spend(key, "i1", 2, 60, 1000.0) is None
    assert store.spend(key, "i1", 2, 60, 1001.0) is None  # the same interaction, again
    assert store.spend(key, "i2", 2, 60, 1002.0) is None
    assert store.spend(key, "i1", 2, 60, 1003.0) is None  # still its one place
    assert store.spend(key, "i3", 2, 60, 1004.0) == 1060.0


def test_the_window_slides(store: SessionStore) -> None:
    key = "limit:plan:guild:1"
    assert store.spend(key, "a", 2, 60, 1000.0) is None
    assert store.spend(key, "b", 2, 60, 1030.0) is None
    assert store.spend(key, "c", 2, 60, 1059.999) == 1060.0
    # `a` has left the window exactly 60 s after it counted, `b` not yet.
    assert store.spend(key, "c", 2, 60, 1060.0) is None
    assert store.spend(key, "d", 2, 60, 1061.0) == 1090.0
    assert store.spend(key, "d", 2, 60, 1090.0) is None


def test_limits_hold_under_50_concurrent_commands_from_one_user(store: SessionStore) -> None:
    """Cooldowns hold under 50 concurrent commands from one user: exactly the limit pass."""
    limit, start = 7, threading.Barrier(50)
    now = time.time()

    def spend(n: int) -> float | None:
        start.wait()
        return store.spend(f"limit:plan:user:{USER}", f"interaction-{n}", limit, 600, now)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(spend, range(50)))
    assert answers.count(None) == limit
    assert {answer for answer in answers if answer is not None} == {round(now * 1000) / 1000 + 600}
    assert store._redis.zcard(f"facteur:limit:plan:user:{USER}") == limit


# -- the in-memory store answers as Redis does -------------------------------------------------


def _transcript(store: Any) -> list[Any]:
    seen: list[Any] = []
    say = seen.append
    runs = [_run(n) for n in range(RECENT_RUNS + 2)]
    for run in runs:
        store.save(run, started=True)
    store.save(_run(100, received_at=runs[3].received_at))  # a tie, never started
    say([r.correlation_id[:4] for r in store.recent_for_user(USER)])
    say([r.correlation_id[:4] for r in store.recent_for_user(USER, 100)])
    say(store.recent_for_user(USER, 0))
    for n, value in enumerate(["b", "a", "c", "a", "x" * 101, " ", "d"]):
        store.remember_values(GUILD, "plan", {"project": value, "bad:name": value}, 10.0 + n)
    store.remember_values(GUILD, "plan", {"project": "tie-z", "ticket": "T-1"}, 16.0)
    say(store.recent_values(GUILD, "plan", "project", 10))
    say(store.recent_values(GUILD, "plan", "project", 2))
    say(store.recent_values(GUILD, "plan", "ticket", 10))
    say(store.recent_values("nope", "plan", "project", 10))
    key = "limit:plan:user:2"
    say([store.spend(key, m, 2, 60, t) for m, t in [("a", 1.0), ("b", 30.0), ("a", 31.0)]])
    say([store.spend(key, m, 2, 60, t) for m, t in [("c", 59.0), ("c", 61.0), ("d", 61.5)]])
    say([store.spend(key, m, 2, 0.25, t) for m, t in [("e", 200.0), ("f", 200.1), ("g", 200.2)]])
    say(store.spend(key, "h", 1, 0.25, 200.3))
    say([store.spend("limit:x", m, 3, 10, 300.0 + n) for n, m in enumerate("abc")])
    say([store.spend("limit:x", "d", 1, 10, 305.0), store.spend("limit:x", "d", 2, 10, 305.0)])
    return seen


def test_the_memory_store_answers_as_redis_does(store: SessionStore) -> None:
    memory = MemoryStore(ttl_seconds=SESSION_TTL, last_dispatch_ttl_seconds=LAST_TTL)
    assert _transcript(memory) == _transcript(store)


def test_memory_sorted_sets_expire_with_their_clock() -> None:
    now = [1000.0]
    store = MemoryStore(ttl_seconds=60, last_dispatch_ttl_seconds=30, clock=lambda: now[0])
    store.save(_run(1), started=True)
    store.remember_values(GUILD, "plan", {"project": "facteur"}, now[0])
    assert store.spend("limit:plan:user:1", "a", 1, 10, now[0]) is None
    now[0] += 11
    live = store.keys()
    assert "limit:plan:user:1" not in live
    now[0] += 20
    assert store.recent_values(GUILD, "plan", "project", 5) == ["facteur"]
    now[0] += 30
    assert store.recent_for_user(USER) == []
    assert store.recent_values(GUILD, "plan", "project", 5) == []
    assert store.keys() == set()
