"""The local loop's stand-ins, and that production never falls back to them."""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest

from facteur.adapters.discord import DiscordClient
from facteur.adapters.local import ConsoleDiscord, DryRunArgo
from facteur.bootstrap import argo as argo_client
from facteur.bootstrap import discord as discord_client
from facteur.cli import parser, play
from facteur.config import load_settings
from facteur.decisions import render
from facteur.decisions.ids import RETRY
from facteur.decisions.journey import ReplyTo
from facteur.decisions.workflow import WorkflowRequest
from facteur.errors import ConfigError
from tests.helpers.argo_fake import SwaggerContract

REF = "r3f-Abc_0123456789"
UI = "http://localhost:2746"
ACTED = {
    "command": "plan",
    "workflow": "plan-1",
    "namespace": "agents",
    "ui_url": UI,
    "action": RETRY,
    "user_id": "100000000000000100",
    "attempt": 2,
}


def test_without_dev_embedded_the_real_settings_are_required() -> None:
    with pytest.raises(ConfigError, match=r"argo\.server_url"):
        load_settings(["argo.server_url", "argo.namespace"], environ={})
    settings = load_settings(environ={})
    assert argo_client(settings) is None
    assert isinstance(discord_client(settings), DiscordClient)


def test_dev_embedded_stands_in_only_for_what_is_missing() -> None:
    settings = load_settings(
        ["argo.server_url", "argo.namespace", "discord.application_id", "redis.url"],
        environ={"FACTEUR_DEV_EMBEDDED": "true", "FACTEUR_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert isinstance(argo_client(settings), DryRunArgo)
    assert isinstance(discord_client(settings), ConsoleDiscord)
    with pytest.raises(ConfigError, match=r"redis\.url"):
        load_settings(["redis.url"], environ={"FACTEUR_DEV_EMBEDDED": "true"})
    real = load_settings(
        environ={
            "FACTEUR_DEV_EMBEDDED": "true",
            "FACTEUR_ARGO_SERVER_URL": "https://argo.test",
            "FACTEUR_DISCORD_BOT_TOKEN": "bot",
        }
    )
    assert not isinstance(argo_client(real), DryRunArgo)
    assert isinstance(discord_client(real), DiscordClient)


def test_dry_run_prints_the_request_argo_would_get(capsys: pytest.CaptureFixture[str]) -> None:
    submitted = DryRunArgo().submit(
        WorkflowRequest(
            "agents",
            "plan-1",
            "facteur-dispatch",
            parameters={"objective": "a=b,c"},
            labels={"facteur.dev/command": "plan"},
        )
    )
    assert submitted.created
    printed = capsys.readouterr().err
    assert "DRY RUN" in printed
    body = printed[printed.index("{") :]
    request = json.loads(body)
    assert request["workflow"]["spec"]["arguments"]["parameters"] == [
        {"name": "objective", "value": "a=b,c"}
    ]
    contract = SwaggerContract.load()
    schema = contract.definition("io.argoproj.workflow.v1alpha1.WorkflowCreateRequest")
    assert contract.check_instance(schema, request, "$") == []


def test_console_prints_every_message(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleDiscord().reply(
        ReplyTo(None, 0, "1", "2"),
        {"content": "hello", "embeds": [{"title": "t", "fields": [{"name": "a", "value": "b"}]}]},
    )
    printed = capsys.readouterr().err
    assert "CONSOLE" in printed and "hello" in printed and "a: b" in printed


def _printed(capsys: pytest.CaptureFixture[str], message: dict[str, Any]) -> list[str]:
    ConsoleDiscord().edit_original("token", message)
    return capsys.readouterr().err.splitlines()


def test_console_prints_a_line_a_button(capsys: pytest.CaptureFixture[str]) -> None:
    url = render.workflow_url(UI, "agents", "plan-1")
    started = render.submitted(
        command="plan",
        workflow="plan-1",
        namespace="agents",
        correlation_id="c",
        ui_url=UI,
        ref=REF,
    )
    assert _printed(capsys, started)[-2:] == [
        f"  [Open in Argo] {url}",
        f"  [Cancel] facteur click cancel {REF}",
    ]
    failed = render.final_status(
        command="plan",
        workflow="plan-1",
        namespace="agents",
        status="Failed",
        correlation_id="c",
        duration=1.0,
        failures=[],
        message=None,
        ui_url=UI,
        ref=REF,
    )
    assert _printed(capsys, failed)[-2:] == [
        f"  [Open in Argo] {url}",
        f"  [Retry] facteur click retry {REF}",
    ]
    # No ref, no action buttons: only the link is left.
    assert _printed(capsys, render.acted(**ACTED, ref=None))[-1] == f"  [Open in Argo] {url}"
    assert not any("facteur click" in line for line in _printed(capsys, render.text("hi")))
    # A button that is not facteur's shows its custom_id, and no command that would fail.
    foreign = {"type": 1, "components": [{"type": 2, "label": "X", "custom_id": "other:1"}]}
    assert _printed(capsys, {"content": "", "components": [foreign]})[-1] == (
        "  [X] custom_id other:1"
    )


@pytest.mark.parametrize("ref", [REF, "-0NezT-p_Eu4", "-h12345678", "--url-1234"])
def test_the_printed_command_clicks_that_button(
    capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    # Refs are URL-safe base64: one that starts with "-" must not read as an option.
    message = render.acted(**ACTED, ref=ref)
    [row] = message["components"]
    [button] = [b for b in row["components"] if "custom_id" in b]
    [line] = [line for line in _printed(capsys, message) if "facteur click" in line]
    argv = shlex.split(line.partition("] ")[2])
    assert argv[:2] == ["facteur", "click"]
    args = parser.build().parse_args(argv[1:])
    assert play.button_custom_id(args.action, args.ref) == button["custom_id"]


def _named_at(seconds_ago: float) -> str:
    from facteur.adapters.local import DISCORD_EPOCH_MS

    born_ms = int((time.time() - seconds_ago) * 1000) - DISCORD_EPOCH_MS
    return f"plan-{born_ms << 22}"


def test_the_dry_run_plays_a_lifecycle_by_the_runs_age() -> None:
    from facteur.adapters.local import Lifecycle

    argo = DryRunArgo(Lifecycle(outcome="Failed", seconds=20))
    phases = []
    for age in (1, 5, 12, 19, 25):
        state = argo.get_workflow("agents", _named_at(age))
        assert state is not None
        phases.append((state.phase, state.progress))
    assert phases[0] == ("Pending", None)
    assert [phase for phase, _ in phases[1:4]] == ["Running"] * 3
    # Progress only goes forward, and the run ends as told.
    assert [progress for _, progress in phases[1:4]] == sorted(p for _, p in phases[1:4])
    assert phases[4] == ("Failed", "5/5")
    ended = argo.get_workflow("agents", _named_at(25))
    assert ended is not None and ended.duration is not None
    # A name without an interaction ID (not facteur's) just runs.
    other = argo.get_workflow("agents", "something-else")
    assert other is not None and other.phase == "Running"
