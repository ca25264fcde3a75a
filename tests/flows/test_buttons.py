"""Cancel and Retry buttons: the click at interaction_verify, and its action at command_route.

Real Redis; Discord and Argo fakes that validate every request against the real specs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from facteur.adapters.argo import ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.adapters.envelope import open_event
from facteur.adapters.sessions import SessionStore
from facteur.decisions.ids import custom_id
from facteur.decisions.interactions import read_click
from facteur.decisions.journey import COMPONENT_CLICKED, DispatchResult
from facteur.decisions.render import final_status, submitted
from facteur.flows.buttons import Buttons
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.chain import EDIT, FOLLOW_UP, NAMESPACE, UI, peers
from tests.helpers.contracts import assert_interaction_response
from tests.helpers.discord_fake import DISCORD_API, DiscordFake
from tests.helpers.fakes import catalog
from tests.helpers.servers import Sink
from tests.helpers.support import (
    APP,
    CLICKER,
    EVENT_KEY,
    GUILD,
    ROLE_OTHER,
    ROLE_PLANNER,
    base_env,
    button_click,
    run_record,
    sign,
)


def click_payload(custom: str, *, roles: list[str] | None = None, dm: bool = False) -> dict:
    return button_click(custom, roles=roles, dm=dm)


class World:
    def __init__(self, store: SessionStore, discord: DiscordFake, argo: FakeArgo) -> None:
        self.store, self.discord, self.argo = store, discord, argo

    def buttons(self, role_map: dict[str, list[str]] | None = None, **options: Any) -> Buttons:
        return Buttons(
            role_map=role_map or {"plan": [ROLE_PLANNER]},
            store=self.store,
            discord=DiscordClient(
                api_base_url=DISCORD_API, application_id=APP, bot_token=None, sleep=lambda _: None
            ),
            argo=ArgoClient(server_url=self.argo.base_url, token="argo", backoff_factor=0),
            ui_url=UI,
            guild_id=GUILD,
            # What Cancel does once it acts; test_confirmation.py has the question first.
            **({"catalog": catalog(confirm_cancel=False)} | options),
        )

    def run(self, phase: str = "Running", **extra: Any) -> DispatchResult:
        fields = {"application_id": None, "ref": uuid.uuid4().hex[:12]} | extra
        session = run_record(namespace=NAMESPACE, **fields)
        self.store.save(session)
        self.argo.add_workflow(NAMESPACE, session.workflow_name, phase)
        return session

    def click(self, buttons: Buttons, action: str, session: DispatchResult, **kw: Any):
        click = read_click(click_payload(custom_id(action, session.ref), **kw))
        return buttons.click(click)

    def argo_ops(self) -> list[str]:
        ops = [(r.operation or "").removeprefix("WorkflowService_") for r in self.argo.requests]
        return [op for op in ops if op != "GetWorkflow"]

    def whispers(self) -> list[str]:
        return [r.json["content"] for r in self.discord.to(*FOLLOW_UP) if r.json["flags"] == 64]


@pytest.fixture
def world(store: SessionStore) -> Iterator[World]:
    with peers() as (discord, argo):
        yield World(store, discord, argo)


# -- the buttons on the messages ------------------------------------------------------------


def _button_ids(message: dict) -> list[str]:
    return [
        c["custom_id"]
        for row in message.get("components", [])
        for c in row["components"]
        if "custom_id" in c
    ]


def test_reply_carries_open_in_argo_and_cancel_with_an_opaque_reference() -> None:
    message = submitted(
        command="plan",
        workflow="plan-1234567890123456789",
        namespace="agents",
        correlation_id="c" * 32,
        ui_url=UI,
        ref="AbCdEfGh1234",
    )
    [row] = message["components"]
    link, cancel = row["components"]
    assert (link["style"], link["label"]) == (5, "Open in Argo")
    assert link["url"] == f"{UI}/workflows/agents/plan-1234567890123456789"
    assert cancel["custom_id"] == "facteur:cancel:AbCdEfGh1234"
    for value in _button_ids(message):
        assert len(value) <= 100
        assert "plan-" not in value and "1234567890123456789" not in value


def test_failed_outcome_offers_retry_and_success_does_not() -> None:
    common = {
        "command": "plan",
        "workflow": "plan-1",
        "namespace": "agents",
        "correlation_id": "c",
        "duration": 1.0,
        "failures": [],
        "message": None,
        "ui_url": UI,
        "ref": "AbCdEfGh1234",
    }
    assert _button_ids(final_status(status="Failed", **common)) == [
        "facteur:retry:AbCdEfGh1234",
        "facteur:logs:AbCdEfGh1234",
    ]
    assert _button_ids(final_status(status="Succeeded", **common)) == []
    assert _button_ids(final_status(status="Deleted", **common)) == []


# -- interaction_verify ---------------------------------------------------------------------


@pytest.fixture
def verify(load_function, sink: Sink):
    return load_function("interaction_verify", base_env(K_SINK=sink.url))


def test_a_click_is_acknowledged_with_a_deferred_update_and_handed_off(verify, sink) -> None:
    payload = click_payload("facteur:cancel:AbCdEfGh1234")
    body = json.dumps(payload).encode()
    response = verify.post("/", data=body, headers=sign(body))
    assert response.get_json() == {"type": 6}
    assert_interaction_response(response.get_json())
    [event] = sink.events()
    assert event["type"] == COMPONENT_CLICKED
    data = open_event(EVENT_KEY, event, {COMPONENT_CLICKED})
    assert (data["action"], data["ref"], data["user_id"]) == ("cancel", "AbCdEfGh1234", CLICKER)


def test_an_unsigned_click_gets_401(verify, sink) -> None:
    body = json.dumps(click_payload("facteur:cancel:AbCdEfGh1234")).encode()
    assert (
        verify.post("/", data=body, headers={"Content-Type": "application/json"}).status_code == 401
    )
    stale = sign(body, int(time.time()) - 3600)
    assert verify.post("/", data=body, headers=stale).status_code == 401
    assert sink.received == []


@pytest.mark.parametrize(
    "custom", ["other-bot:thing", "facteur:delete:AbCdEfGh1234", "facteur:cancel:short", "x" * 100]
)
def test_foreign_buttons_are_not_handed_off(verify, sink, custom: str) -> None:
    body = json.dumps(click_payload(custom)).encode()
    answer = verify.post("/", data=body, headers=sign(body)).get_json()
    assert answer["type"] == 4 and answer["data"]["flags"] == 64
    assert sink.received == []


def test_a_click_verify_cannot_hand_off_tells_the_user(load_function) -> None:
    client = load_function("interaction_verify", base_env(K_SINK="http://127.0.0.1:9/"))
    body = json.dumps(click_payload("facteur:retry:AbCdEfGh1234")).encode()
    answer = client.post("/", data=body, headers=sign(body)).get_json()
    assert answer["type"] == 4
    assert "nothing changed" in answer["data"]["content"]


# -- command_route --------------------------------------------------------------------------


def test_cancel_stops_the_run_and_updates_the_message(world: World) -> None:
    session = world.run()
    outcome = world.click(world.buttons(), "cancel", session)
    assert outcome.result == "cancel"
    assert world.argo_ops() == ["StopWorkflow"]
    [edit] = world.discord.to(*EDIT)
    assert edit.params["webhook_token"] == "click-token-SECRET"
    assert f"cancelled by <@{CLICKER}>" in edit.json["content"]
    assert edit.json["allowed_mentions"] == {"parse": []}
    assert _button_ids(edit.json) == []  # Cancel no longer applies; the link stays
    assert edit.json["components"][0]["components"][0]["label"] == "Open in Argo"
    assert world.store.get(session.correlation_id).status == "Cancelling"


def test_cancel_can_terminate_instead(world: World) -> None:
    world.click(world.buttons(cancel_strategy="terminate"), "cancel", world.run())
    assert world.argo_ops() == ["TerminateWorkflow"]


def test_a_double_click_acts_once(world: World) -> None:
    buttons, session = world.buttons(), world.run()
    first = world.click(buttons, "cancel", session)
    second = world.click(buttons, "cancel", session)
    # The second click is another person's (or the same one's again): told, not acted on.
    assert (first.result, second.result) == ("cancel", "refused")
    assert world.argo_ops() == ["StopWorkflow"]


@pytest.mark.parametrize(
    ("role_map", "roles", "allowed"),
    [
        ({"plan": [ROLE_PLANNER]}, [ROLE_PLANNER], True),
        ({"plan": [ROLE_PLANNER]}, [ROLE_OTHER], False),
        # plan:cancel refines the command's own rule.
        ({"plan": [ROLE_PLANNER], "plan:cancel": [ROLE_OTHER]}, [ROLE_OTHER], True),
        ({"plan": [ROLE_PLANNER], "plan:cancel": [ROLE_OTHER]}, [ROLE_PLANNER], False),
        ({"review": [ROLE_PLANNER]}, [ROLE_PLANNER], False),
    ],
)
def test_clicks_follow_the_role_policy(world: World, role_map, roles, allowed: bool) -> None:
    outcome = world.click(world.buttons(role_map), "cancel", world.run(), roles=roles)
    assert (outcome.result == "cancel") is allowed
    if not allowed:
        assert world.argo_ops() == []
        assert world.discord.to(*EDIT) == []
        [whisper] = world.whispers()
        assert whisper.startswith("You can't cancel `/plan` runs")


def test_a_click_in_a_direct_message_is_denied(world: World) -> None:
    outcome = world.click(world.buttons(), "cancel", world.run(), dm=True)
    assert outcome.result == "refused"
    assert world.argo_ops() == []


def test_cancel_after_the_run_finished_changes_nothing(world: World) -> None:
    session = world.run("Succeeded", finished_at=time.time())
    world.click(world.buttons(), "cancel", session)
    assert world.argo_ops() == []
    assert world.whispers() == ["This run has already finished."]


def test_retry_reruns_a_failed_run_and_its_outcome_is_reported_again(world: World) -> None:
    session = world.run("Failed", finished_at=time.time())
    world.store.save(session.model_copy(update={"status": "Failed"}))
    outcome = world.click(world.buttons(), "retry", world.store.get(session.correlation_id))
    assert outcome.result == "retry"
    assert world.argo_ops() == ["RetryWorkflow"]
    again = world.store.get(session.correlation_id)
    assert (again.status, again.attempt, again.finished_at) == ("Submitted", 2, None)
    assert world.store.pending(10) == [session.correlation_id]
    [edit] = world.discord.to(*EDIT)
    assert "retried by" in edit.json["content"]
    assert _button_ids(edit.json) == [f"facteur:cancel:{session.ref}"]
    # The retried run's outcome is a new report (attempt 2), not a duplicate of the first.
    assert world.store.take("reported", f"{NAMESPACE}/{session.workflow_name}#1").value == "taken"
    assert world.store.take("reported", f"{NAMESPACE}/{session.workflow_name}#2").value == "taken"


def test_resubmit_starts_a_new_workflow(world: World) -> None:
    session = world.run("Failed", finished_at=time.time())
    world.store.save(session.model_copy(update={"status": "Failed"}))
    world.click(
        world.buttons(retry_strategy="resubmit"), "retry", world.store.get(session.correlation_id)
    )
    assert world.argo_ops() == ["ResubmitWorkflow"]
    renamed = world.store.get(session.correlation_id).workflow_name
    assert renamed != session.workflow_name and renamed.startswith(session.workflow_name)
    assert world.store.find_workflow(NAMESPACE, renamed).correlation_id == session.correlation_id


def test_retry_of_a_running_run_changes_nothing(world: World) -> None:
    world.click(world.buttons(), "retry", world.run())
    assert world.argo_ops() == []
    assert world.whispers() == ["Only a failed run can be retried."]


def test_unknown_reference_changes_nothing(world: World) -> None:
    click = read_click(click_payload("facteur:cancel:Unknown12345"))
    outcome = world.buttons().click(click)
    assert outcome.result == "refused"
    assert world.whispers() == ["facteur no longer knows this run; nothing changed."]


def test_argo_refusing_releases_the_click(world: World) -> None:
    session = world.run()
    world.argo.queue("PUT", 403, times=1)
    buttons = world.buttons()
    world.click(buttons, "cancel", session)
    assert world.whispers()[0].startswith("Argo refused to cancel the run")
    assert world.click(buttons, "cancel", session).result == "cancel"
