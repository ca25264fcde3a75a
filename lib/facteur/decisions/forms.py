"""Forms: the modal a `form: true` command opens, and reading what it submits. Pure.

The modal (callback type 9) holds one text input per string option. Its custom_id is
`facteur:form:<command>` (ids.FORM_ID) and each input's is its option's name, so a submit
(interaction type 5) names only a command and options the catalog declares: nothing in it can
widen what the command may do. The submit becomes the same Invocation a slash command would
have been, and goes through the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from facteur.decisions import ids
from facteur.decisions.catalog import (
    MAX_FORM_FIELDS,
    MAX_LABEL,
    MAX_TEXT_INPUT,
    OPTION_TYPES,
    Catalog,
    Command,
    Option,
)
from facteur.decisions.interactions import CHAT_INPUT, MODAL, Invocation, read_invocation
from facteur.errors import InvalidInteraction

# Component types in a modal: an action row, a text input, and a label (which may wrap one).
ACTION_ROW, TEXT_INPUT, LABEL = 1, 4, 18
# Text input styles: one line, or several.
SHORT, PARAGRAPH = 1, 2
# A short input for what fits on a line; longer limits get a paragraph.
SHORT_LIMIT = 100
MAX_TITLE = 45
MAX_CUSTOM_ID = 100
MAX_PLACEHOLDER = 100


def form_id(command: str) -> str:
    return f"{ids.BUTTON_PREFIX}:form:{command}"


def fields(command: Command) -> list[Option]:
    """The options a form asks for: its string options, in the catalog's order."""
    return [option for option in command.options if option.type == OPTION_TYPES["string"]]


def wants_form(command: Command, given: list[Any]) -> bool:
    """A `form: true` command invoked without one of its required options opens its form."""
    if not command.form:
        return False
    named = {item.get("name") for item in given if isinstance(item, dict)}
    return any(option.required and option.name not in named for option in command.options)


def _limit(option: Option) -> int:
    return min(option.max_length or MAX_TEXT_INPUT, MAX_TEXT_INPUT)


def _prefilled(given: list[Any]) -> dict[str, str]:
    """The string values already typed, by option name (the first of each)."""
    found: dict[str, str] = {}
    for item in given:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            name = item.get("name")
            if isinstance(name, str):
                found.setdefault(name, item["value"])
    return found


def text_input(option: Option, value: str | None = None) -> dict[str, Any]:
    limit = _limit(option)
    field: dict[str, Any] = {
        "type": TEXT_INPUT,
        "custom_id": option.name,
        "style": SHORT if limit <= SHORT_LIMIT else PARAGRAPH,
        "label": (option.label or option.name)[:MAX_LABEL],
        "required": option.required,
        "max_length": limit,
        "placeholder": option.description[:MAX_PLACEHOLDER],
    }
    # What the user typed already, unless it could not fit (it would be refused anyway).
    if value and len(value) <= limit:
        field["value"] = value
    return field


def modal(command: Command, given: list[Any] | None = None) -> dict[str, Any]:
    """The MODAL (type 9) asking for the command's string options, filled in with what was
    typed already."""
    typed = _prefilled(given or [])
    rows = [
        {"type": ACTION_ROW, "components": [text_input(option, typed.get(option.name))]}
        for option in fields(command)[:MAX_FORM_FIELDS]
    ]
    return {
        "type": MODAL,
        "data": {
            "custom_id": form_id(command.name),
            "title": f"/{command.name}"[:MAX_TITLE],
            "components": rows,
        },
    }


def _inputs(components: Any) -> list[dict[str, Any]]:
    """The text inputs of a submit, each in its action row (as facteur sends them), or in a
    label (Discord's newer layout); nothing else may be there."""
    if not isinstance(components, list) or not 1 <= len(components) <= MAX_FORM_FIELDS:
        raise InvalidInteraction("a form's components are malformed")
    found = []
    for row in components:
        if not isinstance(row, dict):
            raise InvalidInteraction("a form's row is malformed")
        if row.get("type") == ACTION_ROW:
            inner = row.get("components")
            if not isinstance(inner, list) or len(inner) != 1:
                raise InvalidInteraction("a form's row is malformed")
            item = inner[0]
        elif row.get("type") == LABEL:
            item = row.get("component")
        else:
            raise InvalidInteraction("a form holds a component other than a text input")
        if not isinstance(item, dict) or item.get("type") != TEXT_INPUT:
            raise InvalidInteraction("a form holds a component other than a text input")
        found.append(item)
    return found


def _options(command: Command, inputs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The inputs as the string options a slash command would carry, empty ones left out;
    None when one names no text field of the form or one is given twice."""
    declared = {option.name for option in fields(command)}
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in inputs:
        name, value = item.get("custom_id"), item.get("value")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CUSTOM_ID:
            raise InvalidInteraction("a form field's custom_id is malformed")
        if not isinstance(value, str) or len(value) > MAX_TEXT_INPUT:
            raise InvalidInteraction("a form field's value is malformed")
        if name not in declared or name in seen:
            return None
        seen.add(name)
        if value:  # an optional field left empty: as if the option were not given
            options.append({"name": name, "type": OPTION_TYPES["string"], "value": value})
    return options


def read_submission(body: Mapping[str, Any], catalog: Catalog) -> Invocation | None:
    """Read a MODAL_SUBMIT into the Invocation of the command whose form it is.

    None for a form that is not facteur's: a custom_id that names no `form: true` command of
    the catalog, or fields that are not that form's (a forged submit, or a catalog changed
    while the form was open). InvalidInteraction for one of facteur's forms in a shape Discord
    never sends."""
    data = body.get("data")
    if not isinstance(data, dict):
        return None
    custom = data.get("custom_id")
    # FORM_ID bounds the command's name, so no user text reaches the catalog lookup.
    match = ids.FORM_ID.fullmatch(custom) if isinstance(custom, str) else None
    command = catalog.get(match[1]) if match else None
    if command is None or not command.form:
        return None
    options = _options(command, _inputs(data.get("components")))
    if options is None:
        return None
    # The rest of the interaction (who, where, its ID and token) is read as a slash command's,
    # with the same strictness, as if the command had been sent with these options.
    as_command = {"name": command.name, "type": CHAT_INPUT, "options": options}
    return read_invocation({**body, "data": as_command})
