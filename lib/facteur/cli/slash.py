"""A slash command as typed in Discord, `/plan objective:ship it`, read into its name and its
options, typed as the catalog says Discord would type them."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from facteur.cli.plumbing import CliError

if TYPE_CHECKING:
    from facteur.decisions.catalog import Command

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


def typing_options(
    command: Command | None, raw: list[tuple[str, str]], focus: str
) -> list[dict[str, Any]]:
    """Options as Discord sends them while `focus` is being typed: the others typed by the
    catalog, the focused one as the text typed so far (a string whatever its type, as Discord
    sends it), and empty when the line does not name it yet."""
    from facteur.decisions.catalog import OPTION_TYPES

    if not any(name == focus for name, _ in raw):
        raw = [*raw, (focus, "")]
    options = []
    for name, text in raw:
        if name == focus:
            option = command.option(name) if command else None
            kind = option.type if option else OPTION_TYPES["string"]
            options.append({"name": name, "type": kind, "value": text, "focused": True})
        else:
            options.extend(typed_options(command, [(name, text)]))
    return options


def form_fields(command: Command | None, raw: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A form's text inputs as Discord returns them on submit: every field of the command's
    form, "" where nothing was typed, then any the line names that the form lacks (sent as
    they are, so that interaction_verify, not this tool, is what refuses them)."""
    from facteur.decisions.forms import fields

    given = dict(raw)
    if len(given) != len(raw):
        raise CliError("a form field is given twice")
    declared = [option.name for option in fields(command)] if command else []
    return [(name, given.get(name, "")) for name in declared] + [
        (name, text) for name, text in raw if name not in declared
    ]
