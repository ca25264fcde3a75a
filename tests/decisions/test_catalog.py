from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from facteur.decisions.catalog import check_options, parse_catalog
from facteur.errors import CatalogError
from tests.helpers.contracts import assert_discord


def _catalog(**command: Any) -> dict[str, Any]:
    base = {"name": "plan", "description": "Plan things."}
    base.update(command)
    return {"commands": [base]}


def test_default_catalog_is_the_seed_contract() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_FILE)
    shape = {
        command.name: [(o.name, o.required) for o in command.options]
        for command in catalog.commands
    }
    assert shape == {
        "plan": [("objective", True), ("project", False)],
        "implement": [("project", True), ("branch", True), ("ticket", False), ("notes", False)],
        "review": [
            ("project", True),
            ("artifact", True),
            ("notes", False),
            ("deadline", False),
        ],
        "status": [("workflow", False)],
        "help": [],
    }
    assert catalog.get("status").builtin
    assert not catalog.get("plan").builtin


def test_registration_payloads_validate_against_discord() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_FILE)
    for command in catalog.commands:
        assert_discord(command.to_discord(), "ApplicationCommandUpdateRequest")
        assert_discord(command.to_discord(), "ApplicationCommandCreateRequest")


def test_choices_and_types_reach_discord() -> None:
    catalog = parse_catalog(
        _catalog(
            options=[
                {
                    "name": "size",
                    "description": "How big.",
                    "type": "integer",
                    "required": True,
                    "choices": [{"name": "small", "value": 1}, {"name": "large", "value": 2}],
                },
                {"name": "draft", "description": "Draft only.", "type": "boolean"},
            ]
        )
    )
    payload = catalog.commands[0].to_discord()
    assert payload["options"][0]["type"] == 4
    assert payload["options"][0]["choices"] == [
        {"name": "small", "value": 1},
        {"name": "large", "value": 2},
    ]
    assert_discord(payload, "ApplicationCommandCreateRequest")


def _option(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "An option."} | extra


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"commands": []}, "commands"),
        (_catalog(name="Plan"), "name"),
        (_catalog(name="x" * 33), "name"),
        (_catalog(name="has space"), "name"),
        (_catalog(description=""), "description"),
        (_catalog(description="d" * 101), "description"),
        (_catalog(options=[_option(f"o{i}") for i in range(26)]), "options"),
        (
            _catalog(
                options=[
                    _option("c", choices=[{"name": f"n{i}", "value": f"v{i}"} for i in range(26)])
                ]
            ),
            "choices",
        ),
        (_catalog(options=[_option("a"), _option("a")]), "unique"),
        (_catalog(options=[_option("a"), _option("b", required=True)]), "before optional"),
        (_catalog(options=[_option("a", type="colour")]), "unknown option type"),
        (
            _catalog(options=[_option("a", type="boolean", choices=[{"name": "y", "value": 1}])]),
            "choices are only allowed",
        ),
        (
            _catalog(options=[_option("a", type="integer", choices=[{"name": "y", "value": "1"}])]),
            "does not match",
        ),
        (_catalog(options=[_option("a", type="integer", max_length=3)]), "max_length"),
        (_catalog(options=[_option("a", max_length=6001)]), "max_length"),
        (_catalog(options=[_option("a", type="subcommand")]), "subcommands"),
        (_catalog(surprise=True), "surprise"),
        (
            {"commands": [{"name": "a", "description": "d"}, {"name": "a", "description": "d"}]},
            "unique",
        ),
        ({"commands": [{"name": f"c{i}", "description": "d"} for i in range(101)]}, "commands"),
        ("just text", "(root)"),
    ],
)
def test_catalog_rejects_what_discord_would(data: Any, fragment: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(data)
    assert fragment in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("commands: [")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)


REVIEW_OPTIONS = [
    {"name": "project", "type": 3, "value": "facteur"},
    {"name": "artifact", "type": 3, "value": "https://git.example/pr/1"},
]


