"""Cancel asks first (the shipped default): an ephemeral "Stop <run>?" whose button alone acts,
and then edits the run's own message. And the one-at-a-time lock: the mutex a command's run
holds, the card of a run queued behind another, and Cancel on that queued run."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.catalog import Concurrency
from facteur.decisions.interactions import EPHEMERAL
from facteur.decisions.journey import DispatchResult, Journey
from tests.helpers.chain import journey
from tests.helpers.fakes import CLICKER, NAMESPACE, World, catalog, click
from tests.helpers.support import ROLE_OTHER, ROLE_PLANNER


@pytest.fixture
def world() -> World:
    return World()


def _name(run: DispatchResult) -> str:
    return run.workflow_name or ""


def test_cancel_asks_and_acts_on_nothing(world: World) -> None:
    run = world.recorded_run()
    assert world.buttons().click(click("cancel", run.ref)).result == "answered"
    assert world.argo.actions == []
    [question] = world.discord.sent
    assert question.route == "follow_up" and question.message["flags"] == EPHEMERAL
    assert question.content.startswith(f"Stop `/plan` run `{_name(run)}`?")
    assert question.button_ids == [f"facteur:stop:{run.ref}"]
    assert world.store.get(run.correlation_id).status == "Submitted"  # type: ignore[union-attr]


def test_the_confirmation_stops_the_run_and_edits_the_question_and_the_runs_message(
    world: World,
) -> None:
    run = world.recorded_run()
    world.buttons().click(click("cancel", run.ref))
    confirm = click("stop", run.ref)
    assert world.buttons().click(confirm).result == "stop"
    assert world.argo.actions == [("stop", _name(run))]
    question_answered, run_message = world.discord.sent[1:]
    # The question, through the confirming click's token: now only says what happened.
    assert (question_answered.route, question_answered.token) == ("edit", confirm.token)
    assert question_answered.content == f"Stopping `{_name(run)}`."
    # The run's message, through the command's token (the bot's, once it expired).
    assert (run_message.route, run_message.token) == ("edit", "itok-SECRET")
    assert run_message.content == f"`/plan` run `{_name(run)}`: cancelled by <@{CLICKER}>."
    assert world.store.get(run.correlation_id).status == "Cancelling"  # type: ignore[union-attr]


def test_the_confirmation_follows_cancels_rule(world: World) -> None:
    run = world.recorded_run()
    strict = {"plan": [ROLE_PLANNER], "plan:cancel": [ROLE_OTHER]}
    assert world.buttons(role_map=strict).click(click("stop", run.ref)).result == "refused"
    assert "You can't cancel `/plan` runs" in world.discord.whispers[-1]
    assert world.argo.actions == []


def test_a_second_confirmation_is_told_the_run_is_stopping(world: World) -> None:
    run = world.recorded_run()
    assert world.buttons().click(click("stop", run.ref)).result == "stop"
    assert world.buttons().click(click("stop", run.ref)).result == "refused"
    assert world.discord.whispers == [render.ALREADY_STOPPING]
    assert world.argo.actions == [("stop", _name(run))]


def test_the_catalog_can_switch_the_question_off(world: World) -> None:
    run = world.recorded_run()
    assert world.buttons(catalog=catalog(confirm_cancel=False)).click(
        click("cancel", run.ref)
    ).result == ("cancel")
    assert world.argo.actions == [("stop", _name(run))]


# -- one at a time -------------------------------------------------------------------------------


def _plan(project: str, command: str = "plan") -> Journey:
    first = "objective" if command == "plan" else "branch"
    options = [
        {"name": first, "type": 3, "value": "ship"},
        {"name": "project", "type": 3, "value": project},
    ]
    if command == "implement":
        options.reverse()  # project is its first required option
    return journey(command, options)


def _one_at_a_time(world: World) -> Any:
    shipped = catalog()
    commands = [
        c.model_copy(update={"concurrency": Concurrency(key="{project}")})
        if c.name in ("plan", "implement")
        else c
        for c in shipped.commands
    ]
    return world.router(catalog=shipped.model_copy(update={"commands": commands}))


@pytest.mark.parametrize(
    ("command", "project"),
    [
        ("plan", "facteur"),
        ("plan", "../../kube-system"),
        ("plan", "a,b=c !x"),
        ("plan", "Ünïcødé " * 12),
        # /implement carries any text (base64): braces, Argo's own syntax, included.
        ("implement", "{{workflow.name}}"),
        ("implement", "{{=sprig.env('HOME')}}"),
    ],
)
def test_the_mutex_is_named_from_the_options_without_their_text(
    world: World, command: str, project: str
) -> None:
    outcomes = world.run(_plan(project, command), router=_one_at_a_time(world))
    assert [o.result for o in outcomes] == ["requested", "submitted"]
    [run] = world.argo.workflows.values()
    assert run.mutex is not None and run.mutex.startswith(f"facteur-{command}-")
    assert len(run.mutex) <= 63 and all(
        ch in "abcdefghijklmnopqrstuvwxyz0123456789-" for ch in run.mutex
    )


def test_two_runs_of_one_key_share_a_lock_and_another_key_does_not(world: World) -> None:
    router = _one_at_a_time(world)
    for project in ("facteur", "facteur", "other"):
        world.run(_plan(project), router=router)
    first, second, third = world.argo.workflows.values()
    assert first.mutex == second.mutex != third.mutex
    # Without concurrency in the catalog, no lock.
    world.run(_plan("facteur"))
    assert list(world.argo.workflows.values())[-1].mutex is None


def test_a_queued_run_says_behind_which_and_cancel_works_on_it(world: World) -> None:
    holder, queued = world.recorded_run(), world.recorded_run()
    world.argo.queue_behind(NAMESPACE, _name(queued), _name(holder))
    world.argo.run(
        NAMESPACE, _name(queued)
    ).message = f"Waiting for {NAMESPACE}/Mutex/facteur-plan-x lock. Lock status: 0/1"
    reporter = world.reporter(card_interval_seconds=0)
    assert reporter.nudge(NAMESPACE, _name(queued), deleted=False).body["result"] == "updated"
    card = world.discord.last
    assert (
        card.content
        == f"`/plan` is queued as workflow `{_name(queued)}`, behind `{_name(holder)}`."
    )
    assert card.fields["Queued behind"] == f"`{_name(holder)}`"
    assert card.fields["Queued"].startswith("Waiting for agents/Mutex/")
    # No logs to read yet; Cancel stops it as any run.
    assert card.button_ids == [f"facteur:cancel:{queued.ref}"]
    assert world.buttons().click(click("stop", queued.ref)).result == "stop"
    assert world.argo.actions == [("stop", _name(queued))]
