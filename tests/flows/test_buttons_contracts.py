"""The new buttons through the real clients, against the real contracts: every Argo request is
checked against swagger.json (FakeArgo) and every Discord request against Discord's OpenAPI
spec (DiscordFake): set and resume of one node, the log API, the confirmation, the select menu,
the multipart file, and the card that shows a gate or a queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from facteur.adapters.argo import ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.adapters.sessions import SessionStore
from facteur.decisions import ids
from facteur.decisions.interactions import read_click
from facteur.decisions.journey import DispatchResult
from facteur.flows.status_callback import Reporter
from tests.flows.test_buttons import World
from tests.helpers.chain import EDIT, FOLLOW_UP, NAMESPACE, UI, peers
from tests.helpers.discord_fake import DISCORD_API
from tests.helpers.fakes import catalog
from tests.helpers.support import APP, button_click


@pytest.fixture
def world(store: SessionStore) -> Iterator[World]:
    with peers() as (discord, argo):
        yield World(store, discord, argo)


def _press(
    world: World, action: str, session: DispatchResult, step: str | None = None, **kw: Any
) -> Any:
    buttons = world.buttons(catalog=catalog(), **kw)
    clicked = read_click(button_click(ids.custom_id(action, session.ref or "", step)))
    assert clicked is not None
    return buttons.click(clicked)


def _argo_requests(world: World, operation: str) -> list[Any]:
    return [r for r in world.argo.requests if r.operation == f"WorkflowService_{operation}"]


def _clean(world: World) -> None:
    assert world.argo.violations == []
    world.discord.assert_clean()


def test_approve_sets_and_resumes_one_node_as_swagger_describes(world: World) -> None:
    session = world.run()
    name = session.workflow_name
    node = world.argo.add_suspend_node(
        NAMESPACE, name, parameter="approve", choices=("YES", "NO"), duration="1h"
    )
    step = ids.step_of(name, node)
    assert _press(world, "approve", session, step).result == "approve"
    [set_request] = _argo_requests(world, "SetWorkflow")
    body = set_request.json
    assert body["nodeFieldSelector"] == f"id={node}"
    assert json.loads(body["outputParameters"]) == {"approve": "YES"}
    assert body["message"].startswith("Approved by Discord user ")
    [resume] = _argo_requests(world, "ResumeWorkflow")
    assert resume.json == {"name": name, "namespace": NAMESPACE, "nodeFieldSelector": f"id={node}"}
    [edit] = world.discord.to(*EDIT)
    assert "approved by" in edit.json["content"]
    _clean(world)


def test_reject_without_the_parameter_stops_the_run(world: World) -> None:
    session = world.run()
    node = world.argo.add_suspend_node(NAMESPACE, session.workflow_name, parameter=None)
    assert _press(world, "reject", session, ids.step_of(session.workflow_name, node)).result == (
        "reject"
    )
    [set_request] = _argo_requests(world, "SetWorkflow")
    assert "outputParameters" not in set_request.json
    assert len(_argo_requests(world, "StopWorkflow")) == 1
    assert _argo_requests(world, "ResumeWorkflow") == []
    _clean(world)


def test_the_confirmation_question_is_a_valid_ephemeral_message(world: World) -> None:
    session = world.run()
    assert _press(world, "cancel", session).result == "answered"
    [question] = world.discord.to(*FOLLOW_UP)
    assert question.json["flags"] == 64
    [[stop]] = [row["components"] for row in question.json["components"]]
    assert stop["custom_id"] == f"facteur:stop:{session.ref}"
    assert _argo_requests(world, "StopWorkflow") == []
    _clean(world)


def test_logs_a_select_menu_then_a_file_all_valid(world: World) -> None:
    session = world.run(phase="Failed")
    name = session.workflow_name
    build, _ = world.argo.add_pod_node(
        NAMESPACE, name, "build", phase="Failed", lines=[f"{n} " + "y" * 100 for n in range(40)]
    )
    world.argo.add_pod_node(NAMESPACE, name, "lint", phase="Failed", lines=["lint: 3 problems"])
    assert _press(world, "logs", session).result == "answered"
    [picker] = world.discord.to(*FOLLOW_UP)
    [[menu]] = [row["components"] for row in picker.json["components"]]
    assert menu["type"] == 3 and len(menu["options"]) == 2
    # The pick, as Discord sends a string select's interaction.
    payload = button_click(f"facteur:logs:{session.ref}")
    payload["data"] = {
        "custom_id": f"facteur:logs:{session.ref}",
        "component_type": 3,
        "values": [ids.step_of(name, build)],
    }
    clicked = read_click(payload)
    assert clicked is not None
    assert world.buttons(catalog=catalog()).click(clicked).result == "answered"
    [log_request] = _argo_requests(world, "WorkflowLogs")
    assert log_request.query["logOptions.container"] == "main"
    assert log_request.query["logOptions.tailLines"] == "40"
    sent = world.discord.to(*FOLLOW_UP)[-1]
    assert sent.multipart and sent.json["flags"] == 64
    [attached] = sent.files
    assert attached.filename == "build.log" and attached.text.count("\n") == 39
    _clean(world)


def test_logs_of_a_pod_that_is_gone(world: World) -> None:
    session = world.run(phase="Failed")
    _, pod = world.argo.add_pod_node(
        NAMESPACE, session.workflow_name, "build", phase="Failed", lines=["x"]
    )
    world.argo.pod_gone(NAMESPACE, pod, "http")
    _press(world, "logs", session)
    assert world.whispers()[-1].startswith("The logs of `build` are gone")
    world.argo.pod_gone(NAMESPACE, pod, "empty")  # what Argo really answers
    _press(world, "logs", session)
    assert world.whispers()[-1].startswith("Argo has no log lines of `build`")
    _clean(world)


def _reporter(world: World) -> Reporter:
    return Reporter(
        store=world.store,
        discord=DiscordClient(
            api_base_url=DISCORD_API, application_id=APP, bot_token=None, sleep=lambda _: None
        ),
        ui_url=UI,
        token_ttl_seconds=900,
        argo=ArgoClient(server_url=world.argo.base_url, token="argo", backoff_factor=0),
        namespace=NAMESPACE,
        card_interval_seconds=0,
    )


def test_the_card_of_a_gate_and_of_a_queued_run_are_valid(world: World) -> None:
    gated = world.run()
    world.store.save(gated, "itok-gate", gated.received_at + 900, started=True)
    world.argo.add_suspend_node(
        NAMESPACE, gated.workflow_name, parameter="approve", choices=("YES", "NO"), duration="2m"
    )
    assert _reporter(world).nudge(NAMESPACE, gated.workflow_name, deleted=False).body["result"] == (
        "updated"
    )
    card = world.discord.to(*EDIT)[-1].json
    assert "Waiting for approval" in {f["name"] for f in card["embeds"][0]["fields"]}
    assert len(card["components"]) == 2

    holder, queued = world.run(), world.run(phase="Pending")
    world.store.save(queued, "itok-queue", queued.received_at + 900, started=True)
    world.argo.wait_behind(NAMESPACE, queued.workflow_name, holder.workflow_name)
    _reporter(world).nudge(NAMESPACE, queued.workflow_name, deleted=False)
    card = world.discord.to(*EDIT)[-1].json
    assert card["content"].endswith(f"behind `{holder.workflow_name}`.")
    _clean(world)


def test_workflow_submit_sends_the_mutex_as_swagger_describes(world: World) -> None:
    from facteur.decisions.workflow import WorkflowRequest

    client = ArgoClient(server_url=world.argo.base_url, token="argo", backoff_factor=0)
    client.submit(
        WorkflowRequest(
            namespace=NAMESPACE,
            name="plan-1000000000000000123",
            template="facteur-dispatch",
            mutex="facteur-plan-facteur-0123456789",
        )
    )
    [create] = _argo_requests(world, "CreateWorkflow")
    spec = create.json["workflow"]["spec"]
    assert spec["synchronization"] == {"mutexes": [{"name": "facteur-plan-facteur-0123456789"}]}
    _clean(world)


def test_argo_rewrites_the_message_on_resume_and_answered_by_keeps_who(world: World) -> None:
    # argo-server knows facteur's own account from its token, and names it on resume.
    world.argo.resumed_by = "map[User:system:serviceaccount:agents:facteur-api]"
    session = world.run()
    name = session.workflow_name
    node_id = world.argo.add_suspend_node(
        NAMESPACE, name, parameter="approve", choices=("YES", "NO")
    )
    node = world.argo.workflows[(NAMESPACE, name)]["status"]["nodes"][node_id]
    node["inputs"]["parameters"].append({"name": "answered_by", "value": ""})
    node["outputs"]["parameters"].append({"name": "answered_by", "valueFrom": {"supplied": {}}})
    clicked = read_click(
        button_click(ids.custom_id("approve", session.ref or "", ids.step_of(name, node_id)))
    )
    assert clicked is not None
    assert world.buttons(catalog=catalog()).click(clicked).result == "approve"
    [set_request] = _argo_requests(world, "SetWorkflow")
    assert json.loads(set_request.json["outputParameters"]) == {
        "answered_by": clicked.user_id,
        "approve": "YES",
    }
    after = world.argo.node(NAMESPACE, name, node_id)
    assert after["phase"] == "Succeeded"
    assert after["message"].startswith("Resumed by: ")  # Argo's, not facteur's
    outputs = {p["name"]: p.get("value") for p in after["outputs"]["parameters"]}
    assert outputs == {"approve": "YES", "answered_by": clicked.user_id}
    _clean(world)
