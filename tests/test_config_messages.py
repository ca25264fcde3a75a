"""Configuration messages that name the thing: a position in bad YAML or JSON, the closest name
for a misspelt variable, and a placeholder public key refused by name (issue 18)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facteur.config import (
    OTHER_VARIABLES,
    env_var,
    is_placeholder_key,
    known_variables,
    load_catalog,
    load_settings,
    unknown_variables,
)
from facteur.errors import CatalogError, ConfigError
from tests.helpers.support import PUBLIC_KEY_HEX, ROOT

ZEROS = "0" * 64


# -- unknown FACTEUR_* variables -------------------------------------------------------------


def test_a_misspelt_variable_is_named_with_the_closest_known_one() -> None:
    lines = unknown_variables({"FACTEUR_DISCORD_PUBLICKEY": PUBLIC_KEY_HEX})
    assert lines == [
        "FACTEUR_DISCORD_PUBLICKEY is not a variable facteur reads, so it is ignored; "
        "did you mean FACTEUR_DISCORD_PUBLIC_KEY?"
    ]
    assert PUBLIC_KEY_HEX not in lines[0]  # the value is never shown


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("FACTEUR_ROLEMAP", "FACTEUR_ROLE_MAP"),
        ("FACTEUR_REDIS_PASWORD", "FACTEUR_REDIS_PASSWORD"),
        ("FACTEUR_CALLBACK_TICKTOKEN", "FACTEUR_CALLBACK_TICK_TOKEN"),
        ("FACTEUR_DEV_PORTBASE", "FACTEUR_DEV_PORT_BASE"),
    ],
)
def test_close_names(name: str, closest: str) -> None:
    (line,) = unknown_variables({name: "x"})
    assert line.endswith(f"did you mean {closest}?")


def test_a_name_close_to_nothing_gets_no_guess() -> None:
    # The shared prefix alone must not make a name look close to every setting.
    assert unknown_variables({"FACTEUR_WIBBLE": "1"}) == [
        "FACTEUR_WIBBLE is not a variable facteur reads, so it is ignored"
    ]


def test_known_variables_and_other_prefixes_are_not_warned_about() -> None:
    environ = {name: "x" for name in known_variables()} | {"K_SINK": "x", "HOME": "/root"}
    assert unknown_variables(environ) == []
    assert {"FACTEUR_CONFIG_FILE", "FACTEUR_DEV_KEY_SEED", "FACTEUR_DEV_TICK_SECONDS"} <= set(
        OTHER_VARIABLES
    )
    assert env_var("discord.public_key") in known_variables()


def test_every_variable_the_docs_and_scripts_name_is_known() -> None:
    # A variable the README or a script uses but this list lacks would be warned about.
    cli = sorted((ROOT / "lib" / "facteur" / "cli").glob("*.py"))
    texts = [ROOT / "README.md", *sorted((ROOT / "scripts").iterdir()), *cli]
    named = set()
    for path in texts:
        if path.is_file():
            named |= set(re.findall(r"\bFACTEUR_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert named, "no FACTEUR_ variable found: the scan is broken"
    assert sorted(named - known_variables()) == []


def test_load_settings_warns_about_unknown_variables(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="facteur.config"):
        load_settings(environ={"FACTEUR_DISCORD_PUBLICKEY": PUBLIC_KEY_HEX})
    (record,) = [r for r in caplog.records if r.name == "facteur.config"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "facteur: FACTEUR_DISCORD_PUBLICKEY is not a variable facteur reads, so it is ignored; "
        "did you mean FACTEUR_DISCORD_PUBLIC_KEY?"
    )


def test_a_function_warns_on_stderr_at_start_up() -> None:
    code = "from facteur.bootstrap import boot\nboot('interaction_verify')\n"
    env = {"FACTEUR_DISCORD_PUBLICKEY": PUBLIC_KEY_HEX}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (
        "facteur: FACTEUR_DISCORD_PUBLICKEY is not a variable facteur reads, so it is ignored; "
        "did you mean FACTEUR_DISCORD_PUBLIC_KEY?"
    )
    assert lines[1].startswith("facteur interaction_verify: configuration error: ")
    assert PUBLIC_KEY_HEX not in result.stderr


# -- positions in YAML and JSON --------------------------------------------------------------


def test_bad_yaml_in_the_settings_file_gives_line_and_column(tmp_path: Path) -> None:
    config = tmp_path / "facteur.yaml"
    config.write_text("discord:\n  guild_id: '1'\n bad: 2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"FACTEUR_CONFIG_FILE": str(config)})
    assert str(err.value) == (
        f"FACTEUR_CONFIG_FILE={config}: not valid YAML at line 3, column 2: "
        "expected <block end>, but found '<block mapping start>'"
    )


def test_bad_yaml_in_the_catalog_gives_line_and_column(tmp_path: Path) -> None:
    catalog = tmp_path / "commands.yaml"
    catalog.write_text("commands:\n  - name: plan\n    description: [Plan\n")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog)
    message = str(err.value)
    assert message.startswith(f"{catalog}: not valid YAML at line 4, column 1: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "raw", "where"),
    [
        ("FACTEUR_ROLE_MAP", "{not json", "line 1, column 2: Expecting property name"),
        (
            "FACTEUR_ROLE_MAP",
            '{"plan": ["100000000000000010",]}',
            "line 1, column 32: Expecting value",
        ),
        (
            "FACTEUR_ARGO_PARAMETERS",
            '{\n  "a": "b"\n  "c": "d"}',
            "line 3, column 3: Expecting ','",
        ),
    ],
)
def test_invalid_json_gives_its_position(name: str, raw: str, where: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={name: raw})
    message = str(err.value)
    assert f"({name}): must be a JSON object (not valid JSON at {where}" in message
    assert raw not in message and "\n" not in message


# -- placeholder public keys -----------------------------------------------------------------


@pytest.mark.parametrize("key", [ZEROS, "f" * 64, "A" * 64])
def test_a_placeholder_key_is_refused_where_it_is_required(key: str) -> None:
    assert is_placeholder_key(key)
    with pytest.raises(ConfigError) as err:
        load_settings(["discord.public_key"], environ={"FACTEUR_DISCORD_PUBLIC_KEY": key})
    assert str(err.value) == (
        f"discord.public_key (FACTEUR_DISCORD_PUBLIC_KEY): {key[0].lower()!r} 64 times is a "
        "placeholder, not the application's key (copy it from the Discord developer portal, "
        "General Information)"
    )


def test_a_real_key_and_an_unrequired_placeholder_pass() -> None:
    assert not is_placeholder_key(PUBLIC_KEY_HEX)
    load_settings(["discord.public_key"], environ={"FACTEUR_DISCORD_PUBLIC_KEY": PUBLIC_KEY_HEX})
    # The shipped example keeps its zeros for the functions that never read the key.
    example = load_settings(
        environ={"FACTEUR_CONFIG_FILE": str(ROOT / "config/facteur.example.yaml")}
    )
    assert example.discord.public_key == ZEROS


def test_interaction_verify_refuses_the_shipped_placeholder_at_start_up() -> None:
    code = "from facteur.bootstrap import boot\nboot('interaction_verify')\n"
    env = {
        "FACTEUR_CONFIG_FILE": str(ROOT / "config/facteur.example.yaml"),
        "FACTEUR_EVENTS_SIGNING_KEY": "k" * 32,
        "K_SINK": "http://127.0.0.1:9/",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        "facteur interaction_verify: configuration error: discord.public_key "
        "(FACTEUR_DISCORD_PUBLIC_KEY): '0' 64 times is a placeholder, not the application's key "
        "(copy it from the Discord developer portal, General Information)"
    ]
