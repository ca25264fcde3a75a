"""The Logs button on the in-memory ports: a step's last lines from Argo's log API, privately,
scrubbed of facteur's secrets; a select menu when several steps have some; a file when they do
not fit; and a plain answer when there is nothing to show."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from facteur.decisions import ids, render
from facteur.decisions.interactions import EPHEMERAL
from facteur.decisions.journey import DispatchResult
from facteur.decisions.workflow import NodeState
from facteur.logs import Scrubber
from tests.helpers.fakes import NAMESPACE, World, catalog, click
from tests.helpers.support import ROLE_OTHER, ROLE_PLANNER

SECRET = "argo-token-that-must-never-show"


@pytest.fixture
def world() -> World:
    return World()


def _name(run: DispatchResult) -> str:
    return run.workflow_name or ""


def _press(world: World, run: DispatchResult, step: str | None = None, **options: Any) -> Any:
    clicked = replace(click("logs", run.ref), step=step)
    return world.buttons(scrub=Scrubber([SECRET]).scrub, **options).click(clicked)


def _failed(world: World, run: DispatchResult, name: str, lines: list[str]) -> NodeState:
    return world.argo.add_pod_node(
        NAMESPACE, _name(run), name, phase="Failed", lines=lines, message="exit code 1"
    )


def _step(run: DispatchResult, node: NodeState) -> str:
    step = ids.step_of(_name(run), node.id)
    assert step is not None
    return step


def test_the_failed_steps_last_lines_are_shown_privately_and_scrubbed(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    world.argo.add_pod_node(NAMESPACE, _name(run), "checkout", phase="Succeeded", lines=["ok"])
    node = _failed(world, run, "build", ["compiling", f"auth with {SECRET}", "error: boom"])
    assert _press(world, run).result == "answered"
    [sent] = world.discord.to("follow_up")
    assert sent.message["flags"] == EPHEMERAL and sent.files == ()
    assert sent.content.startswith("Last 3 lines of `build`:\n```\ncompiling\n")
    assert SECRET not in sent.content and "[redacted]" in sent.content
    # Asked of Argo for that pod's main container, as many lines as the catalog says.
    assert world.argo.calls[-1] == ("logs", NAMESPACE, _name(run))
    assert node.pod_name and node.pod_name.startswith(f"{_name(run)}-run-")


def test_the_catalog_says_how_many_lines(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    _failed(world, run, "build", [f"line {n}" for n in range(100)])
    shipped = catalog()
    commands = [
        c.model_copy(update={"log_lines": 5}) if c.name == "plan" else c for c in shipped.commands
    ]
    _press(world, run, catalog=shipped.model_copy(update={"commands": commands}))
    assert world.discord.last.content.startswith("Last 5 lines of `build`:\n```\nline 95\n")


def test_several_failed_steps_get_a_select_menu_and_a_pick_shows_one(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    build = _failed(world, run, "build", ["build broke"])
    lint = _failed(world, run, "lint", ["lint broke"])
    assert _press(world, run).result == "answered"
    picker = world.discord.last
    [[menu]] = [row["components"] for row in picker.message["components"]]
    assert (menu["type"], menu["custom_id"]) == (3, f"facteur:logs:{run.ref}")
    assert [(o["label"], o["value"]) for o in menu["options"]] == [
        ("build", _step(run, build)),
        ("lint", _step(run, lint)),
    ]
    assert picker.message["flags"] == EPHEMERAL
    _press(world, run, step=_step(run, lint))
    assert "lint broke" in world.discord.last.content


def test_logs_that_do_not_fit_are_attached_as_a_file(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    lines = [f"{n:03d} " + "x" * 120 for n in range(40)]
    _failed(world, run, "build", lines)
    _press(world, run)
    sent = world.discord.last
    [attached] = sent.files
    assert attached.filename == "build.log"
    assert attached.content.decode().splitlines() == lines
    assert sent.message["attachments"] == [{"id": 0, "filename": "build.log"}]
    assert "attached as `build.log`" in sent.content


def test_empty_logs_and_a_pod_that_is_gone_are_said_so(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    node = _failed(world, run, "build", [])
    _press(world, run)
    assert "Argo has no log lines of `build`" in world.discord.last.content
    world.argo.pod_gone(NAMESPACE, _name(run), node.pod_name or "")
    _press(world, run)
    assert world.discord.whispers[-1] == render.logs_gone("build")


def test_argo_answering_404_for_the_run_shows_nothing(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    _failed(world, run, "build", ["x"])
    world.argo.fail("logs", status=404)
    _press(world, run)
    assert world.discord.whispers[-1] == render.logs_gone("build")
    world.argo.delete(NAMESPACE, _name(run))
    _press(world, run)
    assert world.discord.whispers[-1] == render.NO_LOGS_YET


def test_a_running_run_without_failures_shows_its_running_step(world: World) -> None:
    run = world.recorded_run()
    world.argo.add_pod_node(NAMESPACE, _name(run), "deploy", phase="Running", lines=["going"])
    _press(world, run)
    assert "going" in world.discord.last.content
    other = world.recorded_run()
    _press(world, other)
    assert world.discord.whispers[-1] == render.NO_LOGS_YET


def test_logs_follow_the_logs_rule(world: World) -> None:
    run = world.recorded_run(phase="Failed")
    _failed(world, run, "build", ["secret-ish output"])
    strict = {"plan": [ROLE_PLANNER], "plan:logs": [ROLE_OTHER]}
    assert _press(world, run, role_map=strict).result == "refused"
    assert "You can't read the logs of `/plan` runs" in world.discord.whispers[-1]
    assert ("logs", NAMESPACE, _name(run)) not in world.argo.calls
