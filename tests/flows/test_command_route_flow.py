"""command_route's Router on the in-memory ports: admission, duplicates, hand-off, built-ins,
and what the user is told when Redis, the sink or Discord fails."""

from __future__ import annotations

import time
from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.claims import LEASE_SECONDS
from facteur.decisions.journey import WORKFLOW_REQUESTED
from tests.helpers.chain import journey
from tests.helpers.fakes import (
    NAMESPACE,
    REVIEW,
    STATIC,
    TEMPLATE,
    UI,
    MemoryStore,
    Sent,
    World,
)
from tests.helpers.support import GUILD, ROLE_OTHER, ROLE_PLANNER, USER

OBJECTIVE = [{"name": "objective", "type": 3, "value": "ship it"}]


@pytest.fixture
def world() -> World:
    return World()


def _privately(world: World, trip: Any) -> Sent:
    """The one refusal said to the user alone: the deferred reply deleted, then an ephemeral
    follow-up on the same token."""
    deleted, said = world.discord.sent
    assert (deleted.route, deleted.token) == ("delete", trip.call.token)
    assert (said.route, said.token, said.message["flags"]) == ("follow_up", trip.call.token, 64)
    return said


def _status(value: str | None = None) -> Any:
    options = [] if value is None else [{"name": "workflow", "type": 3, "value": value}]
    return journey("status", options, roles=[])


# -- handing a command on ---------------------------------------------------------------------


def test_an_admitted_command_is_handed_to_workflow_submit(world: World) -> None:
    trip = journey("plan", OBJECTIVE)
    outcome = world.router().handle(trip)
    assert (outcome.status, outcome.result) == (200, "requested")
    [event] = world.sink.events
    assert (event.event_type, event.event_id) == (WORKFLOW_REQUESTED, trip.call.interaction_id)
    [onward] = world.requested()
    assert onward.call == trip.call
    assert onward.correlation_id == trip.correlation_id
    assert onward.workflow_template == TEMPLATE
    assert onward.parameters == {**STATIC, "objective": "ship it", "action": "plan"}
    # The reply is workflow_submit's to give; command_route stays silent on success.
    assert world.discord.sent == []
    assert world.store.claimed("seen", trip.call.interaction_id)


def test_a_redelivered_command_is_handed_on_once(world: World) -> None:
    trip, router = journey(), world.router()
    outcomes = [router.handle(trip).result for _ in range(3)]
    assert outcomes == ["requested", "duplicate", "duplicate"]
    assert len(world.sink.events) == 1
    assert world.discord.sent == []


@pytest.mark.parametrize(
    ("name", "options", "roles", "dm", "said"),
    [
        ("deploy", [], None, False, render.unknown_command("deploy")),
        ("plan", OBJECTIVE, [ROLE_OTHER], False, "You can't run `/plan`: caller holds none"),
        ("plan", OBJECTIVE, None, True, "You can't run `/plan`: this command can only be used"),
        ("plan", [{"name": "objective", "type": 4, "value": 1}], None, False, "`/plan` was not"),
        ("plan", [], None, False, "`/plan` was not sent:\n• `objective` is required"),
        ("implement", [{"name": "project", "type": 3, "value": "x"}], None, False, "`branch`"),
    ],
    ids=["unknown", "denied", "direct-message", "wrong-type", "missing", "missing-second"],
)
def test_refusals_tell_the_user_and_start_nothing(
    world: World, name: str, options: list, roles: list | None, dm: bool, said: str
) -> None:
    trip = journey(name, options, roles=roles, dm=dm)
    outcome = world.router().handle(trip)
    assert (outcome.status, outcome.result) == (200, "refused")
    assert said in _privately(world, trip).content
    assert world.discord.edits == []
    assert world.sink.events == []
    assert world.argo.calls == []
    # The refusal was said, so a redelivery of it is a duplicate: said once.
    assert world.router().handle(trip).result == "duplicate"
    assert len(world.discord.sent) == 2


def test_a_refusal_discord_cannot_hear_is_redelivered(world: World) -> None:
    trip, router = journey("plan", OBJECTIVE, roles=[ROLE_OTHER]), world.router()
    world.discord.down = True
    assert router.handle(trip).status == 503
    world.discord.down = False
    assert router.handle(trip).status == 200
    assert _privately(world, trip).content.startswith("You can't run `/plan`")


def test_a_refusal_after_the_tokens_lifetime_is_posted_in_the_channel(world: World) -> None:
    trip = journey("deploy", [], received_at=time.time() - 900)
    assert world.router().handle(trip).status == 200
    [post] = world.discord.sent
    assert (post.route, post.channel_id, post.mention_user_id) == (
        "channel",
        trip.call.channel_id,
        USER,
    )
    assert post.content == render.unknown_command("deploy")


