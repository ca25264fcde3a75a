"""The in-memory fakes hold to the ports: the same signatures, and, for the session store, the
same answers as the Redis store to the same calls. A flow test on a fake that drifted from
the real adapter would prove nothing."""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from facteur.adapters.sessions import SessionStore
from facteur.adapters.signature import Verifier
from facteur.decisions.journey import Delivered, DispatchResult, ReplyTo
from facteur.decisions.render import text
from facteur.decisions.workflow import WorkflowRequest
from facteur.errors import ArgoError, DiscordError, SessionStoreError, SinkError
from facteur.flows import ports
from tests.helpers.fakes import (
    ARGO_METHODS,
    STORE_METHODS,
    MemoryArgo,
    MemoryDiscord,
    MemorySink,
    MemoryStore,
)
from tests.helpers.support import CHANNEL, USER

# -- signatures ----------------------------------------------------------------------------------


def _members(protocol: type) -> list[str]:
    names = [name for name, value in vars(protocol).items() if callable(value)]
    return [name for name in names if not name.startswith("_") or name == "__call__"]


@pytest.mark.parametrize(
    ("protocol", "fake"),
    [
        (ports.SessionStore, MemoryStore),
        (ports.Argo, MemoryArgo),
        (ports.Discord, MemoryDiscord),
        (ports.Deliver, MemorySink),
        (ports.Verifier, Verifier),
    ],
    ids=lambda item: item.__name__,
)
def test_each_fake_has_its_ports_signatures(protocol: type, fake: type) -> None:
    members = _members(protocol)
    assert members, protocol
    for name in members:
        expected = inspect.signature(getattr(protocol, name))
        assert inspect.signature(getattr(fake, name)) == expected, f"{fake.__name__}.{name}"


def test_the_failure_switches_know_every_method() -> None:
    assert set(_members(ports.SessionStore)) == STORE_METHODS
    assert set(_members(ports.Argo)) == ARGO_METHODS
    for wrong in [("clam",), ()]:
        with pytest.raises(ValueError, match="no method"):
            MemoryStore().fail(*wrong)
    with pytest.raises(ValueError, match="no operation"):
        MemoryArgo().fail("create")


# -- the store answers as Redis does ---------------------------------------------------------------


def _result(**extra: Any) -> DispatchResult:
    fields: dict[str, Any] = {
        "correlation_id": uuid.uuid4().hex,
        "interaction_id": str(10**17 + uuid.uuid4().int % 10**17),
        "command": "plan",
        "user_id": USER,
        "channel_id": CHANNEL,
        "received_at": 1000.0,
    }
    return DispatchResult(**(fields | extra))


