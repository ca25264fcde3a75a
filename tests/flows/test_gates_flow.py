"""Approval gates on the in-memory ports: the card shows a Suspend step that waits, and Approve
or Reject answer it once, by someone other than the requester, as Argo's API is meant to be used:
PUT …/set for the supplied parameter and the node's message, then PUT …/resume of that node only."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from facteur.decisions import ids, render
from facteur.decisions.catalog import Approval
from facteur.decisions.journey import DispatchResult
from facteur.decisions.workflow import NodeState
from tests.helpers.fakes import NAMESPACE, TOKEN_TTL, MemoryStore, NodeCall, World, catalog, click
from tests.helpers.support import ROLE_OTHER, USER


@pytest.fixture
def world() -> World:
    return World()


def _name(run: DispatchResult) -> str:
    return run.workflow_name or ""


def _gate(world: World, run: DispatchResult, *, parameter: str | None = "approve") -> NodeState:
    return world.argo.add_suspend_node(
        NAMESPACE,
        _name(run),
        "approve",
        parameter=parameter,
        choices=("YES", "NO") if parameter else (),
        suspend_seconds=3600,
    )


def _step(run: DispatchResult, gate: NodeState) -> str:
    step = ids.step_of(_name(run), gate.id)
    assert step is not None
    return step


def _answer(world: World, action: str, run: DispatchResult, gate: NodeState, **kw: Any) -> Any:
    clicked = replace(click(action, run.ref, **kw), step=_step(run, gate))
    return world.buttons(**kw.pop("buttons", {})).click(clicked)


def _audits(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.getMessage(), {k: getattr(r, k, None) for k in ("step", "by", "reason")})
        for r in caplog.records
        if r.name == "facteur.audit" and r.getMessage().startswith("approval.")
    ]


# -- the card ------------------------------------------------------------------------------------


def test_the_card_shows_the_gate_with_its_buttons_and_deadline(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    outcome = world.reporter(card_interval_seconds=0).nudge(NAMESPACE, _name(run), deleted=False)
    assert outcome.body["result"] == "updated"
    card = world.discord.last
    assert "is waiting for approval" in card.content and "`approve`" in card.content
    assert card.fields["Waiting for approval"].startswith("`approve`, goes on by itself <t:")
    step = _step(run, gate)
    assert card.button_ids == [
        f"facteur:cancel:{run.ref}",
        f"facteur:logs:{run.ref}",
        f"facteur:approve:{run.ref}:{step}",
        f"facteur:reject:{run.ref}:{step}",
    ]


def test_a_gate_reached_after_the_token_expired_is_shown_by_the_bot(world: World) -> None:
    # The run waited longer than the interaction token lives: the bot edits the same message.
    run = world.recorded_run(age=TOKEN_TTL + 60, message_id="1200000000000000001")
    _gate(world, run)
    outcome = world.reporter(card_interval_seconds=0).nudge(NAMESPACE, _name(run), deleted=False)
    assert outcome.body == {"result": "updated", "via": "message"}
    card = world.discord.last
    assert (card.route, card.message_id) == ("message", "1200000000000000001")
    assert "Waiting for approval" in card.fields
    # And answering it needs no old token: the click's own edits the message it is on.
    assert _answer(world, "approve", run, world.argo.run(NAMESPACE, _name(run)).nodes[0]).result
    assert world.discord.last.route == "edit"


def test_with_a_thread_the_gate_and_its_buttons_go_there_once(world: World) -> None:
    run = world.recorded_run(thread_id="1300000000000000001")
    world.discord.threads["1300000000000000001"] = _thread()
    gate = _gate(world, run)
    reporter = world.reporter(card_interval_seconds=0)
    reporter.nudge(NAMESPACE, _name(run), deleted=False)
    world.argo.run(NAMESPACE, _name(run)).progress = "1/3"  # another change: the card again
    reporter.nudge(NAMESPACE, _name(run), deleted=False)
    [posted] = world.discord.threads["1300000000000000001"].messages
    step = _step(run, gate)
    assert "waiting for approval" in posted["content"]
    ids_in_thread = [c["custom_id"] for row in posted["components"] for c in row["components"]]
    assert ids_in_thread == [
        f"facteur:approve:{run.ref}:{step}",
        f"facteur:reject:{run.ref}:{step}",
    ]
    # The card names the gate and sends people to the thread, without buttons of its own.
    card = world.discord.last
    assert card.fields["Waiting for approval"].endswith("(answer in the run's thread)")
    assert not any(":approve:" in custom for custom in card.button_ids)


def _thread() -> Any:
    from tests.helpers.fakes import Thread

    return Thread("900000000000000200", "1100000000000000001", "run")


# -- who may answer ------------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_run(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "facteur.audit")
    run = world.recorded_run()
    gate = _gate(world, run)
    outcome = _answer(world, "approve", run, gate, user_id=USER)
    assert outcome.result == "refused"
    assert world.discord.whispers == [
        render.approval_refused("you asked for this run, and another person must approve it")
    ]
    assert world.argo.node_calls == []
    assert _audits(caplog) == [
        ("approval.denied", {"step": None, "by": USER, "reason": "two-person rule"})
    ]


def test_self_approve_in_the_catalog_lets_the_requester_answer(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    shipped = catalog()
    commands = [
        c.model_copy(update={"self_approve": True}) if c.name == "plan" else c
        for c in shipped.commands
    ]
    lenient = shipped.model_copy(update={"commands": commands})
    clicked = replace(click("approve", run.ref, user_id=USER), step=_step(run, gate))
    assert world.buttons(catalog=lenient).click(clicked).result == "approve"


def test_approving_follows_the_approve_rule_not_the_commands(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    strict = {"plan": [ROLE_OTHER], "plan:approve": ["900000000000000999"]}
    clicked = replace(click("approve", run.ref, roles=[ROLE_OTHER]), step=_step(run, gate))
    with caplog.at_level(logging.INFO, "facteur.audit"):
        assert world.buttons(role_map=strict).click(clicked).result == "refused"
    [(event, fields)] = _audits(caplog)
    assert (event, fields["reason"]) == (
        "approval.denied",
        "caller holds none of the allowed roles",
    )
    assert "You can't approve `/plan` runs" in world.discord.whispers[-1]
    # Reject obeys the same rule.
    rejected = replace(click("reject", run.ref, roles=[ROLE_OTHER]), step=_step(run, gate))
    assert world.buttons(role_map=strict).click(rejected).result == "refused"
    assert world.argo.node_calls == []


# -- approve and reject --------------------------------------------------------------------------


def test_approve_sets_yes_then_resumes_only_that_node(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "facteur.audit")
    run = world.recorded_run()
    gate = _gate(world, run)
    clicked = replace(click("approve", run.ref), step=_step(run, gate))
    assert world.buttons().click(clicked).result == "approve"
    message = f"Approved by Discord user {clicked.user_id} via facteur"
    assert world.argo.node_calls == [
        NodeCall("set_node", NAMESPACE, _name(run), gate.id, message, {"approve": "YES"}),
        NodeCall("resume_node", NAMESPACE, _name(run), gate.id),
    ]
    [node] = world.argo.run(NAMESPACE, _name(run)).nodes
    assert (node.phase, node.message) == ("Succeeded", message)
    edit = world.discord.last
    assert (edit.route, edit.token) == ("edit", clicked.token)
    assert edit.content == (
        f"`/plan` run `{_name(run)}`: `approve` approved by <@{clicked.user_id}>."
    )
    assert edit.button_ids == [f"facteur:cancel:{run.ref}", f"facteur:logs:{run.ref}"]
    assert _audits(caplog) == [
        ("approval.granted", {"step": "approve", "by": clicked.user_id, "reason": None})
    ]


def test_reject_sets_no_and_resumes_so_the_template_branches(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    assert _answer(world, "reject", run, gate).result == "reject"
    [set_call, resume] = world.argo.node_calls
    assert set_call.outputs == {"approve": "NO"}
    assert set_call.message and set_call.message.startswith("Rejected by Discord user ")
    assert resume.operation == "resume_node"
    assert ("stop", _name(run)) not in world.argo.actions  # not stopped: the template branches
    assert "rejected by" in world.discord.last.content


def test_without_the_parameter_approve_resumes_and_reject_stops(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run, parameter=None)
    assert _answer(world, "approve", run, gate).result == "approve"
    assert [c.operation for c in world.argo.node_calls] == ["set_node", "resume_node"]
    assert world.argo.node_calls[0].outputs == {}

    other = world.recorded_run()
    second = _gate(world, other, parameter=None)
    assert _answer(world, "reject", other, second).result == "reject"
    assert [a for a in world.argo.actions if a[1] == _name(other)] == [
        ("set_node", _name(other)),
        ("stop", _name(other)),
    ]
    assert world.store.get(other.correlation_id).status == "Cancelling"  # type: ignore[union-attr]
    assert world.discord.last.content.endswith("; the run is stopping.")


def test_custom_catalog_values_reach_argo(world: World) -> None:
    run = world.recorded_run()
    gate = world.argo.add_suspend_node(
        NAMESPACE, _name(run), "ship-it", parameter="go", choices=("ship", "hold")
    )
    shipped = catalog()
    approval = Approval(parameter="go", yes="ship", no="hold")
    commands = [
        c.model_copy(update={"approval": approval}) if c.name == "plan" else c
        for c in shipped.commands
    ]
    custom = shipped.model_copy(update={"commands": commands})
    clicked = replace(click("approve", run.ref), step=_step(run, gate))
    assert world.buttons(catalog=custom).click(clicked).result == "approve"
    assert world.argo.node_calls[0].outputs == {"go": "ship"}


def test_values_the_steps_enum_does_not_allow_are_refused_before_anything_is_set(
    world: World,
) -> None:
    run = world.recorded_run()
    gate = world.argo.add_suspend_node(
        NAMESPACE, _name(run), "approve", parameter="approve", choices=("approve", "deny")
    )
    assert _answer(world, "approve", run, gate).result == "refused"
    assert "allows approve, deny, not YES, NO" in world.discord.whispers[-1]
    assert world.argo.node_calls == []


# -- exactly once --------------------------------------------------------------------------------


def test_two_approvers_cause_one_resume_and_the_second_is_told(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    first = replace(click("approve", run.ref), step=_step(run, gate))
    second = replace(click("approve", run.ref, user_id="800000000000000778"), step=first.step)
    buttons = world.buttons()
    assert buttons.click(first).result == "approve"
    assert buttons.click(second).result == "refused"
    assert world.discord.whispers == [render.GATE_GONE]
    assert [c.operation for c in world.argo.node_calls] == ["set_node", "resume_node"]
    # Knative delivering the first click again changes and says nothing.
    assert buttons.click(first).result == "duplicate"
    assert len(world.argo.node_calls) == 2


def test_an_approver_while_another_is_answering_waits_then_is_told(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    key = f"{run.correlation_id}:gate:{gate.id}"
    assert world.store.take("acted", key).value == "taken"  # the other approver, answering now
    clicked = replace(click("reject", run.ref), step=_step(run, gate))
    assert world.buttons().click(clicked).status == 503  # redelivered later
    assert world.argo.node_calls == []
    world.store.finish("acted", key)
    assert world.buttons().click(clicked).result == "refused"
    assert world.discord.whispers == [render.gate_already_answered("approve")]
    assert world.argo.node_calls == []


def test_a_gate_answered_in_argos_ui_meanwhile_is_said_so(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    real_set = world.argo.set_node

    def answered_elsewhere(*args: Any, **kwargs: Any) -> None:
        # Someone resumed the node in Argo between facteur's read and its set.
        world.argo.resume_node(NAMESPACE, _name(run), gate.id)
        real_set(*args, **kwargs)

    world.argo.set_node = answered_elsewhere  # type: ignore[method-assign]
    assert _answer(world, "approve", run, gate).result == "refused"
    assert world.discord.whispers == [render.gate_already_answered("approve")]
    assert world.store.claimed("acted", f"{run.correlation_id}:gate:{gate.id}")


def test_argo_failing_releases_the_gate_for_the_next_click(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    world.argo.fail("resume_node", status=503, times=1)
    assert _answer(world, "approve", run, gate).result == "refused"
    assert "Argo refused to approve the run" in world.discord.whispers[-1]
    assert not world.store.claimed("acted", f"{run.correlation_id}:gate:{gate.id}")
    # The parameter was set before the failure (Argo keeps it): the next click only resumes.
    world.argo.node_calls.clear()
    assert _answer(world, "approve", run, gate).result == "approve"
    assert [(c.operation, c.outputs) for c in world.argo.node_calls] == [
        ("set_node", {}),
        ("resume_node", {}),
    ]


def test_a_click_on_a_step_that_no_longer_waits_changes_nothing(world: World) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    world.argo.resume_node(NAMESPACE, _name(run), gate.id)
    world.argo.node_calls.clear()
    assert _answer(world, "approve", run, gate).result == "refused"
    assert world.discord.whispers == [render.GATE_GONE]
    assert world.argo.node_calls == []


def test_a_gate_whose_nudge_was_coalesced_shows_with_the_next_tick() -> None:
    now = [1000.0]
    world = World(store=MemoryStore(clock=lambda: now[0]))
    run = world.recorded_run()
    reporter = world.reporter(card_interval_seconds=5)
    assert reporter.nudge(NAMESPACE, _name(run), deleted=False).body["result"] == "updated"
    _gate(world, run)
    # The step starts waiting moments later: that nudge falls in the same card interval, and a
    # waiting run changes no more, so no later nudge comes.
    assert reporter.nudge(NAMESPACE, _name(run), deleted=False).body["result"] == "coalesced"
    assert "Waiting for approval" not in world.discord.last.fields
    now[0] += 6
    assert reporter.tick().body["still_running"] == 1
    assert "Waiting for approval" in world.discord.last.fields


def test_a_crash_between_set_and_resume_is_finished_by_the_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = world.recorded_run()
    gate = _gate(world, run)
    clicked = replace(click("reject", run.ref), step=_step(run, gate))
    real = world.argo.resume_node

    def crash(*args: Any) -> None:
        raise RuntimeError("the worker stopped")

    monkeypatch.setattr(world.argo, "resume_node", crash)
    with pytest.raises(RuntimeError):
        world.buttons().click(clicked)
    monkeypatch.setattr(world.argo, "resume_node", real)
    # NO is set and stands (Argo refuses a second set); someone now clicking Approve is told.
    other = replace(click("approve", run.ref, user_id="800000000000000778"), step=clicked.step)
    assert world.buttons().click(other).result == "refused"
    assert world.discord.whispers == [render.gate_already_answered("approve")]
    # Knative's redelivery of the Reject resumes the node: the template branches on NO, and the
    # run is not stopped as it would be for a gate without the parameter.
    assert world.buttons().click(clicked).result == "reject"
    assert [(c.operation, c.outputs) for c in world.argo.node_calls] == [
        ("set_node", {"approve": "NO"}),
        ("set_node", {}),
        ("resume_node", {}),
    ]
    assert ("stop", _name(run)) not in world.argo.actions
