"""Autocomplete's pure part: reading the focused option strictly, ranking by prefix then
substring, and an answer within Discord's limits."""

from __future__ import annotations

from typing import Any

import pytest

from facteur.decisions import autocomplete as ac
from facteur.decisions.catalog import Option
from facteur.errors import InvalidInteraction
from tests.helpers.contracts import assert_interaction_response
from tests.helpers.support import GUILD, USER, command, run_record

PROJECT = Option(name="project", description="The project.", autocomplete={"source": "recent"})


def _typing(options: Any) -> dict[str, Any]:
    payload = command("plan", options)
    payload["type"] = 4
    return payload


def test_reading_names_the_focused_option_and_what_was_typed() -> None:
    typing = ac.read_typing(
        _typing(
            [
                {"name": "objective", "type": 3, "value": "ship it"},
                {"name": "project", "type": 3, "value": "fa", "focused": True},
            ]
        )
    )
    assert (typing.option, typing.typed) == ("project", "fa")
    assert (typing.call.command, typing.call.user_id, typing.call.guild_id) == ("plan", USER, GUILD)


@pytest.mark.parametrize(
    "options",
    [
        [],
        [{"name": "project", "type": 3, "value": "fa"}],
        [
            {"name": "project", "type": 3, "value": "fa", "focused": True},
            {"name": "objective", "type": 3, "value": "x", "focused": True},
        ],
        [{"name": "project", "type": 3, "value": 3, "focused": True}],
        [{"name": "project", "type": 3, "value": None, "focused": True}],
        [{"name": "project", "type": 3, "value": "x" * 6001, "focused": True}],
        [{"name": "", "type": 3, "value": "x", "focused": True}],
        [{"name": "p" * 33, "type": 3, "value": "x", "focused": True}],
        [{"name": "project", "type": 3, "value": "x", "focused": "yes"}],
        [{"name": "project", "type": 3, "value": "x", "focused": True}, "junk"],
        [{"type": 3, "value": "x", "focused": True}],
    ],
    ids=[
        "none",
        "no-focus",
        "two-focused",
        "number",
        "null",
        "too-long",
        "empty-name",
        "long-name",
        "focused-not-bool",
        "junk-option",
        "no-name",
    ],
)
def test_reading_refuses_shapes_discord_never_sends(options: Any) -> None:
    with pytest.raises(InvalidInteraction):
        ac.read_typing(_typing(options))


def test_an_autocomplete_without_data_or_caller_is_refused() -> None:
    payload = _typing([{"name": "project", "type": 3, "value": "", "focused": True}])
    with pytest.raises(InvalidInteraction):
        ac.read_typing({k: v for k, v in payload.items() if k != "data"})
    with pytest.raises(InvalidInteraction):
        ac.read_typing({k: v for k, v in payload.items() if k != "member"})


CANDIDATES = ["alpha-fac", "Facteur", "fac", "beta", "FACADE", "fac", "surface", "xfa"]


@pytest.mark.parametrize(
    ("typed", "shown", "expected"),
    [
        # Prefix matches first, in the candidates' order, then substring matches, no repeats.
        ("fac", 25, ["Facteur", "fac", "FACADE", "alpha-fac", "surface"]),
        ("FAC", 25, ["Facteur", "fac", "FACADE", "alpha-fac", "surface"]),
        (" fac ", 25, ["Facteur", "fac", "FACADE", "alpha-fac", "surface"]),
        ("fac", 2, ["Facteur", "fac"]),
        ("fac", 4, ["Facteur", "fac", "FACADE", "alpha-fac"]),
        ("", 3, ["alpha-fac", "Facteur", "fac"]),
        ("zzz", 25, []),
        ("a-f", 25, ["alpha-fac"]),
    ],
)
def test_rank_by_prefix_then_substring(typed: str, shown: int, expected: list[str]) -> None:
    assert ac.rank(CANDIDATES, typed, shown, PROJECT) == expected


def test_rank_leaves_out_what_cannot_be_a_choice() -> None:
    limited = Option(
        name="branch", description="b", max_length=8, autocomplete={"source": "recent"}
    )
    candidates = ["", "   ", "x" * 101, "main", "feature-long", "m\nain"]
    assert ac.rank(candidates, "", 25, PROJECT) == ["main", "feature-long", "m\nain"]
    # A value longer than the option's own max_length would be refused when sent.
    assert ac.rank(candidates, "", 25, limited) == ["main", "m\nain"]


def test_rank_stops_early_on_a_long_list() -> None:
    many = (f"value-{i:05d}" for i in range(1_000_000))
    assert ac.rank(many, "value-0", 25, PROJECT) == [f"value-{i:05d}" for i in range(25)]


def test_the_answer_fits_discords_limits_and_its_spec() -> None:
    values = ["x" * 100, "two\nlines\there", *[f"v{i}" for i in range(30)]]
    answer = ac.answer(values)
    assert answer["type"] == 8
    choices = answer["data"]["choices"]
    assert len(choices) == 25
    assert choices[0] == {"name": "x" * 100, "value": "x" * 100}
    # A name is one line; the value stays what was used.
    assert choices[1] == {"name": "two lines here", "value": "two\nlines\there"}
    assert_interaction_response(answer)
    assert_interaction_response(ac.answer([]))


def test_the_runs_source_is_the_callers_runs_in_this_guild() -> None:
    mine = run_record(workflow_name="plan-1")
    unnamed = run_record(workflow_name=None)
    elsewhere = run_record(workflow_name="plan-2", guild_id="800000000000000009")
    assert ac.run_names([mine, unnamed, elsewhere], GUILD) == ["plan-1"]