def _transcript(store: Any) -> list[Any]:
    """The same calls on either store; what each answered, with IDs made comparable."""
    seen: list[Any] = []
    say = seen.append
    # Fixed IDs: Redis orders equal scores by member, so "c-tie" comes before "d-early".
    table: list[tuple[str, dict[str, Any]]] = [
        ("a-done", {"finished_at": 1.0, "ref": "RefDone123"}),
        ("b-late", {"received_at": 3000.0}),
        ("d-early", {"received_at": 2000.0, "ref": "Ref3abcde"}),
        ("c-tie", {"received_at": 2000.0}),
    ]
    done, late, early, tie = (
        _result(correlation_id=cid, workflow_name=f"plan-{n}", namespace="agents", **extra)
        for n, (cid, extra) in enumerate(table, 1)
    )
    loose = _result(correlation_id="e-loose", workflow_name="plan-5")  # pending, not findable
    bare = _result()  # no workflow at all: never pending
    for result in (done, late, early, tie, loose, bare):
        store.save(result, "tok-" + result.correlation_id, time.time() + 60)
    ids = {r.correlation_id: n for n, r in enumerate((done, late, early, tie, loose, bare))}
    name = lambda found: None if found is None else ids[found.correlation_id]  # noqa: E731
    say([ids[c] for c in store.pending(10)])
    say([ids[c] for c in store.pending(2)])
    say([ids[c] for c in store.pending(0)])
    say(name(store.last_for_user(USER)))
    say(name(store.find_workflow("agents", "plan-3")))
    say(name(store.find_workflow("agents", "plan-5")))
    say(name(store.find_workflow("other", "plan-3")))
    say(name(store.by_ref("Ref3abcde")))
    say(name(store.by_ref("RefDone123")))
    say(store.get(early.correlation_id) == early)
    say(store.get("nobody"))
    say(store.token(late.correlation_id) == "tok-" + late.correlation_id)
    store.save(done, "dead", time.time() - 1)
    store.save(bare, "short", time.time() + 0.5)  # under a second: not worth keeping
    say((store.token("nobody"), store.token(bare.correlation_id) == "tok-" + bare.correlation_id))
    say(store.token(done.correlation_id) == "tok-" + done.correlation_id)  # the first one stays
    store.save(early.model_copy(update={"finished_at": 5.0}))
    store.forget_pending(tie.correlation_id)
    say([ids[c] for c in store.pending(10)])
    # Ticks rotate: a run checked goes behind the others (ZADD XX: one no longer pending, or
    # never, stays out); saved again while pending, it keeps its mark (NX).
    store.checked([loose.correlation_id, tie.correlation_id, "nobody"], 4000.0)
    store.checked([], 1.0)
    say([ids[c] for c in store.pending(10)])
    store.save(loose)
    say([ids[c] for c in store.pending(10)])
    # A finished run saved unfinished again (a Retry) is pending again, never checked.
    store.save(early.model_copy(update={"finished_at": None, "attempt": 2}))
    store.checked([late.correlation_id], 4000.0)  # ties with `loose`: by member
    say([ids[c] for c in store.pending(10)])
    say([ids[c] for c in store.pending(1)])
    say([store.claim("900"), store.claim("900"), store.claim("901", ttl_seconds=5)])
    store.release("900")
    say(
        [store.claim("900"), store.claim_once("replied", "900"), store.claim_once("replied", "900")]
    )
    store.release_once("replied", "900")
    say(store.claim_once("replied", "900"))
    say([store.take("reported", "agents/plan-2#1") for _ in range(2)])
    say(store.take("reported", "agents/plan-2#2"))
    store.release_once("reported", "agents/plan-2#1")
    say(store.take("reported", "agents/plan-2#1"))
    # A click's action: taken, held, released after a failure, taken again and done.
    acted = f"{late.correlation_id}:cancel#1"
    say([store.take("acted", acted), store.take("acted", acted)])
    store.release_once("acted", acted)
    say(store.take("acted", acted))
    store.finish("acted", acted)
    say([store.take("acted", acted), store.take("acted", f"{late.correlation_id}:retry#1")])
    # Leases: taken, held, done; released; and expired, then taken over.
    say([store.take("sent", "a"), store.take("sent", "a")])
    store.finish("sent", "a")
    say([store.take("sent", "a"), store.claim_once("sent", "a")])
    store.release_once("sent", "a")
    say(store.take("sent", "a", 0.05))
    time.sleep(0.1)
    say([store.take("sent", "a"), store.take("replied", "900")])
    say(store.ping())
    return seen


@pytest.fixture
def redis_store(store: SessionStore) -> SessionStore:
    return store  # conftest's store: a real Redis, emptied


def test_the_memory_store_answers_as_redis_does(redis_store: SessionStore) -> None:
    memory = MemoryStore(ttl_seconds=600, last_dispatch_ttl_seconds=900)
    assert _transcript(memory) == _transcript(redis_store)


def test_memory_keys_expire_with_their_clock() -> None:
    now = [1000.0]
    store = MemoryStore(ttl_seconds=60, last_dispatch_ttl_seconds=30, clock=lambda: now[0])
    result = _result(workflow_name="plan-1", namespace="agents")
    store.save(result, "tok", now[0] + 10)
    assert store.claim("1", ttl_seconds=5)
    now[0] += 11
    assert store.token(result.correlation_id) is None
    assert store.claim("1", ttl_seconds=5)  # the first claim's five seconds are over
    now[0] += 20
    assert store.last_for_user(USER) is None
    assert store.find_workflow("agents", "plan-1") == result
    now[0] += 30
    assert store.get(result.correlation_id) is None
    assert store.pending(10) == []
    assert store.keys() == set()


@pytest.mark.parametrize(
    ("fail", "call", "raises"),
    [
        (None, lambda s: s.claim("1"), True),  # down: everything fails
        (("save",), lambda s: s.save(_result()), True),
        (("save",), lambda s: s.claim("1"), False),
        (("claim_once",), lambda s: s.claim("1"), False),  # each switch is one method's
        (("claim",), lambda s: s.claim("1"), True),
        (None, lambda s: s.ping(), False),
    ],
)
def test_store_failure_switches(
    fail: tuple[str, ...] | None, call: Callable[[MemoryStore], Any], raises: bool
) -> None:
    store = MemoryStore()
    if fail is None:
        store.down = True
    else:
        store.fail(*fail)
    if raises:
        with pytest.raises(SessionStoreError):
            call(store)
    else:
        call(store)
    assert store.ping() is (fail is not None and "ping" not in fail)
    store.recover()
    assert store.ping() and store.claim("2")


# -- Argo, Discord and the sink ---------------------------------------------------------------


