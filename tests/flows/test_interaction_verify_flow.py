"""interaction_verify's Ingress on the in-memory sink, with the real Verifier: authenticate,
answer at once, refuse early, and hand off exactly what command_route will read."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.interactions import click_from_event, read_click, read_invocation
from facteur.decisions.journey import COMMAND_RECEIVED, COMPONENT_CLICKED, Journey
from tests.helpers.fakes import World, check_message, click
from tests.helpers.support import ROLE_OTHER, command, encode, sign

NOW = 1_800_000_000.0


@pytest.fixture
def world() -> World:
    return World()


def _post(world: World, payload: Any, *, headers: dict[str, str] | None = None) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    signed = sign(body, int(NOW)) if headers is None else headers
    return world.ingress(clock=lambda: NOW).handle(signed, body)


def _said(answer: Any) -> str:
    """The ephemeral message Ingress answered with at once (type 4)."""
    assert (answer.status, answer.body["type"], answer.body["data"]["flags"]) == (200, 4, 64)
    check_message(answer.body["data"])
    return str(answer.body["data"]["content"])


def _click_payload(custom: str) -> dict[str, Any]:
    payload = command(interaction_id="900000000000000002")
    payload.update(type=3, data={"custom_id": custom, "component_type": 2})
    return payload


def test_ping_gets_pong_and_hands_nothing_off(world: World) -> None:
    answer = _post(world, {"type": 1})
    assert (answer.status, answer.body) == (200, {"type": 1})
    assert world.sink.events == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        sign(b"another body", int(NOW)),
        sign(encode({"type": 1}), int(NOW) - 301),  # outside the freshness window
        sign(encode({"type": 1}), int(NOW) + 301),
    ],
    ids=["unsigned", "signature-of-another-body", "stale", "future"],
)
def test_unsigned_or_stale_requests_get_401(world: World, headers: dict[str, str]) -> None:
    answer = _post(world, {"type": 1}, headers=headers)
    assert (answer.status, answer.body) == (401, {"error": "invalid request signature"})
    assert world.sink.events == []


@pytest.mark.parametrize(("name", "flags"), [("plan", 0), ("status", 64)])
def test_an_admitted_command_is_deferred_and_handed_off(
    world: World, name: str, flags: int
) -> None:
    payload = command(name, None if name == "plan" else [], roles=None)
    answer = _post(world, payload)
    assert (answer.status, answer.body) == (200, {"type": 5, "data": {"flags": flags}})
    [event] = world.sink.events
    assert (event.event_type, event.event_id) == (COMMAND_RECEIVED, payload["id"])
    trip = Journey.from_event(event.data)
    assert trip.call == read_invocation(payload)
    assert trip.received_at == NOW
    assert len(trip.correlation_id) == 32
    # Filled in later by command_route.
    assert (trip.parameters, trip.workflow_template) == ({}, None)


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        (command("deploy", []), render.unknown_command("deploy")),
        (command(roles=[ROLE_OTHER]), "You can't run `/plan`: caller holds none"),
        (command(dm=True), "You can't run `/plan`: this command can only be used in a server"),
        (command(options=[]), "`/plan` was not sent:\n• `objective` is required"),
        (command(options=[{"name": "objective", "type": 3, "value": "x" * 1001}]), "longer"),
    ],
    ids=["unknown", "denied", "direct-message", "missing-option", "too-long"],
)
def test_refusals_are_answered_at_once_and_handed_off_never(
    world: World, payload: dict[str, Any], said: str
) -> None:
    assert said in _said(_post(world, payload))
    assert world.sink.events == []


def test_user_text_in_a_refusal_pings_nobody(world: World) -> None:
    text = _said(_post(world, command("@everyone", [])))
    assert "@everyone" not in text


def test_a_command_the_sink_refuses_tells_the_user(world: World) -> None:
    world.sink.down = True
    assert _said(_post(world, command())) == render.not_accepted("plan")


def test_a_click_is_acknowledged_and_handed_off(world: World) -> None:
    payload = _click_payload("facteur:cancel:AbCdEfGh1234")
    answer = _post(world, payload)
    assert (answer.status, answer.body) == (200, {"type": 6})
    [event] = world.sink.events
    assert (event.event_type, event.event_id) == (COMPONENT_CLICKED, payload["id"])
    assert click_from_event(event.data) == read_click(payload)
    assert event.data["received_at"] == NOW


@pytest.mark.parametrize(
    ("custom", "down", "said"),
    [
        ("other-bot:thing", False, render.NOT_OUR_BUTTON),
        ("facteur:delete:AbCdEfGh1234", False, render.NOT_OUR_BUTTON),
        ("facteur:retry:AbCdEfGh1234", True, render.click_not_accepted("retry")),
    ],
)
def test_clicks_that_cannot_be_handed_off_are_answered(
    world: World, custom: str, down: bool, said: str
) -> None:
    world.sink.down = down
    assert _said(_post(world, _click_payload(custom))).startswith(said)
    assert world.sink.events == []


@pytest.mark.parametrize(
    ("payload", "status", "body"),
    [
        (b"not json", 400, {"error": "body is not JSON"}),
        ([1], 400, {"error": "body is not a JSON object"}),
        ({"type": 99}, 400, {"error": "unknown interaction type"}),
        ({"type": 2}, 400, {"error": "data is missing"}),
        ({"type": 3, "data": {"custom_id": "facteur:cancel:AbCdEfGh1234"}}, 400, None),
        ({"type": 4}, 200, {"type": 8, "data": {"choices": []}}),
    ],
    ids=["not-json", "array", "unknown-type", "command-without-data", "bad-click", "autocomplete"],
)
def test_other_bodies(world: World, payload: Any, status: int, body: dict | None) -> None:
    answer = _post(world, payload)
    assert answer.status == status
    assert body is None or answer.body == body
    assert world.sink.events == []


def test_a_modal_is_not_supported(world: World) -> None:
    assert _said(_post(world, {"type": 5})) == render.UNSUPPORTED_INTERACTION


def test_a_signed_command_travels_the_whole_chain(world: World) -> None:
    # Ingress -> Router -> Submitter on one set of ports: the event data each hands on is what
    # the next reads. Only the Verifier and the catalog are real.
    payload = command(interaction_id="900000000000000003")
    _post(world, payload)
    [received] = world.sink.events
    outcomes = world.run(Journey.from_event(received.data))
    assert [o.result for o in outcomes] == ["requested", "submitted"]
    assert list(world.argo.workflows) == [("agents", "plan-900000000000000003")]
    assert world.discord.last.content == "Started `/plan` as workflow `plan-900000000000000003`."
    # And the run's Cancel button reaches it.
    session = world.store.find_workflow("agents", "plan-900000000000000003")
    assert session is not None
    assert world.buttons().click(click("stop", session.ref)).result == "stop"
