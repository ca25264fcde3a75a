"""What every `facteur` command shares: the one-line error, the exit codes, and one POST."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

PROG = "facteur"
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A mistake or a refusal, told in one line; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
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


def report(status: int, text: str) -> int:
    """Print the answer as one line, `STATUS BODY`; exit 0 only for a 2xx."""
    try:
        shown = json.dumps(json.loads(text))
    except ValueError:
        shown = text.strip()
    print(f"{status} {shown}".rstrip())
    return 0 if 200 <= status < 300 else EXIT_FAILED


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