def test_argo_failures_are_scripted_and_classified() -> None:
    argo = MemoryArgo()
    argo.fail("get_workflow", status=503)
    argo.fail("get_workflow", status=403)
    argo.fail("stop", status=None, times=None)
    errors = []
    for _ in range(2):
        with pytest.raises(ArgoError) as err:
            argo.get_workflow("agents", "x")
        errors.append((err.value.status, err.value.transient))
    assert errors == [(503, True), (403, False)]
    assert argo.get_workflow("agents", "x") is None
    argo.add_workflow("agents", "x")
    for _ in range(3):
        with pytest.raises(ArgoError, match="no answer"):
            argo.stop("agents", "x")
    assert argo.run("agents", "x").shutdown is None
    assert argo.actions == [("stop", "x")] * 3


def test_argo_refuses_what_the_server_refuses() -> None:
    argo = MemoryArgo(templates={"facteur-dispatch"})
    first = argo.submit(WorkflowRequest("agents", "a", "facteur-dispatch"))
    again = argo.submit(WorkflowRequest("agents", "a", "facteur-dispatch"))
    assert (first.created, again.created, len(argo.workflows)) == (True, False, 1)
    with pytest.raises(ArgoError) as err:
        argo.submit(WorkflowRequest("agents", "b", "gone"))
    assert (err.value.status, err.value.transient) == (404, False)
    with pytest.raises(ArgoError, match="phase None"):
        argo.retry("agents", "a")
    with pytest.raises(ArgoError, match="not found"):
        argo.terminate("agents", "nope")


@pytest.mark.parametrize(
    ("token", "age", "script", "bot", "via"),
    [
        ("tok", 0, None, True, "interaction"),
        ("tok", 900, None, True, "channel"),  # the token's lifetime is over
        (None, 0, None, True, "channel"),
        ("tok", 0, "reject", True, "channel"),  # Discord refused the token
        ("tok", 900, None, False, DiscordError),  # no bot token to post with
        ("tok", 0, "down", True, DiscordError),
    ],
)
def test_reply_falls_back_as_the_client_does(
    token: str | None, age: int, script: str | None, bot: bool, via: Any
) -> None:
    discord = MemoryDiscord(bot_token=bot)
    if script == "reject":
        discord.reject_token()
    discord.down = script == "down"
    to = ReplyTo(token, time.time() - age + 840, CHANNEL, USER)
    reply = lambda: discord.reply(to, text("hello"))  # noqa: E731
    if isinstance(via, type):
        with pytest.raises(via):
            reply()
        assert discord.replies[-1].delivered is None
        return
    delivered = reply()
    assert delivered.via == via
    [sent] = discord.sent
    assert sent.route == ("edit" if via == "interaction" else "channel")
    assert delivered == Delivered(via=via, message_id=sent.message_id)
    assert discord.replies[-1].mention_user_id == USER


def test_discord_keeps_one_channel_message_per_nonce_as_its_api_does() -> None:
    from facteur.adapters.discord import DiscordClient
    from tests.helpers.discord_fake import DISCORD_API, DiscordFake
    from tests.helpers.support import APP

    def transcript(discord: Any) -> list[int]:
        keys = ["run#1", "run#1", "run#2", None, None, "run#1"]
        sent = [discord.reply(ReplyTo(None, 0, CHANNEL, USER, key), text("x")) for key in keys]
        first: dict[str | None, int] = {}  # each message ID by the order it first appeared
        return [first.setdefault(delivered.message_id, len(first)) for delivered in sent]

    with DiscordFake.running() as api:
        client = DiscordClient(api_base_url=DISCORD_API, application_id=APP, bot_token="b" * 30)
        real = transcript(client)
        assert len(api.channel_messages) == 4
    memory = MemoryDiscord()
    assert transcript(memory) == real == [0, 0, 1, 2, 3, 0]
    assert (len(memory.posts), len(memory.collapsed)) == (4, 2)


def test_discord_refuses_messages_that_could_ping() -> None:
    discord = MemoryDiscord()
    for message in ({"content": "hi"}, {"content": "hi", "allowed_mentions": {"parse": ["users"]}}):
        with pytest.raises(AssertionError, match="allowed_mentions"):
            discord.follow_up("tok", message)
    assert discord.sent == []
    # Edits keep the original reply's ID; every follow-up is a new message.
    ids = [discord.edit_original("tok", text(str(n)))["id"] for n in range(2)]
    ids += [discord.follow_up("tok", text(str(n)))["id"] for n in range(2)]
    assert ids[0] == ids[1] and len(set(ids)) == 3


def test_the_sink_keeps_events_as_they_would_travel() -> None:
    sink = MemorySink()
    data: dict[str, Any] = {"a": (1, 2)}
    sink("type", "1", data)
    data["a"] = ()
    assert sink.events[0].data == {"a": [1, 2]}
    sink.down = True
    with pytest.raises(SinkError):
        sink("type", "2", {})
    assert len(sink.events) == 1
