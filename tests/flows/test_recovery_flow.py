"""Redis loses its data while runs are pending (flushed, or a new empty instance): on the
in-memory ports, every outcome is still told (in the channel: the tokens are gone), once, and
the buttons still act, role-checked, all from what workflow_submit wrote on each workflow."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from facteur.decisions import render
from facteur.decisions.callback import Report
from facteur.decisions.journey import Journey
from tests.helpers.chain import journey
from tests.helpers.fakes import NAMESPACE, UI, World, click
from tests.helpers.support import CHANNEL, GUILD, ROLE_OTHER, USER

RUNS = 20


@pytest.fixture
def world() -> World:
    # What Cancel does once it acts; test_confirmation.py has the question it asks first.
    return World(confirm_cancel=False)


def _submitted(world: World, count: int = 1) -> list[str]:
    """`count` /plan commands through command_route and workflow_submit: their workflows."""
    names = []
    for _ in range(count):
        trip: Journey = journey("plan")
        assert [o.result for o in world.run(trip)] == ["requested", "submitted"]
        names.append(f"plan-{trip.call.interaction_id}")
    world.argo.calls.clear()  # what follows the flush is what the tests look at
    return names


def _exit_handler(world: World, name: str, status: str) -> str:
    """What the exit handler posts while it runs: Argo shows the entrypoint ended."""
    world.argo.set_phase(NAMESPACE, name, "Running", entry=status)
    report = Report(name=name, namespace=NAMESPACE, status=status)
    outcome = world.reporter(sleep=lambda _: None, confirm=True).report(report)
    return str(outcome.body["result"])


def _told(world: World) -> Counter[str]:
    """How many outcome messages each workflow got, by the workflow its embed links to."""
    prefix = f"{UI}/workflows/{NAMESPACE}/"
    return Counter(
        sent.embed["url"].removeprefix(prefix)
        for sent in world.discord.sent
        if "finished:" in sent.content
    )


def test_every_pending_run_is_still_told_once_after_a_flush(world: World) -> None:
    names = _submitted(world, RUNS)
    assert len(world.store.pending(100)) == RUNS
    world.store.flush()
    world.discord.sent.clear()
    reporter = world.reporter()

    # Exit handlers of the first five report before any tick: the callback rebuilds the session.
    assert [_exit_handler(world, name, "Succeeded") for name in names[:5]] == ["reported"] * 5
    # A tick re-adds the runs still going that Redis forgot (not the five just told).
    first = reporter.tick().body
    assert (first["recovered"], first["reported"]) == (RUNS - 5, 0)
    assert len(world.store.pending(100)) == RUNS - 5
    # Five more end with their exit handler; five fail; five are terminated (no exit handler).
    assert [_exit_handler(world, name, "Failed") for name in names[5:10]] == ["reported"] * 5
    for name in names[10:15]:
        world.argo.set_phase(NAMESPACE, name, "Failed", message="exit code 1")
    for name in names[15:]:
        world.argo.set_phase(NAMESPACE, name, "Failed", message="Stopped with strategy 'Terminate'")
    for name in names[:10]:
        world.argo.set_phase(NAMESPACE, name, "Succeeded")
    assert reporter.tick().body["reported"] == 10

    # Everything arrives again: late callbacks, more ticks. Nothing is told twice.
    assert {_exit_handler(world, name, "Succeeded") for name in names} == {"duplicate"}
    again = reporter.tick().body
    assert (again["recovered"], again["reported"], again["checked"]) == (0, 0, 0)
    assert _told(world) == Counter({name: 1 for name in names})
    # In the channel, naming the user: no token survived the flush, and none was written.
    assert {(s.route, s.channel_id, s.mention_user_id) for s in world.discord.sent} == {
        ("channel", CHANNEL, USER)
    }
    assert world.store.pending(100) == []
    for name in names:
        session = world.store.find_workflow(NAMESPACE, name)
        assert session is not None and session.finished_at is not None
        assert world.store.token(session.correlation_id) is None


def test_ticks_alone_recover_a_bounded_number_each(world: World) -> None:
    names = _submitted(world, RUNS)
    world.store.flush()
    reporter = world.reporter(recover_batch=8)
    assert [reporter.tick().body["recovered"] for _ in range(4)] == [8, 8, 4, 0]
    for name in names:
        world.argo.set_phase(NAMESPACE, name, "Succeeded")
    assert reporter.tick().body["reported"] == RUNS
    assert set(_told(world).values()) == {1} and len(_told(world)) == RUNS
    # One list per tick, each asking for facteur's unfinished runs only.
    assert [call for call in world.argo.calls if call[0] == "list_unfinished"] == [
        ("list_unfinished", NAMESPACE, "")
    ] * 5


def _cancel_ref(world: World) -> tuple[str, str]:
    [name] = _submitted(world)
    [cancel] = world.discord.last.button_ids
    return name, cancel.rpartition(":")[2]


def test_a_cancel_after_the_flush_still_acts_and_is_still_role_checked(world: World) -> None:
    name, ref = _cancel_ref(world)
    assert world.argo.run(NAMESPACE, name).labels["facteur.dev/ref"] == ref
    world.store.flush()
    buttons = world.buttons()

    denied = buttons.click(click("cancel", ref, roles=[ROLE_OTHER]))
    assert (denied.result, world.argo.actions) == ("refused", [])
    assert "You can't cancel `/plan` runs" in world.discord.whispers[-1]
    world.store.flush()
    foreign = buttons.click(replace(click("cancel", ref), guild_id="800000000000000002"))
    assert (foreign.result, world.discord.whispers[-1]) == ("refused", render.run_unknown())

    world.store.flush()
    assert buttons.click(click("cancel", ref)).result == "cancel"
    assert world.argo.actions == [("stop", name)]
    session = world.store.by_ref(ref)
    assert session is not None and (session.status, session.guild_id) == ("Cancelling", GUILD)
    # Rebuilt and saved: the next click finds the same run in Redis, already stopping.
    assert buttons.click(click("cancel", ref)).result == "refused"
    assert world.discord.whispers[-1] == render.ALREADY_STOPPING
    assert [c[0] for c in world.argo.calls].count("find_by_ref") == 3


def test_a_retry_after_the_flush_retries_the_failed_run(world: World) -> None:
    [name] = _submitted(world)
    world.argo.set_phase(NAMESPACE, name, "Failed")
    assert world.reporter().tick().body["reported"] == 1
    retry, _logs = world.discord.last.button_ids
    world.store.flush()
    assert world.buttons().click(click("retry", retry.rpartition(":")[2])).result == "retry"
    assert world.argo.actions == [("retry", name)]
    session = world.store.find_workflow(NAMESPACE, name)
    assert session is not None and (session.attempt, session.finished_at) == (2, None)


def test_a_workflow_without_facteurs_labels_is_still_ignored(world: World) -> None:
    world.argo.add_workflow(NAMESPACE, "plan-1000000000000000042", "Running", entry="Succeeded")
    assert _exit_handler(world, "plan-1000000000000000042", "Succeeded") == "ignored"
    assert world.reporter().tick().body["recovered"] == 0
    assert world.discord.sent == [] and world.store.keys() == set()


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("annotations", "facteur.dev/channel-id", "#general"),
        ("annotations", "facteur.dev/user-id", "everyone"),
        ("labels", "facteur.dev/correlation-id", "another-run"),
    ],
    ids=["channel", "user", "label-disagrees"],
)
def test_a_malformed_annotation_is_refused(world: World, where: str, key: str, value: str) -> None:
    name, ref = _cancel_ref(world)
    getattr(world.argo.run(NAMESPACE, name), where)[key] = value
    world.store.flush()
    world.discord.sent.clear()
    assert world.reporter().tick().body["recovered"] == 0
    assert _exit_handler(world, name, "Succeeded") == "ignored"
    assert world.buttons().click(click("cancel", ref)).result == "refused"
    assert world.discord.whispers == [render.run_unknown()]
    # Nothing of the run is kept: only that this click was answered, so a redelivery is not.
    assert world.argo.actions == []
    stored = world.store.keys()
    assert {key.partition(":")[0] for key in stored} == {"clicked"}


def test_only_facteurs_namespace_and_application_are_rebuilt(world: World) -> None:
    [name] = _submitted(world)
    world.store.flush()
    elsewhere = world.reporter(namespace="other", sleep=lambda _: None, confirm=True)
    world.argo.set_phase(NAMESPACE, name, "Running", entry="Succeeded")
    report = Report(name=name, namespace=NAMESPACE, status="Succeeded")
    assert elsewhere.report(report).body["result"] == "ignored"
    assert world.reporter(application_id="800000000000000301").report(report).body["result"] == (
        "ignored"
    )
    assert world.discord.sent[1:] == []  # the "Started" reply only


def test_argo_down_during_the_callback_defers_to_the_ticks(world: World) -> None:
    [name] = _submitted(world)
    world.store.flush()
    world.argo.fail("get_workflow", status=503)
    assert _exit_handler(world, name, "Succeeded") == "deferred"
    reporter = world.reporter()
    assert reporter.tick().body["recovered"] == 1  # the exit handler still running
    world.argo.set_phase(NAMESPACE, name, "Succeeded")
    assert reporter.tick().body["reported"] == 1
    assert _told(world) == Counter({name: 1})


def test_a_redelivered_submit_keeps_the_reference_the_workflow_carries(world: World) -> None:
    trip = journey("plan")
    assert world.router().handle(trip).result == "requested"
    [requested] = world.requested()
    name = f"plan-{trip.call.interaction_id}"
    world.discord.down = True  # the reply fails: Knative redelivers
    assert world.submitter().handle(requested).status == 503
    world.discord.down = False
    assert world.submitter().handle(requested).result == "already-submitted"
    labelled = world.argo.run(NAMESPACE, name).labels["facteur.dev/ref"]
    session = world.store.find_workflow(NAMESPACE, name)
    assert session is not None and session.ref == labelled
    assert world.discord.last.button_ids == [f"facteur:cancel:{labelled}"]
    notes = world.argo.run(NAMESPACE, name).annotations
    assert notes["facteur.dev/application-id"] == trip.call.application_id
    assert float(notes["facteur.dev/received-at"]) == pytest.approx(trip.received_at, abs=0.001)