@pytest.mark.parametrize(
    ("options", "problems"),
    [
        (REVIEW_OPTIONS, []),
        ([*REVIEW_OPTIONS, {"name": "notes", "type": 3, "value": "look at tests"}], []),
        ([REVIEW_OPTIONS[0]], ["`artifact` is required"]),
        (None, ["`project` is required", "`artifact` is required"]),
        (
            [*REVIEW_OPTIONS, {"name": "colour", "type": 3, "value": "red"}],
            ["unknown option `colour`"],
        ),
        (
            [*REVIEW_OPTIONS, {"name": "notes", "type": 4, "value": 3}],
            ["`notes` has the wrong type"],
        ),
        (
            [*REVIEW_OPTIONS, {"name": "notes", "type": 3, "value": 3}],
            ["`notes` has the wrong type"],
        ),
        (
            [*REVIEW_OPTIONS, {"name": "notes", "type": 3, "value": "n" * 1001}],
            ["`notes` is longer than 1000 characters"],
        ),
        ([*REVIEW_OPTIONS, REVIEW_OPTIONS[0]], ["`project` is given twice"]),
        ("not a list", ["options are malformed"]),
        ([["odd"], *REVIEW_OPTIONS], ["an option is malformed"]),
        (
            [{"name": "<@&1>**x**", "type": 3, "value": "v"}, *REVIEW_OPTIONS],
            ["unknown option `1x`"],
        ),
    ],
)
def test_check_options(options: Any, problems: list[str]) -> None:
    review = load_catalog(DEFAULT_CATALOG_FILE).get("review")
    values, found = check_options(review, options)
    assert found == problems
    if not problems:
        assert values == {o["name"]: o["value"] for o in options}


def test_check_options_choices() -> None:
    command = parse_catalog(
        _catalog(
            options=[
                _option("env", required=True, choices=[{"name": "Prod", "value": "prod"}]),
                _option("ratio", type="number"),
                _option("dry", type="boolean"),
            ]
        )
    ).commands[0]
    assert check_options(command, [{"name": "env", "type": 3, "value": "dev"}])[1] == [
        "`env` must be one of: prod"
    ]
    values, problems = check_options(
        command,
        [
            {"name": "env", "type": 3, "value": "prod"},
            {"name": "ratio", "type": 10, "value": 0.5},
            {"name": "dry", "type": 5, "value": True},
        ],
    )
    assert problems == []
    assert values == {"env": "prod", "ratio": 0.5, "dry": True}
    # A boolean is not a number, even though Python says so.
    assert check_options(
        command,
        [{"name": "env", "type": 3, "value": "prod"}, {"name": "ratio", "type": 10, "value": True}],
    )[1] == ["`ratio` has the wrong type"]


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ("800000000000000100", []),
        ("{{workflow.name}}", ["`who` is not an ID"]),
        ("ada", ["`who` is not an ID"]),
        ("0123", ["`who` is not an ID"]),
    ],
)
def test_user_channel_and_role_options_must_be_ids(value: str, problems: list[str]) -> None:
    command = parse_catalog(_catalog(options=[_option("who", type="user")])).commands[0]
    assert check_options(command, [{"name": "who", "type": 6, "value": value}])[1] == problems


def test_parameter_encoding_is_text_or_base64() -> None:
    assert parse_catalog(_catalog()).commands[0].parameter_encoding == "text"
    assert parse_catalog(_catalog(parameter_encoding="base64")).commands[0].parameter_encoding == (
        "base64"
    )
    with pytest.raises(CatalogError, match="parameter_encoding"):
        parse_catalog(_catalog(parameter_encoding="rot13"))


def test_a_thread_needs_a_public_workflow_run() -> None:
    assert parse_catalog(_catalog(thread=True)).commands[0].thread
    for other in ({"builtin": True}, {"ephemeral": True}):
        with pytest.raises(CatalogError, match="thread needs a command"):
            parse_catalog(_catalog(thread=True, **other))


# -- autocomplete and forms -----------------------------------------------------------------------

