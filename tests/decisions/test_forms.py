"""Forms' pure part: the modal of a `form: true` command, within Discord's limits and its spec,
and reading its submit strictly into the Invocation the command would have been."""

from __future__ import annotations

import json
from typing import Any

import pytest

from facteur.decisions import forms
from facteur.decisions.catalog import Catalog, parse_catalog
from facteur.decisions.interactions import read_invocation
from facteur.errors import InvalidInteraction
from tests.helpers.contracts import assert_discord, specs_path
from tests.helpers.support import CHANNEL, GUILD, USER, command


def form_catalog(**implement: Any) -> Catalog:
    """/implement as a form: two required text fields, a long one, a short optional one, and
    a boolean the form leaves out; /plan is no form."""
    entry = {
        "name": "implement",
        "description": "Implement a change.",
        "form": True,
        "options": [
            {"name": "project", "description": "The project.", "required": True, "max_length": 100},
            {
                "name": "branch",
                "description": "The branch.",
                "required": True,
                "max_length": 200,
                "label": "Which branch should change?",
            },
            {"name": "ticket", "description": "The ticket.", "max_length": 20},
            {"name": "notes", "description": "Notes."},
            {"name": "draft", "description": "Draft only.", "type": "boolean"},
        ],
    } | implement
    plan = {
        "name": "plan",
        "description": "Plan.",
        "options": [{"name": "objective", "description": "What.", "required": True}],
    }
    return parse_catalog({"commands": [entry, plan]})


