"""The local loop's stand-ins, and that production never falls back to them."""

from __future__ import annotations

import json

import pytest

from facteur.adapters.discord import DiscordClient
from facteur.adapters.local import ConsoleDiscord, DryRunArgo
from facteur.bootstrap import argo as argo_client
from facteur.bootstrap import discord as discord_client
from facteur.config import load_settings
from facteur.errors import ConfigError
from tests.helpers.argo_fake import SwaggerContract


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
    submitted = DryRunArgo().submit_from_template(
        "agents",
        name="plan-1",
        template="facteur-dispatch",
        parameters={"objective": "a=b,c"},
        labels={"facteur.dev/command": "plan"},
        annotations={},
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
        token=None,
        token_expires_at=0,
        channel_id="1",
        message={
            "content": "hello",
            "embeds": [{"title": "t", "fields": [{"name": "a", "value": "b"}]}],
        },
        mention_user_id="2",
    )
    printed = capsys.readouterr().err
    assert "CONSOLE" in printed and "hello" in printed and "a: b" in printed
