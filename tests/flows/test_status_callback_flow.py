"""status_callback's Reporter on the in-memory ports: one outcome per attempt of a run, from
exit-handler callbacks that Argo confirms or from reconciliation ticks, and nothing lost to a
Discord or Redis outage."""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.callback import Failure, Report
from facteur.decisions.journey import DispatchResult
from facteur.decisions.render import GREEN, ORANGE, RED
from tests.helpers.fakes import NAMESPACE, UI, MemoryStore, World, click
from tests.helpers.support import CHANNEL, USER

DEFERRED = (202, "deferred")


@pytest.fixture
def world() -> World:
    return World()


def _report(run: DispatchResult, status: str = "Succeeded", **extra: Any) -> Report:
    return Report(name=run.workflow_name or "", namespace=NAMESPACE, status=status, **extra)


def _finished(world: World, run: DispatchResult, phase: str | None, **status: Any) -> None:
    world.argo.set_phase(NAMESPACE, run.workflow_name or "", phase, **status)


def _results(outcome: Any) -> tuple[int, str]:
    return outcome.status, outcome.body["result"]


def _recorded(world: World, run: DispatchResult) -> DispatchResult:
    found = world.store.get(run.correlation_id)
    assert found is not None
    return found


# -- callbacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "colour", "retry"),
    [("Succeeded", GREEN, False), ("Failed", RED, True), ("Error", ORANGE, True)],
)
def test_a_final_status_edits_the_reply_once(
    world: World, status: str, colour: int, retry: bool
) -> None:
    run = world.recorded_run()
    outcome = world.reporter().report(_report(run, status, duration=75.0))
    assert outcome.status == 200
    assert outcome.body == {"result": "reported", "status": status, "via": "interaction"}
    [edit] = world.discord.sent
    assert (edit.route, edit.token) == ("edit", "itok-SECRET")
    assert edit.content == f"`/plan` finished: **{status}**"
    assert edit.embed["color"] == colour
    assert edit.embed["url"] == f"{UI}/workflows/{NAMESPACE}/{run.workflow_name}"
    assert edit.fields["Duration"] == "1 min 15 s"
    assert edit.embed["footer"] == {"text": f"correlation {run.correlation_id}"}
    # Who asked, pinging nobody (the message's allowed_mentions), and when it ended.
    assert edit.fields["Requested by"] == f"<@{USER}>"
    assert edit.fields["Ended"].startswith("<t:") and "timestamp" in edit.embed
    failed = [f"facteur:retry:{run.ref}", f"facteur:logs:{run.ref}"]
    assert edit.button_ids == (failed if retry else [])
    recorded = _recorded(world, run)
    assert recorded.status == status and recorded.finished_at is not None
    assert world.store.pending(10) == []


def test_failed_nodes_are_listed(world: World) -> None:
    run = world.recorded_run()
    failures = [Failure("build", "exit code 2"), Failure("test", "timeout")]
    world.reporter().report(_report(run, "Failed", failures=failures, message="boom"))
    sent = world.discord.last
    assert (sent.fields["Failed: build"], sent.fields["Failed: test"]) == ("exit code 2", "timeout")
    assert sent.embed["description"] == "boom"


@pytest.mark.parametrize(
    ("statuses", "results"),
    [
        (["Succeeded"] * 3, ["reported", "duplicate", "duplicate"]),
        (["Failed", "Failed"], ["reported", "duplicate"]),
        # One outcome per attempt, whatever a later report says.
        (["Failed", "Error"], ["reported", "duplicate"]),
        (["Failed", "Succeeded", "Error"], ["reported", "duplicate", "duplicate"]),
    ],
)
def test_redelivered_callbacks_report_once_per_attempt(
    world: World, statuses: list[str], results: list[str]
) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    assert [reporter.report(_report(run, s)).body["result"] for s in statuses] == results
    assert len(world.discord.sent) == results.count("reported")


def test_an_unknown_workflow_is_ignored_with_202(world: World) -> None:
    outcome = world.reporter().report(Report(name="not-ours", namespace=NAMESPACE, status="Failed"))
    assert _results(outcome) == (202, "ignored")
    assert world.discord.sent == []
    assert world.store.calls == ["find_workflow"]


