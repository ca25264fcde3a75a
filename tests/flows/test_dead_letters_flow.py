"""command_route's dead-letter path on the in-memory ports: what Knative gave up on is told to
its user once, only when nothing else told them, and never contradicts Argo."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED, Journey
from facteur.flows.dead_letters import DeadLetters
from tests.helpers.chain import journey
from tests.helpers.fakes import NAMESPACE, UI, World, click


@pytest.fixture
def world() -> World:
    return World()


def _dead_letters(world: World, **overrides: Any) -> DeadLetters:
    options: dict[str, Any] = {
        "store": world.store,
        "discord": world.discord,
        "token_ttl_seconds": 840,
        "ui_url": UI,
        "argo": world.argo,
        "namespace": NAMESPACE,
    }
    return DeadLetters(**(options | overrides))


def _requested(world: World) -> Journey:
    trip = journey()
    assert world.router().handle(trip).result == "requested"
    return world.requested()[-1]


def test_argo_down_past_the_budget_tells_the_user_once_that_nothing_started(world: World) -> None:
    trip, submitter = _requested(world), world.submitter()
    world.argo.fail("*", status=503, times=None)
    assert [submitter.handle(trip).status for _ in range(7)] == [503] * 7  # the whole budget
    dead = _dead_letters(world)
    outcomes = [dead.command(trip, WORKFLOW_REQUESTED).result for _ in range(2)]
    assert outcomes == ["told", "already-answered"]
    said = [sent.content for sent in world.discord.sent]
    assert said == [
        render.still_trying("plan", render.ARGO_DOWN),
        render.gave_up("plan", render.ARGO_DOWN),
    ]
    assert world.argo.workflows == {}


def test_a_command_that_was_answered_is_not_told_again(world: World) -> None:
    trip = _requested(world)
    assert world.submitter().handle(trip).result == "submitted"
    assert _dead_letters(world).command(trip, WORKFLOW_REQUESTED).result == "already-answered"
    assert len(world.discord.sent) == 1


def test_a_workflow_argo_created_after_all_is_announced_as_started(world: World) -> None:
    # The create happened but every answer was lost, and so was the reply.
    trip = _requested(world)
    world.argo.add_workflow(NAMESPACE, f"plan-{trip.call.interaction_id}", "Running")
    assert _dead_letters(world).command(trip, WORKFLOW_REQUESTED).result == "told"
    [sent] = world.discord.sent
    assert sent.content.startswith("Started `/plan` as workflow")
    assert "was not started" not in sent.content


def test_a_command_route_never_handled_is_told_once(world: World) -> None:
    trip = journey()
    dead = _dead_letters(world)
    assert dead.command(trip, COMMAND_RECEIVED).result == "told"
    assert dead.command(trip, COMMAND_RECEIVED).result == "already-answered"
    assert [sent.content for sent in world.discord.sent] == [
        render.gave_up("plan", render.FACTEUR_DOWN)
    ]
    # And a late delivery of the command itself is a duplicate: the user was told.
    assert world.router().handle(trip).result == "duplicate"


def test_a_delivery_still_holding_the_claim_is_not_contradicted(world: World) -> None:
    trip = journey()
    assert world.store.take("seen", trip.call.interaction_id).value == "taken"
    assert _dead_letters(world).command(trip, COMMAND_RECEIVED).result == "in-progress"
    assert world.discord.sent == []


def test_discord_down_answers_503_and_keeps_nothing(world: World) -> None:
    trip, dead = journey(), _dead_letters(world)
    world.discord.down = True
    assert dead.command(trip, COMMAND_RECEIVED).status == 503
    world.discord.down = False
    assert dead.command(trip, COMMAND_RECEIVED).result == "told"


def test_redis_down_still_tells_the_user(world: World) -> None:
    world.store.down = True
    assert _dead_letters(world).command(journey(), COMMAND_RECEIVED).result == "told"
    assert len(world.discord.sent) == 1


def test_a_dead_lettered_click_is_answered_once(world: World) -> None:
    run = world.recorded_run()
    pressed = click("cancel", run.ref)
    dead = _dead_letters(world)
    assert [dead.click(pressed).result for _ in range(2)] == ["told", "already-answered"]
    assert world.discord.whispers == [render.click_gave_up("cancel")]
    assert world.argo.actions == []
