"""`facteur register-commands`: put the catalog's slash commands into a guild, or globally."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from facteur.cli.plumbing import EXIT_FAILED, CliError
from facteur.config import Settings, env_var, load_catalog, load_settings
from facteur.errors import ConfigError


def register_commands(args: argparse.Namespace) -> int:
    from facteur import bootstrap
    from facteur.errors import DiscordError

    settings = load_settings()
    payload = [
        command.to_discord() for command in load_catalog(settings.commands.catalog_file).commands
    ]
    guild: str | None = None if args.global_scope else args.guild or settings.discord.guild_id
    if not args.global_scope and guild is None:
        key = "discord.guild_id"
        raise CliError(
            f"no guild to register in: pass --guild ID or --global, or set {key} ({env_var(key)})"
        )
    app = settings.discord.application_id
    if args.dry_run:
        # The route as the client will send it; nothing needs credentials to look at it.
        scope = "" if guild is None else f"/guilds/{guild}"
        route = f"/applications/{app or '{application_id}'}{scope}/commands"
        url = settings.discord.api_base_url + route
        print(json.dumps({"method": "PUT", "url": url, "body": payload}, indent=2))
        return 0
    missing = [
        key
        for key in ("discord.application_id", "discord.bot_token")
        if _value(settings, key) is None
    ]
    if missing:
        # dev.embedded never stands in here: registering is always for real.
        raise ConfigError(
            "; ".join(f"{key} ({env_var(key)}): required but not set" for key in missing)
        )
    where = "globally" if guild is None else f"in guild {guild}"
    # The client names its route template in what it says (its logs never hold an ID); here the
    # real IDs help more, and this route holds no token.
    ids = _RealIds(str(app), str(guild))
    client_log = logging.getLogger("facteur.discord")
    client_log.addFilter(ids)
    try:
        registered = bootstrap.discord_client(settings).overwrite_commands(payload, guild_id=guild)
    except DiscordError as err:
        if err.status is None:
            what = f"could not reach Discord at {settings.discord.api_base_url}"
        elif err.status == 429 or err.status >= 500:
            what = "Discord kept failing"
        else:
            what = "Discord refused the commands"
        reason = ids.fill(str(err))
        raise CliError(f"{what} (application {app}, {where}): {reason}", EXIT_FAILED) from None
    finally:
        client_log.removeFilter(ids)
    names = [str(item.get("name")) for item in registered] or [c["name"] for c in payload]
    print(f"registered {len(payload)} command(s) {where}: " + ", ".join(f"/{n}" for n in names))
    return 0


def _value(settings: Settings, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(settings, section), name)


class _RealIds(logging.Filter):
    """Puts the application and guild IDs into the client's route templates."""

    def __init__(self, app: str, guild: str) -> None:
        super().__init__()
        self.app, self.guild = app, guild

    def fill(self, text: str) -> str:
        return text.replace("{app}", self.app).replace("{guild}", self.guild)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.fill(record.getMessage()), None
        return True
