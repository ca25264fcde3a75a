"""The `facteur` command line: check a configuration, register the slash commands, and play
Discord and Argo against functions running locally.

    facteur check-config [--function NAME] [--format yaml|json]
    facteur register-commands [--guild ID | --global] [--dry-run]
    facteur send "/plan objective:ship it" [--as-role ID] [--user ID] [--url URL]
    facteur send ping
    facteur callback NAME --status Succeeded [--namespace NS] [--failure NODE=MESSAGE ...]

Settings are read exactly as the functions read them: FACTEUR_CONFIG_FILE, then FACTEUR_*
variables. A mistake ends with one line on stderr, never a traceback: exit 2 for usage and
configuration errors, 1 when the other side refused or could not be reached.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, get_args

from pydantic import BaseModel, SecretStr

from facteur.config import Settings, env_var, load_catalog, load_settings
from facteur.decisions import ids
from facteur.errors import ConfigError

if TYPE_CHECKING:
    from nacl.signing import SigningKey

    from facteur.decisions.catalog import Catalog, Command

PROG = "facteur"
EXIT_FAILED = 1
EXIT_USAGE = 2

# The PUBLISHED development key: config/local.yaml trusts its public key, so anyone can sign
# for it. Never configure that public key anywhere real.
DEV_KEY_SEED = b"facteur-local-development-key!!!"
# The local loop's IDs (config/local.yaml), used where the settings name none.
LOCAL_GUILD = "100000000000000001"
LOCAL_MEMBER_ROLE = "100000000000000010"
LOCAL_USER = "100000000000000100"
LOCAL_CHANNEL = "100000000000000200"
LOCAL_APP = "100000000000000300"
LOCAL_COMMAND_ID = "100000000000000400"
DISCORD_EPOCH_MS = 1_420_070_400_000

REDACTED = "***"
NOT_SET = "(not set)"


class CliError(Exception):
    """A mistake or a refusal, told in one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- check-config ---------------------------------------------------------------------------------


def _holds_secret(annotation: Any) -> bool:
    # Walks Optional[...] and Annotated[...] so StrongSecret | None counts too.
    return annotation is SecretStr or any(_holds_secret(arg) for arg in get_args(annotation))


