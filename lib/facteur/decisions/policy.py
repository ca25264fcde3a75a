"""The role policy: who may run which command. Pure, secure by default.

A command absent from the role map is denied. Listing the guild's own ID (the @everyone role)
opens a command to every member of that guild. Direct messages carry no roles, so every
role-restricted command is denied there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # The role-map key that decided, or None when no rule applied.
    rule: str | None
    reason: str


def rule_for(role_map: Mapping[str, Sequence[str]], command: str, refinement: str | None) -> str:
    """The role-map key that governs a command, refined by a subcommand or action if listed."""
    if refinement:
        refined = f"{command}:{refinement}"
        if refined in role_map:
            return refined
    return command


def decide(
    role_map: Mapping[str, Sequence[str]],
    command: str,
    *,
    refinement: str | None = None,
    guild_id: str | None,
    member_roles: Sequence[str] | None,
    expected_guild_id: str | None = None,
) -> Decision:
    """Decide whether a caller may run `command` (or `command:refinement`).

    member_roles is None for direct messages, where Discord sends `user` and no `member`.
    expected_guild_id, when set, confines facteur to one guild.
    """
    rule = rule_for(role_map, command, refinement)
    allowed_roles = role_map.get(rule)
    if not allowed_roles:
        return Decision(False, None, "no roles are configured for this command")
    if member_roles is None or not guild_id:
        return Decision(False, rule, "this command can only be used in a server")
    if expected_guild_id and guild_id != expected_guild_id:
        return Decision(False, rule, "this server is not served by facteur")
    if guild_id in allowed_roles:
        return Decision(True, rule, "open to everyone in this server")
    held = set(member_roles)
    if any(role in held for role in allowed_roles):
        return Decision(True, rule, "caller holds an allowed role")
    return Decision(False, rule, "caller holds none of the allowed roles")


def allowed_commands(
    role_map: Mapping[str, Sequence[str]],
    commands: Sequence[str],
    *,
    guild_id: str | None,
    member_roles: Sequence[str] | None,
    expected_guild_id: str | None = None,
) -> list[str]:
    """The commands a caller may run, in catalog order (for /help)."""
    return [
        name
        for name in commands
        if decide(
            role_map,
            name,
            guild_id=guild_id,
            member_roles=member_roles,
            expected_guild_id=expected_guild_id,
        ).allowed
    ]
