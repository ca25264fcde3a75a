"""Every later hop reads only what interaction_verify (or command_route) could have sent."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from facteur.decisions.interactions import (
    click_from_event,
    invocation_from_event,
    read_click,
    read_invocation,
)
from facteur.decisions.journey import Journey
from facteur.errors import InvalidInteraction
from tests.helpers.support import button_click, command

CALL = read_invocation(command("plan"))
JOURNEY = Journey(CALL, correlation_id="c" * 32, received_at=1.0, parameters={"objective": "x"})


def test_a_journey_survives_its_event() -> None:
    assert Journey.from_event(JOURNEY.to_event()) == JOURNEY


def test_an_event_sealed_before_command_type_existed_is_a_slash_command() -> None:
    data = JOURNEY.to_event()
    del data["command_type"]
    assert invocation_from_event(data).command_type == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parameters", {"objective": 1}),
        ("parameters", {"objective": None}),
        ("parameters", ["objective"]),
        ("workflow_template", 7),
        ("last_correlation_id", {"a": 1}),
        ("options", {"objective": "x"}),
        ("member_roles", [800000000000000010]),
        ("member_roles", "800000000000000010"),
        ("command_type", True),
        ("command_type", "1"),
        ("user_id", 800000000000000100),
        ("subcommand", ["deep"]),
        ("token", None),
        ("mutex", "facteur-plan/other"),
        ("mutex", 7),
        ("mutex", "Upper-Case"),
    ],
)
def test_a_journey_of_another_shape_is_refused(field: str, value: Any) -> None:
    data = JOURNEY.to_event() | {field: value}
    with pytest.raises(InvalidInteraction):
        Journey.from_event(data)


def test_a_click_survives_its_event_and_nothing_else_does() -> None:
    click = read_click(button_click("facteur:approve:abcdefgh12:1234567890"))
    assert click is not None and click.step == "1234567890"
    assert click_from_event(asdict(click)) == click
    for field, value in (
        ("ref", 1),
        ("member_roles", [1]),
        ("guild_id", 5),
        ("action", None),
        ("step", 12),
    ):
        with pytest.raises(InvalidInteraction):
            click_from_event(asdict(click) | {field: value})
