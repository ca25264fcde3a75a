"""The role policy: who may run which command. Pure, secure by default.

A command absent from the role map is denied. Listing the guild's own ID (the @everyone role)
opens a command to every member of that guild. Direct messages carry no roles, so every
role-restricted command is denied there.

Keys live in two namespaces that cannot be mistaken for each other: `<command>` governs running
a command, and `<command>:cancel`, `:retry`, `:approve` and `:logs` govern the buttons on that
command's runs (falling back to `<command>` when absent). Cancel's confirmation obeys `:cancel`
and Reject obeys `:approve` (ids.ACTION_RULES). facteur runs no subcommands, so no other key
exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from facteur.decisions.ids import ACTION_RULES


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # The role-map key that decided, or None when no rule applied.
    rule: str | None
    reason: str


def button_key(command: str, action: str) -> str:
    return f"{command}:{action}"


def rule_for(role_map: Mapping[str, Sequence[str]], command: str, action: str | None) -> str:
    """The role-map key that governs a command, or a button on its runs when one is listed."""
    if action:
        key = button_key(command, ACTION_RULES.get(action, action))
        if key in role_map:
            return key
    return command


def decide(
    role_map: Mapping[str, Sequence[str]],
    command: str,
    *,
    action: str | None = None,
    guild_id: str | None,
    member_roles: Sequence[str] | None,
    expected_guild_id: str | None = None,
) -> Decision:
    """Decide whether a caller may run `command`, or press an `action` button on its run.

    member_roles is None for direct messages, where Discord sends `user` and no `member`.
    expected_guild_id, when set, confines facteur to one guild.
    """
    rule = rule_for(role_map, command, action)
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
