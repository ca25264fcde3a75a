"""command_route's Buttons on the in-memory ports: Cancel and Retry follow the role policy, act
once per attempt of a run, and say why when they do nothing."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facteur.decisions import render
from facteur.decisions.callback import Report
from facteur.decisions.journey import DispatchResult
from tests.helpers.fakes import CLICKER, NAMESPACE, UI, World, click
from tests.helpers.support import GUILD, ROLE_OTHER, ROLE_PLANNER, USER


@pytest.fixture
def world() -> World:
    # What Cancel does once it acts; test_confirmation.py has the question it asks first.
    return World(confirm_cancel=False)


def _failed(world: World) -> DispatchResult:
    """A run whose failure status_callback reported: what Retry is for."""
    run = world.recorded_run(phase="Failed")
    failed = Report(name=run.workflow_name or "", namespace=NAMESPACE, status="Failed")
    assert world.reporter().report(failed).body["result"] == "reported"
    world.discord.sent.clear()
    return _session(world, run)


def _press(world: World, action: str, run: DispatchResult, **options: Any) -> Any:
    return world.buttons(**options).click(click(action, run.ref))


def _session(world: World, run: DispatchResult) -> DispatchResult:
    found = world.store.get(run.correlation_id)
    assert found is not None
    return found


@pytest.mark.parametrize(("strategy", "operation"), [("stop", "stop"), ("terminate", "terminate")])
def test_cancel_stops_the_run_and_updates_its_message(
    world: World, strategy: str, operation: str
) -> None:
    run = world.recorded_run()
    clicked = click("cancel", run.ref)
    outcome = world.buttons(cancel_strategy=strategy).click(clicked)
    assert (outcome.status, outcome.result) == (200, "cancel")
    assert world.argo.actions == [(operation, run.workflow_name)]
    assert _session(world, run).status == "Cancelling"
    [edit] = world.discord.sent
    assert (edit.route, edit.token) == ("edit", clicked.token)
    assert edit.content == f"`/plan` run `{run.workflow_name}`: cancelled by <@{CLICKER}>."
    # Cancel no longer applies; the link to Argo stays.
    assert edit.button_ids == []
    link = edit.message["components"][0]["components"][0]
    assert link["url"] == f"{UI}/workflows/{NAMESPACE}/{run.workflow_name}"


def test_a_double_click_acts_once(world: World) -> None:
    run, buttons = world.recorded_run(), world.buttons()
    clicked = click("cancel", run.ref)
    # Knative delivering one click three times: it acts once and says so once.
    outcomes = [buttons.click(clicked).result for _ in range(3)]
    assert outcomes == ["cancel", "duplicate", "duplicate"]
    assert world.argo.actions == [("stop", run.workflow_name)]
    assert len(world.discord.sent) == 1
    # Another click on the same button: told that the run is stopping already.
    assert buttons.click(click("cancel", run.ref, user_id=USER)).result == "refused"
    assert world.discord.whispers == [render.ALREADY_STOPPING]
    assert world.argo.actions == [("stop", run.workflow_name)]


@pytest.mark.parametrize(
    ("role_map", "roles", "dm", "denial"),
    [
        ({"plan": [ROLE_PLANNER]}, [ROLE_PLANNER], False, None),
        ({"plan": [ROLE_PLANNER]}, [ROLE_OTHER], False, "caller holds none of the allowed roles"),
        ({"plan": [ROLE_PLANNER]}, None, True, "this command can only be used in a server"),
        # plan:cancel refines the command's own rule, both ways.
        ({"plan": [ROLE_PLANNER], "plan:cancel": [ROLE_OTHER]}, [ROLE_OTHER], False, None),
        (
            {"plan": [ROLE_PLANNER], "plan:cancel": [ROLE_OTHER]},
            [ROLE_PLANNER],
            False,
            "caller holds none of the allowed roles",
        ),
        (
            {"review": [ROLE_PLANNER]},
            [ROLE_PLANNER],
            False,
            "no roles are configured for this command",
        ),
    ],
)
def test_clicks_follow_the_role_policy(
    world: World, role_map: dict, roles: list | None, dm: bool, denial: str | None
) -> None:
    run = world.recorded_run()
    outcome = world.buttons(role_map=role_map).click(click("cancel", run.ref, roles=roles, dm=dm))
    if denial is None:
        assert outcome.result == "cancel"
        return
    assert (outcome.status, outcome.result) == (200, "refused")
    assert world.discord.whispers == [render.click_denied("cancel", "plan", denial)]
    assert world.argo.calls == []
    assert not world.store.claimed("acted", f"{run.correlation_id}:cancel#1")


@pytest.mark.parametrize(
    ("action", "status", "finished", "said"),
    [
        ("cancel", "Succeeded", True, render.RUN_ALREADY_FINISHED),
        ("cancel", "Failed", True, render.RUN_ALREADY_FINISHED),
        ("retry", "Submitted", False, render.ONLY_FAILED_RUNS_RETRY),
        ("retry", "Succeeded", True, render.ONLY_FAILED_RUNS_RETRY),
        ("retry", "Deleted", True, render.ONLY_FAILED_RUNS_RETRY),
        ("retry", "Cancelling", False, render.ONLY_FAILED_RUNS_RETRY),
    ],
)
def test_clicks_that_no_longer_apply_change_nothing(
    world: World, action: str, status: str, finished: bool, said: str
) -> None:
    run = world.recorded_run(status=status, finished_at=time.time() if finished else None)
    outcome = _press(world, action, run)
    assert (outcome.status, outcome.result) == (200, "refused")
    assert world.discord.whispers == [said]
    assert world.argo.calls == []
    assert _session(world, run) == run


@pytest.mark.parametrize("strategy", ["retry", "resubmit"])
def test_retry_reruns_a_failed_run_whose_outcome_is_reported_again(
    world: World, strategy: str
) -> None:
    run = _failed(world)
    outcome = _press(world, "retry", run, retry_strategy=strategy)
    assert (outcome.status, outcome.result) == (200, "retry")
    again = _session(world, run)
    assert (again.status, again.attempt, again.finished_at) == ("Submitted", 2, None)
    assert world.argo.actions == [(strategy, run.workflow_name)]
    name = again.workflow_name or ""
    if strategy == "resubmit":
        assert name != run.workflow_name and name.startswith(f"{run.workflow_name}-")
    else:
        assert name == run.workflow_name
    assert world.store.find_workflow(NAMESPACE, name) == again
    assert world.store.pending(10) == [run.correlation_id]
    [edit] = world.discord.sent
    assert f"retried by <@{CLICKER}> (attempt 2)" in edit.content
    assert edit.button_ids == [f"facteur:cancel:{run.ref}"]
    # The rerun failing again is news: a new attempt, not a duplicate of the first report.
    reporter, report = world.reporter(), Report(name=name, namespace=NAMESPACE, status="Failed")
    assert [reporter.report(report).body["result"] for _ in range(2)] == ["reported", "duplicate"]


def test_each_attempt_gets_its_own_cancel_and_retry(world: World) -> None:
    run, buttons = _failed(world), world.buttons()
    assert buttons.click(click("retry", run.ref)).result == "retry"
    assert buttons.click(click("retry", run.ref)).result == "refused"  # running again
    assert buttons.click(click("cancel", run.ref)).result == "cancel"
    assert world.argo.actions == [("retry", run.workflow_name), ("stop", run.workflow_name)]


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_click_from_another_server_acts_on_nothing(world: World, action: str) -> None:
    # The hole: a member of guild B with an allowed role, holding a leaked reference, could
    # cancel or retry guild A's run. The role map is open to everyone in both servers here.
    other_guild = "100000000000000777"
    run = _failed(world) if action == "retry" else world.recorded_run()
    role_map = {"plan": [GUILD, other_guild]}
    # A multi-guild setup: no discord.guild_id confines facteur to one server.
    buttons = world.buttons(role_map=role_map, guild_id=None)
    foreign = replace(click(action, run.ref, roles=[ROLE_PLANNER]), guild_id=other_guild)
    outcome = buttons.click(foreign)
    assert (outcome.status, outcome.result) == (200, "refused")
    # Told the run is unknown, as for a made-up reference, so it learns nothing.
    assert world.discord.whispers == [render.run_unknown()]
    assert world.argo.calls == []
    assert _session(world, run) == run
    # The same click from the run's own server acts.
    assert buttons.click(click(action, run.ref)).result == action


@pytest.mark.parametrize(
    "ref", ["Unknown12345", "NoWorkflow12"], ids=["unknown-ref", "run-without-workflow"]
)
def test_a_click_on_a_run_facteur_cannot_find_changes_nothing(world: World, ref: str) -> None:
    world.recorded_run(workflow_name=None, ref="NoWorkflow12", phase=None)
    outcome = world.buttons().click(click("cancel", ref))
    assert (outcome.status, outcome.result) == (200, "refused")
    assert world.discord.whispers == [render.run_unknown()]
    # At most a look for a run labelled with that reference (none is), and nothing acted on.
    assert world.argo.actions == []


@pytest.mark.parametrize(
    ("status", "transient"), [(403, False), (404, False), (503, True), (None, True)]
)
def test_argo_refusing_releases_the_click(
    world: World, status: int | None, transient: bool
) -> None:
    run, buttons = world.recorded_run(), world.buttons()
    world.argo.fail("stop", status=status, reason="computer says no", transient=transient)
    outcome = buttons.click(click("cancel", run.ref))
    assert (outcome.status, outcome.result) == (200, "refused")
    assert world.discord.whispers == [render.argo_refused_action("cancel", "computer says no")]
    assert _session(world, run).status == "Submitted"
    # The next click is not taken for a duplicate of the one that did nothing.
    assert buttons.click(click("cancel", run.ref)).result == "cancel"
    assert world.argo.actions == [("stop", run.workflow_name)] * 2


def test_argo_refusing_a_retry_keeps_the_attempt(world: World) -> None:
    run = _failed(world)
    world.argo.set_phase(NAMESPACE, run.workflow_name or "", "Running")  # Argo moved on
    outcome = _press(world, "retry", run)
    assert outcome.result == "refused"
    assert world.discord.whispers[0].startswith(render.argo_refused_action("retry", "Cannot retry"))
    assert _session(world, run).attempt == 1


@pytest.mark.parametrize("failing", ["by_ref", "take"])
def test_redis_down_before_acting_changes_nothing(world: World, failing: str) -> None:
    run = world.recorded_run()
    world.store.fail(failing)
    outcome = world.buttons().click(click("cancel", run.ref))
    assert (outcome.status, outcome.result) == (200, "refused")
    assert world.discord.whispers == [render.store_unavailable_for_click()]
    assert world.argo.calls == []


def test_redis_down_after_acting_still_updates_the_message(world: World) -> None:
    run = world.recorded_run()
    world.store.fail("save")
    outcome = world.buttons().click(click("cancel", run.ref))
    assert outcome.result == "cancel"
    assert world.argo.actions == [("stop", run.workflow_name)]
    assert "cancelled by" in world.discord.last.content
    world.store.recover()
    assert _session(world, run).status == "Submitted"  # the record is what could not change


def test_an_answer_discord_cannot_take_is_redelivered(world: World) -> None:
    run = world.recorded_run(status="Succeeded", finished_at=time.time())
    world.discord.down = True
    assert _press(world, "cancel", run).status == 503
    world.discord.down = False
    assert _press(world, "cancel", run).status == 200
    assert world.discord.whispers == [render.RUN_ALREADY_FINISHED]


def test_a_stale_message_after_acting_is_not_acted_on_again(world: World) -> None:
    run, buttons = world.recorded_run(), world.buttons()
    world.discord.down = True
    # The run was cancelled; only its message is stale. A redelivery must not act twice.
    clicked = click("cancel", run.ref)
    assert buttons.click(clicked).status == 200
    assert buttons.click(clicked).result == "duplicate"
    assert world.argo.actions == [("stop", run.workflow_name)]


def test_without_argo_nothing_changes(world: World) -> None:
    run = world.recorded_run()
    outcome = _press(world, "cancel", run, argo=None)
    assert outcome.result == "refused"
    assert world.discord.whispers == [render.no_argo_configured()]
    assert _session(world, run).status == "Submitted"


def test_without_argo_every_click_is_told_why(world: World) -> None:
    run, buttons = world.recorded_run(), world.buttons(argo=None)
    for _ in range(2):
        buttons.click(click("cancel", run.ref))
    assert world.discord.whispers == [render.no_argo_configured()] * 2
    assert not world.store.claimed("acted", f"{run.correlation_id}:cancel#1")


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_an_action_that_fails_unexpectedly_releases_its_claim(
    world: World, action: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _failed(world) if action == "retry" else world.recorded_run()
    buttons = world.buttons()
    operation = "stop" if action == "cancel" else "retry"
    real = getattr(world.argo, operation)
    monkeypatch.setattr(world.argo, operation, _raises(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):  # to the guard: a 500, redelivered
        buttons.click(click(action, run.ref))
    assert not world.store.claimed("acted", f"{run.correlation_id}:{action}#{run.attempt}")
    # The redelivery (or the next click) acts.
    monkeypatch.setattr(world.argo, operation, real)
    assert buttons.click(click(action, run.ref)).result == action
    assert world.argo.actions == [(operation, run.workflow_name)]


def test_a_click_while_another_delivery_acts_asks_for_a_redelivery(world: World) -> None:
    run, buttons = world.recorded_run(), world.buttons()
    clicked = click("cancel", run.ref)
    # A copy of this click, being handled now.
    assert world.store.take("clicked", clicked.interaction_id).value == "taken"
    outcome = buttons.click(clicked)
    assert (outcome.status, outcome.result) == (503, "in-progress")
    assert world.argo.calls == [] and world.discord.sent == []
    world.store.finish("clicked", clicked.interaction_id)  # it was handled: this one is a copy
    assert buttons.click(clicked).result == "duplicate"
    assert world.discord.sent == []


def test_a_click_while_another_persons_acts_waits_then_is_told(world: World) -> None:
    run, buttons = world.recorded_run(), world.buttons()
    ident = f"{run.correlation_id}:cancel#1"
    assert world.store.take("acted", ident).value == "taken"  # another person's click, acting
    clicked = click("cancel", run.ref)
    assert (buttons.click(clicked).status, world.argo.calls) == (503, [])
    world.store.finish("acted", ident)
    # Redelivered once the other click acted: told that the run is stopping, not acted on again.
    assert buttons.click(clicked).result == "refused"
    assert world.discord.whispers == [render.ALREADY_STOPPING]


def test_a_click_whose_holder_crashed_acts_once_its_lease_ends(world: World) -> None:
    run, buttons = world.recorded_run(), world.buttons()
    # A copy took the claim and died before acting; its lease (here none at all) ends.
    world.store.take("acted", f"{run.correlation_id}:cancel#1", 0.0)
    clicked = click("cancel", run.ref)
    assert buttons.click(clicked).result == "cancel"
    assert buttons.click(clicked).result == "duplicate"
    assert world.argo.actions == [("stop", run.workflow_name)]


def _raises(error: Exception) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise error

    return call


_OTHER_GUILD = "100000000000000777"
_ROLES = st.sampled_from([GUILD, _OTHER_GUILD, ROLE_PLANNER, ROLE_OTHER])
_RULES = st.dictionaries(
    st.sampled_from(["plan", "plan:cancel", "plan:retry", "implement:cancel"]),
    st.lists(_ROLES, min_size=1, max_size=2, unique=True),
)


@settings(max_examples=150, deadline=None)
@given(
    role_map=_RULES,
    action=st.sampled_from(["cancel", "retry"]),
    where=st.sampled_from(["own", "other", "dm"]),
    roles=st.lists(st.sampled_from([ROLE_PLANNER, ROLE_OTHER]), max_size=2, unique=True),
)
def test_no_click_acts_without_its_server_and_its_rule(
    role_map: dict[str, list[str]], action: str, where: str, roles: list[str]
) -> None:
    world = World(confirm_cancel=False)
    run = _failed(world) if action == "retry" else world.recorded_run()
    pressed = click(action, run.ref, roles=roles, dm=where == "dm")
    if where == "other":
        pressed = replace(pressed, guild_id=_OTHER_GUILD)
    # No discord.guild_id: facteur serves every server its role map names.
    outcome = world.buttons(role_map=role_map, guild_id=None).click(pressed)
    rule = role_map.get(f"plan:{action}", role_map.get("plan", []))
    # The clicker's server opens the rule to everyone in it: GUILD at home, _OTHER_GUILD abroad.
    allowed = where == "own" and (GUILD in rule or any(role in rule for role in roles))
    assert (outcome.result == action) is allowed
    assert bool(world.argo.actions) is allowed
