"""DiscordClient.delete_original against the spec-checking fake: DELETE …/messages/@original,
by the interaction token alone; gone already is done; the same retries and redaction as the
other routes."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from facteur.adapters.discord import DiscordClient
from facteur.errors import DiscordError, TokenRejected
from tests.helpers.discord_fake import DISCORD_API, ORIGINAL, DiscordFake
from tests.helpers.support import APP

TOKEN = "aW50ZXJhY3Rpb246OTAwMDAwMDAwMDAwMDAwMDAx-SECRET-itok"
BOT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.GbXyZ1.SECRET-bot-0123456789abcdef"


@pytest.fixture
def discord() -> Iterator[DiscordFake]:
    with DiscordFake.running() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> DiscordClient:
    return DiscordClient(
        api_base_url=DISCORD_API, application_id=APP, bot_token=BOT_TOKEN, sleep=sleeps.append
    )


def test_it_deletes_the_original_reply_by_its_token(
    discord: DiscordFake, client: DiscordClient
) -> None:
    assert client.delete_original(TOKEN) is None
    [sent] = discord.requests
    assert sent.operation == f"DELETE {ORIGINAL}"
    assert sent.params == {"webhook_id": APP, "webhook_token": TOKEN}
    # A webhook route: the token in the path is the authority, never the bot's.
    assert "Authorization" not in sent.headers
    assert sent.json is None and "Content-Type" not in sent.headers
    assert discord.deleted_originals == {TOKEN}


def test_already_gone_is_done(discord: DiscordFake, client: DiscordClient) -> None:
    client.delete_original(TOKEN)
    client.delete_original(TOKEN)  # a redelivery: Discord answers 404 Unknown Message
    assert [r.operation for r in discord.requests] == [f"DELETE {ORIGINAL}"] * 2
    # And the reply it deleted cannot be edited any more, as Discord has it.
    with pytest.raises(TokenRejected) as err:
        client.edit_original(TOKEN, {"content": "x"})
    assert err.value.status == 404


def test_a_refused_token_is_not_taken_for_gone(discord: DiscordFake, client: DiscordClient) -> None:
    discord.queue(401, {"message": "401: Unauthorized", "code": 0})
    with pytest.raises(TokenRejected) as err:
        client.delete_original(TOKEN)
    assert err.value.status == 401


def test_5xx_and_429_are_retried(
    discord: DiscordFake, client: DiscordClient, sleeps: list[float]
) -> None:
    discord.queue(503).queue_rate_limit(0.25)
    client.delete_original(TOKEN)
    assert len(discord.requests) == 3
    assert 0.25 in sleeps


def test_unreachable_discord_gives_up_without_naming_the_token(
    discord: DiscordFake, client: DiscordClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(4):
        discord.queue_error(requests.ConnectionError(f"{DISCORD_API}/webhooks/{APP}/{TOKEN}"))
    with pytest.raises(DiscordError) as err:
        client.delete_original(TOKEN)
    assert err.value.status is None
    assert "gave up after 4 attempt(s)" in err.value.reason
    assert TOKEN not in err.value.reason and TOKEN not in caplog.text


def test_without_a_token_nothing_is_sent(discord: DiscordFake, client: DiscordClient) -> None:
    with pytest.raises(DiscordError, match="token is missing"):
        client.delete_original("")
    assert discord.requests == []
