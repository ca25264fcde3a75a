"""The `facteur` command line: check a configuration, register the slash commands, and play
Discord and Argo against functions running locally.

    facteur check-config [--function NAME] [--format yaml|json]
    facteur check-deploy [DIRECTORY] [--rendered FILE|-] [--tick-token-file FILE] [--dev]
    facteur register-commands [--guild ID | --global] [--dry-run]
    facteur send "/plan objective:ship it" [--autocomplete OPTION | --form] [--as-role ID]
    facteur send ping
    facteur click cancel|stop|retry|approve|reject|logs REF [STEP] [--as-role ID] [--user ID]
    facteur callback NAME|--last --status Succeeded [--namespace NS] [--failure NODE=MESSAGE ...]
    facteur --version

Settings are read exactly as the functions read them: FACTEUR_CONFIG_FILE, then FACTEUR_*
variables (the play commands read config/local.yaml when FACTEUR_CONFIG_FILE is unset, and aim
at the ports FACTEUR_DEV_PORT_BASE names, as ./scripts/dev does). A mistake ends with one line
on stderr, never a traceback: exit 2 for usage and configuration errors, 1 when the other side
refused or could not be reached.

This module is only the entry point (the console script and `python -m facteur` name it):
check.py, register.py and play.py hold the commands, parser.py their arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

from facteur.cli import parser
from facteur.cli.plumbing import EXIT_USAGE, PROG, CliError, say
from facteur.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (the console script exits with it)."""
    try:
        args = parser.build().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already told in one line
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    try:
        return args.run(args)
    except ConfigError as err:
        # The same line a function prints at start-up (config.boot) when --function names one.
        who = getattr(args, "function", None) or args.command
        say(f"{PROG} {who}: configuration error: {err}")
        return EXIT_USAGE
    except CliError as err:
        say(f"{PROG} {args.command}: {err}")
        return err.code
    except KeyboardInterrupt:
        return 130
