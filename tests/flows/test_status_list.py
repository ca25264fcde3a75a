"""/status without a workflow: the caller's recent runs in this server, newest first, each with
its phase as Argo has it now and a link to Argo's UI, in one message within Discord's limits."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions import render
from facteur.decisions.render import RunLine, status_list
from tests.helpers.chain import NAMESPACE, UI, Chain, journey
from tests.helpers.fakes import World
from tests.helpers.support import USER


@pytest.fixture
def world() -> World:
    return World()


def _status() -> Any:
    return journey("status", [], roles=[])


def _lines(world: World) -> list[tuple[str, str]]:
    sent = world.discord.last
    assert (sent.route, sent.content) == ("edit", render.RECENT_RUNS_TITLE)
    return [(f["name"], f["value"]) for f in sent.embed["fields"]]


def test_the_callers_runs_newest_first_with_phase_and_link(world: World) -> None:
    oldest = world.recorded_run(age=300, phase="Succeeded", summary="objective: one")
    middle = world.recorded_run(age=200, phase="Failed", command="review")
    newest = world.recorded_run(age=100, phase="Running")
    world.recorded_run(age=50, user_id="800000000000000101")  # someone else's
    assert world.router().handle(_status()).result == "status"
    lines = _lines(world)
    assert [name for name, _ in lines] == [
        f"/plan · {newest.workflow_name}",
        f"/review · {middle.workflow_name}",
        f"/plan · {oldest.workflow_name}",
    ]
    phases = [value.split(" · ")[0] for _, value in lines]
    assert phases == ["**Running**", "**Failed**", "**Succeeded**"]
    for run, (_, value) in zip((newest, middle, oldest), lines, strict=True):
        assert f"requested <t:{int(run.received_at)}:R>" in value
        assert f"[Open in Argo]({UI}/workflows/{NAMESPACE}/{run.workflow_name})" in value
    assert lines[2][1].endswith("\nobjective: one")
    assert world.discord.last.embed["color"] == render.PHASE_COLOURS["Running"]


def test_runs_from_other_servers_stay_private_to_them(world: World) -> None:
    world.recorded_run(guild_id="800000000000000002")
    world.router().handle(_status())
    assert world.discord.last.content == render.NO_RECENT_RUNS


def test_without_runs_it_says_so(world: World) -> None:
    assert world.router().handle(_status()).result == "status"
    assert world.discord.last.content == render.NO_RECENT_RUNS


def test_a_deleted_run_and_one_never_started(world: World) -> None:
    gone = world.recorded_run(age=100)
    world.argo.delete(NAMESPACE, gone.workflow_name or "")
    world.recorded_run(age=50, phase=None, status="requested", workflow_name=None)
    world.router().handle(_status())
    (never, line), (_, deleted) = _lines(world)
    assert never == "/plan · not started"
    assert line.startswith("**requested** · requested <t:") and "Open in Argo" not in line
    assert deleted.startswith("**Deleted** ·")


def test_argo_failing_shows_what_facteur_recorded_and_is_asked_once(world: World) -> None:
    for age in (300, 200, 100):
        world.recorded_run(age=age, phase="Running", status="Submitted")
    world.argo.fail("get_workflow", status=503, times=None)
    assert world.router().handle(_status()).result == "status"
    assert [value.split(" · ")[0] for _, value in _lines(world)] == ["**Submitted**"] * 3
    # Not answering for the first run, Argo is not asked about the others: /status stays fast.
    assert [op for op, _, _ in world.argo.calls].count("get_workflow") == 1


def test_without_argo_it_shows_what_facteur_recorded(world: World) -> None:
    run = world.recorded_run(phase="Running", status="Submitted")
    world.router(argo=None).handle(_status())
    [(_, value)] = _lines(world)
    assert value.startswith("**Submitted** ·")
    assert f"({UI}/workflows/{NAMESPACE}/{run.workflow_name})" in value


def test_at_most_ten_runs_are_listed(world: World) -> None:
    runs = [world.recorded_run(age=1000 - n) for n in range(12)]
    world.router().handle(_status())
    names = [name for name, _ in _lines(world)]
    assert names == [f"/plan · {run.workflow_name}" for run in runs[::-1][:10]]


def test_redis_down_says_so(world: World) -> None:
    world.store.fail("recent_for_user")
    outcome = world.router().handle(_status())
    assert (outcome.status, outcome.result) == (200, "failed")
    assert world.discord.last.content == render.STORE_UNAVAILABLE


def test_the_list_fits_one_discord_message_whatever_it_holds() -> None:
    lines = [
        RunLine(
            command="c" * 32,
            workflow="w" * 63,
            namespace="n" * 63,
            phase="P" * 300,
            received_at=1_800_000_000.0 + n,
            summary="s" * 300,
        )
        for n in range(30)
    ]
    message = status_list(lines, "https://argo.example.test/" + "u" * 200)
    [embed] = message["embeds"]
    assert 0 < len(embed["fields"]) <= render.MAX_LISTED_RUNS
    size = len(embed["title"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert size <= 6000  # Discord's limit for all of an embed's text
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    assert message["allowed_mentions"] == {"parse": []}


# -- through the real clients, on a real Redis, validated against Discord's spec -----------------


def test_status_lists_the_runs_as_discord_takes_them(chain: Chain) -> None:
    trips = [
        journey("plan", [{"name": "objective", "type": 3, "value": f"n{n}"}]) for n in range(3)
    ]
    for trip in trips:
        chain.run(trip)
    names = [f"plan-{trip.call.interaction_id}" for trip in trips]
    for name, phase in zip(names, ("Succeeded", "Failed", "Running"), strict=True):
        chain.argo.set_phase(NAMESPACE, name, phase)
    chain.route(journey("status", [], roles=[]))
    status = chain.edits()[-1]
    assert status["content"] == render.RECENT_RUNS_TITLE
    fields = status["embeds"][0]["fields"]
    assert [f["name"] for f in fields] == [f"/plan · {name}" for name in names[::-1]]
    assert [f["value"].split(" · ")[0] for f in fields] == [
        "**Running**",
        "**Failed**",
        "**Succeeded**",
    ]
    assert f"[Open in Argo]({UI}/workflows/{NAMESPACE}/{names[0]})" in fields[-1]["value"]
    assert chain.store.recent_for_user(USER)[0].correlation_id == trips[-1].correlation_id
