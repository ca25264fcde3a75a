from __future__ import annotations

import re

import pytest

from facteur.decisions.workflow import (
    build_parameters,
    label_value,
    run_annotations,
    run_labels,
    workflow_name,
)

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def test_parameters_in_documented_order() -> None:
    params = build_parameters(
        {"repoURL": "https://git.example/r.git", "action": "static-loses", "objective": "static"},
        {"objective": "ship it", "project": "facteur"},
        "plan",
    )
    assert params == {
        "repoURL": "https://git.example/r.git",
        "action": "plan",
        "objective": "ship it",
        "project": "facteur",
    }
    assert list(params) == ["repoURL", "action", "objective", "project"]


def test_empty_optional_options_are_dropped() -> None:
    params = build_parameters({}, {"project": "x", "notes": "", "ticket": "   "}, "implement")
    assert params == {"project": "x", "action": "implement"}


def test_non_string_values_become_text() -> None:
    params = build_parameters({}, {"count": 3, "dry": True, "ratio": 0.5}, "plan")
    assert params == {"count": "3", "dry": "true", "ratio": "0.5", "action": "plan"}


def test_last_correlation_only_for_review() -> None:
    assert build_parameters({}, {}, "review", "abc")["last_correlation_id"] == "abc"
    assert "last_correlation_id" not in build_parameters({}, {}, "plan", "abc")
    assert "last_correlation_id" not in build_parameters({}, {}, "review", None)


def test_user_text_stays_one_intact_value() -> None:
    value = "a=b,c=d\naction=evil"
    params = build_parameters({}, {"notes": value}, "review")
    assert params["notes"] == value
    assert params["action"] == "review"


def test_workflow_name_is_deterministic_and_valid() -> None:
    assert workflow_name("plan", "1234567890123456789") == "plan-1234567890123456789"
    assert workflow_name("plan", "1234567890123456789") == workflow_name(
        "plan", "1234567890123456789"
    )
    name = workflow_name("my_cmd", "1234567890123456789")
    assert DNS_SUBDOMAIN.fullmatch(name)
    with pytest.raises(ValueError):
        workflow_name("plan", "12,a=b")


@pytest.mark.parametrize(
    "text", ["plan", "x" * 80, "a,b=c", "-lead", "trail.", "é🙂", "", "a b\nc", "__"]
)
def test_label_values_are_always_valid(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63
    assert LABEL_VALUE.fullmatch(value)


def test_labels_and_annotations_trace_the_run() -> None:
    ids = {
        "command": "plan",
        "user_id": "800000000000000100",
        "interaction_id": "900000000000000001",
        "correlation_id": "0" * 32,
    }
    found = run_labels(**ids)
    assert found["facteur.dev/command"] == "plan"
    assert found["facteur.dev/correlation-id"] == "0" * 32
    assert all(LABEL_VALUE.fullmatch(v) for v in found.values())
    notes = run_annotations(**ids, guild_id="800000000000000001", channel_id=None)
    assert notes["facteur.dev/guild-id"] == "800000000000000001"
    assert "facteur.dev/channel-id" not in notes
