"""The mutex a command's run holds: named from its options, with no user text left raw."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facteur.decisions import ids
from facteur.decisions.catalog import parse_catalog
from facteur.decisions.concurrency import MAX_NAME, key_problem, key_text, mutex_name
from facteur.errors import CatalogError

OPTIONS = ["project", "branch"]


def test_a_key_names_the_command_and_the_options_value() -> None:
    name = mutex_name("implement", "{project}", {"project": "Facteur"})
    assert name.startswith("facteur-implement-facteur-")
    assert ids.is_namespace(name)
    # The same key: the same lock, run after run.
    assert name == mutex_name("implement", "{project}", {"project": "Facteur"})


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ({"project": "a/b"}, {"project": "a-b"}),  # one slug, two keys
        ({"project": "A"}, {"project": "a"}),
        ({"project": ""}, {}),  # absent and empty are the same key; see below
    ],
)
def test_keys_that_share_a_slug_get_their_own_lock_unless_equal(one: dict, other: dict) -> None:
    same = key_text("{project}", one) == key_text("{project}", other)
    assert (mutex_name("plan", "{project}", one) == mutex_name("plan", "{project}", other)) is same


def test_commands_do_not_share_a_lock_for_one_key() -> None:
    values = {"project": "facteur"}
    assert mutex_name("plan", "{project}", values) != mutex_name("review", "{project}", values)


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc",
        "{{workflow.name}}",
        "{{=sprig.env('X')}}",
        "a,b=c",
        "x" * 5000,
        "\u202eevil",
        "名前",
        "Robert'); DROP TABLE",
        "\n\t ",
        "--",
    ],
)
def test_hostile_values_leave_nothing_of_themselves_but_a_slug(hostile: str) -> None:
    name = mutex_name("implement", "{project}/{branch}", {"project": hostile, "branch": hostile})
    assert ids.is_namespace(name) and len(name) <= MAX_NAME
    assert "{" not in name and "/" not in name and "." not in name


@given(st.dictionaries(st.sampled_from(OPTIONS), st.text(max_size=300)))
def test_every_key_is_a_valid_lock_name(values: dict[str, str]) -> None:
    name = mutex_name("implement", "{project}-{branch}", values)
    assert ids.is_namespace(name) and len(name) <= MAX_NAME


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{project}", None),
        ("{project}/{branch}", None),
        ("all", None),
        ("{ticket}", "{ticket} is not an option of the command (its options: project, branch)"),
        ("{project!r}", "field {project} may not have a format or a conversion"),
        ("{project:>10}", "field {project} may not have a format or a conversion"),
        ("{", "is not a key template"),
        ("{project.attr}", "{project.attr} is not an option"),
        ("{project[0]}", "{project[0]} is not an option"),
        ("--", "holds nothing to name a lock by"),
    ],
)
def test_the_catalog_check_of_a_key(template: str, problem: str | None) -> None:
    found = key_problem(template, OPTIONS)
    assert (found is None) if problem is None else (found or "").startswith(problem)


def test_the_catalog_refuses_a_key_over_another_commands_options() -> None:
    with pytest.raises(CatalogError, match=r"concurrency.key '\{ticket\}'"):
        parse_catalog(
            {
                "commands": [
                    {
                        "name": "plan",
                        "description": "d",
                        "options": [{"name": "project", "description": "p"}],
                        "concurrency": {"key": "{ticket}"},
                    }
                ]
            }
        )