def secret_keys() -> list[str]:
    """Every dotted key whose value is a secret, found from the model so none can be missed."""
    keys = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            keys += [
                f"{name}.{sub}"
                for sub, f in section.model_fields.items()
                if _holds_secret(f.annotation)
            ]
        elif _holds_secret(section):
            keys.append(name)
    return keys


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, every secret replaced by *** or (not set)."""
    data = settings.model_dump(mode="json")
    for key in secret_keys():
        section, _, name = key.rpartition(".")
        holder = data[section] if section else data
        holder[name] = NOT_SET if holder[name] is None else REDACTED
    return data


def role_map_warnings(role_map: Mapping[str, Sequence[str]], catalog: Catalog) -> list[str]:
    """Role-map keys that govern nothing, and catalog commands nobody may run."""
    commands = [command.name for command in catalog.commands]
    warnings = [
        f"role_map key {key!r} names no command in the catalog, so it has no effect"
        for key in role_map
        # `plan:deep` refines /plan: only the part before the colon must be a command.
        if key.partition(":")[0] not in commands
    ]
    for name in commands:
        if name in role_map:
            continue
        refined = sorted(key for key in role_map if key.startswith(f"{name}:"))
        only = f" (only {', '.join(refined)} has a rule)" if refined else ""
        warnings.append(f"/{name} is in the catalog but not in role_map: denied to everyone{only}")
    return warnings


def _check_config(args: argparse.Namespace) -> int:
    from facteur import bootstrap

    function: str | None = args.function
    settings = load_settings(bootstrap.FUNCTIONS[function].required if function else ())
    catalog = load_catalog(settings.commands.catalog_file)
    if function:
        # Building (no I/O) surfaces the same start-up errors the function would stop on.
        bootstrap.build(function, settings)
    for warning in role_map_warnings(settings.role_map, catalog):
        _say(f"{PROG} check-config: warning: {warning}")
    data = redacted(settings)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return 0


# -- register-commands ----------------------------------------------------------------------------


def _register_commands(args: argparse.Namespace) -> int:
    from facteur import bootstrap
    from facteur.errors import DiscordError

    settings = load_settings()
    payload = [
        command.to_discord() for command in load_catalog(settings.commands.catalog_file).commands
    ]
    guild: str | None = None if args.global_scope else args.guild or settings.discord.guild_id
    if not args.global_scope and guild is None:
        key = "discord.guild_id"
        raise CliError(
            f"no guild to register in: pass --guild ID or --global, or set {key} ({env_var(key)})"
        )
    app = settings.discord.application_id
    if args.dry_run:
        # The route as the client will send it; nothing needs credentials to look at it.
        scope = "" if guild is None else f"/guilds/{guild}"
        route = f"/applications/{app or '{application_id}'}{scope}/commands"
        url = settings.discord.api_base_url + route
        print(json.dumps({"method": "PUT", "url": url, "body": payload}, indent=2))
        return 0
    missing = [
        key
        for key in ("discord.application_id", "discord.bot_token")
        if _value(settings, key) is None
    ]
    if missing:
        # dev.embedded never stands in here: registering is always for real.
        raise ConfigError(
            "; ".join(f"{key} ({env_var(key)}): required but not set" for key in missing)
        )
    try:
        registered = bootstrap.discord_client(settings).overwrite_commands(payload, guild_id=guild)
    except DiscordError as err:
        raise CliError(f"Discord did not take the commands: {err}", EXIT_FAILED) from None
    names = [str(item.get("name")) for item in registered] or [c["name"] for c in payload]
    where = "globally" if guild is None else f"in guild {guild}"
    print(f"registered {len(payload)} command(s) {where}: " + ", ".join(f"/{n}" for n in names))
    return 0


def _value(settings: Settings, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(settings, section), name)


# -- send -----------------------------------------------------------------------------------------

# `name:` starts an option, but not `http://`: a URL in a value needs no quotes.
_OPTION_START = re.compile(r"([-\w]+):(?!//)")
_NEXT_OPTION = re.compile(r"\s+[-\w]+:(?!//)")


def parse_command_line(line: str) -> tuple[str, list[tuple[str, str]]]:
    """`/plan objective:ship it project:"a b"` -> ("plan", [("objective", "ship it"), ...]).

    An unquoted value runs until the next ` name:`; quote it ("..." or '...') to hold one.
    """
    name, *after = re.split(r"\s+", line.strip().removeprefix("/"), maxsplit=1)
    rest = after[0] if after else ""
    if not name or not re.fullmatch(r"[-\w]+", name):
        raise CliError(f'expected a command such as "/plan objective:ship it", not {line!r}')
    options: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rest):
        start = _OPTION_START.match(rest, pos)
        if start is None:
            raise CliError(f"expected name:value, found {rest[pos:]!r}")
        option, pos = start.group(1), start.end()
        if rest[pos : pos + 1] in ('"', "'"):
            value, pos = _quoted(rest, pos, option)
            if pos < len(rest) and not rest[pos].isspace():
                raise CliError(f"option {option!r}: text right after the closing quote")
        else:
            following = _NEXT_OPTION.search(rest, pos)
            end = following.start() if following else len(rest)
            value, pos = rest[pos:end].strip(), end
        options.append((option, value))
        while pos < len(rest) and rest[pos].isspace():
            pos += 1
    return name, options


def _quoted(text: str, pos: int, option: str) -> tuple[str, int]:
    quote, chars, index = text[pos], [], pos + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and text[index + 1 : index + 2] in (quote, "\\"):
            chars.append(text[index + 1])
            index += 2
        elif char == quote:
            return "".join(chars), index + 1
        else:
            chars.append(char)
            index += 1
    raise CliError(f"option {option!r}: the quote is never closed")


def typed_options(command: Command | None, raw: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Options as Discord sends them, typed by the catalog; unknown ones stay strings so that
    interaction_verify, not this tool, is what refuses them."""
    from facteur.decisions.catalog import OPTION_TYPES

    typed = []
    for name, text in raw:
        option = command.option(name) if command else None
        kind = option.type if option else OPTION_TYPES["string"]
        typed.append({"name": name, "type": kind, "value": _convert(name, kind, text)})
    return typed