SUGGESTED = {"source": "values", "values": ["alpha", "beta"]}


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        (
            _option("p", choices=[{"name": "a", "value": "a"}], autocomplete=SUGGESTED),
            "choices and autocomplete cannot both be set",
        ),
        (_option("p", type="integer", autocomplete={"source": "recent"}), "string options"),
        (_option("p", autocomplete={"source": "values"}), "needs its values"),
        (_option("p", autocomplete={"source": "recent", "values": ["a"]}), "takes no values"),
        (_option("p", autocomplete={"source": "recent", "shown": 26}), "shown"),
        (_option("p", autocomplete={"source": "recent", "shown": 0}), "shown"),
        (_option("p", autocomplete={"source": "everything"}), "source"),
        (_option("p", autocomplete={"source": "values", "values": ["x" * 101]}), "values"),
        (_option("p", label="l" * 46), "label"),
        (_option("p", label=""), "label"),
    ],
)
def test_the_catalog_refuses_autocomplete_and_labels_discord_would(
    option: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(_catalog(options=[option]))
    assert fragment in str(err.value)


def test_the_catalog_refuses_forms_a_modal_cannot_hold() -> None:
    six = [_option(f"o{i}") for i in range(6)]
    with pytest.raises(CatalogError, match="at most 5 text fields"):
        parse_catalog(_catalog(form=True, options=six))
    # Five text fields fit, with a non-text option the form leaves out.
    five = [*six[:5], _option("count", type="integer")]
    assert parse_catalog(_catalog(form=True, options=five)).commands[0].form
    required_number = [_option("count", type="integer", required=True)]
    with pytest.raises(CatalogError, match="can only ask for text"):
        parse_catalog(_catalog(form=True, options=required_number))


def test_autocomplete_and_forms_reach_discord_as_its_spec_says() -> None:
    catalog = parse_catalog(
        _catalog(
            form=True,
            options=[
                _option("project", required=True, autocomplete={"source": "recent"}),
                _option("branch", required=True, label="Which branch?"),
                _option("env", autocomplete=SUGGESTED),
            ],
        )
    )
    payload = catalog.commands[0].to_discord()
    assert [(o["name"], o.get("autocomplete")) for o in payload["options"]] == [
        ("project", True),
        ("branch", None),
        ("env", True),
    ]
    # Discord's client sends no command without its required options, so a form's are not
    # required there: sent bare, the command opens its form, and facteur checks them.
    assert [o["required"] for o in payload["options"]] == [False, False, False]
    assert all("label" not in o for o in payload["options"])  # the form's, not Discord's
    assert_discord(payload, "ApplicationCommandCreateRequest")
    assert_discord(payload, "ApplicationCommandUpdateRequest")
    # Without a form, required options stay required.
    plain = parse_catalog(_catalog(options=[_option("project", required=True)]))
    assert plain.commands[0].to_discord()["options"][0]["required"] is True


def test_a_value_typed_but_never_offered_is_still_checked() -> None:
    catalog = parse_catalog(
        _catalog(options=[_option("env", required=True, max_length=10, autocomplete=SUGGESTED)])
    )
    plan = catalog.commands[0]
    offered = [{"name": "env", "type": 3, "value": "alpha"}]
    assert check_options(plan, offered) == ({"env": "alpha"}, [])
    # Not a suggestion, and fine: a suggestion is not a list of the allowed values.
    assert check_options(plan, [{"name": "env", "type": 3, "value": "gamma"}])[1] == []
    too_long = [{"name": "env", "type": 3, "value": "x" * 11}]
    assert check_options(plan, too_long)[1] == ["`env` is longer than 10 characters"]
    templated = [{"name": "env", "type": 3, "value": "{{workflow.name}}"}]
    assert check_options(plan, templated)[1] != []


# Issue 18: each problem names the command, option or choice by name, with the value.
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _catalog(options=[_option("Objective")]),
            "command 'plan', option 'Objective' (name): 'Objective' must match ^[-_a-z0-9]{1,32}$",
        ),
        (
            {"commands": [{"name": n, "description": "d"} for n in ("plan", "help", "plan")]},
            "command 'plan': given more than once (command names must be unique)",
        ),
        (
            _catalog(options=[_option("a"), _option("b"), _option("b")]),
            "command 'plan', option 'b': given more than once (option names must be unique)",
        ),
        (_catalog(name="Plan"), "command 'Plan' (name): 'Plan' must match ^[-_a-z0-9]{1,32}$"),
        (
            _catalog(description="d" * 101),
            "command 'plan' (description): 'dddddddddddddddddddddddddddddddd'… (101 characters): "
            "String should have at most 100 characters",
        ),
        (_catalog(surprise=True), "command 'plan' (surprise): unknown key"),
        ({"commands": [{"description": "d"}]}, "command #1 (name): required but not set"),
        (
            _catalog(options=[_option("a", max_length=6001)]),
            "command 'plan', option 'a' (max_length): 6001: "
            "Input should be less than or equal to 6000",
        ),
        (
            _catalog(options=[_option("c", choices=[{"name": "big", "value": [1]}])]),
            "command 'plan', option 'c', choice 'big' (value): "
            "Input should be a valid string or a valid integer or a valid number",
        ),
        (
            _catalog(options=[_option("a"), _option("b", required=True)]),
            "command 'plan': required option 'b' must come before optional ones",
        ),
        ("just text", "(root): 'just text': Input should be a valid dictionary"),
    ],
)
def test_catalog_problems_name_the_thing(data: Any, message: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog(data, "commands.yaml")
    assert str(err.value).startswith(f"commands.yaml: {message}")
    assert "\n" not in str(err.value)


def test_several_catalog_problems_share_one_line() -> None:
    data = {
        "commands": [
            {"name": "plan", "description": "d", "options": [_option("Bad")]},
            {"name": "review", "description": ""},
        ]
    }
    with pytest.raises(CatalogError) as err:
        parse_catalog(data, "commands.yaml")
    assert str(err.value) == (
        "commands.yaml: command 'plan', option 'Bad' (name): 'Bad' must match "
        "^[-_a-z0-9]{1,32}$; command 'review' (description): '': "
        "String should have at least 1 character"
    )
