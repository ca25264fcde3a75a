from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from facteur.config import all_keys, env_var, load_settings, redact_url, url_password
from facteur.errors import ConfigError
from tests.helpers.support import PUBLIC_KEY_HEX, ROOT


def test_env_names_follow_section_and_key() -> None:
    assert env_var("discord.public_key") == "FACTEUR_DISCORD_PUBLIC_KEY"
    assert env_var("argo.workflow_template") == "FACTEUR_ARGO_WORKFLOW_TEMPLATE"
    assert env_var("role_map") == "FACTEUR_ROLE_MAP"
    assert env_var("k_sink") == "K_SINK"


def test_public_contract_keys_exist() -> None:
    contract = {
        "discord.public_key",
        "discord.application_id",
        "discord.bot_token",
        "discord.guild_id",
        "discord.api_base_url",
        "discord.interaction_token_ttl_seconds",
        "redis.url",
        "argo.server_url",
        "argo.token",
        "argo.namespace",
        "argo.workflow_template",
        "argo.service_account",
        "argo.parameters",
        "role_map",
        "callback.token",
        "events.signing_key",
        "k_sink",
    }
    assert contract <= set(all_keys())


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.discord.api_base_url == "https://discord.com/api/v10"
    assert settings.discord.interaction_token_ttl_seconds == 840
    assert settings.discord.timestamp_tolerance_seconds == 300
    assert settings.discord.max_body_bytes == 1_048_576
    assert settings.role_map == {}


def test_file_then_env_override(tmp_path: Path) -> None:
    config = tmp_path / "facteur.yaml"
    config.write_text(
        "discord:\n"
        f"  public_key: {'cd' * 32}\n"
        "  application_id: 123456789012345678\n"
        "argo:\n"
        "  namespace: agents\n"
        "  parameters:\n"
        "    repoURL: https://example.test/repo.git\n"
        "role_map:\n"
        "  plan: ['123456789012345678']\n"
    )
    settings = load_settings(
        environ={
            "FACTEUR_CONFIG_FILE": str(config),
            "FACTEUR_DISCORD_PUBLIC_KEY": PUBLIC_KEY_HEX,
            "FACTEUR_ARGO_PARAMETERS": json.dumps({"modelName": "big", "Mixed_Case": "x"}),
        }
    )
    assert settings.discord.public_key == PUBLIC_KEY_HEX
    # Unquoted YAML IDs become ints; they are read back as strings.
    assert settings.discord.application_id == "123456789012345678"
    assert settings.argo.namespace == "agents"
    # A map from the environment replaces the file's map whole, and keeps its keys' case.
    assert settings.argo.parameters == {"modelName": "big", "Mixed_Case": "x"}
    assert settings.role_map == {"plan": ["123456789012345678"]}


def test_required_keys_are_named_with_their_variables() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(["discord.public_key", "k_sink"], environ={})
    message = str(err.value)
    assert "discord.public_key (FACTEUR_DISCORD_PUBLIC_KEY): required but not set" in message
    assert "K_SINK: required but not set" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FACTEUR_DISCORD_PUBLIC_KEY": "xyz"}, "FACTEUR_DISCORD_PUBLIC_KEY"),
        ({"FACTEUR_DISCORD_INTERACTION_TOKEN_TTL_SECONDS": "901"}, "interaction_token_ttl"),
        ({"FACTEUR_DISCORD_INTERACTION_TOKEN_TTL_SECONDS": "soon"}, "interaction_token_ttl"),
        ({"FACTEUR_ROLE_MAP": "{not json"}, "FACTEUR_ROLE_MAP"),
        ({"FACTEUR_ROLE_MAP": '{"Plan": ["123456789012345678"]}'}, "FACTEUR_ROLE_MAP"),
        ({"FACTEUR_ROLE_MAP": '{"plan": []}'}, "FACTEUR_ROLE_MAP"),
        ({"FACTEUR_ROLE_MAP": '{"plan": ["12"]}'}, "FACTEUR_ROLE_MAP"),
        ({"FACTEUR_ARGO_PARAMETERS": "[1, 2]"}, "FACTEUR_ARGO_PARAMETERS"),
        ({"FACTEUR_EVENTS_SIGNING_KEY": "short"}, "FACTEUR_EVENTS_SIGNING_KEY"),
        ({"FACTEUR_CALLBACK_TOKEN": "short"}, "FACTEUR_CALLBACK_TOKEN"),
        ({"K_SINK": "ftp://broker"}, "K_SINK"),
        ({"FACTEUR_DISCORD_API_BASE_URL": "http://discord.example"}, "API_BASE_URL"),
        ({"FACTEUR_REDIS_URL": "http://redis"}, "FACTEUR_REDIS_URL"),
        ({"FACTEUR_ARGO_NAMESPACE": "Bad_NS"}, "FACTEUR_ARGO_NAMESPACE"),
        ({"FACTEUR_DISCORD_GUILD_ID": "guild"}, "FACTEUR_DISCORD_GUILD_ID"),
    ],
)
def test_invalid_settings_name_key_and_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=env)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "value",
    [
        "redis://:s3cretpassword\uff20redis:6379/0",  # urlsplit's own message quotes the netloc
        "redis://:s3cretpassword@redis:notaport/0",
        "redis://:s3cretpassword@redis:99999/0",
        "redis://:s3cretpassword@[redis/0",
    ],
)
def test_a_malformed_url_error_never_echoes_its_password(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"FACTEUR_REDIS_URL": value})
    assert str(err.value).startswith("redis.url (FACTEUR_REDIS_URL): ")
    assert "s3cretpassword" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://user:pw@host", "rediss://user:***@host"),
        ("https://u:p@ss:w0rd@argo:2746/x?y=1#z", "https://u:***@argo:2746/x?y=1#z"),
        ("unix://:pw@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
        ("redis://user@redis:6379/0", "redis://user@redis:6379/0"),  # a user name, no password
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("https://host/path@x:y", "https://host/path@x:y"),  # not in the authority
        ("not a url", "not a url"),
    ],
)
def test_redact_url_masks_only_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