# -- the sink, Redis and Discord failing ----------------------------------------------------------


def test_a_sink_failure_tells_the_user_nothing_started(world: World) -> None:
    world.sink.down = True
    trip = journey()
    outcome = world.router().handle(trip)
    assert (outcome.status, outcome.result) == (200, "failed")
    assert _privately(world, trip).content == render.not_accepted("plan")
    # The user was told, so the claim stays: a redelivery is a duplicate.
    assert world.router().handle(trip).result == "duplicate"


def test_when_discord_cannot_hear_either_the_claim_is_released(world: World) -> None:
    world.sink.down = world.discord.down = True
    trip, router = journey(), world.router()
    assert (router.handle(trip).status, world.store.claimed("seen", trip.call.interaction_id)) == (
        503,
        False,
    )
    world.sink.down = world.discord.down = False
    assert router.handle(trip).result == "requested"
    assert len(world.sink.events) == 1


def test_a_claim_that_cannot_be_released_is_taken_over_when_its_lease_ends() -> None:
    # Logged, not raised: the claim stays "in progress" until its lease ends, then a redelivery
    # takes over. (It used to stay claimed, and every redelivery was a silent duplicate.)
    now = [1000.0]
    world = World(store=MemoryStore(clock=lambda: now[0]))
    world.sink.down = world.discord.down = True
    world.store.fail("release_once")
    trip, router = journey(), world.router()
    assert router.handle(trip).status == 503
    world.store.recover()
    world.sink.down = world.discord.down = False
    assert (router.handle(trip).status, router.handle(trip).result) == (503, "in-progress")
    now[0] += LEASE_SECONDS + 1
    assert router.handle(trip).result == "requested"
    assert router.handle(trip).result == "duplicate"
    assert len(world.sink.events) == 1


def test_a_route_that_died_holding_its_claim_is_taken_over() -> None:
    # A crash after the claim and before the hand-off: the redelivery must not be a duplicate.
    now = [1000.0]
    world = World(store=MemoryStore(clock=lambda: now[0]))
    trip = journey()
    assert world.store.take("seen", trip.call.interaction_id).value == "taken"  # then it died
    assert world.router().handle(trip).status == 503
    now[0] += LEASE_SECONDS + 1
    assert world.router().handle(trip).result == "requested"
    assert len(world.sink.events) == 1


def test_redis_down_still_starts_exactly_one_workflow(world: World) -> None:
    world.store.down = True
    trip = journey()
    first, redelivered = world.run(trip), world.run(trip)
    assert [o.result for o in first] == ["requested", "submitted"]
    # No duplicate check at command_route; workflow_submit's 409 keeps it to one workflow.
    assert [o.result for o in redelivered] == ["requested", "already-submitted"]
    assert len(world.argo.workflows) == 1
    # Without the reply claim each copy replies; better twice than never.
    assert [e.content.startswith("Started `/plan`") for e in world.discord.edits] == [True, True]


@pytest.mark.parametrize("failing", [(), ("last_for_user",)])
def test_review_carries_the_last_correlation_when_it_can(
    world: World, failing: tuple[str, ...]
) -> None:
    first = journey("plan")
    world.run(first)
    world.store.failing.update(failing)
    world.router().handle(journey("review", REVIEW))
    onward = world.requested()[-1]
    expected = None if failing else first.correlation_id
    assert onward.last_correlation_id == expected
    assert onward.parameters.get("last_correlation_id") == expected


def test_a_command_without_a_template_is_not_started(world: World) -> None:
    trip = journey()
    outcome = world.router(default_template=None).handle(trip)
    assert (outcome.status, outcome.result) == (200, "failed")
    said = _privately(world, trip).content
    assert said == render.not_started("plan", render.NO_TEMPLATE_CONFIGURED)
    assert world.sink.events == []


# -- /status and /help --------------------------------------------------------------------------


def test_status_without_history(world: World) -> None:
    outcome = world.router().handle(_status())
    assert (outcome.status, outcome.result) == (200, "status")
    assert world.discord.last.content == render.NO_RECENT_RUNS
    assert world.sink.events == []


