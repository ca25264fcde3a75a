"""Forms through interaction_verify on the in-memory ports: a `form: true` command sent without
its required options opens its modal; the submit goes exactly where the command would have
gone (the role check again, option validation, the same event, command_route's duplicate
suppression); a forged form is refused."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from facteur.config import DEFAULT_CATALOG_FILE
from facteur.decisions import render
from facteur.decisions.catalog import Catalog, parse_catalog
from facteur.decisions.interactions import read_invocation
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED, Journey
from facteur.flows.interaction_verify import Ingress
from tests.decisions.test_forms import assert_modal
from tests.helpers.fakes import World, check_message
from tests.helpers.support import ROLE_OTHER, command, encode, sign

NOW = 1_800_000_000.0
SUBMIT_ID = "900000000000000077"
OPS = "900000000000000301"


def form_catalog(**implement: Any) -> Catalog:
    """The shipped catalog, with /implement a form (its notes labelled)."""
    data = yaml.safe_load(DEFAULT_CATALOG_FILE.read_text())
    entry = next(c for c in data["commands"] if c["name"] == "implement")
    entry.update(form=True, **implement)
    entry["options"][3]["label"] = "Anything the agent should know?"
    return parse_catalog(data)


@pytest.fixture
def world() -> World:
    return World()


def _ingress(world: World, **catalog: Any) -> Ingress:
    return world.ingress(catalog=form_catalog(**catalog), clock=lambda: NOW)


def _post(ingress: Ingress, payload: Any) -> Any:
    body = payload if isinstance(payload, bytes) else encode(payload)
    return ingress.handle(sign(body, int(NOW)), body)


def submit(
    fields: list[tuple[str, str]],
    *,
    custom_id: str = "facteur:form:implement",
    roles: list[str] | None = None,
) -> dict[str, Any]:
    """The MODAL_SUBMIT of a form, as Discord sends it."""
    payload = command("implement", interaction_id=SUBMIT_ID, roles=roles)
    rows = [
        {"type": 1, "components": [{"type": 4, "custom_id": name, "value": value}]}
        for name, value in fields
    ]
    payload.update(type=5, data={"custom_id": custom_id, "components": rows})
    return payload


FILLED = [("project", "facteur"), ("branch", "main"), ("ticket", ""), ("notes", "see {{x}}")]


def _said(answer: Any) -> str:
    assert (answer.status, answer.body["type"], answer.body["data"]["flags"]) == (200, 4, 64)
    check_message(answer.body["data"])
    return str(answer.body["data"]["content"])


def test_a_form_command_without_its_required_options_opens_its_form(world: World) -> None:
    answer = _post(
        _ingress(world), command("implement", [{"name": "project", "type": 3, "value": "fac"}])
    )
    assert answer.status == 200
    assert_modal(answer.body)
    data = answer.body["data"]
    assert data["custom_id"] == "facteur:form:implement"
    inputs = [row["components"][0] for row in data["components"]]
    assert [(i["custom_id"], i["required"], i.get("value")) for i in inputs] == [
        ("project", True, "fac"),
        ("branch", True, None),
        ("ticket", False, None),
        ("notes", False, None),
    ]
    assert inputs[3]["label"] == "Anything the agent should know?"
    # A modal is the first answer itself: nothing is handed off until it is submitted.
    assert world.sink.events == []


def test_with_its_required_options_a_form_command_runs_at_once(world: World) -> None:
    options = [
        {"name": "project", "type": 3, "value": "facteur"},
        {"name": "branch", "type": 3, "value": "main"},
    ]
    answer = _post(_ingress(world), command("implement", options))
    assert answer.body == {"type": 5, "data": {"flags": 0}}
    assert len(world.sink.events) == 1


@pytest.mark.parametrize(
    ("payload", "catalog", "said"),
    [
        (command("implement", [], roles=[ROLE_OTHER]), {}, "You can't run `/implement`"),
        (command("implement", [], dm=True), {}, "can only be used in a server"),
        (command("implement", []), {"channels": [OPS]}, f"can only be used in <#{OPS}>"),
    ],
    ids=["denied", "direct-message", "wrong-channel"],
)
def test_no_form_opens_for_a_caller_who_may_not_run_the_command(
    world: World, payload: dict[str, Any], catalog: dict[str, Any], said: str
) -> None:
    assert said in _said(_post(_ingress(world, **catalog), payload))
    assert world.sink.events == []


def test_a_submit_goes_where_the_command_would_have_gone(world: World) -> None:
    answer = _post(_ingress(world), submit(FILLED))
    assert answer.body == {"type": 5, "data": {"flags": 0}}
    [event] = world.sink.events
    # The same journey as the slash command with those options, under the submit's ID.
    assert (event.event_type, event.event_id) == (COMMAND_RECEIVED, SUBMIT_ID)
    trip = Journey.from_event(event.data)
    options = [
        {"name": "project", "type": 3, "value": "facteur"},
        {"name": "branch", "type": 3, "value": "main"},
        {"name": "notes", "type": 3, "value": "see {{x}}"},
    ]
    assert trip.call == read_invocation(command("implement", options, interaction_id=SUBMIT_ID))
    # command_route takes it as any command: it requests the run once, however often the
    # Broker delivers it.
    router = world.router(catalog=form_catalog())
    assert [router.handle(trip).result for _ in range(2)] == ["requested", "duplicate"]
    [onward] = world.requested()
    assert onward.call == trip.call
    assert len(world.sink.of_type(WORKFLOW_REQUESTED)) == 1


def test_a_submit_from_a_member_who_lost_the_role_is_refused(world: World) -> None:
    assert "You can't run `/implement`" in _said(
        _post(_ingress(world), submit(FILLED, roles=[ROLE_OTHER]))
    )
    assert world.sink.events == []


@pytest.mark.parametrize(
    "custom_id",
    [
        "facteur:form:plan",  # a command without a form
        "facteur:form:deploy",
        "facteur:form:implement:x",
        "facteur:cancel:abcdefgh12",
        "not facteur's",
    ],
)
def test_a_forged_form_is_refused(world: World, custom_id: str) -> None:
    assert (
        _said(_post(_ingress(world), submit(FILLED, custom_id=custom_id)))
        == render.UNSUPPORTED_INTERACTION
    )
    assert world.sink.events == []


def test_fields_the_form_never_held_are_refused(world: World) -> None:
    fields = [*FILLED, ("admin", "yes")]
    assert _said(_post(_ingress(world), submit(fields))) == render.UNSUPPORTED_INTERACTION
    assert world.sink.events == []


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ([("project", "facteur"), ("branch", "")], "`branch` is required"),
        ([("project", "facteur"), ("branch", "x" * 201)], "`branch` is longer than 200"),
        ([("project", "fac\x00teur"), ("branch", "main")], "`project`"),
    ],
    ids=["empty-required", "too-long", "control-character"],
)
def test_a_submit_is_checked_as_the_command_is(
    world: World, fields: list[tuple[str, str]], said: str
) -> None:
    text = _said(_post(_ingress(world), submit(fields)))
    assert text.startswith(render.invalid_options("implement", [])[:-1])
    assert said in text
    assert world.sink.events == []


def test_a_malformed_submit_is_400(world: World) -> None:
    payload = submit(FILLED)
    payload["data"]["components"] = [{"type": 1, "components": [{"type": 3}]}]
    answer = _post(_ingress(world), payload)
    assert answer.status == 400
    assert world.sink.events == []


def test_a_submit_the_sink_refuses_tells_the_user(world: World) -> None:
    world.sink.down = True
    assert _said(_post(_ingress(world), submit(FILLED))) == render.not_accepted("implement")