_HOSTS = st.sampled_from(["redis", "argo.agents.svc", "127.0.0.1", "[::1]"])
# Anything but what ends the authority (/ ? #) or what urlsplit drops (tab, CR, LF): @ and :
# included, and [ ] or characters urlsplit refuses, which the helper must handle all the same.
_PASSWORDS = st.text(
    st.characters(blacklist_characters="/?#\t\r\n", blacklist_categories=("Cs",)), min_size=1
)


@given(
    scheme=st.sampled_from(["redis", "rediss", "http", "https"]),
    user=st.text(st.sampled_from(string.ascii_letters + string.digits + "-._~"), max_size=8),
    password=_PASSWORDS,
    host=_HOSTS,
    port=st.integers(1, 65535),
)
def test_a_redacted_url_never_holds_the_password_and_keeps_host_and_port(
    scheme: str, user: str, password: str, host: str, port: int
) -> None:
    url = f"{scheme}://{user}:{password}@{host}:{port}/0"
    assert url_password(url) == password
    redacted = redact_url(url)
    expected = f"{scheme}://{user}:***@{host}:{port}/0"
    assert redacted == expected
    if password not in expected:  # e.g. "0" or "redis": unavoidably elsewhere in the URL
        assert password not in redacted
    parts = urlsplit(redacted)
    assert (parts.hostname, parts.port, parts.password) == (host.strip("[]"), port, "***")


# Strings made of what matters to a URL parser, so that the odd cases come up.
_PIECES = st.lists(
    st.sampled_from(
        ["redis:", "https:", "//", "/", "@", ":", "?", "#", "[", "]", "\t", " ", "a", "%40"]
    )
    | st.text(max_size=2),
    max_size=6,
).map("".join)
# Mostly shaped like scheme://user:password@host/path, each part possibly odd or missing.
_URLISH = st.tuples(
    st.sampled_from(["redis:", "https:", "", "1x:"]) | _PIECES,
    st.sampled_from(["//", "//", "/\t/", "/"]),
    _PIECES,
    st.sampled_from([":", ":", ""]),
    st.text(min_size=1, max_size=4) | _PIECES,
    st.sampled_from(["@", "@", ""]),
    _PIECES,
).map("".join)


@given(text=st.text() | _URLISH)
def test_after_redaction_urlsplit_finds_no_password_but_the_mask(text: str) -> None:
    # Whatever the string, where urlsplit (so redis-py and requests) would read a password,
    # the helper found the same one.
    try:
        before, after = urlsplit(text).password, urlsplit(redact_url(text)).password
    except ValueError:
        assume(False)
    assert after in (None, "", "***")
    if before:
        assert url_password(text) == before
        assert after == "***"


