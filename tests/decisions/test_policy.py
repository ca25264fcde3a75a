from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from facteur.config import load_settings
from facteur.decisions.policy import allowed_commands, decide, rule_for
from facteur.errors import ConfigError
from tests.helpers.support import ROOT

GUILD = "100000000000000001"
ADMIN = "100000000000000002"
DEV = "100000000000000003"
ROLE_MAP = {
    "plan": [DEV, ADMIN],
    "implement": [ADMIN],
    "implement:hotfix": [DEV],
    "status": [GUILD],
}


@pytest.mark.parametrize(
    ("command", "refinement", "guild", "roles", "allowed", "rule"),
    [
        ("plan", None, GUILD, [DEV], True, "plan"),
        ("plan", None, GUILD, [ADMIN, "100000000000000099"], True, "plan"),
        ("plan", None, GUILD, [], False, "plan"),
        ("plan", None, GUILD, ["100000000000000099"], False, "plan"),
        ("implement", None, GUILD, [DEV], False, "implement"),
        ("implement", None, GUILD, [ADMIN], True, "implement"),
        # A subcommand rule refines the command's rule.
        ("implement", "hotfix", GUILD, [DEV], True, "implement:hotfix"),
        ("implement", "hotfix", GUILD, [ADMIN], False, "implement:hotfix"),
        # Without a refinement rule the command's own rule applies.
        ("plan", "quick", GUILD, [DEV], True, "plan"),
        # The guild ID is @everyone.
        ("status", None, GUILD, [], True, "status"),
        # Absent from the map: denied, whoever asks.
        ("review", None, GUILD, [DEV, ADMIN], False, None),
        ("review", None, GUILD, [], False, None),
        # Direct messages carry no roles.
        ("plan", None, None, None, False, "plan"),
        ("status", None, None, None, False, "status"),
        # Another guild's @everyone is not ours.
        ("status", None, "100000000000000777", [], False, "status"),
    ],
)
def test_decide(command, refinement, guild, roles, allowed, rule) -> None:
    decision = decide(ROLE_MAP, command, refinement=refinement, guild_id=guild, member_roles=roles)
    assert decision.allowed is allowed
    assert decision.rule == rule
    assert decision.reason


def test_expected_guild_confines_facteur() -> None:
    other = "100000000000000777"
    decision = decide(
        {"plan": [other]}, "plan", guild_id=other, member_roles=[other], expected_guild_id=GUILD
    )
    assert not decision.allowed


def test_rule_for() -> None:
    assert rule_for(ROLE_MAP, "implement", "hotfix") == "implement:hotfix"
    assert rule_for(ROLE_MAP, "implement", "other") == "implement"
    assert rule_for(ROLE_MAP, "implement", None) == "implement"


def test_allowed_commands_lists_only_what_the_caller_may_run() -> None:
    names = ["plan", "implement", "review", "status"]
    assert allowed_commands(ROLE_MAP, names, guild_id=GUILD, member_roles=[DEV]) == [
        "plan",
        "status",
    ]
    assert allowed_commands(ROLE_MAP, names, guild_id=None, member_roles=None) == []


ROLE_MAP_CASES = [
    ({"plan": ["123456789012345678"]}, True),
    ({"plan:cancel": ["123456789012345678", "223456789012345678"]}, True),
    ({"a_b-c": ["12345678901234567890"]}, True),
    ({}, True),
    ({"Plan": ["123456789012345678"]}, False),
    ({"plan now": ["123456789012345678"]}, False),
    ({"plan": []}, False),
    ({"plan": ["123456789012345678", "123456789012345678"]}, False),
    ({"plan": ["1234"]}, False),
    ({"plan": ["abcdefabcdefabcdefa"]}, False),
    ({"plan": "123456789012345678"}, False),
]


@pytest.mark.parametrize(("role_map", "valid"), ROLE_MAP_CASES)
def test_role_map_validation_agrees_with_the_schema(role_map, valid) -> None:
    schema = json.loads((ROOT / "schemas/facteur-discord-role-map.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert Draft202012Validator(schema).is_valid(role_map) is valid
    env = {"FACTEUR_ROLE_MAP": json.dumps(role_map)}
    if valid:
        assert load_settings(environ=env).role_map == role_map
    else:
        with pytest.raises(ConfigError, match="FACTEUR_ROLE_MAP"):
            load_settings(environ=env)
