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
    values, problems = check_options(command, call.options)
    if problems:
        return Admission(command, render.invalid_options(call.command, problems), check="invalid")
    return Admission(command, None, values)
