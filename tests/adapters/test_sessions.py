from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from facteur.adapters.sessions import SessionStore
from facteur.decisions.journey import DispatchResult
from tests.helpers.support import USER


@pytest.fixture
def store(redis_url: str) -> Iterator[SessionStore]:
    store = SessionStore.from_url(redis_url, ttl_seconds=60, last_dispatch_ttl_seconds=30)
    store._redis.flushdb()
    yield store
    store._redis.close()


def _result(**extra) -> DispatchResult:
    fields = {
        "correlation_id": uuid.uuid4().hex,
        "interaction_id": str(900000000000000000 + uuid.uuid4().int % 10**9),
        "command": "plan",
        "user_id": USER,
        "guild_id": "800000000000000001",
        "channel_id": "800000000000000200",
    }
    fields.update(extra)
    return DispatchResult(**fields)


def test_save_and_get_roundtrip(store: SessionStore) -> None:
    result = _result()
    store.save(result)
    assert store.get(result.correlation_id) == result
    assert store.get("unknown") is None


def test_every_key_expires(store: SessionStore) -> None:
    result = _result(workflow_name="plan-abc", namespace="agents")
    store.save(result, "tok", time.time() + 30)
    store.claim(result.interaction_id)
    keys = store._redis.keys("facteur:*")
    assert keys
    for key in keys:
        assert 0 < store._redis.ttl(key) <= 60, key


def test_last_for_user_follows_the_latest_dispatch(store: SessionStore) -> None:
    user = "800000000000000999"
    first, second = _result(user_id=user), _result(user_id=user)
    store.save(first, started=True)
    store.save(second, started=True)
    assert store.last_for_user(user) == second
    assert store.last_for_user("800000000000000998") is None
    # The first one ending (a later save of it) does not make it the last run again.
    store.save(first.model_copy(update={"status": "Succeeded", "finished_at": 1.0}))
    assert store.last_for_user(user) == second


def test_find_workflow(store: SessionStore) -> None:
    result = _result(workflow_name="review-xyz", namespace="agents")
    store.save(result)
    assert store.find_workflow("agents", "review-xyz") == result
    assert store.find_workflow("other", "review-xyz") is None


def test_token_lives_only_while_discord_honours_it(store: SessionStore) -> None:
    live, dead = _result(), _result()
    store.save(live, "live-token", time.time() + 100)
    store.save(dead, "dead-token", time.time() - 1)
    assert store.token(live.correlation_id) == "live-token"
    assert 0 < store._redis.ttl(f"facteur:token:{live.correlation_id}") <= 100
    assert store.token(dead.correlation_id) is None


def test_claim_is_atomic_under_concurrency(store: SessionStore) -> None:
    interaction = str(uuid.uuid4().int % 10**18)
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda _: store.claim(interaction), range(64)))
    assert outcomes.count(True) == 1


def test_claim_ttl(store: SessionStore) -> None:
    interaction = str(uuid.uuid4().int % 10**18)
    assert store.claim(interaction, ttl_seconds=5)
    assert 0 < store._redis.ttl(f"facteur:seen:{interaction}") <= 5
    assert not store.claim(interaction)


def test_unknown_fields_from_newer_versions_are_ignored(store: SessionStore) -> None:
    result = _result()
    store._redis.set(
        f"facteur:session:{result.correlation_id}",
        result.model_dump_json()[:-1] + ',"added_later":1}',
        ex=60,
    )
    assert store.get(result.correlation_id) == result


def test_unreachable_redis_raises_a_store_error() -> None:
    from facteur.errors import SessionStoreError
    from tests.helpers.servers import free_port

    store = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", ttl_seconds=60)
    with pytest.raises(SessionStoreError, match="claiming seen"):
        store.claim("1")
    with pytest.raises(SessionStoreError):
        store.last_for_user(USER)
    with pytest.raises(SessionStoreError):
        store.save(_result())


def test_release_lets_a_redelivery_through(store: SessionStore) -> None:
    interaction = str(uuid.uuid4().int % 10**18)
    assert store.claim(interaction)
    store.release(interaction)
    assert store.claim(interaction)


def test_a_lease_is_taken_by_one_of_many_at_once(store: SessionStore) -> None:
    import threading

    from facteur.decisions.claims import Claim

    results: list[Claim] = []
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        results.append(store.take("seen", "1200000000000000001"))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.value for r in results) == ["busy"] * 7 + ["taken"]
    store.finish("seen", "1200000000000000001")
    assert store.take("seen", "1200000000000000001") is Claim.DONE


def test_marking_runs_checked_needs_redis_only_when_there_are_some() -> None:
    from facteur.errors import SessionStoreError
    from tests.helpers.servers import free_port

    store = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", ttl_seconds=60)
    store.checked([], 1.0)  # a tick that checked nothing sends nothing
    with pytest.raises(SessionStoreError, match="marking pending sessions checked"):
        store.checked(["c1"], 1.0)


def test_ticks_rotate_on_real_redis(store: SessionStore) -> None:
    runs = [_result(workflow_name=f"plan-{n}", received_at=1000.0 + n) for n in range(3)]
    for run in runs:
        store.save(run)
    a, b, c = (run.correlation_id for run in runs)
    assert store.pending(2) == [a, b]
    store.checked([b], 5000.0)
    store.checked([a, "gone"], 6000.0)  # one no longer pending is not brought back
    assert store.pending(10) == [c, b, a]
    store.save(runs[0])  # saved again while pending: keeps its mark
    assert store.pending(10) == [c, b, a]
    assert store._redis.zscore("facteur:pending", a) == 6000.0