@pytest.mark.parametrize(
    ("argo", "phase"),
    [
        ("Running", "Running"),
        ("deleted", "Deleted"),
        ("error", "Submitted"),  # Argo cannot say: what facteur recorded
        ("none", "Submitted"),  # no Argo configured
    ],
)
def test_status_shows_the_last_run_and_its_phase(world: World, argo: str, phase: str) -> None:
    run = world.recorded_run()
    name = run.workflow_name or ""
    if argo == "deleted":
        world.argo.delete(NAMESPACE, name)
    elif argo == "error":
        world.argo.fail("get_workflow", status=503, times=2)
    router = world.router(argo=None) if argo == "none" else world.router()
    router.handle(_status())
    sent = world.discord.last
    # The list of the caller's recent runs (tests/flows/test_status_list.py), of one here.
    assert (sent.route, sent.content) == ("edit", render.RECENT_RUNS_TITLE)
    [(title, line)] = sent.fields.items()
    assert title == f"/plan · {name}"
    assert line.startswith(f"**{phase}** · requested <t:{int(run.received_at)}:R>")
    assert f"[Open in Argo]({UI}/workflows/{NAMESPACE}/{name})" in line
    # The same run by name: its card.
    router.handle(_status(name))
    card = world.discord.last
    assert (card.content, card.embed["title"]) == (render.NAMED_RUN_TITLE, name)
    assert card.embed["url"] == f"{UI}/workflows/{NAMESPACE}/{name}"
    assert card.fields["Phase"] == phase
    assert card.embed["footer"]["text"] == f"correlation {run.correlation_id}"
    # A run still going shows since when, kept current by Discord, never "Ran for: unknown".
    if phase in ("Running", "Submitted"):
        assert card.fields["Running since"].startswith("<t:")
        assert "Ran for" not in card.fields


def test_status_by_name_shows_that_run_and_its_duration(world: World) -> None:
    run, _ = world.recorded_run(), world.recorded_run()
    name = run.workflow_name or ""
    world.argo.set_phase(
        NAMESPACE,
        name,
        "Succeeded",
        started_at="2026-11-27T10:00:00Z",
        finished_at="2026-11-27T10:02:05Z",
    )
    world.router().handle(_status(name))
    sent = world.discord.last
    assert (sent.content, sent.embed["title"]) == (render.NAMED_RUN_TITLE, name)
    assert (sent.fields["Phase"], sent.fields["Ran for"]) == ("Succeeded", "2 min 05 s")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("plan-404", render.unknown_run("plan-404")),
        ("x,y=z <@&1> ../../", render.NOT_A_WORKFLOW_NAME),
        ("elsewhere", render.unknown_run("elsewhere")),  # another server's run
    ],
)
def test_status_of_a_run_facteur_cannot_show(world: World, value: str, said: str) -> None:
    world.recorded_run(guild_id="800000000000000002", workflow_name="elsewhere")
    assert world.router().handle(_status(value)).result == "status"
    assert world.discord.last.content == said
    assert world.argo.calls == []


@pytest.mark.parametrize("named", [None, "plan-1"])
def test_status_with_redis_down_says_so(world: World, named: str | None) -> None:
    world.store.down = True
    outcome = world.router().handle(_status(named))
    assert (outcome.status, outcome.result) == (200, "failed")
    assert world.discord.last.content == render.STORE_UNAVAILABLE


def test_status_discord_cannot_hear_is_redelivered_and_answered(world: World) -> None:
    trip, router = _status(), world.router()
    world.discord.fail("edit")
    assert router.handle(trip).status == 503
    assert router.handle(trip).status == 200
    assert [e.content for e in world.discord.edits] == [render.NO_RECENT_RUNS]


@pytest.mark.parametrize(
    ("roles", "listed", "hidden"),
    [
        ([ROLE_PLANNER], ["`/plan` `objective!` `project`", "`/status`", "`/help`"], []),
        ([ROLE_OTHER], ["`/status`", "`/help`"], ["/plan", "/implement", "/review"]),
    ],
)
def test_help_lists_only_what_the_caller_may_run(
    world: World, roles: list[str], listed: list[str], hidden: list[str]
) -> None:
    role_map = {"plan": [ROLE_PLANNER], "status": [GUILD], "help": [GUILD]}
    outcome = world.router(role_map=role_map).handle(journey("help", [], roles=roles))
    assert outcome.result == "help"
    said = world.discord.last.content
    assert all(line in said for line in listed)
    assert not any(line in said for line in hidden)
    assert "/implement" not in said


def test_no_path_lets_a_store_error_escape(world: World) -> None:
    world.store.down = True
    router = world.router()
    trips = [journey(), _status(), journey("review", REVIEW), journey("help", [], roles=[])]
    assert [router.handle(trip).status for trip in trips] == [200] * 4
    assert world.store.calls.count("take") == 4
