"""`facteur send` plays autocomplete and forms against a real interaction_verify (and a real
Redis for the guild's recent values); `register-commands` sends `autocomplete: true`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facteur.adapters.envelope import open_event
from facteur.adapters.sessions import SessionStore
from facteur.cli import slash
from facteur.cli.plumbing import CliError
from facteur.config import load_catalog
from facteur.decisions import render
from facteur.decisions.journey import COMMAND_RECEIVED
from tests.cli import test_cli
from tests.cli.test_cli import SECRETS, TEST_SEED_HEX, one_line, run
from tests.helpers.discord_fake import DiscordFake
from tests.helpers.servers import FunctionProcess, Sink
from tests.helpers.support import (
    EVENT_KEY,
    GUILD,
    ROLE_OTHER,
    ROLE_PLANNER,
    asking_catalog,
    base_env,
)

# test_cli's fixtures: the facteur settings in the environment, and Discord's fake.
env = test_cli.env
discord = test_cli.discord
ENVIRONMENTS = ["prod-eu", "prod-us", "staging", "preprod"]


def write_catalog(path: Path) -> Path:
    return asking_catalog(path, ENVIRONMENTS)


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("catalog") / "commands.yaml")


@pytest.fixture(scope="module")
def forms_sink() -> Iterator[Sink]:
    sink = Sink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def settings(catalog_file: Path, redis_url: str, forms_sink: Sink) -> dict[str, str]:
    return base_env(
        K_SINK=forms_sink.url,
        FACTEUR_COMMANDS_CATALOG_FILE=str(catalog_file),
        FACTEUR_REDIS_URL=redis_url,
    )


@pytest.fixture(scope="module")
def verify(tmp_path_factory: pytest.TempPathFactory, settings: dict[str, str]) -> Iterator[str]:
    log = tmp_path_factory.mktemp("cli-forms") / "verify.log"
    proc = FunctionProcess("interaction_verify", settings, log)
    try:
        yield proc.wait_ready().url
    finally:
        proc.stop()


def send(capsys, verify: str, *argv: str, role: str = ROLE_PLANNER) -> tuple[int, str, str]:
    flags = ["--as-role", role, "--url", verify, "--key-seed-hex", TEST_SEED_HEX]
    return run(capsys, "send", *argv, *flags)


@pytest.mark.process
def test_send_autocomplete_prints_the_catalogs_suggestions(env, capsys, settings, verify) -> None:
    env(settings)
    code, out, err = send(
        capsys, verify, "/review project:x deadline:PROD", "--autocomplete", "deadline"
    )
    assert code == 0, err
    assert out.splitlines() == ["prod-eu", "prod-us", "preprod"]
    # The option need not be in the line yet: nothing typed, every suggestion.
    code, out, _ = send(capsys, verify, "/review project:x", "--autocomplete", "deadline")
    assert out.splitlines() == ENVIRONMENTS
    # Nothing for a caller who may not run the command.
    code, out, err = send(capsys, verify, "/review", "--autocomplete", "deadline", role=ROLE_OTHER)
    assert (code, out, err.strip()) == (0, "", "no suggestions")


@pytest.mark.process
def test_send_autocomplete_prints_the_guilds_recent_values(
    env, capsys, settings, verify, redis_url
) -> None:
    env(settings)
    store = SessionStore.from_url(redis_url, ttl_seconds=600)
    for at, project in enumerate(["facteur", "other", "fac-cli"]):
        store.remember_values(GUILD, "plan", {"project": project}, 1_800_000_000.0 + at)
    # The first lookup builds the store's client (importing redis) within its budget: on a
    # slow machine it may answer nothing, and the next finds the client built.
    send(capsys, verify, "/plan objective:x", "--autocomplete", "project")
    code, out, err = send(
        capsys, verify, "/plan objective:x project:fac", "--autocomplete", "project"
    )
    assert code == 0, err
    assert out.splitlines() == ["fac-cli", "facteur"]


@pytest.mark.process
def test_send_a_form_command_prints_its_form(env, capsys, settings, verify, forms_sink) -> None:
    env(settings)
    before = len(forms_sink.received)
    code, out, err = send(capsys, verify, "/implement project:facteur")
    assert code == 0, err
    assert out.splitlines() == [
        "form /implement (facteur:form:implement):",
        '  project [project] required, short, at most 100: "facteur"',
        "  branch [branch] required, paragraph, at most 200",
        "  ticket [ticket] optional, short, at most 100",
        "  Anything the agent should know? [notes] optional, paragraph, at most 1000",
        'submit it: facteur send --form "/implement project:… branch:… ticket:… notes:…"',
    ]
    assert len(forms_sink.received) == before  # a form hands nothing on


@pytest.mark.process
def test_send_form_submits_it_and_the_command_is_handed_on(
    env, capsys, settings, verify, forms_sink
) -> None:
    env(settings)
    before = len(forms_sink.received)
    code, out, err = send(
        capsys, verify, "--form", '/implement project:facteur branch:main notes:"see {{x}}"'
    )
    assert code == 0, err
    assert out.strip() == '200 {"type": 5, "data": {"flags": 0}}'
    [event] = forms_sink.events()[before:]
    data = open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    assert data["command"] == "implement"
    assert data["options"] == [
        {"name": "project", "type": 3, "value": "facteur"},
        {"name": "branch", "type": 3, "value": "main"},
        {"name": "notes", "type": 3, "value": "see {{x}}"},
    ]
    # A form that is not one of facteur's is refused, privately, and nothing goes on.
    code, out, _ = send(capsys, verify, "--form", "/plan objective:x")
    assert code == 0
    assert render.UNSUPPORTED_INTERACTION in out
    assert len(forms_sink.received) == before + 1


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "ping", "--form"],
        ["send", "ping", "--autocomplete", "x"],
        ["send", "/plan", "--form", "--autocomplete", "project"],
        ["send", "--form", "/implement project:a project:b"],
    ],
)
def test_send_form_and_autocomplete_usage_errors_are_one_line(env, capsys, argv) -> None:
    env(base_env())
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert one_line(err).startswith("facteur")


def test_typing_and_form_options_are_sent_as_discord_sends_them(catalog_file: Path) -> None:
    catalog = load_catalog(catalog_file)
    review = catalog.get("review")
    # The focused option is the text typed so far, a string, wherever it is in the line.
    assert slash.typing_options(review, [("deadline", "pr"), ("project", "x")], "deadline") == [
        {"name": "deadline", "type": 3, "value": "pr", "focused": True},
        {"name": "project", "type": 3, "value": "x"},
    ]
    assert slash.typing_options(review, [], "deadline") == [
        {"name": "deadline", "type": 3, "value": "", "focused": True}
    ]
    # Every field of the form, empty where nothing was typed, then what the form lacks.
    implement = catalog.get("implement")
    assert slash.form_fields(implement, [("branch", "b"), ("extra", "e")]) == [
        ("project", ""),
        ("branch", "b"),
        ("ticket", ""),
        ("notes", ""),
        ("extra", "e"),
    ]
    with pytest.raises(CliError):
        slash.form_fields(implement, [("branch", "b"), ("branch", "c")])


def test_register_commands_sends_autocomplete_and_forms(
    env, capsys, discord: DiscordFake, catalog_file: Path
) -> None:
    env(base_env(**SECRETS, FACTEUR_COMMANDS_CATALOG_FILE=str(catalog_file)))
    code, _, err = run(capsys, "register-commands")
    assert code == 0, err
    # The fake checks the request against Discord's spec (the operation's request schema).
    [sent] = discord.requests
    by_name = {command["name"]: command for command in sent.json}
    flagged = {
        (command["name"], option["name"])
        for command in sent.json
        for option in command["options"]
        if option.get("autocomplete")
    }
    assert flagged == {
        ("plan", "project"),
        ("implement", "project"),
        ("review", "project"),
        ("review", "deadline"),
        ("status", "workflow"),
    }
    assert all("choices" not in o for o in by_name["review"]["options"])
    # /implement opens its form when sent bare, so Discord must let it be sent bare.
    assert [o["required"] for o in by_name["implement"]["options"]] == [False] * 4
    assert [o["required"] for o in by_name["plan"]["options"]] == [True, False]
    assert discord.violations == []