def test_secrets_never_appear_in_repr() -> None:
    secret = "s3cret-signing-key-0123456789abcdef-XYZ"
    settings = load_settings(environ={"FACTEUR_EVENTS_SIGNING_KEY": secret})
    assert secret not in repr(settings)
    assert secret not in str(settings.model_dump())


# -- Redis: the password setting and Sentinel URLs ------------------------------------------------

REDIS_PASSWORD = "r3dis-password-0123456789abcdef-XYZ"


def test_the_redis_password_is_a_secret() -> None:
    from facteur.config import secret_values

    settings = load_settings(environ={"FACTEUR_REDIS_PASSWORD": REDIS_PASSWORD})
    assert settings.redis.password is not None
    assert settings.redis.password.get_secret_value() == REDIS_PASSWORD
    assert REDIS_PASSWORD not in repr(settings)
    assert REDIS_PASSWORD not in str(settings.model_dump())
    # So the log scrubber removes it from every line (bootstrap hands secret_values to logs).
    assert REDIS_PASSWORD in secret_values(settings)


def test_a_short_redis_password_is_refused_without_being_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"FACTEUR_REDIS_PASSWORD": "hunter2"})
    assert str(err.value) == (
        "redis.password (FACTEUR_REDIS_PASSWORD): must be at least 32 characters "
        "(try: openssl rand -hex 32)"
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://redis-sentinel.facteur.svc.cluster.local:26379/facteur/0",
        "redis+sentinel://:pw@10.0.0.1,10.0.0.2:26380,[::1]/mymaster",
    ],
)
def test_sentinel_urls_are_accepted(url: str) -> None:
    assert load_settings(environ={"FACTEUR_REDIS_URL": url}).redis.url == url


@pytest.mark.parametrize(
    "value",
    [
        "redis+sentinel://:s3cretpassword@h1:99999/facteur/0",
        "redis+sentinel://:s3cretpassword@h1,,h2/facteur/0",
        "redis+sentinel://:s3cret/password@h1/facteur/0",  # an unencoded / ends the hosts early
        "redis+sentinel://:s3cretpassword@h1",
        "redis+sentinel://:s3cretpassword@h1/facteur/0?db=1",
    ],
)
def test_a_malformed_sentinel_url_is_refused_in_one_line_without_its_password(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"FACTEUR_REDIS_URL": value})
    assert str(err.value).startswith("redis.url (FACTEUR_REDIS_URL): ")
    assert "s3cret" not in str(err.value)
    assert "\n" not in str(err.value)


def test_the_password_of_a_sentinel_url_is_redacted_and_scrubbed() -> None:
    from facteur.config import secret_values

    url = "redis+sentinel://:hunter2@h1:26379,h2:26379/facteur/0"
    assert redact_url(url) == "redis+sentinel://:***@h1:26379,h2:26379/facteur/0"
    assert "hunter2" in secret_values(load_settings(environ={"FACTEUR_REDIS_URL": url}))


def test_loopback_http_allowed_for_discord_base() -> None:
    settings = load_settings(environ={"FACTEUR_DISCORD_API_BASE_URL": "http://127.0.0.1:9/api/"})
    assert settings.discord.api_base_url == "http://127.0.0.1:9/api"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("discord: [unclosed", "not valid YAML"),
        ("- a list\n", "must hold a mapping"),
        ("discord:\n  public_kee: x\n", "unknown setting"),
        ("surprise: 1\n", "unknown setting"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "facteur.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"FACTEUR_CONFIG_FILE": str(config)})
    assert expected in str(err.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(environ={"FACTEUR_CONFIG_FILE": str(tmp_path / "absent.yaml")})


def test_example_config_is_valid() -> None:
    settings = load_settings(
        environ={"FACTEUR_CONFIG_FILE": str(ROOT / "config/facteur.example.yaml")}
    )
    assert settings.argo.namespace


def test_boot_stops_with_one_line_and_no_traceback() -> None:
    code = "from facteur.bootstrap import boot\nboot('interaction_verify')\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={}, timeout=60
    )
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "facteur interaction_verify: configuration error: "
        "discord.public_key (FACTEUR_DISCORD_PUBLIC_KEY): required but not set; "
        "events.signing_key (FACTEUR_EVENTS_SIGNING_KEY): required but not set; "
        "K_SINK: required but not set"
    ]


def test_readme_lists_every_setting_with_its_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in all_keys():
        shown = "K_SINK" if key == "k_sink" else key
        assert f"| `{shown}` | `{env_var(key)}` |" in readme, key