@pytest.mark.parametrize(
    ("age", "token", "reject"),
    [(3600, None, False), (60, "itok-SECRET", True), (60, None, False)],
    ids=["expired", "rejected", "no-token-kept"],
)
def test_without_a_live_token_the_outcome_is_posted_in_the_channel(
    world: World, age: int, token: str | None, reject: bool
) -> None:
    run = world.recorded_run(age=age, token=token)
    if reject:
        world.discord.reject_token()
    outcome = world.reporter().report(_report(run))
    assert outcome.body["via"] == "channel"
    [post] = world.discord.sent
    assert (post.route, post.channel_id, post.mention_user_id) == ("channel", CHANNEL, USER)


def test_discord_down_defers_to_the_next_tick(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.discord.down = True
    assert _results(reporter.report(_report(run, "Failed"))) == DEFERRED
    assert not world.store.claimed("reported", f"{NAMESPACE}/{run.workflow_name}:Failed#1")
    assert world.store.pending(10) == [run.correlation_id]
    world.discord.down = False
    _finished(world, run, "Failed")
    assert reporter.tick().body["reported"] == 1
    assert [sent.content for sent in world.discord.sent] == ["`/plan` finished: **Failed**"]
    assert world.store.pending(10) == []


@pytest.mark.parametrize("failing", ["find_workflow", "take"])
def test_redis_down_before_claiming_defers_to_the_next_tick(world: World, failing: str) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.store.fail(failing)
    assert _results(reporter.report(_report(run))) == DEFERRED
    assert world.discord.sent == []
    world.store.recover()
    _finished(world, run, "Succeeded")
    assert reporter.tick().body["reported"] == 1
    assert len(world.discord.sent) == 1


def test_redis_failing_after_the_claim_still_lets_the_next_tick_report(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.store.fail("token")
    assert _results(reporter.report(_report(run))) == DEFERRED
    world.store.recover()
    _finished(world, run, "Succeeded")
    reporter.tick()
    assert len(world.discord.sent) == 1


def test_a_report_whose_holder_crashed_is_taken_over_once_its_lease_ends(world: World) -> None:
    # A delivery took the report's lease and died before posting: nothing is marked done.
    run, reporter = world.recorded_run(), world.reporter()
    key = f"{NAMESPACE}/{run.workflow_name}#1"
    assert world.store.take("reported", key, lease_seconds=0.05).value == "taken"
    assert _results(reporter.report(_report(run))) == DEFERRED  # the lease is still live
    assert world.discord.sent == []
    time.sleep(0.1)
    assert _results(reporter.report(_report(run))) == (200, "reported")
    assert _results(reporter.report(_report(run))) == (200, "duplicate")
    assert len(world.discord.sent) == 1


def test_a_report_that_could_not_be_recorded_is_not_posted_again(world: World) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.store.fail("save")
    assert _results(reporter.report(_report(run))) == (200, "reported")
    world.store.recover()
    assert world.store.pending(10) == [run.correlation_id]  # the finish was not recorded
    _finished(world, run, "Succeeded")
    tick = reporter.tick()
    assert (tick.body["reported"], tick.body["outcomes"]) == (1, [f"{run.workflow_name}:duplicate"])
    assert len(world.discord.sent) == 1
    assert world.store.pending(10) == []


def test_a_reported_run_deleted_before_it_was_recorded_is_not_reported_again(
    world: World,
) -> None:
    run, reporter = world.recorded_run(), world.reporter()
    world.store.fail("save")
    reporter.report(_report(run))
    world.store.recover()
    world.argo.delete(NAMESPACE, run.workflow_name or "")
    reporter.tick()
    assert [sent.content for sent in world.discord.sent] == ["`/plan` finished: **Succeeded**"]


# -- outcomes come from Argo, not from whoever calls -----------------------------------------------


def _confirming(world: World, **overrides: Any) -> Any:
    slept: list[float] = []
    options = {"confirm": True, "sleep": slept.append} | overrides
    return world.reporter(**options), slept


@pytest.mark.parametrize("claimed", ["Succeeded", "Failed", "Error"])
def test_a_status_argo_does_not_show_is_not_posted(world: World, claimed: str) -> None:
    # The hole: anyone with the callback token could report success for a run still running.
    run = world.recorded_run(phase="Running")
    reporter, slept = _confirming(world)
    assert _results(reporter.report(_report(run, claimed))) == (202, "unconfirmed")
    assert world.discord.sent == []
    # Argo was asked again, briefly, in case the exit handler beat Argo's own write.
    assert len(slept) == reporter.confirm_attempts - 1
    # Left to the tick, which reports what Argo shows once the run ends.
    assert world.store.pending(10) == [run.correlation_id]
    _finished(world, run, "Failed")
    assert reporter.tick().body["reported"] == 1
    assert [sent.content for sent in world.discord.sent] == ["`/plan` finished: **Failed**"]


def test_a_final_status_other_than_argos_is_not_posted(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    reporter, slept = _confirming(world)
    assert _results(reporter.report(_report(run, "Succeeded"))) == (202, "unconfirmed")
    # A final status in Argo will not change by waiting.
    assert slept == []
    assert world.discord.sent == []


@pytest.mark.parametrize("entry", ["Succeeded", "Failed", "Error"])
def test_the_exit_handlers_report_is_confirmed_by_the_entrypoint(world: World, entry: str) -> None:
    # While the exit handler runs, the workflow is Running and its entrypoint has ended.
    run = world.recorded_run(phase=None)
    world.argo.add_workflow(NAMESPACE, run.workflow_name or "", "Running", entry=entry)
    reporter, slept = _confirming(world)
    assert _results(reporter.report(_report(run, entry))) == (200, "reported")
    assert slept == []


def test_a_report_that_beats_argos_write_is_confirmed_on_a_second_read(world: World) -> None:
    run = world.recorded_run(phase="Running")

    def argo_catches_up(_: float) -> None:
        _finished(world, run, "Running", entry="Failed")

    reporter, _ = _confirming(world, sleep=argo_catches_up)
    assert _results(reporter.report(_report(run, "Failed"))) == (200, "reported")
    assert [op for op, _, _ in world.argo.calls] == ["get_workflow", "get_workflow"]


def test_argo_unreachable_leaves_the_report_to_the_tick(world: World) -> None:
    run = world.recorded_run(phase="Running")
    world.argo.fail("get_workflow", status=None)
    reporter, _ = _confirming(world)
    assert _results(reporter.report(_report(run, "Failed"))) == DEFERRED
    assert world.discord.sent == []
    assert world.store.pending(10) == [run.correlation_id]


def test_a_retried_run_reports_a_new_outcome(world: World) -> None:
    run = world.recorded_run(phase="Running")
    reporter, _ = _confirming(world)
    _finished(world, run, "Failed")
    assert _results(reporter.report(_report(run, "Failed"))) == (200, "reported")
    # The same attempt again: a duplicate; under another status, Argo does not show it.
    assert _results(reporter.report(_report(run, "Failed"))) == (200, "duplicate")
    assert _results(reporter.report(_report(run, "Error"))) == (202, "unconfirmed")
    # A Retry click starts attempt 2; its outcome is reported.
    assert world.buttons().click(click("retry", run.ref)).result == "retry"
    _finished(world, run, "Succeeded")
    assert _results(reporter.report(_report(run, "Succeeded"))) == (200, "reported")
    outcomes = [sent.content for sent in world.discord.sent if "finished" in sent.content]
    assert outcomes == ["`/plan` finished: **Failed**", "`/plan` finished: **Succeeded**"]


# -- reconciliation ticks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "reported", "content"),
    [
        ("Failed", 1, "`/plan` finished: **Failed**"),  # terminated: no exit handler ran
        ("Succeeded", 1, "`/plan` finished: **Succeeded**"),
        ("Error", 1, "`/plan` finished: **Error**"),
        ("deleted", 1, "`/plan` finished: **Deleted**"),
        ("Running", 0, None),
        ("Pending", 0, None),
        (None, 0, None),  # created, not yet picked up by the controller
    ],
)
def test_tick_reports_finished_and_deleted_runs_and_leaves_the_rest(
    world: World, phase: str | None, reported: int, content: str | None
) -> None:
    run = world.recorded_run()
    if phase == "deleted":
        world.argo.delete(NAMESPACE, run.workflow_name or "")
    else:
        _finished(world, run, phase, message="Stopped with strategy 'Terminate'")
    body = world.reporter().tick().body
    assert (body["checked"], body["reported"], body["still_running"]) == (1, reported, 1 - reported)
    outcomes = [sent.content for sent in world.discord.sent if "finished:" in sent.content]
    assert outcomes == ([content] if content else [])
    # A run still going gets its card brought up to date instead: one message either way.
    assert len(world.discord.sent) == 1
    assert world.store.pending(10) == ([] if reported else [run.correlation_id])
    if phase == "deleted":
        assert _recorded(world, run).status == "Deleted"
        assert world.discord.last.embed["description"] == render.DELETED_BEFORE_OUTCOME
    elif phase == "Failed":
        assert "Terminate" in world.discord.last.embed["description"]


def test_a_tick_racing_a_callback_posts_once(world: World) -> None:
    reporter = world.reporter()
    first, second = world.recorded_run(), world.recorded_run()
    _finished(world, first, "Succeeded")
    reporter.tick()
    assert reporter.report(_report(first)).body["result"] == "duplicate"
    reporter.report(_report(second, "Failed"))
    _finished(world, second, "Failed")
    reporter.tick()
    assert len([sent for sent in world.discord.sent if "finished:" in sent.content]) == 2
    assert world.store.pending(10) == []


def test_each_tick_is_bounded_oldest_first(world: World) -> None:
    runs = [world.recorded_run(age=600 - i) for i in range(5)]
    for run in runs:
        _finished(world, run, "Succeeded")
    reporter = world.reporter(tick_batch=3)
    assert reporter.tick().body["checked"] == 3
    assert world.store.pending(10) == [r.correlation_id for r in runs[3:]]
    assert [s.embed["url"].rsplit("/", 1)[1] for s in world.discord.sent] == [
        r.workflow_name for r in runs[:3]
    ]
    reporter.tick()
    assert world.store.pending(10) == []
    assert len(world.discord.sent) == 5


def test_ticks_rotate_so_a_run_behind_many_long_ones_is_reported(world: World) -> None:
    # 200 long runs still going, and a newer one deleted (Argo answers 404): a tick that took
    # the oldest tick_batch runs every time would never reach it.
    running = [world.recorded_run(age=7200 - i) for i in range(200)]
    deleted = world.recorded_run(age=60)
    world.argo.delete(NAMESPACE, deleted.workflow_name or "")
    clock = itertools.count(time.time(), 1.0)
    reporter = world.reporter(tick_batch=50, clock=lambda: next(clock))
    ticks = math.ceil(201 / 50)
    reported = [reporter.tick().body["reported"] for _ in range(ticks)]
    assert sum(reported) == 1
    [post] = [sent for sent in world.discord.sent if "finished:" in sent.content]
    assert post.content == "`/plan` finished: **Deleted**"
    looked = [name for operation, _, name in world.argo.calls if operation == "get_workflow"]
    # Every run was checked in those ticks, each once before any was checked again.
    names = {run.workflow_name for run in running} | {deleted.workflow_name}
    assert len(looked) == ticks * 50
    assert len(set(looked[:201])) == 201 and set(looked) == names
    still = world.store.pending(0)
    assert len(still) == 200 and deleted.correlation_id not in still


def test_a_run_saved_again_keeps_its_turn_and_one_that_cannot_be_read_waits_its_turn(
    world: World,
) -> None:
    first, second, third = (world.recorded_run(age=600 - i) for i in range(3))
    clock = itertools.count(time.time(), 1.0)
    reporter = world.reporter(tick_batch=2, clock=lambda: next(clock))
    world.argo.fail("get_workflow", status=503)  # the first run cannot be read this time
    assert reporter.tick().body["errors"] == 1
    order = world.store.pending(0)
    assert order[0] == third.correlation_id
    assert set(order[1:]) == {first.correlation_id, second.correlation_id}  # checked together
    # A click's save (status Cancelling) does not put the run back at the front.
    assert world.buttons().click(click("stop", first.ref)).result == "stop"
    assert world.store.pending(0) == order


def test_a_tick_that_cannot_mark_what_it_checked_still_reports(world: World) -> None:
    old, new = world.recorded_run(age=600), world.recorded_run(age=60)
    _finished(world, new, "Succeeded")
    world.store.fail("checked")
    reporter = world.reporter(tick_batch=1)
    assert reporter.tick().status == 200
    world.store.recover()
    # Nothing was marked, so the next tick takes the same run first.
    assert world.store.pending(0) == [old.correlation_id, new.correlation_id]
    assert reporter.tick().body["still_running"] == 1
    assert reporter.tick().body["reported"] == 1


@pytest.mark.parametrize(
    ("break_it", "errors"),
    [
        (lambda w: w.argo.fail("get_workflow", status=403, times=None), 1),
        (lambda w: w.argo.fail("get_workflow", status=None, times=None), 1),
        (lambda w: w.store.fail("get"), 1),
    ],
    ids=["argo-refuses", "argo-unreachable", "redis-get-fails"],
)
def test_a_tick_skips_what_it_cannot_read_and_keeps_it_pending(
    world: World, break_it: Any, errors: int
) -> None:
    run = world.recorded_run()
    _finished(world, run, "Succeeded")
    break_it(world)
    outcome = world.reporter().tick()
    assert (outcome.status, outcome.body["errors"], outcome.body["reported"]) == (200, errors, 0)
    world.store.recover()
    assert world.store.pending(10) == [run.correlation_id]
    assert world.discord.sent == []


def test_a_tick_with_redis_down_asks_for_the_next_one(world: World) -> None:
    world.recorded_run()
    world.store.down = True
    outcome = world.reporter().tick()
    assert (outcome.status, outcome.body) == (503, {"error": "session store unavailable"})
    assert world.argo.calls == []


@pytest.mark.parametrize("why", ["expired", "no-namespace"])
def test_a_tick_forgets_runs_it_can_no_longer_look_up(why: str) -> None:
    now = [time.time()]
    world = World(store=MemoryStore(ttl_seconds=600, clock=lambda: now[0]))
    run = world.recorded_run()
    if why == "expired":
        now[0] += 500
        world.recorded_run()  # keeps the pending set alive past the first session
        now[0] += 200
    else:
        world.store.save(run.model_copy(update={"namespace": None}))
    reporter = world.reporter()
    assert reporter.tick().body["checked"] == 1 + (why == "expired")
    assert run.correlation_id not in world.store.pending(10)
    assert ("get_workflow", NAMESPACE, run.workflow_name) not in world.argo.calls


def test_a_tick_without_argo_is_skipped(world: World) -> None:
    world.recorded_run()
    outcome = world.reporter(argo=None).tick()
    assert outcome.body == {"result": "skipped", "reason": "argo.server_url is not set"}
    assert world.store.calls[-1] == "save"  # not even the pending list was read


# -- one message for the whole run ---------------------------------------------------------------


def test_an_outcome_after_the_token_expired_edits_the_same_message(world: World) -> None:
    # The reply was delivered as message M; the run outlived the interaction token.
    original = "1200000000000000777"
    run = world.recorded_run(age=3600, message_id=original)
    assert _results(world.reporter().report(_report(run, "Failed"))) == (200, "reported")
    [sent] = world.discord.sent
    assert (sent.route, sent.message_id, sent.channel_id) == ("message", original, CHANNEL)
    assert sent.content == "`/plan` finished: **Failed**"


@pytest.mark.parametrize("refusal", [403, 404])
def test_a_refused_edit_posts_a_reply_to_the_original(world: World, refusal: int) -> None:
    original = "1200000000000000777"
    run = world.recorded_run(age=3600, message_id=original)
    world.discord.bot_edit_refused = refusal
    assert world.reporter().report(_report(run)).body["via"] == "channel"
    [post] = world.discord.sent
    assert (post.route, post.reply_to, post.mention_user_id) == ("channel", original, USER)


def test_a_run_whose_message_is_unknown_still_posts_in_the_channel(world: World) -> None:
    run = world.recorded_run(age=3600, message_id="sent")  # delivered, ID not recorded
    world.reporter().report(_report(run))
    [post] = world.discord.sent
    assert (post.route, post.reply_to) == ("channel", None)


def test_an_older_run_ending_does_not_become_the_users_last_run(world: World) -> None:
    older, newer = world.recorded_run(), world.recorded_run()
    assert world.store.last_for_user(USER) == newer
    world.reporter().report(_report(older, "Succeeded"))
    last = world.store.last_for_user(USER)
    assert last is not None and last.correlation_id == newer.correlation_id


def test_a_runs_thread_gets_its_failed_steps_and_is_archived(world: World) -> None:
    run = world.recorded_run()
    thread_id = world.discord.start_thread(CHANNEL, "1200000000000000777", "/plan x")
    world.store.save(run.model_copy(update={"thread_id": thread_id}))
    failures = [Failure("build", "exit code 2")]
    world.reporter().report(_report(run, "Failed", failures=failures))
    thread = world.discord.threads[thread_id]
    assert thread.archived
    [said] = thread.messages
    assert said["content"] == "Failed steps:\n**build**: exit code 2"
    # The outcome itself is on the run's message, as always.
    assert world.discord.sent[-1].content == "`/plan` finished: **Failed**"
