"""The `facteur` command's arguments: every subcommand, its flags and their value types.

A usage mistake is told in one line (exit 2), not in argparse's usage block.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from typing import Any, NoReturn

from facteur.cli import check, deploy_check, interactions, play, register
from facteur.cli.plumbing import EXIT_USAGE, PROG
from facteur.decisions import ids


def _snowflake(text: str) -> str:
    if not ids.is_snowflake(text, min_digits=ids.CONFIGURED_SNOWFLAKE_DIGITS):
        raise argparse.ArgumentTypeError(f"{text!r} is not a Discord ID (17 to 20 digits)")
    return text


def _http_url(text: str) -> str:
    if text.startswith(_BAD_BASE):
        raise argparse.ArgumentTypeError(
            f"{PORT_BASE_ENV} is {text.removeprefix(_BAD_BASE)!r}, not a port number"
        )
    if not re.match(r"https?://[^/]", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


# ./scripts/dev serves verify, route, submit and callback on this port and the next three; the
# play commands aim at the same ports, so `export FACTEUR_DEV_PORT_BASE=...` is all they need.
PORT_BASE_ENV = "FACTEUR_DEV_PORT_BASE"
DEFAULT_PORT_BASE = 8080
VERIFY, ROUTE, CALLBACK = 0, 1, 3
# A default that _http_url refuses with a line naming the variable: argparse converts a string
# default only when the flag is not given, so --url still works whatever the variable holds.
_BAD_BASE = "\0bad-port-base:"


def _local_url(offset: int, path: str = "/") -> str:
    raw = os.environ.get(PORT_BASE_ENV) or str(DEFAULT_PORT_BASE)
    if not raw.isdigit() or not 0 < int(raw) <= 65535 - 9:
        return _BAD_BASE + raw
    return f"http://127.0.0.1:{int(raw) + offset}{path}"


def version() -> str:
    """The installed package's version, else the source tree's pyproject.toml (a checkout run
    without installing; the package's __init__ names no version, and cli may not import it)."""
    import tomllib
    from importlib import metadata

    from facteur.config import REPO_ROOT

    try:
        return metadata.version("facteur")
    except metadata.PackageNotFoundError:
        pass
    try:
        project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
        return str(project["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


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


def _as_discord_would(found: argparse.ArgumentParser) -> None:
    """The flags of send and click: who acts, where to, and the key that signs."""
    found.add_argument(
        "--as-role",
        "--role",
        action="append",
        type=_snowflake,
        metavar="ID",
        help=f"the caller's role (repeatable; default {interactions.LOCAL_MEMBER_ROLE})",
    )
    found.add_argument("--user", type=_snowflake, default=interactions.LOCAL_USER, metavar="ID")
    found.add_argument("--url", type=_http_url, default=_local_url(VERIFY))
    found.add_argument(
        "--key-seed-hex",
        type=_seed,
        # scripts/dev prints a generated seed when the config names no public key. A string
        # default goes through _seed when the arguments are parsed, so a malformed variable is
        # one usage line, not a traceback.
        default=os.environ.get("FACTEUR_DEV_KEY_SEED") or interactions.DEV_KEY_SEED,
        metavar="HEX",
        help="default: $FACTEUR_DEV_KEY_SEED, else the published development key",
    )


def build() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Check facteur's configuration, register its slash commands with Discord, "
        "and play Discord and Argo against functions running locally.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str) -> Any:
        found = sub.add_parser(name, help=text, description=text)
        found.set_defaults(run=run)
        return found

    checking = command("check-config", check.check_config, "validate the settings and the catalog")
    checking.add_argument(
        "--function",
        choices=sorted(_function_names()),
        help="also check what this function requires",
    )
    checking.add_argument("--format", choices=("yaml", "json"), default="yaml")

    deploying = command(
        "check-deploy",
        deploy_check.check_deploy,
        "check what kubectl kustomize renders for a deployment: placeholders, Secrets, the "
        "PingSource's token, visibility and scale. Renders DIRECTORY with `kubectl kustomize` "
        "(else `kustomize build`); without either, pass what was rendered with --rendered. "
        "Reads no cluster. One line a problem (exit 1), else one ok line",
    )
    deploying.add_argument(
        "directory",
        nargs="?",
        default="kubernetes/overlays/production",
        help="a kustomization (default: kubernetes/overlays/production)",
    )
    deploying.add_argument(
        "--rendered",
        metavar="FILE",
        help="check this rendered YAML (- for stdin, e.g. `kubectl kustomize DIR | facteur "
        "check-deploy --rendered -`) instead of rendering DIRECTORY",
    )
    deploying.add_argument(
        "--tick-token-file",
        metavar="FILE",
        help="the tick token saved at deployment: the PingSource must carry the same",
    )
    deploying.add_argument(
        "--dev",
        action="store_true",
        help="a development cluster: interaction-verify may scale to zero",
    )

    registering = command(
        "register-commands",
        register.register_commands,
        "register the catalog's commands with Discord",
    )
    scope = registering.add_mutually_exclusive_group()
    scope.add_argument("--guild", type=_snowflake, help="default: discord.guild_id")
    scope.add_argument("--global", dest="global_scope", action="store_true", help="for every guild")
    registering.add_argument(
        "--dry-run", action="store_true", help="print the request, send nothing"
    )

    send = command(
        "send", play.send, "send a signed interaction to interaction_verify, as Discord would"
    )
    send.add_argument("line", nargs="+", help='"/plan objective:ship it", or ping')
    typing = send.add_mutually_exclusive_group()
    typing.add_argument(
        "--autocomplete",
        metavar="OPTION",
        help="ask for suggestions while OPTION is typed (its value in the line is what was "
        "typed so far), and print them, a line each",
    )
    typing.add_argument(
        "--form",
        action="store_true",
        help="submit the command's form, the line's options as its fields (a form command sent "
        "without its required options prints its form)",
    )
    _as_discord_would(send)

    click = command(
        "click",
        play.click,
        "send a signed button click to interaction_verify, as Discord would",
    )
    actions = "|".join(ids.BUTTON_ACTIONS)
    click.add_argument(
        "action",
        metavar="ACTION",
        help=f"{actions} (confirm is stop, Cancel's confirmation), or the button's whole "
        f"custom_id {ids.custom_id('ACTION', 'REF')} (the form for a REF that starts with -)",
    )
    click.add_argument(
        "ref", metavar="REF", nargs="?", help="the run's ref, as the button's line shows it"
    )
    click.add_argument(
        "step",
        metavar="STEP",
        nargs="?",
        help="approve and reject: the step the button names; logs: the step to pick in the "
        "select menu (its line shows it)",
    )
    _as_discord_would(click)

    dead = command(
        "dead-letter",
        play.dead_letter,
        "send a command to command_route's dead-letter path, as Knative does once its "
        "delivery budget is spent",
    )
    dead.add_argument("line", nargs="+", help='"/plan objective:ship it"')
    dead.add_argument(
        "--stage",
        choices=("route", "submit"),
        default="route",
        help="the hop that gave up: route (command.received, the default) or submit "
        "(workflow.requested, which first asks Argo whether the run exists)",
    )
    _as_discord_would(dead)
    dead.set_defaults(url=_local_url(ROUTE, "/dead-letter"))

    ticking = command(
        "tick",
        play.tick,
        "send one reconciliation tick to status_callback, as the PingSource would",
    )
    ticking.add_argument("--url", type=_http_url, default=_local_url(CALLBACK))

    nudging = command(
        "nudge",
        play.nudge,
        "tell status_callback to look at runs, as the ApiServerSource does when one changes",
    )
    nudging.add_argument("names", nargs="*", metavar="NAME", help="workflow names")
    nudging.add_argument(
        "--pending", action="store_true", help="also every run the session store holds pending"
    )
    nudging.add_argument("--limit", type=int, default=50, help="at most this many pending runs")
    nudging.add_argument("--deleted", action="store_true", help="a delete, not an update")
    nudging.add_argument("--url", type=_http_url, default=_local_url(CALLBACK))

    reporting = command(
        "callback",
        play.callback,
        "report a run's outcome to status_callback, as Argo's exit handler would",
    )
    reporting.add_argument("name", nargs="?", help="the workflow's name")
    reporting.add_argument(
        "--last",
        action="store_true",
        help=f"the newest run {PROG} send started (instead of NAME)",
    )
    reporting.add_argument("--status", required=True, choices=("Succeeded", "Failed", "Error"))
    reporting.add_argument("--namespace", help="default: argo.namespace, else agents")
    reporting.add_argument("--duration", type=_seconds, metavar="S")
    reporting.add_argument("--failure", action="append", type=_failure, metavar="NODE=MESSAGE")
    reporting.add_argument("--url", type=_http_url, default=_local_url(CALLBACK))
    return parser
