from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from facteur.config import load_settings
from facteur.decisions import ids
from facteur.decisions.policy import allowed_commands, decide, rule_for
from facteur.errors import ConfigError
from tests.helpers.support import ROOT

GUILD = "100000000000000001"
ADMIN = "100000000000000002"
DEV = "100000000000000003"
ROLE_MAP = {
    "plan": [DEV, ADMIN],
    "implement": [ADMIN],
    "implement:cancel": [DEV],
    "status": [GUILD],
}


@pytest.mark.parametrize(
    ("command", "action", "guild", "roles", "allowed", "rule"),
    [
        ("plan", None, GUILD, [DEV], True, "plan"),
        ("plan", None, GUILD, [ADMIN, "100000000000000099"], True, "plan"),
        ("plan", None, GUILD, [], False, "plan"),
        ("plan", None, GUILD, ["100000000000000099"], False, "plan"),
        ("implement", None, GUILD, [DEV], False, "implement"),
        ("implement", None, GUILD, [ADMIN], True, "implement"),
        # A button's rule governs that button on the command's runs, and only that button.
        ("implement", "cancel", GUILD, [DEV], True, "implement:cancel"),
        ("implement", "cancel", GUILD, [ADMIN], False, "implement:cancel"),
        ("implement", None, GUILD, [DEV], False, "implement"),
        # Without a button rule the command's own rule applies.
        ("plan", "retry", GUILD, [DEV], True, "plan"),
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
def test_decide(command, action, guild, roles, allowed, rule) -> None:
    decision = decide(ROLE_MAP, command, action=action, guild_id=guild, member_roles=roles)
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
    assert rule_for(ROLE_MAP, "implement", "cancel") == "implement:cancel"
    assert rule_for(ROLE_MAP, "implement", "retry") == "implement"
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
    ({"plan:retry": ["123456789012345678"]}, True),
    ({"plan:approve": ["123456789012345678"]}, True),
    ({"plan:logs": ["123456789012345678"]}, True),
    # Buttons that obey another's rule have no key of their own.
    ({"plan:stop": ["123456789012345678"]}, False),
    ({"plan:reject": ["123456789012345678"]}, False),
    # The old form: `command:<subcommand>` shared its namespace with the buttons.
    ({"plan:deep": ["123456789012345678"]}, False),
    ({"plan:cancel:now": ["123456789012345678"]}, False),
    ({"a" * 33: ["123456789012345678"]}, False),
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


def test_every_button_rule_is_a_key_in_the_schema_too() -> None:
    schema = json.loads((ROOT / "schemas/facteur-discord-role-map.schema.json").read_text())
    validator = Draft202012Validator(schema)
    for action in ids.BUTTON_ACTIONS:
        key = {f"plan:{action}": ["123456789012345678"]}
        assert validator.is_valid(key) is (action in ids.RULE_ACTIONS), action
        assert bool(ids.ROLE_KEY.fullmatch(f"plan:{action}")) is (action in ids.RULE_ACTIONS)


@pytest.mark.parametrize(
    ("action", "rule"),
    [
        ("cancel", "plan:cancel"),
        ("stop", "plan:cancel"),
        ("approve", "plan:approve"),
        ("reject", "plan:approve"),
        ("logs", "plan:logs"),
        ("retry", "plan:retry"),
    ],
)
def test_each_button_obeys_its_rule(action: str, rule: str) -> None:
    role_map = {"plan": [ADMIN], rule: [DEV]}
    decision = decide(role_map, "plan", action=action, guild_id=GUILD, member_roles=[DEV])
    assert (decision.allowed, decision.rule) == (True, rule)
    # Without its own key, the command's rule.
    fallback = decide({"plan": [ADMIN]}, "plan", action=action, guild_id=GUILD, member_roles=[DEV])
    assert (fallback.allowed, fallback.rule) == (False, "plan")


def test_the_old_subcommand_form_gets_a_clear_error() -> None:
    env = {"FACTEUR_ROLE_MAP": json.dumps({"plan:deep": ["123456789012345678"]})}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    message = str(caught.value)
    assert "'plan:deep'" in message
    assert "'plan:cancel' or 'plan:retry'" in message
    assert "subcommand rules no longer exist" in message


def test_a_cancel_subcommand_cannot_borrow_the_cancel_buttons_rule() -> None:
    # The hole: `plan:cancel` let whoever may cancel a /plan run start `/plan cancel`.
    role_map = {"plan": [ADMIN], "plan:cancel": [DEV]}
    as_command = decide(role_map, "plan", guild_id=GUILD, member_roles=[DEV])
    as_button = decide(role_map, "plan", action="cancel", guild_id=GUILD, member_roles=[DEV])
    assert (as_command.allowed, as_button.allowed) == (False, True)