def assert_modal(response: dict[str, Any]) -> None:
    """A modal answer against Discord's spec: its schema, and one the callback accepts."""
    assert_discord(response, "ModalInteractionCallbackRequest")
    spec = json.loads(specs_path("discord", "openapi.json").read_text())
    path = spec["paths"]["/interactions/{interaction_id}/{interaction_token}/callback"]
    body = path["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = {branch["$ref"].rsplit("/", 1)[-1] for branch in body["anyOf"]}
    assert "ModalInteractionCallbackRequest" in refs


def submit(custom_id: str, fields: list[tuple[str, Any]], **changes: Any) -> dict[str, Any]:
    """A MODAL_SUBMIT as Discord sends it: each text input in its action row."""
    payload = command("implement", interaction_id="900000000000000055")
    rows = [
        {"type": 1, "id": i, "components": [{"type": 4, "id": i + 10, "custom_id": n, "value": v}]}
        for i, (n, v) in enumerate(fields, start=1)
    ]
    payload.update(type=5, data={"custom_id": custom_id, "components": rows}, **changes)
    return payload


def test_the_modal_asks_for_each_text_option_within_discords_limits() -> None:
    implement = form_catalog().get("implement")
    modal = forms.modal(implement)
    assert_modal(modal)
    data = modal["data"]
    assert (modal["type"], data["custom_id"], data["title"]) == (
        9,
        "facteur:form:implement",
        "/implement",
    )
    inputs = [row["components"][0] for row in data["components"]]
    assert [row["type"] for row in data["components"]] == [1, 1, 1, 1]
    assert [
        (i["custom_id"], i["label"], i["style"], i["required"], i["max_length"]) for i in inputs
    ] == [
        ("project", "project", 1, True, 100),
        ("branch", "Which branch should change?", 2, True, 200),
        ("ticket", "ticket", 1, False, 20),
        ("notes", "notes", 2, False, 4000),
    ]
    assert inputs[0]["placeholder"] == "The project."
    assert all("value" not in i for i in inputs)


def test_the_modal_is_filled_in_with_what_was_typed() -> None:
    implement = form_catalog().get("implement")
    given = [
        {"name": "project", "type": 3, "value": "facteur"},
        {"name": "ticket", "type": 3, "value": "x" * 21},  # longer than it may be: left out
        {"name": "draft", "type": 5, "value": True},
    ]
    modal = forms.modal(implement, given)
    assert_modal(modal)
    inputs = {
        row["components"][0]["custom_id"]: row["components"][0]
        for row in modal["data"]["components"]
    }
    assert inputs["project"]["value"] == "facteur"
    assert "value" not in inputs["ticket"]
    assert "value" not in inputs["branch"]


def test_a_long_option_is_capped_at_a_text_inputs_limit() -> None:
    catalog = form_catalog(
        options=[{"name": "notes", "description": "N.", "required": True, "max_length": 6000}]
    )
    [row] = forms.modal(catalog.get("implement"))["data"]["components"]
    assert row["components"][0]["max_length"] == 4000
    assert row["components"][0]["style"] == 2


@pytest.mark.parametrize(
    ("given", "opens"),
    [
        ([], True),
        ([{"name": "project", "type": 3, "value": "x"}], True),
        (
            [
                {"name": "project", "type": 3, "value": "x"},
                {"name": "branch", "type": 3, "value": "y"},
            ],
            False,
        ),
    ],
)
def test_a_form_opens_only_while_a_required_option_is_missing(given: Any, opens: bool) -> None:
    catalog = form_catalog()
    assert forms.wants_form(catalog.get("implement"), given) is opens
    assert forms.wants_form(catalog.get("plan"), []) is False  # not a form


def test_a_submit_reads_as_the_command_it_stands_for() -> None:
    payload = submit(
        "facteur:form:implement",
        [("project", "facteur"), ("branch", "main"), ("ticket", ""), ("notes", "a\nb")],
    )
    call = forms.read_submission(payload, form_catalog())
    assert call is not None
    # The same Invocation as the slash command with those options (empty ones left out).
    options = [
        {"name": "project", "type": 3, "value": "facteur"},
        {"name": "branch", "type": 3, "value": "main"},
        {"name": "notes", "type": 3, "value": "a\nb"},
    ]
    as_command = read_invocation(command("implement", options, interaction_id=payload["id"]))
    assert call == as_command
    assert (call.interaction_id, call.user_id, call.guild_id, call.channel_id) == (
        "900000000000000055",
        USER,
        GUILD,
        CHANNEL,
    )


def test_a_submit_in_labels_reads_the_same() -> None:
    payload = submit("facteur:form:implement", [])
    payload["data"]["components"] = [
        {
            "type": 18,
            "id": 1,
            "component": {"type": 4, "id": 2, "custom_id": "project", "value": "p"},
        }
    ]
    call = forms.read_submission(payload, form_catalog())
    assert call is not None and call.options == [{"name": "project", "type": 3, "value": "p"}]


@pytest.mark.parametrize(
    "custom_id",
    [
        "facteur:form:plan",  # a command, but no form
        "facteur:form:deploy",  # no such command
        "facteur:form:implement:admin",
        "facteur:form:Implement",
        "facteur:cancel:abcdefgh12",
        "facteur:form:",
        "something else",
        "x" * 101,
        None,
        7,
    ],
)
def test_a_custom_id_that_names_no_form_is_not_ours(custom_id: Any) -> None:
    payload = submit(custom_id, [("project", "x"), ("branch", "y")])
    assert forms.read_submission(payload, form_catalog()) is None
    # Whatever its components: only a form of facteur's is read any further.
    payload["data"]["components"] = "junk"
    assert forms.read_submission(payload, form_catalog()) is None


def test_a_submit_without_data_is_not_ours() -> None:
    payload = submit("facteur:form:implement", [("project", "x")])
    for data in (None, "x", []):
        assert forms.read_submission({**payload, "data": data}, form_catalog()) is None


@pytest.mark.parametrize(
    "fields",
    [
        [("project", "x"), ("admin", "yes")],  # not a field of the form
        [("project", "x"), ("draft", "true")],  # an option, but not text
        [("project", "x"), ("project", "y")],  # twice
    ],
)
def test_fields_that_are_not_the_forms_are_not_ours(fields: list[tuple[str, str]]) -> None:
    assert forms.read_submission(submit("facteur:form:implement", fields), form_catalog()) is None


def _rows(rows: Any) -> dict[str, Any]:
    payload = submit("facteur:form:implement", [])
    payload["data"]["components"] = rows
    return payload


TEXT = {"type": 4, "custom_id": "project", "value": "x"}


@pytest.mark.parametrize(
    "payload",
    [
        _rows(None),
        _rows([]),
        _rows([{"type": 1, "components": [TEXT]}] * 6),
        _rows(["row"]),
        _rows([{"type": 1, "components": []}]),
        _rows([{"type": 1, "components": [TEXT, TEXT]}]),
        _rows([{"type": 1, "components": [{"type": 3, "custom_id": "project", "values": ["x"]}]}]),
        _rows([{"type": 10, "content": "hi"}]),
        _rows([{"type": 18, "component": {"type": 5, "custom_id": "project"}}]),
        _rows([{"type": 1, "components": [{"type": 4, "custom_id": "project", "value": 3}]}]),
        _rows([{"type": 1, "components": [{"type": 4, "custom_id": "project"}]}]),
        _rows([{"type": 1, "components": [{"type": 4, "custom_id": 7, "value": "x"}]}]),
        _rows([{"type": 1, "components": [{"type": 4, "custom_id": "p", "value": "x" * 4001}]}]),
        {**submit("facteur:form:implement", [("project", "x")]), "id": "not-a-snowflake"},
        {**submit("facteur:form:implement", [("project", "x")]), "member": {"roles": "all"}},
    ],
)
def test_shapes_discord_never_sends_are_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInteraction):
        forms.read_submission(payload, form_catalog())
