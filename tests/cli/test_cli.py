"""The `facteur` command line, run in-process through facteur.cli.main (and once as a module)."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudevents.http import from_http
from nacl.signing import SigningKey

from facteur import bootstrap, callers, config
from facteur.adapters.discord import DiscordClient
from facteur.adapters.envelope import open_event
from facteur.cli import check, interactions, play, slash
from facteur.cli import main as cli
from facteur.cli.plumbing import CliError
from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from facteur.decisions.callback import parse_report
from facteur.decisions.catalog import parse_catalog
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED, Journey
from facteur.errors import DiscordError
from tests.helpers.discord_fake import DISCORD_API, DiscordFake
from tests.helpers.servers import FunctionProcess, Sink, free_port, serving
from tests.helpers.support import (
    APP,
    CALLBACK_TOKEN,
    EVENT_KEY,
    GUILD,
    ROLE_OTHER,
    ROLE_PLANNER,
    ROOT,
    SIGNING,
    USER,
    base_env,
)

BOT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.GbXyZ1.SECRET-cli-bot-0123456789"
ARGO_TOKEN = "argo-SECRET-token-0123456789"
TICK_TOKEN = "tick-SECRET-token-0123456789abcdef0123"
SECRETS = {
    "FACTEUR_DISCORD_BOT_TOKEN": BOT_TOKEN,
    "FACTEUR_ARGO_TOKEN": ARGO_TOKEN,
    "FACTEUR_CALLBACK_TICK_TOKEN": TICK_TOKEN,
}
GUILD_COMMANDS = ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
GLOBAL_COMMANDS = ("PUT", "/applications/{application_id}/commands")
CATALOG_PAYLOAD = [c.to_discord() for c in load_catalog(DEFAULT_CATALOG_FILE).commands]
TEST_SEED_HEX = bytes(SIGNING).hex()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Replace the environment's facteur settings with these (as an operator would set them)."""

    def apply(values: dict[str, str]) -> None:
        for key in list(os.environ):
            if key.startswith("FACTEUR_") or key == "K_SINK":
                monkeypatch.delenv(key)
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return apply


