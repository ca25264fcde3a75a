"""Cooldowns and quotas as the catalog writes them: "N/<window>" read into counts and seconds,
the keys they are counted under, and what a refusal says."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from facteur.decisions import render
from facteur.decisions.catalog import Command, Limits
from facteur.decisions.limits import (
    NO_GUILD,
    UNIT_SECONDS,
    Limit,
    Rate,
    Refused,
    limits_for,
    parse_rate,
    refused,
)
from tests.helpers.support import GUILD, USER

_CATALOG_PATTERN = re.compile(r"[1-9][0-9]{0,5}/[1-9][0-9]{0,5}[smhd]")


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("3/10m", Rate(3, 600)),
        ("1/1s", Rate(1, 1)),
        ("20/1h", Rate(20, 3600)),
        ("5/2d", Rate(5, 172_800)),
        ("999999/999999d", Rate(999_999, 999_999 * 86_400)),
    ],
)
def test_a_rate_reads_as_count_and_seconds(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@given(
    count=st.integers(1, 999_999),
    amount=st.integers(1, 999_999),
    unit=st.sampled_from(sorted(UNIT_SECONDS)),
)
def test_every_rate_the_catalog_loads_parses(count: int, amount: int, unit: str) -> None:
    text = f"{count}/{amount}{unit}"
    Limits(per_user=text)  # the catalog takes it
    assert parse_rate(text) == Rate(count, amount * UNIT_SECONDS[unit])


@given(st.one_of(st.text(max_size=20), st.from_regex(r"\A[0-9]{0,7}/[0-9]{0,7}[a-z]?\Z")))
@example("3/10m\n")
@example("\uff13/10m")  # a fullwidth digit three
def test_the_parser_takes_exactly_what_the_catalog_takes(text: str) -> None:
    try:
        Limits(per_user=text)
    except ValidationError:
        loads = False
    else:
        loads = True
    assert loads == bool(_CATALOG_PATTERN.fullmatch(text))
    if loads:
        assert parse_rate(text).count >= 1
    else:
        with pytest.raises(ValueError, match="N/<window>"):
            parse_rate(text)


@pytest.mark.parametrize("text", ["0/1m", "1/0m", "3/10", "3/10w", "3 / 10m", "-1/1m", "3/10m "])
def test_what_is_not_a_rate_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="N/<window>"):
        parse_rate(text)


def _command(**limits: str) -> Command:
    return Command(name="plan", description="Plan.", limits=Limits(**limits) if limits else None)


def test_limits_are_spent_per_user_then_per_guild_under_their_keys() -> None:
    command = _command(per_guild="10/1h", per_user="3/10m")
    assert limits_for(command, USER, GUILD) == [
        Limit("user", f"limit:plan:user:{USER}", Rate(3, 600)),
        Limit("guild", f"limit:plan:guild:{GUILD}", Rate(10, 3600)),
    ]
    assert limits_for(_command(per_guild="1/1d"), USER, GUILD) == [
        Limit("guild", f"limit:plan:guild:{GUILD}", Rate(1, 86400))
    ]
    assert limits_for(_command(), USER, GUILD) == []


def test_without_a_guild_the_guild_limit_still_counts() -> None:
    # Direct messages share one count rather than escaping the guild's.
    [limit] = limits_for(_command(per_guild="2/1m"), USER, None)
    assert limit.key == f"limit:plan:guild:{NO_GUILD}"


@pytest.mark.parametrize(
    ("user", "guild"),
    [("ada", GUILD), (USER, "x:y"), ("0", GUILD), (f"{USER}:*", GUILD), (USER, "")],
)
def test_keys_are_made_of_discord_ids_only(user: str, guild: str) -> None:
    with pytest.raises(ValueError, match="snowflake"):
        limits_for(_command(per_user="1/1m", per_guild="1/1m"), user, guild)


def test_a_refusal_rounds_when_to_try_again_up() -> None:
    limit = Limit("user", "k", Rate(1, 60))
    assert refused(limit, 1000.001) == Refused(limit, 1001)
    assert refused(limit, 1000.0) == Refused(limit, 1000)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "second"),
        (90, "90 seconds"),
        (60, "minute"),
        (600, "10 minutes"),
        (3600, "hour"),
        (7200, "2 hours"),
        (86400, "day"),
        (172_800, "2 days"),
    ],
)
def test_windows_read_in_their_largest_whole_unit(seconds: int, text: str) -> None:
    assert render.window_text(seconds) == text


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        (Limit("user", "k", Rate(3, 600)), "`/plan` is limited to 3 runs per 10 minutes for each"),
        (Limit("guild", "k", Rate(1, 3600)), "`/plan` is limited to 1 run per hour on this server"),
    ],
)
def test_a_limited_command_says_which_limit_and_when_again(limit: Limit, said: str) -> None:
    text = render.limited("plan", Refused(limit, 1_800_000_123))
    assert text.startswith(said)
    # A Discord timestamp: each reader sees it in their zone, kept current ("in 5 minutes").
    assert text.endswith("you can run it again <t:1800000123:R>.")
