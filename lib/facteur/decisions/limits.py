"""Cooldowns and quotas: a catalog entry's `limits` ("3/10m" per user, per guild), read into
counts and windows, and the Redis keys they are counted under. Pure.

command_route spends the per-user limit first, then the per-guild one (flows/command_route.py);
the store counts each interaction once in a sliding window (adapters/sessions.py, `spend`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from facteur.decisions import ids
from facteur.decisions.catalog import Command

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The catalog's own pattern (catalog.Limits), so what loads always parses.
_RATE = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})([smhd])")
# A direct message has no guild: those share one per-guild count rather than escaping it.
NO_GUILD = "dm"

Scope = Literal["user", "guild"]


@dataclass(frozen=True)
class Rate:
    """At most `count` runs in any `seconds`."""

    count: int
    seconds: int


@dataclass(frozen=True)
class Limit:
    """One limit of a command, and the key its runs are counted under."""

    scope: Scope
    key: str
    rate: Rate


@dataclass(frozen=True)
class Refused:
    """The limit that refused, and when the user may try again (whole unix seconds, rounded
    up so that the time shown is never before a run would fit)."""

    limit: Limit
    retry_at: int


def parse_rate(text: str) -> Rate:
    """ "3/10m" -> Rate(3, 600); ValueError for anything the catalog would not load."""
    found = _RATE.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"not a limit of the form N/<window>[smhd]: {text!r}")
    count, amount, unit = found.groups()
    return Rate(int(count), int(amount) * UNIT_SECONDS[unit])


def limits_for(command: Command, user_id: str, guild_id: str | None) -> list[Limit]:
    """The command's limits in the order they are spent: per user, then per guild.

    Keys hold only the catalog's command name and Discord snowflakes; anything else raises
    ValueError, so no user text ever names a key.
    """
    if command.limits is None:
        return []
    if not ids.COMMAND.fullmatch(command.name):
        raise ValueError("the command's name cannot name a key")
    found = []
    if command.limits.per_user:
        if not ids.is_snowflake(user_id):
            raise ValueError("the user ID is not a Discord snowflake")
        key = f"limit:{command.name}:user:{user_id}"
        found.append(Limit("user", key, parse_rate(command.limits.per_user)))
    if command.limits.per_guild:
        if guild_id is not None and not ids.is_snowflake(guild_id):
            raise ValueError("the guild ID is not a Discord snowflake")
        key = f"limit:{command.name}:guild:{guild_id or NO_GUILD}"
        found.append(Limit("guild", key, parse_rate(command.limits.per_guild)))
    return found


def refused(limit: Limit, retry_at: float) -> Refused:
    return Refused(limit, math.ceil(retry_at))
