"""Configuration: an optional YAML file, overridden by environment variables, validated by pydantic.

Precedence, lowest first: defaults, the file named by FACTEUR_CONFIG_FILE, then
FACTEUR_<SECTION>_<KEY> variables (K_SINK is Knative's own name). Each function states which
keys its path needs; a missing or invalid key stops it at start-up with one line naming the key
and its variable.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

from facteur.decisions import ids
from facteur.decisions.catalog import Catalog, parse_catalog
from facteur.decisions.redis_url import SENTINEL_SCHEME, is_sentinel_url, parse_sentinel_url
from facteur.errors import CatalogError, ConfigError

CONFIG_FILE_ENV = "FACTEUR_CONFIG_FILE"
ENV_PREFIX = "FACTEUR_"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOG_FILE = REPO_ROOT / "config" / "commands.yaml"

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# FACTEUR_* variables that are read, but are not settings: each with who reads it.
OTHER_VARIABLES: dict[str, str] = {
    CONFIG_FILE_ENV: "names the settings file (this module)",
    "FACTEUR_DEV_KEY_SEED": "signs `facteur send` and `facteur click` (cli/parser.py)",
    "FACTEUR_DEV_PORT_BASE": "the local loop's first port (scripts/dev)",
    "FACTEUR_DEV_TICK_SECONDS": "how often the local loop ticks and nudges (scripts/dev)",
    "FACTEUR_DEV_STARTUP_SECONDS": "how long the local loop waits for its ports (scripts/dev)",
    "FACTEUR_SPECS_DIR": "the external specs the tests validate against (tests/)",
    "FACTEUR_TEST_REDIS_URL": "an existing Redis for the tests (tests/)",
}

log = logging.getLogger("facteur.config")


def _snowflake(value: Any) -> str:
    # YAML reads unquoted IDs as ints; IDs are strings on the wire.
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not ids.is_snowflake(text, min_digits=ids.CONFIGURED_SNOWFLAKE_DIGITS):
        raise ValueError("must be a Discord snowflake (17 to 20 digits)")
    return text


Snowflake = Annotated[str, BeforeValidator(_snowflake)]


def _hex_public_key(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError("must be the application's Ed25519 public key: 64 hex characters")
    return value.lower()


def is_placeholder_key(value: str) -> bool:
    """A key of one repeated character, such as the 64 zeros that config/facteur.example.yaml
    and kubernetes/base ship: the shape of a placeholder, never of a real Ed25519 key."""
    return len(set(value.lower())) == 1


# What urlsplit (and so redis-py and requests) drops from a URL before reading it.
_URL_IGNORED = str.maketrans("", "", "\t\r\n")


def _password_span(url: str) -> tuple[int, int] | None:
    # Read as urlsplit reads it, without raising where urlsplit would: the authority runs from
    # the first // to the next / ? or #, its userinfo up to its last @, the password from the
    # userinfo's first colon.
    start = url.find("//")
    if start < 0:
        return None
    start += 2
    ends = [at for at in (url.find(stop, start) for stop in "/?#") if at >= 0]
    end = url.rfind("@", start, min(ends, default=len(url)))
    colon = url.find(":", start, end) if end >= 0 else -1
    return (colon + 1, end) if 0 <= colon < end - 1 else None


def url_password(url: str) -> str | None:
    """The password in a URL's userinfo (`scheme://user:password@host`), as written; None if
    there is none."""
    url = url.translate(_URL_IGNORED)
    span = _password_span(url)
    return url[span[0] : span[1]] if span else None


def redact_url(url: str, mask: str = "***") -> str:
    """The URL with the password in its userinfo replaced by `mask`, everything else kept:
    `redis://:hunter2@redis:6379/0` becomes `redis://:***@redis:6379/0`."""
    cleaned = url.translate(_URL_IGNORED)
    span = _password_span(cleaned)
    return f"{cleaned[: span[0]]}{mask}{cleaned[span[1] :]}" if span else url


def _url(*schemes: str, loopback_http: bool = False) -> AfterValidator:
    def check(value: str) -> str:
        # urlsplit's own messages can quote the whole netloc, password included: never echo them.
        try:
            parts = urlsplit(value)
            _ = parts.port  # raises unless the port is a number up to 65535
        except ValueError:
            raise ValueError("cannot be read as a URL (check the host and port)") from None
        allowed = parts.scheme in schemes or (
            loopback_http and parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        )
        if not allowed or not parts.netloc:
            extra = " (http only on loopback)" if loopback_http else ""
            raise ValueError(f"must be a {' or '.join(schemes)} URL{extra}")
        return value.rstrip("/")

    return AfterValidator(check)


def _strong_secret(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < 32:
        raise ValueError("must be at least 32 characters (try: openssl rand -hex 32)")
    return value


StrongSecret = Annotated[SecretStr, AfterValidator(_strong_secret)]


def _role_key_problem(key: str) -> str:
    command, colon, _ = key.partition(":")
    buttons = " or ".join(f"'{command}:{action}'" for action in ids.RULE_ACTIONS)
    if colon and ids.ROLE_KEY.fullmatch(command):
        # The old form, when `command:<x>` named a subcommand as well as a button.
        return (
            f"key {key!r}: a rule after the colon may only name a button ({buttons}); "
            "facteur runs no subcommands, so subcommand rules no longer exist"
        )
    return f"key {key!r} must be a command name, or {buttons} for a button on its runs"


def _role_map(value: dict[str, list[str]]) -> dict[str, list[str]]:
    # Mirrors schemas/facteur-discord-role-map.schema.json; tests hold the two in agreement.
    for key, roles in value.items():
        if not ids.ROLE_KEY.fullmatch(key):
            raise ValueError(_role_key_problem(key))
        if not roles:
            raise ValueError(f"{key!r} must list at least one role ID")
        if len(set(roles)) != len(roles):
            raise ValueError(f"{key!r} lists a role ID twice")
    return value


RoleMap = Annotated[dict[str, list[Snowflake]], AfterValidator(_role_map)]


def _ca_bundle(path: Path) -> Path:
    # Read now, so a wrong path stops start-up instead of failing every request to Argo.
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as err:
        raise ValueError(f"cannot read {path} ({err.strerror})") from None
    if b"-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return path


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiscordSettings(_Section):
    public_key: Annotated[str, AfterValidator(_hex_public_key)] | None = None
    application_id: Snowflake | None = None
    bot_token: SecretStr | None = None
    guild_id: Snowflake | None = None
    api_base_url: Annotated[str, _url("https", loopback_http=True)] = "https://discord.com/api/v10"
    # Discord's tokens live 15 minutes; 840 s leaves a minute of margin, and facteur adds none.
    interaction_token_ttl_seconds: int = Field(840, ge=1, le=900)
    # Discord sets no age limit on a signed request; ours stops replays of captured ones.
    timestamp_tolerance_seconds: int = Field(300, ge=1, le=3600)
    max_body_bytes: int = Field(1_048_576, ge=1024, le=16_777_216)


# The sentinel scheme is listed for the message only: _redis_url reads those URLs itself.
_plain_redis_url = cast(Callable[[str], str], _url("redis", "rediss", "unix", SENTINEL_SCHEME).func)


def _redis_url(value: str) -> str:
    # redis+sentinel:// lists several hosts, which urlsplit cannot read: decisions/redis_url.py.
    if is_sentinel_url(value):
        parse_sentinel_url(value)
        return value.rstrip("/")
    return _plain_redis_url(value)


class RedisSettings(_Section):
    url: Annotated[str, AfterValidator(_redis_url)] | None = None
    # Sent to Redis (and to its Sentinels) instead of any password in url; from the Secret.
    password: StrongSecret | None = None
    # workflow -> session, kept for status callbacks of long runs.
    session_ttl_seconds: int = Field(604_800, ge=60)
    # A user's last dispatch, for /status and /review's last_correlation_id (the seed's 15 min).
    last_dispatch_ttl_seconds: int = Field(900, ge=60)


class ArgoSettings(_Section):
    server_url: Annotated[str, _url("https", "http")] | None = None
    token: SecretStr | None = None
    namespace: str | None = Field(None, pattern=f"^{ids.NAMESPACE.pattern}$")
    workflow_template: str | None = Field(None, min_length=1, max_length=253)
    service_account: str | None = Field(None, min_length=1, max_length=253)
    parameters: dict[str, str] = Field(default_factory=dict)
    # Links in Discord point here; defaults to server_url.
    ui_url: Annotated[str, _url("https", "http")] | None = None
    # Off trusts whoever answers (logged loudly at start-up); ca_file, when set, verifies anyway.
    verify_tls: bool = True
    # A PEM bundle to trust for server_url instead of the public CAs, e.g. argo-server's own.
    ca_file: Annotated[Path, AfterValidator(_ca_bundle)] | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=60)
    # Cancel: "stop" still runs exit handlers (the outcome is reported); "terminate" does not
    # (reconciliation reports it).
    cancel_strategy: Literal["stop", "terminate"] = "stop"
    # Retry: "retry" reruns the failed steps of the same workflow; "resubmit" starts a new one.
    retry_strategy: Literal["retry", "resubmit"] = "retry"


class CallbackSettings(_Section):
    token: StrongSecret | None = None
    # A PingSource cannot send headers, so reconciliation ticks carry this in their data. It can
    # only make facteur re-read Argo, never forge an outcome, so it may live in the PingSource.
    tick_token: StrongSecret | None = None
    # Sessions checked against Argo per tick, so a backlog cannot time the function out.
    tick_batch: int = Field(50, ge=1, le=1000)


class CardSettings(_Section):
    # A run's message is edited at most this often while it goes; its end goes out at once.
    min_edit_interval_seconds: float = Field(5.0, ge=0, le=3600)


class EventsSettings(_Section):
    signing_key: StrongSecret | None = None
    # The hand-off must finish well inside Discord's 3 s, leaving time to answer.
    sink_timeout_seconds: float = Field(2.0, gt=0, le=2.5)


def _from_repo_root(path: Path) -> Path:
    # Relative to the project, not to wherever the server happens to start.
    return path if path.is_absolute() else REPO_ROOT / path


class CommandsSettings(_Section):
    catalog_file: Annotated[Path, AfterValidator(_from_repo_root)] = DEFAULT_CATALOG_FILE


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json for clusters (one object per line); console for reading in a terminal.
    format: Literal["json", "console"] = "json"


class DevSettings(_Section):
    # The local loop: stand in for a missing Argo server (dry run) and Discord credentials
    # (console). Off by default, so production fails fast on a forgotten setting.
    embedded: bool = False
    # What the dry-run Argo shows: each run Pending, then Running step by step, then this
    # outcome, over this many seconds (adapters/local.py Lifecycle).
    dry_run_outcome: Literal["Succeeded", "Failed", "Error"] = "Succeeded"
    dry_run_seconds: float = Field(20.0, ge=1, le=3600)
    # Where the dry run keeps each run's state (stops, gate answers, mutex queue), shared by
    # the loop's processes; unset: a per-user directory under the system's temp dir.
    dry_run_state_dir: Annotated[Path, AfterValidator(_from_repo_root)] | None = None
    # On: each dry run stops halfway at an approval gate (a Suspend node "approve", YES/NO)
    # until answered, or until this many seconds pass, as Argo resumes a suspend by itself.
    dry_run_gate: bool = False
    dry_run_gate_seconds: float = Field(600.0, ge=1, le=86400)


# What dev.embedded may stand in for.
EMBEDDED_STANDINS = frozenset({"argo.server_url", "argo.namespace", "discord.application_id"})


class Settings(_Section):
    discord: DiscordSettings = DiscordSettings()
    redis: RedisSettings = RedisSettings()
    argo: ArgoSettings = ArgoSettings()
    callback: CallbackSettings = CallbackSettings()
    card: CardSettings = CardSettings()
    events: EventsSettings = EventsSettings()
    commands: CommandsSettings = CommandsSettings()
    dev: DevSettings = DevSettings()
    logging: LoggingSettings = LoggingSettings()
    role_map: RoleMap = Field(default_factory=dict)
    k_sink: Annotated[str, _url("https", "http")] | None = None


# Top-level keys that are not sections, with the variable that sets each.
_TOP_LEVEL_ENV = {"role_map": "FACTEUR_ROLE_MAP", "k_sink": "K_SINK"}
_KEY_NAMES = {"k_sink": "K_SINK"}


def env_var(key: str) -> str:
    """The environment variable for a dotted key, e.g. discord.public_key."""
    if key in _TOP_LEVEL_ENV:
        return _TOP_LEVEL_ENV[key]
    return ENV_PREFIX + key.replace(".", "_").upper()


def all_keys() -> list[str]:
    """Every dotted key facteur reads, in declaration order."""
    keys: list[str] = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, _Section):
            keys.extend(f"{name}.{sub}" for sub in section.model_fields)
        else:
            keys.append(name)
    return keys


def _is_map(key: str) -> bool:
    return key in ("role_map", "argo.parameters")


def known_variables() -> frozenset[str]:
    """Every FACTEUR_* variable facteur (its functions, CLI, scripts and tests) reads."""
    settings = (env_var(key) for key in all_keys())
    return frozenset(name for name in settings if name.startswith(ENV_PREFIX)) | set(
        OTHER_VARIABLES
    )


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line for each FACTEUR_* variable that nothing reads, with the closest known name:
    a misspelt setting is otherwise ignored without a word."""
    known = known_variables()
    # Compared without the prefix that all share, so that it cannot make any name look close.
    tails = {name.removeprefix(ENV_PREFIX): name for name in known}
    lines = []
    for name in sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known):
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), tails, n=1)
        hint = f"; did you mean {tails[close[0]]}?" if close else ""
        lines.append(f"{name} is not a variable facteur reads, so it is ignored{hint}")
    return lines


