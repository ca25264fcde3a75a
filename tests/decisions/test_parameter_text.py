"""User text reaches the workflow exactly as typed, and Argo never evaluates it.

The oracle (tests/helpers/argo_oracle.py) models Argo's two substitution passes from its source;
these tests first show it reproduces the holes, then that nothing facteur accepts changes.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from facteur.decisions import parameter_text
from facteur.decisions.catalog import check_options, parse_catalog
from facteur.decisions.workflow import build_parameters
from tests.helpers import argo_oracle
from tests.helpers.k8s_schemas import documents
from tests.helpers.support import ROOT

TEMPLATE_FILE = ROOT / "kubernetes/argo/workflowtemplate-facteur-dispatch.yaml"
OPTIONS = ("objective", "project", "branch", "ticket", "notes", "artifact", "deadline")


def _shipped_agent() -> dict[str, Any]:
    (template,) = documents(TEMPLATE_FILE)
    return next(t for t in template["spec"]["templates"] if t["name"] == "agent")


AGENT = _shipped_agent()
PROBE = argo_oracle.PROBE


def _env(template: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in template["container"]["env"]}


def _after_argo(values: dict[str, str]) -> dict[str, str]:
    """What the shipped template's container gets for each option, per the oracle."""
    parameters = {name: "" for name in (*OPTIONS, "action", "encoding", "last_correlation_id")}
    parameters |= values
    env = _env(argo_oracle.substitute(AGENT, parameters))
    return {name: env[f"FACTEUR_{name.upper()}"] for name in values}


# -- the oracle reproduces what the issue found --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("{{workflow.serviceAccountName}}", "reads a workflow field"),
        ("{{workflow.parameters.project}}", "reads another parameter"),
        ('{{=sprig.repeat(999999999,"x")}}', "is evaluated"),
        ("{{=sprig.getHostByName('x.example')}}", "is evaluated"),
        ("bell\a", "Go escapes it as \\a, which is not JSON"),
        ("nul\x00", "Go escapes it as \\x00, which is not JSON"),
        ("tag\U000e0001", "Go escapes it as \\U000e0001, which is not JSON"),
        ("lone\ud800", "Go's JSON decoder makes it U+FFFD"),
    ],
)
def test_the_oracle_shows_each_hole(value: str, why: str) -> None:
    try:
        arrived = _after_argo({"objective": value})["objective"]
    except (argo_oracle.Refused, argo_oracle.Evaluated):
        return
    assert arrived != value, why


def test_the_oracle_passes_ordinary_text_through() -> None:
    value = 'Ship "v2" to C:\\prod, then {say} «done» 🚀\nwith\ttabs & <tags>'
    assert _after_argo({"objective": value}) == {"objective": value}


def test_neighbouring_braces_join_into_a_tag() -> None:
    # Why a brace at either end is refused: two values side by side make `{{`.
    parameters = {"objective": "x{", "project": "{=1+1}"}
    with pytest.raises((argo_oracle.Refused, argo_oracle.Evaluated)):
        argo_oracle.substitute(PROBE, parameters)


def test_the_known_holes_are_refused() -> None:
    for value in ("{{workflow.name}}", "{{=1}}", "a}}", "{x", "x}", "t\U000e0001"):
        assert parameter_text.argo_problem(value), value
    for value in ("nul\x00", "esc\x1b", "cr\r", "del\x7f", "c1\x85", "lone\ud800"):
        assert parameter_text.control_problem(value), value


# -- nothing facteur accepts changes -------------------------------------------------------------

# Braces, tag syntax and escapes, mixed into all of Unicode, surrogates included.
_TRICKY = st.sampled_from(
    [
        *("{", "}", "{{", "}}", "=", "\\", '"', "\\u007b", "\x00", "\a", " ", "workflow.name"),
        *("{{workflow.name}}", "{{=", "inputs.parameters.copy", "workflow.parameters.project"),
    ]
)
_ANY = st.characters(codec=None, exclude_categories=())
TEXT = st.lists(st.one_of(_TRICKY, _ANY.map(str)), max_size=40).map("".join) | st.text(max_size=80)


def _accepted(value: str, encoding: str = parameter_text.PLAIN) -> bool:
    if parameter_text.control_problem(value):
        return False
    return encoding != parameter_text.PLAIN or parameter_text.argo_problem(value) is None


@settings(max_examples=400)
@given(objective=TEXT, project=TEXT)
# Side by side, a brace at each end makes a tag: too rare for chance to find.
@example(objective="x{", project="{=1+1}")
def test_no_accepted_plain_value_changes_under_the_oracle(objective: str, project: str) -> None:
    values = {"objective": objective, "project": project}
    accepted = {name: value for name, value in values.items() if _accepted(value)}
    if not accepted:
        return
    assert _after_argo(accepted) == accepted
    # And in every placement a template may use, beside each other included.
    assert argo_oracle.survives(PROBE, {"objective": "", "project": ""} | accepted)


@given(value=TEXT)
def test_every_accepted_value_gets_through_in_base64_and_decodes_back(value: str) -> None:
    if not _accepted(value, parameter_text.BASE64):
        return
    sent = parameter_text.encode(value, parameter_text.BASE64)
    assert parameter_text.argo_problem(sent) is None
    arrived = _after_argo({"objective": sent})["objective"]
    assert base64.b64decode(arrived).decode("utf-8") == value


# -- at the door ---------------------------------------------------------------------------------

CATALOG = parse_catalog(
    {
        "commands": [
            {
                "name": "plan",
                "description": "d",
                "options": [{"name": "objective", "description": "o", "required": True}],
            },
            {
                "name": "implement",
                "description": "d",
                "parameter_encoding": "base64",
                "options": [{"name": "notes", "description": "n", "required": True}],
            },
        ]
    }
)


def _check(command: str, option: str, value: str) -> tuple[dict[str, Any], list[str]]:
    found = CATALOG.get(command)
    assert found is not None
    return check_options(found, [{"name": option, "type": 3, "value": value}])


def test_a_plain_command_refuses_tag_syntax_naming_the_option_and_the_characters() -> None:
    values, problems = _check("plan", "objective", "deploy {{workflow.serviceAccountName}}")
    assert values == {}
    assert problems == [
        "`objective` holds `{{` or `}}`, which Argo would read as one of its own template tags"
    ]


def test_a_base64_command_carries_tag_syntax_encoded() -> None:
    typed = "use {{ .Values.image }} in the chart"
    values, problems = _check("implement", "notes", typed)
    assert (values, problems) == ({"notes": typed}, [])
    parameters = build_parameters({}, values, "implement", encoding=parameter_text.BASE64)
    assert parameters["encoding"] == "base64"
    assert parameters["action"] == "implement"
    assert base64.b64decode(parameters["notes"]).decode() == typed


def test_a_plain_command_sends_no_encoding_parameter() -> None:
    assert "encoding" not in build_parameters({}, {"objective": "x"}, "plan")


@pytest.mark.parametrize("command", ["plan", "implement"])
def test_control_characters_are_refused_whatever_the_encoding(command: str) -> None:
    option = "objective" if command == "plan" else "notes"
    _, problems = _check(command, option, "a\x00b")
    assert problems == [
        f"`{option}` holds a control character (U+0000); only tab and newline may be used"
    ]
