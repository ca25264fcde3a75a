"""Whether a command may go ahead: known to the catalog, allowed by the role map, well-formed.

Pure, and shared by interaction_verify (to refuse early) and command_route (authoritative).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facteur.decisions import render
from facteur.decisions.catalog import Catalog, Command, check_options
from facteur.decisions.interactions import CHAT_INPUT, Invocation
from facteur.decisions.policy import decide


@dataclass(frozen=True)
class Admission:
    command: Command | None
    # Why the command may not go ahead, worded for the caller; None when admitted.
    refusal: str | None
    values: dict[str, Any] = field(default_factory=dict)
    # For the audit trail: which check refused it.
    check: str = "admitted"


def admit(
    catalog: Catalog,
    role_map: Mapping[str, Sequence[str]],
    call: Invocation,
    expected_guild_id: str | None = None,
) -> Admission:
    """Everything admit_caller checks, then the options against the catalog."""
    admission = admit_caller(catalog, role_map, call, expected_guild_id)
    if admission.refusal is not None or admission.command is None:
        return admission
    values, problems = check_options(admission.command, call.options)
    if problems:
        text = render.invalid_options(call.command, problems)
        return Admission(admission.command, text, check="invalid")
    return Admission(admission.command, None, values)


def admit_caller(
    catalog: Catalog,
    role_map: Mapping[str, Sequence[str]],
    call: Invocation,
    expected_guild_id: str | None = None,
) -> Admission:
    """Whether this caller may use this command here, whatever its options say: a declared
    slash command, allowed by the role map, in one of its channels (what a form is opened on)."""
    if call.command_type != CHAT_INPUT:
        return Admission(None, render.not_a_slash_command(call.command), check="not_slash")
    command = catalog.get(call.command)
    if command is None:
        return Admission(None, render.unknown_command(call.command), check="unknown")
    if call.subcommand is not None:
        # The catalog declares no subcommands, so none may stand in for the plain command.
        text = render.unknown_subcommand(call.command, call.subcommand)
        return Admission(command, text, check="unknown_subcommand")
    decision = decide(
        role_map,
        call.command,
        guild_id=call.guild_id,
        member_roles=call.member_roles,
        expected_guild_id=expected_guild_id,
    )
    if not decision.allowed:
        return Admission(command, render.denied(call.command, decision.reason), check="denied")
    if not in_channels(command, call):
        text = render.wrong_channel(call.command, command.channels)
        return Admission(command, text, check="channel")
    return Admission(command, None)


def in_channels(command: Command, call: Invocation) -> bool:
    """The command's channel rule: anywhere when it lists none; a thread counts as its parent."""
    if not command.channels:
        return True
    return call.channel_id in command.channels or call.parent_channel_id in command.channels