def _json_problem(err: json.JSONDecodeError) -> str:
    # Position and reason only: the text itself is never echoed.
    return f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}"


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key in all_keys():
        raw = environ.get(env_var(key))
        if raw is None or raw == "":
            continue
        value: Any = raw
        if _is_map(key):
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as err:
                problem = _json_problem(err)
                raise ConfigError(f"{_label(key)}: must be a JSON object ({problem})") from None
            except ValueError:  # e.g. a number too long to convert
                raise ConfigError(f"{_label(key)}: must be a JSON object") from None
        section, _, sub = key.partition(".")
        if sub:
            tree.setdefault(section, {})[sub] = value
        else:
            tree[section] = value
    return tree


def yaml_problem(err: Exception) -> str:
    """`not valid YAML at line L, column C: <what>` for a PyYAML error (1-based, as editors
    count). The parser's own words name tokens, never the values around them."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(err, "problem", None) or getattr(err, "context", None)
    return f"not valid YAML{where}" + (f": {what}" if what else "")


def _from_file(path: str) -> dict[str, Any]:
    import yaml  # only when a file is configured: yaml costs start-up time

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"{CONFIG_FILE_ENV}={path}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{CONFIG_FILE_ENV}={path}: {yaml_problem(err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE_ENV}={path}: must hold a mapping of sections")
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not _is_map(key):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _label(key: str) -> str:
    name = _KEY_NAMES.get(key, key)
    return f"{name} ({env_var(key)})" if name != env_var(key) else name


def _describe(err: ValidationError) -> str:
    problems = []
    for item in err.errors():
        loc = [str(part) for part in item["loc"]]
        section_keys = {k.partition(".")[0] for k in all_keys() if "." in k}
        key = ".".join(loc[:2]) if loc and loc[0] in section_keys else loc[0] if loc else "?"
        detail = ".".join(loc[2:] if key.count(".") else loc[1:])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        where = f"[{detail}]" if detail else ""
        problems.append(f"{_label(key)}{where}: {message}")
    return "; ".join(problems)


def _get(settings: Settings, key: str) -> Any:
    value: Any = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def load_settings(
    required: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> Settings:
    """Load and validate settings; raise ConfigError naming every missing or invalid key."""
    env = os.environ if environ is None else environ
    required = list(required)  # read twice below
    # Before logging is configured, so these reach stderr (logging's last-resort handler).
    for line in unknown_variables(env):
        log.warning("facteur: %s", line)
    tree: dict[str, Any] = {}
    if env.get(CONFIG_FILE_ENV):
        tree = _from_file(env[CONFIG_FILE_ENV])
    tree = _merge(tree, _from_env(env))
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
    if settings.dev.embedded:
        required = [key for key in required if key not in EMBEDDED_STANDINS]
    missing = [key for key in required if _get(settings, key) in (None, "")]
    problems = [f"{_label(key)}: required but not set" for key in missing]
    public_key = settings.discord.public_key
    if "discord.public_key" in required and public_key and is_placeholder_key(public_key):
        # Refused rather than served: every request would fail its signature check with a 401.
        problems.append(
            f"{_label('discord.public_key')}: {public_key[0]!r} 64 times is a placeholder, not the "
            "application's key (copy it from the Discord developer portal, General Information)"
        )
    if problems:
        raise ConfigError("; ".join(problems))
    return settings


def load_catalog(path: Path | str) -> Catalog:
    """Read and check the catalog file (YAML)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise CatalogError(f"{path}: cannot read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise CatalogError(f"{path}: {yaml_problem(err)}") from None
    return parse_catalog(data, str(path))


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret, so that logs can be scrubbed of them: each secret setting, and
    the password in any setting's URL (as written, and percent-decoded as clients send it)."""
    found = []
    for value in _leaves(settings.model_dump()):
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and (password := url_password(value)):
            found += dict.fromkeys((password, unquote(password)))
    return found