@pytest.fixture(autouse=True)
def own_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """send notes the newest run under the temporary directory: each test gets its own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- the functions' required keys -----------------------------------------------------------------


def test_every_function_is_in_bootstraps_table() -> None:
    # The CLI checks what bootstrap.FUNCTIONS says, which is what each main.py boots from.
    functions = sorted(path.name for path in (ROOT / "functions").iterdir() if path.is_dir())
    assert sorted(bootstrap.FUNCTIONS) == functions
    for name in functions:
        main = (ROOT / "functions" / name / "main.py").read_text()
        assert f"bootstrap.{name}()" in main, name


# -- check-config ---------------------------------------------------------------------------------


def test_secret_keys_are_found_from_the_model() -> None:
    assert sorted(check.secret_keys()) == [
        "argo.token",
        "callback.tick_token",
        "callback.token",
        "discord.bot_token",
        "events.signing_key",
        "redis.password",
    ]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_check_config_redacts_the_redis_password_and_a_sentinel_urls(env, capsys, fmt: str) -> None:
    password = "r3dis-SECRET-password-0123456789abcdef"
    url = "redis+sentinel://:url-SECRET-pw@h1:26379,h2:26379/facteur/0"
    env(base_env(FACTEUR_REDIS_PASSWORD=password, FACTEUR_REDIS_URL=url))
    code, out, err = run(capsys, "check-config", "--format", fmt)
    assert code == 0, err
    assert password not in out + err and "url-SECRET-pw" not in out + err
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert data["redis"]["password"] == "***"
    assert data["redis"]["url"] == "redis+sentinel://:***@h1:26379,h2:26379/facteur/0"


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_check_config_prints_the_settings_with_every_secret_redacted(env, capsys, fmt: str) -> None:
    env(base_env(**SECRETS))
    code, out, err = run(capsys, "check-config", "--format", fmt)
    assert code == 0, err
    for secret in (*SECRETS.values(), EVENT_KEY, CALLBACK_TOKEN):
        assert secret not in out + err
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    for section, key in (
        ("discord", "bot_token"),
        ("argo", "token"),
        ("callback", "token"),
        ("callback", "tick_token"),
        ("events", "signing_key"),
    ):
        assert data[section][key] == "***"
    assert data["discord"]["guild_id"] == GUILD
    assert data["argo"]["namespace"] == "agents"
    assert data["role_map"]["plan"] == [ROLE_PLANNER]
    assert err == ""  # the role map covers the catalog exactly: no warnings


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_check_config_shows_the_redis_url_without_its_password(env, capsys, fmt: str) -> None:
    env(base_env(FACTEUR_REDIS_URL="redis://:s3cretpassword@redis:6379/0"))
    code, out, err = run(capsys, "check-config", "--format", fmt)
    assert code == 0, err
    assert "s3cretpassword" not in out + err
    data = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert data["redis"]["url"] == "redis://:***@redis:6379/0"


# Every setting that holds a URL, each with a user and a password too short for the log scrubber.
URL_SETTINGS = {
    "redis.url": "rediss://facteur:pw7@redis.example:6380/1",
    "argo.server_url": "https://argo:pw7@argo.example:2746",
    "argo.ui_url": "https://ui:pw7@argo-ui.example",
    "discord.api_base_url": "https://bot:pw7@discord.example/api/v10",
    "k_sink": "http://sink:pw7@broker.example/default",
}


def test_url_settings_are_all_listed() -> None:
    assert sorted(URL_SETTINGS) == sorted(
        k for k in config.all_keys() if k.endswith("url") or k == "k_sink"
    )


@pytest.mark.parametrize("key", sorted(URL_SETTINGS))
def test_check_config_redacts_every_url_setting_however_short_its_password(
    env, capsys, key: str
) -> None:
    env(base_env(**{config.env_var(key): URL_SETTINGS[key]}))
    code, out, err = run(capsys, "check-config", "--format", "json")
    assert code == 0, err
    assert "pw7" not in out + err
    section, _, name = key.rpartition(".")
    data = json.loads(out)
    shown = (data[section] if section else data)[name]
    assert shown == URL_SETTINGS[key].replace(":pw7@", ":***@")


def test_check_config_redacts_a_url_in_the_workflow_parameters(env, capsys) -> None:
    parameters = {"repoURL": "https://x-access-token:ghp_s3cret@github.com/acme/app.git"}
    env(base_env(FACTEUR_ARGO_PARAMETERS=json.dumps(parameters)))
    code, out, _ = run(capsys, "check-config")
    assert code == 0
    assert "ghp_s3cret" not in out
    assert yaml.safe_load(out)["argo"]["parameters"] == {
        "repoURL": "https://x-access-token:***@github.com/acme/app.git"
    }


def test_check_config_never_echoes_the_password_of_a_malformed_url(env, capsys) -> None:
    env(base_env(FACTEUR_REDIS_URL="redis://:s3cretpassword\uff20redis:6379/0"))
    code, out, err = run(capsys, "check-config")
    assert code == 2
    assert out == ""
    assert one_line(err).startswith("facteur check-config: configuration error: redis.url ")
    assert "s3cretpassword" not in err


def test_check_config_shows_unset_secrets_as_not_set(env, capsys) -> None:
    env({})
    code, out, _ = run(capsys, "check-config")
    assert code == 0
    data = yaml.safe_load(out)
    assert data["discord"]["bot_token"] == data["events"]["signing_key"] == "(not set)"


def test_check_config_warns_about_the_role_map(env, capsys) -> None:
    role_map = {
        "plan": [ROLE_PLANNER],
        "plan:cancel": [ROLE_OTHER],  # a button on /plan runs: fine
        "deploy": [ROLE_PLANNER],  # no such command
        "deploy:retry": [ROLE_PLANNER],
        "implement:cancel": [ROLE_PLANNER],  # but /implement itself has no rule
    }
    env(base_env(FACTEUR_ROLE_MAP=json.dumps(role_map)))
    code, out, err = run(capsys, "check-config")
    assert code == 0
    warnings = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("facteur check-config: warning: ") for line in warnings)
    text = "\n".join(warnings)
    assert "'deploy' names no command" in text
    assert "'deploy:retry' names no command" in text
    assert "plan:cancel" not in text
    for absent in ("implement", "review", "status", "help"):
        assert f"/{absent} is in the catalog but not in role_map: denied to everyone" in text
    assert "implement:cancel" in text
    assert len(warnings) == 6
    assert yaml.safe_load(out)["role_map"] == role_map


def test_bad_config_exits_2_with_one_line(env, capsys) -> None:
    env(base_env(FACTEUR_EVENTS_SIGNING_KEY="short"))
    code, out, err = run(capsys, "check-config")
    assert code == 2
    assert out == ""
    line = one_line(err)
    assert line.startswith("facteur check-config: configuration error: events.signing_key ")
    assert "at least 32 characters" in line


def test_function_check_prints_the_line_the_function_would(env, capsys) -> None:
    env(base_env(FACTEUR_DISCORD_PUBLIC_KEY="", K_SINK=""))
    code, _, err = run(capsys, "check-config", "--function", "interaction_verify")
    assert code == 2
    mine = one_line(err)
    with pytest.raises(SystemExit):
        bootstrap.boot("interaction_verify")
    assert mine == one_line(capsys.readouterr().err)
    assert "discord.public_key (FACTEUR_DISCORD_PUBLIC_KEY): required but not set" in mine
    # Without --function nothing is required: the same settings pass.
    assert run(capsys, "check-config")[0] == 0


def test_function_check_builds_the_function(env, capsys) -> None:
    # Only building workflow_submit's Argo client notices a malformed token.
    env(base_env(FACTEUR_ARGO_TOKEN="two words"))
    assert run(capsys, "check-config")[0] == 0
    code, _, err = run(capsys, "check-config", "--function", "workflow_submit")
    assert code == 2
    assert one_line(err).startswith("facteur workflow_submit: configuration error: argo.token ")


def test_a_bad_catalog_is_a_configuration_error(env, capsys) -> None:
    env(base_env(FACTEUR_COMMANDS_CATALOG_FILE="/absent/commands.yaml"))
    code, _, err = run(capsys, "check-config")
    assert code == 2
    assert "cannot read" in one_line(err)


def test_check_config_as_a_module(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_")}
    clean.pop("K_SINK", None)
    command = [sys.executable, "-m", "facteur", "check-config", "--format", "json"]
    local = clean | {"FACTEUR_CONFIG_FILE": str(ROOT / "config" / "local.yaml")}
    result = subprocess.run(
        command, env=local, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dev"]["embedded"] is True
    assert data["callback"]["token"] == "***"
    assert "not-secret" not in result.stdout  # local.yaml's (development) secrets
    broken = local | {"FACTEUR_REDIS_URL": "http://nope"}
    result = subprocess.run(
        command, env=broken, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(
        "facteur check-config: configuration error: redis.url"
    )


# -- register-commands ----------------------------------------------------------------------------


@pytest.fixture
def discord() -> Iterator[DiscordFake]:
    with DiscordFake.running() as fake:
        yield fake


def registered(names: list[str]) -> list[dict[str, Any]]:
    return [
        {"id": str(1_200_000_000_000_000_000 + i), "application_id": APP, "name": n, "type": 1}
        for i, n in enumerate(names)
    ]


def test_register_commands_overwrites_the_guilds_commands(env, capsys, discord) -> None:
    env(base_env(**SECRETS))
    discord.queue(200, registered([c["name"] for c in CATALOG_PAYLOAD]))
    code, out, err = run(capsys, "register-commands")
    assert code == 0, err
    assert discord.operations() == [" ".join(GUILD_COMMANDS)]
    [sent] = discord.requests
    assert sent.params == {"application_id": APP, "guild_id": GUILD}
    assert sent.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert sent.json == CATALOG_PAYLOAD
    assert out.strip() == (
        f"registered 5 command(s) in guild {GUILD}: /plan, /implement, /review, /status, /help"
    )
    assert BOT_TOKEN not in out + err


def test_register_commands_in_another_guild_or_globally(env, capsys, discord) -> None:
    env(base_env(**SECRETS))
    other = "800000000000000999"
    assert run(capsys, "register-commands", "--guild", other)[0] == 0
    code, out, _ = run(capsys, "register-commands", "--global")
    assert code == 0
    assert "globally" in out
    guild, everywhere = discord.requests
    assert guild.operation == " ".join(GUILD_COMMANDS)
    assert guild.params["guild_id"] == other
    assert everywhere.operation == " ".join(GLOBAL_COMMANDS)
    assert everywhere.params == {"application_id": APP}
    assert everywhere.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert everywhere.json == CATALOG_PAYLOAD


def test_register_commands_dry_run_sends_nothing(env, capsys, discord) -> None:
    env(base_env())  # no bot token: a dry run needs none
    code, out, _ = run(capsys, "register-commands", "--dry-run")
    assert code == 0
    assert discord.requests == []
    printed = json.loads(out)
    assert printed["method"] == "PUT"
    assert printed["url"] == f"{DISCORD_API}/applications/{APP}/guilds/{GUILD}/commands"
    assert printed["body"] == CATALOG_PAYLOAD
    code, out, _ = run(capsys, "register-commands", "--dry-run", "--global")
    assert json.loads(out)["url"] == f"{DISCORD_API}/applications/{APP}/commands"


@pytest.mark.parametrize("embedded", ["false", "true"])
def test_register_commands_without_a_bot_token_is_a_clear_error(
    env, capsys, discord, embedded: str
) -> None:
    # dev.embedded stands in for Discord in the functions, never for a registration.
    env(base_env(FACTEUR_DEV_EMBEDDED=embedded, FACTEUR_DISCORD_APPLICATION_ID=""))
    code, _, err = run(capsys, "register-commands")
    assert code == 2
    assert one_line(err) == (
        "facteur register-commands: configuration error: "
        "discord.application_id (FACTEUR_DISCORD_APPLICATION_ID): required but not set; "
        "discord.bot_token (FACTEUR_DISCORD_BOT_TOKEN): required but not set"
    )
    assert discord.requests == []


def test_register_commands_needs_a_guild_or_global(env, capsys, discord) -> None:
    env(base_env(FACTEUR_DISCORD_GUILD_ID="", **SECRETS))
    code, _, err = run(capsys, "register-commands")
    assert code == 2
    assert "pass --guild ID or --global" in one_line(err)
    code, _, err = run(capsys, "register-commands", "--guild", "12345")
    assert code == 2
    assert "is not a Discord ID" in one_line(err)
    assert discord.requests == []


def test_register_commands_reports_discords_refusal(env, capsys, discord) -> None:
    env(base_env(**SECRETS))
    discord.queue(403, {"message": "Missing Access", "code": 50001})
    code, _, err = run(capsys, "register-commands")
    assert code == 1
    line = one_line(err)
    # The real IDs, not the client's {app}/{guild} route template.
    assert line == (
        f"facteur register-commands: Discord refused the commands (application {APP}, in guild "
        f"{GUILD}): PUT /applications/{APP}/guilds/{GUILD}/commands: HTTP 403: Missing Access"
    )
    assert BOT_TOKEN not in line


def test_register_commands_without_network_says_discord_was_not_reached(
    env, capsys, monkeypatch
) -> None:
    env(base_env(FACTEUR_DISCORD_API_BASE_URL=f"http://127.0.0.1:{free_port()}/api", **SECRETS))
    monkeypatch.setattr("facteur.adapters.discord.MAX_ATTEMPTS", 1)
    monkeypatch.setattr("time.sleep", lambda _: None)
    code, _, err = run(capsys, "register-commands")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        "facteur register-commands: could not reach Discord at http://127.0.0.1:"
    )
    assert f"(application {APP}, in guild {GUILD}): " in line
    assert "{app}" not in err and "{guild}" not in err and "did not take" not in err
    assert BOT_TOKEN not in err


def test_version_is_the_packages(capsys, monkeypatch) -> None:
    import tomllib
    from importlib import metadata

    from facteur.cli import parser

    assert run(capsys, "--version") == (0, f"facteur {metadata.version('facteur')}\n", "")

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    # A checkout run without installing: the source tree's pyproject.toml says.
    monkeypatch.setattr(metadata, "version", not_installed)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert parser.version() == project["version"]


def test_overwrite_commands_waits_out_a_rate_limit(discord) -> None:
    sleeps: list[float] = []
    client = DiscordClient(
        api_base_url=DISCORD_API, application_id=APP, bot_token=BOT_TOKEN, sleep=sleeps.append
    )
    discord.queue_rate_limit(0.25).queue(200, registered(["plan"]))
    answer = client.overwrite_commands(CATALOG_PAYLOAD[:1], guild_id=GUILD)
    assert [c["name"] for c in answer] == ["plan"]
    assert sleeps == [0.25]
    assert len(discord.to(*GUILD_COMMANDS)) == 2
    with pytest.raises(DiscordError, match="guild id is not a Discord snowflake"):
        client.overwrite_commands([], guild_id="../channels/1")
    anonymous = DiscordClient(api_base_url=DISCORD_API, application_id=APP, bot_token=None)
    with pytest.raises(DiscordError, match="no bot token"):
        anonymous.overwrite_commands([])
    assert len(discord.requests) == 2


# -- send: the parser -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/status", ("status", [])),
        ("/plan objective:ship it", ("plan", [("objective", "ship it")])),
        ("plan objective:ship it", ("plan", [("objective", "ship it")])),
        (
            "/plan objective:ship it  project:facteur ",
            ("plan", [("objective", "ship it"), ("project", "facteur")]),
        ),
        (
            '/plan objective:"a project:b c" project:x',
            ("plan", [("objective", "a project:b c"), ("project", "x")]),
        ),
        ("/plan objective:'it''s'", None),
        ("/plan objective:'say \"hi\"'", ("plan", [("objective", 'say "hi"')])),
        (r'/plan objective:"a \"b\" c\\d"', ("plan", [("objective", r'a "b" c\d')])),
        ('/plan objective:""', ("plan", [("objective", "")])),
        ("/plan objective: project:x", ("plan", [("objective", ""), ("project", "x")])),
        ("/plan objective:a:b", ("plan", [("objective", "a:b")])),
        (
            "/review artifact:see https://x.test/pr/1 notes:n",
            ("review", [("artifact", "see https://x.test/pr/1"), ("notes", "n")]),
        ),
        ("/plan Colour:blue", ("plan", [("Colour", "blue")])),
        ("/plan a:1 a:2", ("plan", [("a", "1"), ("a", "2")])),
        ("/plan ship it", None),
        ('/plan objective:"open', None),
        ('/plan objective:"a"b', None),
        ("/", None),
        ("/pl@n", None),
    ],
)
def test_parse_command_line(line: str, expected: tuple[str, list[tuple[str, str]]] | None) -> None:
    if expected is None:
        with pytest.raises(CliError):
            slash.parse_command_line(line)
    else:
        assert slash.parse_command_line(line) == expected


TYPED = parse_catalog(
    {
        "commands": [
            {
                "name": "tune",
                "description": "Options of every scalar type.",
                "options": [
                    {"name": "count", "type": "integer", "description": "n"},
                    {"name": "ratio", "type": "number", "description": "r"},
                    {"name": "dry", "type": "boolean", "description": "b"},
                    {"name": "who", "type": "user", "description": "u"},
                    {"name": "text", "type": "string", "description": "s"},
                ],
            }
        ]
    }
).commands[0]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("count", "42", (4, 42)),
        ("count", "-3", (4, -3)),
        ("ratio", "2", (10, 2)),
        ("ratio", "0.5", (10, 0.5)),
        ("dry", "true", (5, True)),
        ("dry", "No", (5, False)),
        ("who", USER, (6, USER)),
        ("text", "42", (3, "42")),
        ("unknown", "42", (3, "42")),  # kept as a string for interaction_verify to refuse
        ("count", "4.2", None),
        ("count", "many", None),
        ("ratio", "nan", None),
        ("dry", "maybe", None),
    ],
)
def test_options_are_typed_by_the_catalog(
    name: str, text: str, expected: tuple[int, Any] | None
) -> None:
    if expected is None:
        with pytest.raises(CliError, match=name):
            slash.typed_options(TYPED, [(name, text)])
        return
    [option] = slash.typed_options(TYPED, [(name, text)])
    assert option == {"name": name, "type": expected[0], "value": expected[1]}
    assert type(option["value"]) is type(expected[1])


def test_an_unknown_command_keeps_every_option_a_string() -> None:
    assert slash.typed_options(None, [("count", "1")]) == [
        {"name": "count", "type": 3, "value": "1"}
    ]


def test_interactions_look_like_discords() -> None:
    one = interactions.application_command(
        "plan", [], application_id=APP, guild_id=GUILD, user_id=USER, roles=[ROLE_PLANNER]
    )
    two = interactions.application_command(
        "plan", [], application_id=APP, guild_id=GUILD, user_id=USER, roles=[ROLE_PLANNER]
    )
    assert one["id"] != two["id"] and one["token"] != two["token"]
    assert 17 <= len(one["id"]) <= 20
    assert "options" not in one["data"]
    assert one["member"] == {
        "user": {"id": USER, "username": "local", "discriminator": "0", "global_name": None},
        "roles": [ROLE_PLANNER],
        "permissions": "0",
    }


def test_the_development_key_is_the_one_local_yaml_trusts() -> None:
    local = yaml.safe_load((ROOT / "config" / "local.yaml").read_text())
    public = SigningKey(interactions.DEV_KEY_SEED).verify_key.encode().hex()
    assert local["discord"]["public_key"] == public


# -- send: against a real interaction_verify ------------------------------------------------------


@pytest.fixture(scope="module")
def verify_sink() -> Iterator[Sink]:
    sink = Sink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def verify(tmp_path_factory: pytest.TempPathFactory, verify_sink: Sink) -> Iterator[str]:
    proc = FunctionProcess(
        "interaction_verify",
        base_env(K_SINK=verify_sink.url),
        tmp_path_factory.mktemp("cli-verify") / "verify.log",
    )
    try:
        yield proc.wait_ready().url
    finally:
        proc.stop()


@pytest.mark.process
def test_send_a_command_to_interaction_verify(env, capsys, verify: str, verify_sink: Sink) -> None:
    env(base_env())
    before = len(verify_sink.received)
    code, out, err = run(
        capsys,
        "send",
        '/plan objective:ship it project:"facteur cli"',
        "--as-role",
        ROLE_PLANNER,
        "--url",
        verify,
        "--key-seed-hex",
        TEST_SEED_HEX,
    )
    assert code == 0, err
    first, *told = out.strip().splitlines()
    status, _, answer = first.partition(" ")
    assert status == "200"
    assert json.loads(answer)["type"] == 5
    [event] = verify_sink.events()[before:]
    data = open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    # Under the answer: the interaction, the workflow a run gets and what the user sees.
    interaction_id = data["interaction_id"]
    assert told == [
        f"interaction  {interaction_id}",
        f"workflow     plan-{interaction_id}   (once submitted; facteur callback --last "
        "reports on it)",
        "user sees    thinking…, until the reply is edited",
    ]
    assert play.newest_run() == f"plan-{interaction_id}"
    assert data["command"] == "plan"
    assert data["user_id"] == interactions.LOCAL_USER
    assert data["guild_id"] == GUILD
    assert data["application_id"] == APP
    assert data["options"] == [
        {"name": "objective", "type": 3, "value": "ship it"},
        {"name": "project", "type": 3, "value": "facteur cli"},
    ]


@pytest.mark.process
def test_send_ping_refusals_and_a_wrong_key(env, capsys, verify: str, verify_sink: Sink) -> None:
    env(base_env())
    seed = ["--url", verify, "--key-seed-hex", TEST_SEED_HEX]
    assert run(capsys, "send", "ping", *seed)[:2] == (0, '200 {"type": 1}\n')
    before = len(verify_sink.received)
    # Shell-split words are joined back into one line.
    code, out, _ = run(capsys, "send", "/plan", "objective:x", "--as-role", ROLE_OTHER, *seed)
    assert code == 0
    first, *told = out.splitlines()
    answer = json.loads(first.partition(" ")[2])
    assert answer["type"] == 4  # refused, privately
    assert told[0].startswith("interaction  ")
    assert told[1:] == [f"user sees    {answer['data']['content']} (only they see it)"]
    code, out, _ = run(capsys, "send", "/plan colour:blue", "--role", ROLE_PLANNER, *seed)
    answer = json.loads(out.splitlines()[0].partition(" ")[2])
    assert "unknown option" in answer["data"]["content"]
    assert len(verify_sink.received) == before  # nothing refused was forwarded
    with pytest.raises(CliError, match="no run to report on"):
        play.newest_run()  # nothing refused is a run
    # The published development key is not what these settings trust.
    code, out, err = run(capsys, "send", "ping", "--url", verify)
    assert code == 1
    assert out == '401 {"error": "invalid request signature"}\n'
    hint = one_line(err)
    public = SigningKey(interactions.DEV_KEY_SEED).verify_key.encode().hex()
    assert hint.startswith(
        f"facteur send: the signature was refused: signed with public key {public} (the "
        "published development key), but these settings trust "
    )
    assert hint.endswith(
        "export the FACTEUR_DEV_KEY_SEED that ./scripts/dev printed, or pass --key-seed-hex"
    )


def test_a_401_names_the_dev_key_seed_it_signed_with(env, capsys, verify, monkeypatch) -> None:
    env(base_env())
    seed = "ab" * 32
    monkeypatch.setenv("FACTEUR_DEV_KEY_SEED", seed)
    code, _, err = run(capsys, "send", "ping", "--url", verify)
    assert code == 1
    public = SigningKey(bytes.fromhex(seed)).verify_key.encode().hex()
    assert f"signed with public key {public} ($FACTEUR_DEV_KEY_SEED)" in one_line(err)


def test_send_a_builtin_starts_no_workflow(env, capsys, verify: str) -> None:
    env(base_env())
    seed = ["--url", verify, "--key-seed-hex", TEST_SEED_HEX]
    code, out, err = run(capsys, "send", "/status", "--role", ROLE_PLANNER, *seed)
    assert code == 0, err
    lines = out.splitlines()
    assert json.loads(lines[0].partition(" ")[2])["type"] == 5
    assert lines[2:] == [
        "workflow     none: /status answers by itself",
        "user sees    thinking… (only they see it), until the reply is edited",
    ]
    with pytest.raises(CliError, match="no run to report on"):
        play.newest_run()


def test_send_to_nothing_is_one_line(env, capsys) -> None:
    env(base_env())
    url = f"http://127.0.0.1:{free_port()}/"
    code, out, err = run(capsys, "send", "ping", "--url", url, "--key-seed-hex", TEST_SEED_HEX)
    assert code == 1
    assert out == ""
    assert one_line(err).startswith(f"facteur send: cannot reach {url}: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["send"],
        ["send", "ping", "--key-seed-hex", "abcd"],
        ["send", "ping", "--url", "file:///etc/passwd"],
        ["send", "ping", "--as-role", "everyone"],
        ["send", "/plan ship it"],
        ["callback", "run-1"],
        ["callback", "--status", "Succeeded"],
        ["callback", "run-1", "--last", "--status", "Succeeded"],
        ["callback", "--last", "--status", "Succeeded"],  # no run sent yet
        ["callback", "run-1", "--status", "Succeeded", "--failure", "no-equals-sign"],
        ["callback", "run-1", "--status", "Succeeded", "--duration", "-1"],
        ["nonsense"],
    ],
)
def test_usage_errors_are_one_line(env, capsys, argv: list[str]) -> None:
    env(base_env())
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert one_line(err).startswith("facteur")


# -- callback -------------------------------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]
    answer: tuple[int, bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append((dict(self.headers), self.rfile.read(length)))
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def status_callback() -> Iterator[type[Recorder]]:
    handler = type("Handler", (Recorder,), {"received": [], "answer": (200, b"")})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with serving(server) as port:
        handler.url = f"http://127.0.0.1:{port}/"  # type: ignore[attr-defined]
        yield handler


def test_callback_posts_the_contract_body_with_the_bearer_token(
    env, capsys, status_callback
) -> None:
    env(base_env())
    status_callback.answer = (200, b'{"result": "reported"}')
    code, out, err = run(
        capsys,
        "callback",
        "plan-900000000000000001",
        "--status",
        "Failed",
        "--duration",
        "12.5",
        "--failure",
        "build=exit code 1",
        "--failure",
        "test=3 failed: a=b",
        "--url",
        status_callback.url,
    )
    assert code == 0, err
    assert out == '200 {"result": "reported"}\n'
    [(headers, raw)] = status_callback.received
    assert headers["Authorization"] == f"Bearer {CALLBACK_TOKEN}"
    assert headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert {k: body[k] for k in ("name", "namespace", "status", "duration")} == {
        "name": "plan-900000000000000001",
        "namespace": "agents",
        "status": "Failed",
        "duration": "12.5",
    }
    assert isinstance(body["failures"], str)  # as Argo renders {{workflow.failures}}
    report = parse_report(raw)  # status_callback's own reading of the contract
    assert report.duration == 12.5
    assert [(f.node, f.message) for f in report.failures] == [
        ("build", "exit code 1"),
        ("test", "3 failed: a=b"),
    ]
    assert CALLBACK_TOKEN not in out + err


def test_callback_minimal_body_and_a_refusal(env, capsys, status_callback) -> None:
    env(base_env(FACTEUR_ARGO_NAMESPACE="runs"))
    status_callback.answer = (401, b'{"error": "missing or wrong bearer token"}')
    code, out, _ = run(
        capsys, "callback", "run-1", "--status", "Succeeded", "--url", status_callback.url
    )
    assert code == 1
    assert out.startswith("401 ")
    [(_, raw)] = status_callback.received
    body = json.loads(raw)
    assert set(body) == {"name", "namespace", "uid", "status"}
    assert body["namespace"] == "runs"  # argo.namespace, unless --namespace says otherwise
    assert parse_report(raw).status == "Succeeded"


def test_callback_needs_the_callback_token(env, capsys, tmp_path) -> None:
    config = tmp_path / "facteur.yaml"
    config.write_text("callback: {}\n")
    env(base_env(FACTEUR_CALLBACK_TOKEN="", FACTEUR_CONFIG_FILE=str(config)))
    code, _, err = run(capsys, "callback", "run-1", "--status", "Error", "--url", "http://x.test/")
    assert code == 2
    assert one_line(err) == (
        "facteur callback: configuration error: "
        "callback.token (FACTEUR_CALLBACK_TOKEN): required but not set"
    )


def test_the_play_commands_read_the_local_loops_config_by_default(
    env, capsys, status_callback
) -> None:
    # From another terminal, with nothing exported, `facteur callback` plays against
    # ./scripts/dev: it carries config/local.yaml's callback token.
    env({})
    status_callback.answer = (200, b'{"result": "reported"}')
    code, _, err = run(
        capsys, "callback", "run-1", "--status", "Error", "--url", status_callback.url
    )
    assert code == 0, err
    [(headers, _)] = status_callback.received
    local = yaml.safe_load((ROOT / "config/local.yaml").read_text())
    assert headers["Authorization"] == f"Bearer {local['callback']['token']}"


def test_callback_last_reports_on_the_newest_run_send_started(env, capsys, status_callback) -> None:
    env(base_env())
    status_callback.answer = (200, b'{"result": "reported"}')
    for interaction_id in ("900000000000000001", "900000000000000002"):
        interaction = interactions.application_command(
            "plan", [], application_id=APP, guild_id=GUILD, user_id=USER, roles=[]
        )
        interaction["id"] = interaction_id
        command = load_catalog(DEFAULT_CATALOG_FILE).get("plan")
        play.tell(interaction, "plan", command, {"type": 5, "data": {"flags": 0}})
    capsys.readouterr()
    url = ["--url", status_callback.url]
    code, out, err = run(capsys, "callback", "--last", "--status", "Succeeded", *url)
    assert code == 0, err
    assert out == '200 {"result": "reported"}\n'
    assert one_line(err) == (
        "facteur callback: reporting on plan-900000000000000002, the newest run facteur send "
        "started"
    )
    [(_, raw)] = status_callback.received
    assert json.loads(raw)["name"] == "plan-900000000000000002"


def test_callback_last_refuses_a_file_that_names_no_workflow(env, capsys) -> None:
    env(base_env())
    play.last_run_file().parent.mkdir(parents=True)
    play.last_run_file().write_text('{"workflow": "../etc"}')
    code, _, err = run(capsys, "callback", "--last", "--status", "Failed")
    assert code == 2
    assert "names no workflow" in one_line(err)


def test_the_play_commands_aim_at_the_port_base(env, capsys, monkeypatch) -> None:
    from facteur.cli import parser

    env({})
    monkeypatch.setenv("FACTEUR_DEV_PORT_BASE", "19180")
    args = parser.build().parse_args(["callback", "--last", "--status", "Failed"])
    assert args.url == "http://127.0.0.1:19183/"
    assert parser.build().parse_args(["send", "ping"]).url == "http://127.0.0.1:19180/"
    args = parser.build().parse_args(["dead-letter", "/plan"])
    assert args.url == "http://127.0.0.1:19181/dead-letter"
    # A malformed base is one usage line naming the variable; --url still wins over it.
    monkeypatch.setenv("FACTEUR_DEV_PORT_BASE", "80a")
    code, out, err = run(capsys, "tick")
    assert (code, out) == (2, "")
    assert "FACTEUR_DEV_PORT_BASE is '80a', not a port number" in one_line(err)
    assert parser.build().parse_args(["tick", "--url", "http://h.test/"]).url == "http://h.test/"


def test_a_malformed_dev_key_seed_is_one_line_not_a_traceback(env, capsys) -> None:
    env({"FACTEUR_DEV_KEY_SEED": "not-hex"})
    code, out, err = run(capsys, "send", "ping", "--url", "http://127.0.0.1:9/")
    assert (code, out) == (2, "")
    assert "--key-seed-hex: must be 64 hex characters" in one_line(err)
    # Commands that sign nothing are not stopped by it.
    assert run(capsys, "check-config")[0] == 0


@pytest.mark.parametrize(
    ("stage", "event_type"), [("route", COMMAND_RECEIVED), ("submit", WORKFLOW_REQUESTED)]
)
def test_dead_letter_sends_a_sealed_command_as_knative_would(
    env, capsys, status_callback, stage: str, event_type: str
) -> None:
    env(base_env())
    status_callback.answer = (200, b"")
    code, _, err = run(
        capsys,
        "dead-letter",
        "/plan objective:ship it",
        "--stage",
        stage,
        "--url",
        status_callback.url,
    )
    assert code == 0, err
    [(headers, raw)] = status_callback.received
    event = from_http(headers, raw)
    assert event["type"] == event_type
    # Sealed with events.signing_key: command_route's dead-letter path opens it like any event.
    journey = Journey.from_event(open_event(EVENT_KEY, event, {event_type}))
    assert journey.call.command == "plan"
    assert journey.call.options == [{"name": "objective", "type": 3, "value": "ship it"}]


def test_tick_sends_the_pingsources_event_with_the_tick_token(env, capsys, status_callback) -> None:
    env(base_env(FACTEUR_CALLBACK_TICK_TOKEN="a-tick-token-of-at-least-32-characters"))
    status_callback.answer = (200, b'{"result": "tick"}')
    code, _, err = run(capsys, "tick", "--url", status_callback.url)
    assert code == 0, err
    [(headers, raw)] = status_callback.received
    assert callers.is_cloudevent(headers)
    assert callers.tick_token_matches(headers, raw, "a-tick-token-of-at-least-32-characters")


def test_nudge_sends_what_the_apiserversource_would(env, capsys, status_callback) -> None:
    from facteur.decisions import nudge

    env(base_env())
    status_callback.answer = (202, b'{"result": "running"}')
    code, _, err = run(capsys, "nudge", "plan-1", "--deleted", "--url", status_callback.url)
    assert code == 0, err
    [(headers, raw)] = status_callback.received
    lowered = {name.lower(): value for name, value in headers.items()}
    found = nudge.read_http(lowered.get, raw, namespace="agents")
    assert isinstance(found, nudge.Nudge)
    assert (found.name, found.namespace, found.deleted) == ("plan-1", "agents", True)
