"""Per-channel rules: a command that lists its channels is refused elsewhere, naming where it
may be used; a thread counts as its parent channel. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions.admission import admit, admit_caller, in_channels
from facteur.decisions.catalog import parse_catalog
from facteur.decisions.interactions import read_invocation
from facteur.errors import CatalogError, InvalidInteraction
from tests.helpers.support import CHANNEL, GUILD, ROLE_PLANNER, command

OPS = "900000000000000301"
THREAD = "900000000000000302"
ROLE_MAP = {"plan": [ROLE_PLANNER]}


def _catalog(channels: list[str]) -> Any:
    plan = {
        "name": "plan",
        "description": "Plan.",
        "options": [{"name": "objective", "description": "What.", "required": True}],
        "channels": channels,
    }
    return parse_catalog({"commands": [plan]})


def _in(channel: str | None, *, thread_of: str | None = None) -> dict[str, Any]:
    payload = command("plan")
    payload["channel_id"] = channel
    if thread_of is not None:
        payload["channel"] = {"id": channel, "type": 11, "parent_id": thread_of}
    elif channel is not None:
        payload["channel"] = {"id": channel, "type": 0}
    return payload


def test_a_command_without_channels_goes_anywhere() -> None:
    call = read_invocation(_in(CHANNEL))
    assert admit(_catalog([]), ROLE_MAP, call, GUILD).refusal is None


def test_a_command_is_refused_outside_its_channels_and_told_where() -> None:
    call = read_invocation(_in(CHANNEL))
    admission = admit(_catalog([OPS]), ROLE_MAP, call, GUILD)
    assert admission.check == "channel"
    assert admission.refusal == f"`/plan` can only be used in <#{OPS}>."
    # The same for the check a form opens on.
    assert admit_caller(_catalog([OPS]), ROLE_MAP, call, GUILD).check == "channel"


def test_in_its_channel_or_a_thread_of_it_it_goes() -> None:
    assert admit(_catalog([OPS]), ROLE_MAP, read_invocation(_in(OPS)), GUILD).refusal is None
    threaded = read_invocation(_in(THREAD, thread_of=OPS))
    assert threaded.parent_channel_id == OPS
    assert admit(_catalog([OPS]), ROLE_MAP, threaded, GUILD).refusal is None
    # A thread of another channel does not count.
    elsewhere = read_invocation(_in(THREAD, thread_of=CHANNEL))
    assert admit(_catalog([OPS]), ROLE_MAP, elsewhere, GUILD).check == "channel"


def test_a_channel_that_only_says_it_is_a_thread_has_no_parent_unless_discord_names_one() -> None:
    payload = _in(CHANNEL)
    payload["channel"] = {"id": CHANNEL, "type": 0, "parent_id": OPS}  # a text channel's category
    call = read_invocation(payload)
    assert call.parent_channel_id is None
    assert not in_channels(_catalog([OPS]).commands[0], call)


def test_a_malformed_parent_is_refused() -> None:
    payload = _in(THREAD, thread_of="#ops")
    with pytest.raises(InvalidInteraction, match="parent_id"):
        read_invocation(payload)


def test_the_roles_are_checked_first() -> None:
    call = read_invocation(_in(CHANNEL))
    assert admit(_catalog([OPS]), {}, call, GUILD).check == "denied"


def test_the_catalog_takes_only_channel_ids() -> None:
    with pytest.raises(CatalogError, match="channels"):
        _catalog(["#general"])
    many = _catalog([str(900000000000000400 + n) for n in range(12)])
    refusal = admit(many, ROLE_MAP, read_invocation(_in(CHANNEL)), GUILD).refusal
    assert refusal is not None and refusal.endswith("and 2 more.")
