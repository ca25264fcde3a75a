"""Autocomplete: which option the user is typing in, and the suggestions to answer. Pure.

Discord sends an AUTOCOMPLETE interaction (type 4) as the user types, with the option being
typed marked `focused`; the answer (type 8) holds at most 25 choices. A suggestion is only a
suggestion: whatever the user finally sends is checked as any command is (catalog.check_options).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from facteur.decisions.catalog import MAX_CHOICES, MAX_STRING_LENGTH, Option
from facteur.decisions.interactions import AUTOCOMPLETE_RESULT, Invocation, read_invocation
from facteur.decisions.journey import DispatchResult
from facteur.errors import InvalidInteraction

# Discord's limits on one choice: a name of 1 to 100 characters, and a string value of at most
# 100 (application-commands, "Application Command Option Choice Structure").
MAX_CHOICE_NAME = 100
MAX_CHOICE_VALUE = 100
# How many recent values, and runs, one answer ranks: the store bounds each list too.
RECENT_SCAN = 10_000
RUNS_SCAN = 50


@dataclass(frozen=True)
class Typing:
    """An AUTOCOMPLETE interaction: the command being typed, and its focused option."""

    call: Invocation
    option: str
    # What the user has typed so far in that option (Discord sends it as a string).
    typed: str


def read_typing(body: dict[str, Any]) -> Typing:
    """Read an AUTOCOMPLETE interaction, rejecting shapes Discord never sends: exactly one
    option is focused, and what was typed in it is a string."""
    call = read_invocation(body)
    focused = []
    for item in call.options:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInteraction("an option is malformed")
        flag = item.get("focused", False)
        if not isinstance(flag, bool):
            raise InvalidInteraction("an option's focused flag is malformed")
        if flag:
            focused.append(item)
    if len(focused) != 1:
        raise InvalidInteraction("an autocomplete names no single focused option")
    [option] = focused
    name, typed = option["name"], option.get("value")
    if not name or len(name) > 32:
        raise InvalidInteraction("the focused option's name is malformed")
    if not isinstance(typed, str) or len(typed) > MAX_STRING_LENGTH:
        raise InvalidInteraction("the focused option's value is malformed")
    return Typing(call, name, typed)


def _shown_as(value: str) -> str:
    # A choice's name is one line: runs of whitespace (newlines included) become one space.
    return " ".join(value.split())


def fits(value: str, option: Option) -> bool:
    """Whether a candidate can be a choice of this option at all: Discord's limits on a value
    and a name, and the option's own max_length (a longer one would be refused on send)."""
    limit = min(MAX_CHOICE_VALUE, option.max_length or MAX_CHOICE_VALUE)
    return 0 < len(value) <= limit and bool(_shown_as(value))


def rank(candidates: Iterable[str], typed: str, shown: int, option: Option) -> list[str]:
    """At most `shown` candidates that contain what was typed, case-insensitively: those that
    start with it first, then the others, each in the candidates' own order (the catalog's, or
    most recent first), without repeats. Nothing typed yet: the first `shown`."""
    needle = typed.strip().casefold()
    prefixed: list[str] = []
    containing: list[str] = []
    seen: set[str] = set()
    for value in candidates:
        if len(prefixed) >= shown:
            break  # the prefix matches alone fill the answer
        # Matching first: it is the cheap test, and most candidates fail it.
        folded = value.casefold()
        if folded.startswith(needle):
            tier = prefixed
        elif len(containing) < shown and needle in folded:
            tier = containing
        else:
            continue
        if value not in seen and fits(value, option):
            seen.add(value)
            tier.append(value)
    return (prefixed + containing)[:shown]


def run_names(runs: Iterable[DispatchResult], guild_id: str | None) -> list[str]:
    """The `runs` source: the workflow names of the caller's runs in this guild, newest first
    (/status looks a run up by name only in the guild it is asked in)."""
    return [run.workflow_name for run in runs if run.workflow_name and run.guild_id == guild_id]


def choice(value: str) -> dict[str, str]:
    return {"name": _shown_as(value)[:MAX_CHOICE_NAME], "value": value}


def answer(values: Sequence[str]) -> dict[str, Any]:
    """The AUTOCOMPLETE_RESULT (type 8) offering these values, at most Discord's 25."""
    return {
        "type": AUTOCOMPLETE_RESULT,
        "data": {"choices": [choice(value) for value in values[:MAX_CHOICES]]},
    }
