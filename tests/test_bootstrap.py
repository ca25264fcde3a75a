"""bootstrap: each function's adapters are built from settings, and only from there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from facteur import bootstrap
from facteur.config import Settings, load_settings
from facteur.errors import ConfigError
from tests.helpers.discord_fake import DiscordFake
from tests.helpers.support import APP, CHANNEL

TOKEN = "argo-token-SECRET-0123456789"
BOT_TOKEN = "bot-token-SECRET-0123456789"


@pytest.fixture
def discord() -> Iterator[DiscordFake]:
    with DiscordFake.running() as fake:
        yield fake


def _settings(**argo: Any) -> Settings:
    return Settings.model_validate({"argo": {"server_url": "https://argo.example:2746", **argo}})


def test_the_argo_client_reads_the_argo_section(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    client = bootstrap.argo(_settings(token=TOKEN, ca_file=str(ca), timeout_seconds=4))
    assert (client._base, client._token, client._verify, client._timeout) == (
        "https://argo.example:2746",
        TOKEN,
        str(ca),
        4.0,
    )
    assert bootstrap.argo(_settings(verify_tls=False))._verify is False
    assert bootstrap.argo(_settings())._token is None


def test_without_a_server_url_there_is_no_argo_client() -> None:
    assert bootstrap.argo(Settings()) is None


def test_a_mangled_argo_token_stops_start_up_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="FACTEUR_ARGO_TOKEN") as caught:
        bootstrap.argo(_settings(token=f"{TOKEN}\nsecond line"))
    assert TOKEN not in str(caught.value)


def test_the_discord_client_reads_the_discord_section(discord: DiscordFake) -> None:
    settings = load_settings(
        environ={"FACTEUR_DISCORD_APPLICATION_ID": APP, "FACTEUR_DISCORD_BOT_TOKEN": BOT_TOKEN}
    )
    client = bootstrap.discord(settings)
    client.post_to_channel(CHANNEL, {"content": "hi"})
    [sent] = discord.requests
    assert sent.url.startswith("https://discord.com/api/v10/")
    assert sent.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert BOT_TOKEN not in repr(client)


# -- secrets stay out of logs and errors -----------------------------------------------------
