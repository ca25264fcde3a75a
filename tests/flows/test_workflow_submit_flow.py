"""workflow_submit's Submitter on the in-memory ports: one workflow and one reply per command,
however often the event arrives and whatever Argo, Redis or Discord does."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.claims import LEASE_SECONDS
from facteur.decisions.journey import Journey
from facteur.errors import DiscordError
from tests.helpers.chain import journey
from tests.helpers.fakes import (
    NAMESPACE,
    REVIEW,
    SERVICE_ACCOUNT,
    STATIC,
    TEMPLATE,
    UI,
    MemoryArgo,
    MemoryStore,
    World,
)
from tests.helpers.support import CHANNEL, GUILD, USER


@pytest.fixture
def world() -> World:
    return World()


def _requested(world: World, *options: dict[str, Any], **extra: Any) -> Journey:
    """A plan command as command_route hands it to workflow_submit."""
    trip = journey("plan", list(options) or None, **extra)
    assert world.router().handle(trip).result == "requested"
    return world.requested()[-1]


def _name(trip: Journey) -> str:
    return f"plan-{trip.call.interaction_id}"


def test_a_request_starts_one_workflow_records_it_and_edits_the_reply(world: World) -> None:
    trip = _requested(world)
    outcome = world.submitter().handle(trip)
    assert (outcome.status, outcome.result, outcome.workflow) == (200, "submitted", _name(trip))
    run = world.argo.run(NAMESPACE, _name(trip))
    assert (run.template, run.service_account, run.cluster_scope) == (
        TEMPLATE,
        SERVICE_ACCOUNT,
        False,
    )
    assert run.parameters == {**STATIC, "objective": "ship it", "action": "plan"}
    assert run.labels["facteur.dev/correlation-id"] == trip.correlation_id
    assert run.labels["facteur.dev/user-id"] == USER
    assert run.annotations["facteur.dev/guild-id"] == GUILD
    assert run.annotations["facteur.dev/channel-id"] == CHANNEL
    [edit] = world.discord.sent
    assert (edit.route, edit.token) == ("edit", trip.call.token)
    assert edit.content == f"Started `/plan` as workflow `{_name(trip)}`."
    assert edit.embed["url"] == f"{UI}/workflows/{NAMESPACE}/{_name(trip)}"
    session = world.store.find_workflow(NAMESPACE, _name(trip))
    assert session is not None
    assert (session.correlation_id, session.status, session.message_id) == (
        trip.correlation_id,
        "Submitted",
        edit.message_id,
    )
    # The Cancel button carries the session's opaque reference, never the workflow's name.
    assert edit.button_ids == [f"facteur:cancel:{session.ref}"]
    assert world.store.by_ref(session.ref or "") == session
    assert world.store.token(trip.correlation_id) == trip.call.token
    assert world.store.pending(10) == [trip.correlation_id]
    assert world.store.last_for_user(USER) == session


def test_a_redelivered_request_starts_nothing_and_replies_once(world: World) -> None:
    trip, submitter = _requested(world), world.submitter()
    results = [submitter.handle(trip).result for _ in range(3)]
    assert results == ["submitted", "already-submitted", "already-submitted"]
    assert len(world.argo.workflows) == 1
    assert len(world.discord.sent) == 1


def test_concurrent_copies_reply_once(world: World) -> None:
    trip, submitter = _requested(world), world.submitter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: submitter.handle(trip), range(8)))
    assert sorted(o.result for o in outcomes).count("submitted") == 1
    assert len(world.argo.workflows) == 1
    assert len(world.discord.sent) == 1


# -- Argo failing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "result", "said", "looked"),
    [
        # A create that timed out: Argo may have created it all the same, so facteur looks;
        # if not, Knative redelivers (503) and the user hears once that facteur keeps trying.
        ({"status": 503}, "retrying", render.still_trying("plan", render.ARGO_DOWN), True),
        ({"status": None}, "retrying", render.still_trying("plan", render.ARGO_DOWN), True),
        ({"status": None, "done": True}, "already-submitted", "Started `/plan`", True),
        ({"status": 503, "done": True}, "already-submitted", "Started `/plan`", True),
        # A refusal is final: no second look, and the user reads Argo's reason.
        ({"status": 403, "reason": "forbidden"}, "failed", render.argo_refused("forbidden"), False),
        ({"status": 422, "reason": "bad param"}, "failed", render.argo_refused("bad param"), False),
    ],
    ids=["503", "no-answer", "timed-out-but-created", "503-but-created", "403", "422"],
)
def test_argo_failures(
    world: World, script: dict[str, Any], result: str, said: str, looked: bool
) -> None:
    trip = _requested(world)
    world.argo.fail("submit", **script)
    outcome = world.submitter().handle(trip)
    assert (outcome.status, outcome.result) == (503 if result == "retrying" else 200, result)
    assert said in world.discord.last.content
    # And a run an earlier attempt created is read once more, for its button reference label.
    reads = int(looked) + int(result == "already-submitted")
    assert [op for op, _, _ in world.argo.calls].count("get_workflow") == reads
    started = result not in ("failed", "retrying")
    assert len(world.argo.workflows) == int(started)
    # Only a run that exists is recorded, so no tick or button ever chases a phantom.
    assert (world.store.find_workflow(NAMESPACE, _name(trip)) is not None) is started
    assert world.store.pending(10) == ([trip.correlation_id] if started else [])


def test_argo_down_for_the_second_look_too_is_retried_later(world: World) -> None:
    trip = _requested(world)
    world.argo.fail("*", status=None, times=None)
    assert world.submitter().handle(trip).status == 503
    assert world.discord.last.content == render.still_trying("plan", render.ARGO_DOWN)
    assert world.argo.actions == [("submit", _name(trip))]


def test_argo_down_for_a_while_is_said_once_and_started_when_it_returns(world: World) -> None:
    # Argo restarting (a rolling upgrade): every redelivery fails until it is back.
    trip, submitter = _requested(world), world.submitter()
    world.argo.fail("*", status=503, times=None)
    assert [submitter.handle(trip).status for _ in range(4)] == [503] * 4
    assert [sent.content for sent in world.discord.sent] == [
        render.still_trying("plan", render.ARGO_DOWN)
    ]
    world.argo.recover()
    assert submitter.handle(trip).result == "submitted"
    assert world.discord.last.content.startswith("Started `/plan`")
    assert len(world.argo.workflows) == 1
    # Nothing said "not started" on the way.
    assert not any("was not started" in sent.content for sent in world.discord.sent)


def test_a_submit_that_died_before_its_reply_is_taken_over() -> None:
    # A crash after the reply claim and before the reply: a redelivery must reply, not skip.
    now = [1000.0]
    world = World(store=MemoryStore(clock=lambda: now[0]))
    trip = _requested(world)
    assert world.store.take("replied", trip.call.interaction_id).value == "taken"  # then it died
    assert world.submitter().handle(trip).status == 503
    assert world.discord.sent == []
    now[0] += LEASE_SECONDS + 1
    assert world.submitter().handle(trip).result == "already-submitted"
    assert world.discord.last.content.startswith("Started `/plan`")
    assert world.submitter().handle(trip).result == "already-submitted"
    assert len(world.discord.sent) == 1


def test_a_missing_template_is_argos_refusal(world: World) -> None:
    world.argo = MemoryArgo(templates={"something-else"})
    trip = _requested(world)
    assert world.submitter().handle(trip).result == "failed"
    reason = f'workflowtemplates.argoproj.io "{TEMPLATE}" not found'
    assert world.discord.last.content == render.not_started("plan", render.argo_refused(reason))


def test_a_request_without_a_template_never_reaches_argo(world: World) -> None:
    trip = replace(_requested(world), workflow_template=None)
    outcome = world.submitter().handle(trip)
    assert (outcome.status, outcome.result) == (200, "failed")
    assert world.discord.last.content == render.not_started("plan", render.NO_TEMPLATE_NAMED)
    assert world.argo.calls == []


# -- Discord failing -----------------------------------------------------------------------------


def test_discord_down_asks_for_redelivery_and_the_redelivery_replies_once(world: World) -> None:
    trip, submitter = _requested(world), world.submitter()
    world.discord.down = True
    first = submitter.handle(trip)
    assert (first.status, first.result) == (503, "submitted")
    # The reply claim is released, so that the redelivery replies.
    assert not world.store.claimed("replied", trip.call.interaction_id)
    world.discord.down = False
    again = submitter.handle(trip)
    assert (again.status, again.result) == (200, "already-submitted")
    [edit] = world.discord.sent
    assert edit.content.startswith("Started `/plan`")
    session = world.store.find_workflow(NAMESPACE, _name(trip))
    assert session is not None and session.message_id == edit.message_id
    assert len(world.argo.workflows) == 1


def test_discord_refusing_a_failure_report_asks_for_redelivery(world: World) -> None:
    trip = _requested(world)
    world.argo.fail("submit", status=403)
    world.discord.fail("edit", DiscordError(400, "Invalid Form Body"))
    assert world.submitter().handle(trip).status == 503


@pytest.mark.parametrize(
    ("age", "reject"), [(900, False), (0, True)], ids=["token-expired", "token-rejected"]
)
def test_without_a_live_token_the_reply_is_posted_in_the_channel(
    world: World, age: int, reject: bool
) -> None:
    trip = _requested(world, received_at=time.time() - age)
    if reject:
        world.discord.reject_token()
    assert world.submitter().handle(trip).status == 200
    [post] = world.discord.sent
    assert (post.route, post.channel_id, post.mention_user_id) == ("channel", CHANNEL, USER)
    assert post.content.startswith("Started `/plan`")
    session = world.store.find_workflow(NAMESPACE, _name(trip))
    assert session is not None and session.message_id == post.message_id
    # The token is kept only while Discord honours it.
    assert (world.store.token(trip.correlation_id) is None) is (age > 0)


# -- Redis failing -------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", [None, ("save",)], ids=["redis-down", "save-fails"])
def test_a_run_that_cannot_be_recorded_is_still_announced(
    world: World, failing: tuple[str, ...] | None
) -> None:
    trip = _requested(world)
    if failing is None:
        world.store.down = True
    else:
        world.store.fail(*failing)
    outcome = world.submitter().handle(trip)
    assert (outcome.status, outcome.result) == (200, "submitted")
    [edit] = world.discord.sent
    assert edit.content.endswith(f"\n{render.NOT_RECORDED}")
    # No Cancel button: its reference would lead nowhere.
    assert edit.button_ids == []
    world.store.recover()
    assert world.store.find_workflow(NAMESPACE, _name(trip)) is None


def test_without_the_reply_claim_each_copy_replies(world: World) -> None:
    trip, submitter = _requested(world), world.submitter()
    world.store.fail("take")
    assert [submitter.handle(trip).result for _ in range(2)] == ["submitted", "already-submitted"]
    assert len(world.discord.sent) == 2
    assert len(world.argo.workflows) == 1


def test_copies_past_redis_after_the_token_expired_make_one_channel_message(
    world: World,
) -> None:
    trip, submitter = _requested(world, received_at=time.time() - 900), world.submitter()
    world.store.down = True  # no reply claim: every copy replies, in the channel
    assert [submitter.handle(trip).status for _ in range(3)] == [200] * 3
    # Discord took one message: the copies carried the same nonce (what is said is the same).
    [post] = world.discord.posts
    assert post.content.startswith("Started `/plan`") and post.nonce
    assert [kept.message_id for kept in world.discord.collapsed] == [post.message_id] * 2
    [key] = {reply.dedupe_key for reply in world.discord.replies}
    assert key and key.startswith(f"reply:{trip.call.interaction_id}:")


def test_a_different_reply_to_the_same_interaction_is_its_own_message(world: World) -> None:
    trip = _requested(world, received_at=time.time() - 900)
    world.store.down = True
    world.argo.fail("submit", status=403, reason="forbidden")
    assert world.submitter().handle(trip).result == "failed"
    assert world.submitter().handle(trip).result == "submitted"
    # "Not started", then "Started": not copies of one reply, so Discord keeps both.
    first, second = world.discord.posts
    assert first.nonce != second.nonce and world.discord.collapsed == []


def test_redis_and_discord_down_still_ask_for_redelivery(world: World) -> None:
    trip = _requested(world)
    world.store.down = world.discord.down = True
    assert world.submitter().handle(trip).status == 503
    assert world.store.calls[-1] == "release_once"


# -- the whole hop, route then submit ------------------------------------------------------------


def test_user_text_reaches_argo_as_one_intact_parameter(world: World) -> None:
    value = "a=b,c=d\naction=evil,last_correlation_id=x @everyone"
    trip = journey("plan", [{"name": "objective", "type": 3, "value": value}])
    assert [o.result for o in world.run(trip)] == ["requested", "submitted"]
    run = world.argo.run(NAMESPACE, _name(trip))
    assert run.parameters["objective"] == value
    assert run.parameters["action"] == "plan"
    assert "last_correlation_id" not in run.parameters


def test_review_names_the_last_correlation_in_its_reply(world: World) -> None:
    first = journey("plan")
    world.run(first)
    review = journey("review", REVIEW)
    world.run(review)
    run = world.argo.run(NAMESPACE, f"review-{review.call.interaction_id}")
    assert run.parameters["last_correlation_id"] == first.correlation_id
    assert "notes" not in run.parameters  # empty optional options are dropped
    assert f"Last request correlation: `{first.correlation_id}`" in world.discord.last.content


def test_a_command_with_a_thread_starts_one_from_the_runs_message(world: World) -> None:
    trip = replace(_requested(world), thread=True)
    assert world.submitter().handle(trip).result == "submitted"
    [(thread_id, thread)] = world.discord.threads.items()
    [started] = world.discord.sent
    assert (thread.message_id, thread.channel_id) == (started.message_id, CHANNEL)
    assert thread.name == f"/plan {_name(trip)}"
    session = world.store.find_workflow(NAMESPACE, _name(trip))
    assert session is not None and session.thread_id == thread_id


def test_without_a_thread_in_the_catalog_none_is_started(world: World) -> None:
    assert world.submitter().handle(_requested(world)).result == "submitted"
    assert world.discord.threads == {}
