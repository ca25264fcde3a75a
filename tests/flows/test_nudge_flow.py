"""Reporter.nudge on the in-memory ports: an ApiServerSource event only makes facteur read the run
from Argo, and report it through the tick's path once Argo shows it ended, so a nudge, a callback
and a tick give one outcome per attempt between them."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.callback import Failure, Report
from facteur.decisions.journey import DispatchResult
from facteur.decisions.workflow import NodeState
from tests.helpers.chain import journey
from tests.helpers.fakes import NAMESPACE, MemoryStore, World, click


@pytest.fixture
def world() -> World:
    return World()


def _name(run: DispatchResult) -> str:
    return run.workflow_name or ""


def _result(outcome: Any) -> tuple[int, str]:
    return outcome.status, outcome.body["result"]


def _callback(run: DispatchResult, status: str = "Succeeded") -> Report:
    return Report(name=_name(run), namespace=NAMESPACE, status=status)


def test_a_nudge_for_an_ended_run_reports_it_once(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.argo.set_phase(NAMESPACE, _name(run), "Failed", message="boom")
    outcome = reporter.nudge(NAMESPACE, _name(run), deleted=False)
    assert outcome.status == 200
    assert outcome.body == {"result": "reported", "status": "Failed", "via": "interaction"}
    assert [sent.content for sent in world.discord.sent] == ["`/plan` finished: **Failed**"]
    assert world.store.pending(10) == []
    # Knative sends an update for every change the controller makes: the next ones post nothing.
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "duplicate")
    assert len(world.discord.sent) == 1


def test_nudge_then_callback_then_tick_give_one_outcome(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter(confirm=True)
    world.argo.set_phase(NAMESPACE, _name(run), "Succeeded")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "reported")
    assert _result(reporter.report(_callback(run))) == (200, "duplicate")
    reporter.tick()
    assert len(world.discord.sent) == 1


def test_callback_then_nudge_give_one_outcome(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter(confirm=True)
    world.argo.set_phase(NAMESPACE, _name(run), "Succeeded")
    assert _result(reporter.report(_callback(run))) == (200, "reported")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "duplicate")
    # Even when the record of the outcome was lost: the claim holds the attempt's one outcome.
    other = world.recorded_run()
    world.argo.set_phase(NAMESPACE, _name(other), "Succeeded")
    world.store.fail("save")
    reporter.report(_callback(other))
    world.store.recover()
    assert _result(reporter.nudge(NAMESPACE, _name(other), deleted=False)) == (200, "duplicate")
    assert len(world.discord.sent) == 2


@pytest.mark.parametrize("phase", ["Running", "Pending", None])
def test_a_nudge_for_a_run_argo_shows_unended_shows_nothing(
    world: World, phase: str | None
) -> None:
    # A forged "it ended" shows nothing of the kind: only Argo's word is shown, and Argo says
    # the run goes on, so its card says that, and no outcome is posted.
    run, reporter = world.recorded_run(), world.reporter()
    world.argo.set_phase(NAMESPACE, _name(run), phase, entry="Succeeded")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "updated")
    [card] = world.discord.sent
    assert "finished" not in card.content and "Succeeded" not in str(card.message)
    assert card.fields["Phase"] == (phase or "Pending")
    assert world.store.pending(10) == [run.correlation_id]
    assert world.argo.actions == []


def test_a_delete_nudge_confirmed_by_argos_404_reports_deleted_once(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.argo.delete(NAMESPACE, _name(run))
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=True)) == (200, "reported")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=True)) == (200, "duplicate")
    reporter.tick()
    assert [sent.content for sent in world.discord.sent] == ["`/plan` finished: **Deleted**"]
    assert world.discord.last.embed["description"] == render.DELETED_BEFORE_OUTCOME
    found = world.store.get(run.correlation_id)
    assert found is not None and found.status == "Deleted"


@pytest.mark.parametrize("phase", ["Running", "Succeeded"])
def test_a_delete_nudge_while_argo_still_has_the_run_does_nothing(world: World, phase: str) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.argo.set_phase(NAMESPACE, _name(run), phase)
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=True)) == (202, "unconfirmed")
    assert world.discord.sent == []
    assert world.store.pending(10) == [run.correlation_id]


def test_a_change_nudge_for_a_run_argo_no_longer_has_is_left_to_the_tick(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.argo.delete(NAMESPACE, _name(run))
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (202, "unconfirmed")
    assert world.discord.sent == []
    assert reporter.tick().body["reported"] == 1


def test_a_nudge_for_a_run_redis_forgot_rebuilds_it_from_argo(world: World) -> None:
    # Through command_route and workflow_submit, so the run carries what they write on it.
    trip = journey("plan")
    assert [o.result for o in world.run(trip)] == ["requested", "submitted"]
    name = f"plan-{trip.call.interaction_id}"
    world.store.flush()
    world.discord.sent.clear()
    reporter = world.reporter()
    world.argo.set_phase(NAMESPACE, name, "Running")
    assert _result(reporter.nudge(NAMESPACE, name, deleted=False)) == (202, "running")
    assert world.store.keys() == set()  # an unended run is not even rebuilt
    world.argo.set_phase(NAMESPACE, name, "Succeeded")
    outcome = reporter.nudge(NAMESPACE, name, deleted=False)
    assert _result(outcome) == (200, "reported")
    assert outcome.body["via"] == "channel"  # the token went with Redis
    assert [sent.content for sent in world.discord.sent] == ["`/plan` finished: **Succeeded**"]
    assert _result(reporter.nudge(NAMESPACE, name, deleted=False)) == (200, "duplicate")


def test_a_nudge_for_a_run_facteur_does_not_know_is_ignored(world: World) -> None:
    world.argo.add_workflow(NAMESPACE, "someone-elses", "Succeeded")
    reporter = world.reporter()
    assert _result(reporter.nudge(NAMESPACE, "someone-elses", deleted=False)) == (202, "ignored")
    assert _result(reporter.nudge(NAMESPACE, "never-was", deleted=True)) == (202, "ignored")
    assert world.discord.sent == []
    assert world.store.keys() == set()


def test_a_nudge_for_another_namespace_or_without_argo_reads_nothing(world: World) -> None:
    run = world.recorded_run(phase="Succeeded")
    assert _result(world.reporter().nudge("default", _name(run), deleted=False)) == (202, "ignored")
    no_argo = world.reporter(argo=None)
    assert _result(no_argo.nudge(NAMESPACE, _name(run), deleted=False)) == (202, "ignored")
    assert world.argo.calls == []
    assert world.discord.sent == []


@pytest.mark.parametrize("down", ["argo", "store", "discord"])
def test_trouble_defers_to_the_tick(world: World, down: str) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.argo.set_phase(NAMESPACE, _name(run), "Succeeded")
    if down == "argo":
        world.argo.fail("get_workflow")
    elif down == "store":
        world.store.fail("find_workflow")
    else:
        world.discord.fail()
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (202, "deferred")
    assert world.discord.sent == []
    world.argo.recover()
    world.store.recover()
    assert reporter.tick().body["reported"] == 1


# -- the live card -----------------------------------------------------------------------------


def _progress(world: World, run: DispatchResult, progress: str, phase: str = "Running") -> None:
    world.argo.set_phase(NAMESPACE, _name(run), phase)
    world.argo.run(NAMESPACE, _name(run)).progress = progress


def test_a_running_run_shows_its_progress_on_its_message(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    _progress(world, run, "3/7")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "updated")
    [card] = world.discord.sent
    assert card.route == "edit" and card.content.startswith("`/plan` is running")
    assert card.fields["Progress"] == "3/7 steps"
    assert card.button_ids == [f"facteur:cancel:{run.ref}", f"facteur:logs:{run.ref}"]
    # The same card again sends nothing: within the card interval it is not even read again,
    # and after it, the card read is the one already sent.
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "coalesced")
    unpaced = world.reporter(card_interval_seconds=0)
    assert _result(unpaced.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "unchanged")
    assert len(world.discord.sent) == 1


def test_edits_are_paced_and_the_outcome_is_not() -> None:
    now = [1000.0]
    world = World(store=MemoryStore(clock=lambda: now[0]))
    run, reporter = world.recorded_run(), world.reporter(card_interval_seconds=5)
    for step in ("1/7", "2/7", "3/7"):
        _progress(world, run, step)
        reporter.nudge(NAMESPACE, _name(run), deleted=False)
    # Three changes within five seconds: one edit.
    assert [sent.fields["Progress"] for sent in world.discord.sent] == ["1/7 steps"]
    now[0] += 6
    _progress(world, run, "4/7")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "updated")
    # The end goes out at once, however recent the last edit.
    world.argo.set_phase(NAMESPACE, _name(run), "Succeeded")
    assert _result(reporter.nudge(NAMESPACE, _name(run), deleted=False)) == (200, "reported")
    assert [s.content for s in world.discord.sent][-1] == "`/plan` finished: **Succeeded**"


def test_a_queued_run_says_what_it_waits_for(world: World) -> None:
    run = world.recorded_run()
    world.argo.set_phase(
        NAMESPACE, _name(run), "Pending", message="Waiting for agents/Mutex/deploy"
    )
    world.reporter().nudge(NAMESPACE, _name(run), deleted=False)
    [card] = world.discord.sent
    assert card.content.startswith("`/plan` is queued")
    assert card.fields["Queued"] == "Waiting for agents/Mutex/deploy"


def test_after_the_token_the_card_edits_the_same_message(world: World) -> None:
    run = world.recorded_run(age=3600, message_id="1200000000000000777")
    _progress(world, run, "5/7")
    world.reporter().nudge(NAMESPACE, _name(run), deleted=False)
    [card] = world.discord.sent
    assert (card.route, card.message_id) == ("message", "1200000000000000777")


def test_a_cancelled_runs_message_is_not_turned_back_into_a_live_card(world: World) -> None:
    run = world.recorded_run()
    assert world.buttons().click(click("stop", run.ref)).result == "stop"
    sent = len(world.discord.sent)
    _progress(world, run, "4/7")
    assert _result(world.reporter().nudge(NAMESPACE, _name(run), deleted=False)) == (
        202,
        "running",
    )
    assert len(world.discord.sent) == sent


def test_the_card_names_the_steps_running_now(world: World) -> None:
    run = world.recorded_run()
    _progress(world, run, "2/7")
    world.argo.run(NAMESPACE, _name(run)).nodes = [
        NodeState("n0", _name(run), "Steps", "Running"),
        NodeState("n1", "checkout", "Pod", "Succeeded"),
        NodeState("n2", "build", "Pod", "Running"),
        NodeState("n3", "lint", "Pod", "Running"),
    ]
    world.reporter().nudge(NAMESPACE, _name(run), deleted=False)
    [card] = world.discord.sent
    assert card.fields["Running now"] == "`build`, `lint`"


def test_a_failed_step_goes_to_the_runs_thread_as_it_fails_and_once(world: World) -> None:
    run = world.recorded_run()
    thread_id = world.discord.start_thread("800000000000000200", "1200000000000000777", "/plan")
    world.store.save(run.model_copy(update={"thread_id": thread_id}))
    reporter = world.reporter(card_interval_seconds=0)
    failing = NodeState("n2", "build", "Pod", "Failed", "exit code 2")
    world.argo.run(NAMESPACE, _name(run)).nodes = [failing]
    for step in ("3/7", "4/7"):
        _progress(world, run, step)
        reporter.nudge(NAMESPACE, _name(run), deleted=False)
    thread = world.discord.threads[thread_id]
    assert [m["content"] for m in thread.messages] == ["Failed steps:\n**build**: exit code 2"]
    # The end names it again: the thread is told nothing twice, and is archived.
    world.argo.set_phase(NAMESPACE, _name(run), "Failed")
    reporter.report(Report(_name(run), NAMESPACE, "Failed", failures=[Failure("build", "x")]))
    assert len(thread.messages) == 1 and thread.archived