def _convert(name: str, kind: int, text: str) -> Any:
    from facteur.decisions.catalog import OPTION_TYPES

    if kind == OPTION_TYPES["boolean"]:
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise CliError(f"option {name!r} takes true or false, not {text!r}")
    if kind == OPTION_TYPES["integer"]:
        if not re.fullmatch(r"[-+]?[0-9]+", text):
            raise CliError(f"option {name!r} takes an integer, not {text!r}")
        return int(text)
    if kind == OPTION_TYPES["number"]:
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise CliError(f"option {name!r} takes a number, not {text!r}")
        return int(text) if re.fullmatch(r"[-+]?[0-9]+", text) else number
    return text  # strings, and the snowflakes of users, channels, roles and attachments


def fresh_snowflake() -> str:
    # Shaped like Discord's (milliseconds since its epoch, then 22 bits), and new on every
    # send, so command_route's duplicate suppression never swallows a second try.
    return str(((time.time_ns() // 1_000_000 - DISCORD_EPOCH_MS) << 22) | secrets.randbits(22))


def application_command(
    name: str,
    options: list[dict[str, Any]],
    *,
    application_id: str,
    guild_id: str,
    user_id: str,
    roles: list[str],
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction as Discord sends it from a guild channel."""
    data: dict[str, Any] = {"id": LOCAL_COMMAND_ID, "name": name, "type": 1}
    if options:  # Discord leaves the key out when no option was given
        data["options"] = options
    return {
        "type": 2,
        "id": fresh_snowflake(),
        "application_id": application_id,
        "token": "local-" + secrets.token_urlsafe(32),
        "version": 1,
        "guild_id": guild_id,
        "channel_id": LOCAL_CHANNEL,
        "channel": {"id": LOCAL_CHANNEL, "type": 0, "guild_id": guild_id},
        "member": {
            "user": {"id": user_id, "username": "local", "discriminator": "0", "global_name": None},
            "roles": roles,
            "permissions": "0",
        },
        "app_permissions": "0",
        "locale": "en-US",
        "guild_locale": "en-US",
        "data": data,
    }


def _signing_key(seed: bytes) -> SigningKey:
    from nacl.signing import SigningKey  # only `send` needs it

    return SigningKey(seed)


def _send(args: argparse.Namespace) -> int:
    from facteur.decisions.interactions import SIGNATURE_HEADER, TIMESTAMP_HEADER

    settings = load_settings()
    line = " ".join(args.line).strip()
    if line == "ping":
        interaction: dict[str, Any] = {"type": 1}
    else:
        name, raw = parse_command_line(line)
        catalog = load_catalog(settings.commands.catalog_file)
        interaction = application_command(
            name,
            # An unknown command goes out anyway, so interaction_verify's refusal shows.
            typed_options(catalog.get(name), raw),
            application_id=settings.discord.application_id or LOCAL_APP,
            guild_id=settings.discord.guild_id or LOCAL_GUILD,
            user_id=args.user,
            roles=args.as_role or [LOCAL_MEMBER_ROLE],
        )
    key = _signing_key(args.key_seed_hex)
    public = key.verify_key.encode().hex()
    if settings.discord.public_key and settings.discord.public_key != public:
        _say(
            f"{PROG} send: warning: signing with public key {public}, but discord.public_key is "
            f"{settings.discord.public_key}: an interaction_verify with these settings answers 401"
        )
    body = json.dumps(interaction).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: key.sign(stamp.encode() + body).signature.hex(),
        TIMESTAMP_HEADER: stamp,
    }
    return _report(*_post(args.url, body, headers))


# -- callback -------------------------------------------------------------------------------------


def _callback(args: argparse.Namespace) -> int:
    settings = load_settings(("callback.token",))
    token = settings.callback.token.get_secret_value() if settings.callback.token else ""
    # The body as kubernetes/argo's exit handler renders it: every value a JSON string.
    body: dict[str, Any] = {
        "name": args.name,
        "namespace": args.namespace or settings.argo.namespace or "agents",
        "uid": str(uuid.uuid4()),
        "status": args.status,
    }
    if args.duration is not None:
        body["duration"] = args.duration
    if args.failure:
        phase = "Error" if args.status == "Error" else "Failed"
        failures = [{"displayName": n, "message": m, "phase": phase} for n, m in args.failure]
        body["failures"] = json.dumps(failures)  # {{workflow.failures}} is a JSON string
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
    }
    return _report(*_post(args.url, json.dumps(body).encode(), headers))


# -- plumbing -------------------------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    # The parser lets only http(s) URLs through; the target is the user's own.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:  # an answer all the same: show it
        return err.code, err.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise CliError(f"cannot reach {url}: {reason}", EXIT_FAILED) from None


def _report(status: int, text: str) -> int:
    try:
        shown = json.dumps(json.loads(text))
    except ValueError:
        shown = text.strip()
    print(f"{status} {shown}".rstrip())
    return 0 if 200 <= status < 300 else EXIT_FAILED


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _snowflake(text: str) -> str:
    if not ids.is_snowflake(text, min_digits=ids.CONFIGURED_SNOWFLAKE_DIGITS):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Discord ID (17 to 20 digits)")
    return text


def _http_url(text: str) -> str:
    if not re.match(r"https?://[^/]", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


def _seed(text: str) -> bytes:
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise argparse.ArgumentTypeError("must be 64 hex characters (a 32-byte Ed25519 seed)")
    return seed


def _seconds(text: str) -> str:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return text  # sent as typed, a string, as Argo renders {{workflow.duration}}


def _failure(text: str) -> tuple[str, str]:
    node, sep, message = text.partition("=")
    if not sep or not node:
        raise argparse.ArgumentTypeError(f"{text!r} is not NODE=MESSAGE")
    return node, message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block: the mistake is what matters.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _function_names() -> list[str]:
    from facteur import bootstrap

    return list(bootstrap.FUNCTIONS)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Check facteur's configuration, register its slash commands with Discord, "
        "and play Discord and Argo against functions running locally.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str) -> Any:
        found = sub.add_parser(name, help=text, description=text)
        found.set_defaults(run=run)
        return found

    check = command("check-config", _check_config, "validate the settings and the catalog")
    check.add_argument(
        "--function",
        choices=sorted(_function_names()),
        help="also check what this function requires",
    )
    check.add_argument("--format", choices=("yaml", "json"), default="yaml")

    register = command(
        "register-commands", _register_commands, "register the catalog's commands with Discord"
    )
    scope = register.add_mutually_exclusive_group()
    scope.add_argument("--guild", type=_snowflake, help="default: discord.guild_id")
    scope.add_argument("--global", dest="global_scope", action="store_true", help="for every guild")
    register.add_argument("--dry-run", action="store_true", help="print the request, send nothing")

    send = command(
        "send", _send, "send a signed interaction to interaction_verify, as Discord would"
    )
    send.add_argument("line", nargs="+", help='"/plan objective:ship it", or ping')
    send.add_argument(
        "--as-role",
        "--role",
        action="append",
        type=_snowflake,
        metavar="ID",
        help=f"the caller's role (repeatable; default {LOCAL_MEMBER_ROLE})",
    )
    send.add_argument("--user", type=_snowflake, default=LOCAL_USER, metavar="ID")
    send.add_argument("--url", type=_http_url, default="http://127.0.0.1:8080/")
    send.add_argument(
        "--key-seed-hex",
        type=_seed,
        # scripts/dev prints a generated seed when the config names no public key.
        default=_seed(os.environ["FACTEUR_DEV_KEY_SEED"])
        if os.environ.get("FACTEUR_DEV_KEY_SEED")
        else DEV_KEY_SEED,
        metavar="HEX",
        help="default: $FACTEUR_DEV_KEY_SEED, else the published development key",
    )

    callback = command(
        "callback",
        _callback,
        "report a run's outcome to status_callback, as Argo's exit handler would",
    )
    callback.add_argument("name", help="the workflow's name")
    callback.add_argument("--status", required=True, choices=("Succeeded", "Failed", "Error"))
    callback.add_argument("--namespace", help="default: argo.namespace, else agents")
    callback.add_argument("--duration", type=_seconds, metavar="S")
    callback.add_argument("--failure", action="append", type=_failure, metavar="NODE=MESSAGE")
    callback.add_argument("--url", type=_http_url, default="http://127.0.0.1:8083/")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already told in one line
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except ConfigError as err:
        # The same line a function prints at start-up (config.boot) when --function names one.
        who = getattr(args, "function", None) or args.command
        _say(f"{PROG} {who}: configuration error: {err}")
        return EXIT_USAGE
    except CliError as err:
        _say(f"{PROG} {args.command}: {err}")
        return err.code
    except KeyboardInterrupt:
        return 130
