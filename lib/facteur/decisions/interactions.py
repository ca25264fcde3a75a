"""Discord interaction payloads: reading what Discord sends and building what we answer. Pure."""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from facteur.decisions import ids
from facteur.errors import InvalidInteraction

# Discord signs every interaction with these two headers.
SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"

# Interaction types.
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5
KNOWN_TYPES = frozenset({PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT})

# Response (callback) types.
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
AUTOCOMPLETE_RESULT = 8
MODAL = 9

EPHEMERAL = 64
CONTENT_LIMIT = 2000
# User text in our messages must never ping anyone.
NO_MENTIONS: dict[str, list[str]] = {"parse": []}

T = TypeVar("T")

# Discord's limit on one attachment of a bot without boosts, and on how many go in a message.
ATTACHMENT_LIMIT = 8 * 1024 * 1024
MAX_ATTACHMENTS = 10


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message (multipart files[n]); `filename` is facteur's, never a user's."""

    filename: str
    content: bytes
    content_type: str = "text/plain; charset=utf-8"
    description: str | None = None


_SUBCOMMAND_TYPES = (1, 2)
# Application command types: only slash commands run; user and message context-menu commands
# (2 and 3) of the same name are other commands that facteur never registered.
CHAT_INPUT = 1


@dataclass(frozen=True)
class Invocation:
    """What a slash command asks for, read from an APPLICATION_COMMAND interaction."""

    interaction_id: str
    application_id: str
    token: str
    command: str
    subcommand: str | None
    options: list[Any]
    guild_id: str | None
    channel_id: str | None
    user_id: str
    # None in direct messages, where Discord sends `user` and no `member`.
    member_roles: list[str] | None
    command_type: int = CHAT_INPUT
    # For a command used in a thread, the thread's parent channel (channel rules name channels).
    parent_channel_id: str | None = None


# Discord's thread channel types: announcement, public and private threads.
THREAD_TYPES = frozenset({10, 11, 12})


def parent_channel(body: dict[str, Any]) -> str | None:
    """The parent channel of the thread an interaction comes from; None outside a thread."""
    channel = body.get("channel")
    if not isinstance(channel, dict) or channel.get("type") not in THREAD_TYPES:
        return None
    return _optional_snowflake(channel.get("parent_id"), "channel parent_id")


@dataclass(frozen=True)
class Click:
    """A click on one of facteur's buttons, read from a MESSAGE_COMPONENT interaction."""

    interaction_id: str
    application_id: str
    token: str
    action: str
    ref: str
    guild_id: str | None
    channel_id: str | None
    user_id: str
    member_roles: list[str] | None
    # The step a button names (ids.STEP), or the one picked in a select menu.
    step: str | None = None


# Component types: a button, and a select menu of strings.
BUTTON, STRING_SELECT = 2, 3


def read_click(body: dict[str, Any]) -> Click | None:
    """The click, or None when the component is not one of facteur's buttons."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidInteraction("data is missing")
    custom = data.get("custom_id")
    match = ids.CUSTOM_ID.fullmatch(custom) if isinstance(custom, str) else None
    if match is None:
        return None
    step = match[3]
    if data.get("component_type") == STRING_SELECT:
        # facteur's select menus pick one step: their custom_id names none, the value does.
        values = data.get("values")
        if step is not None or not isinstance(values, list) or len(values) != 1:
            raise InvalidInteraction("a select menu's values are malformed")
        if not isinstance(values[0], str) or not ids.STEP.fullmatch(values[0]):
            raise InvalidInteraction("a select menu's value is not a step")
        step = values[0]
    user_id, roles = _caller(body)
    return Click(
        interaction_id=_snowflake(body.get("id"), "id"),
        application_id=_snowflake(body.get("application_id"), "application_id"),
        token=_text(body.get("token"), "token", 1024),
        action=match[1],
        ref=match[2],
        guild_id=_optional_snowflake(body.get("guild_id"), "guild_id"),
        channel_id=_optional_snowflake(body.get("channel_id"), "channel_id"),
        user_id=user_id,
        member_roles=roles,
        step=step,
    )


@functools.cache
def _hints(record: type) -> dict[str, Any]:
    return typing.get_type_hints(record)


def _fits(value: Any, hint: Any) -> bool:
    """isinstance for the few field types these records use: str, int, list[...], X | None."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(element, item) for element in value)
    return isinstance(value, hint)


def _from_event(record: Callable[..., T], data: dict[str, Any], what: str) -> T:
    """A record that interaction_verify put into a (signed) event, of exactly the types it
    sends: a later hop reads nothing verify could not have sent. A field with a default may be
    absent: events sealed before it existed lack it."""
    hints = _hints(record)
    names = [f.name for f in fields(record)]  # type: ignore[arg-type]
    found = {name: data[name] for name in names if name in data}
    if not all(_fits(value, hints[name]) for name, value in found.items()):
        raise InvalidInteraction(f"event data does not describe {what}")
    try:
        return record(**found)
    except TypeError:
        raise InvalidInteraction(f"event data does not describe {what}") from None


def click_from_event(data: dict[str, Any]) -> Click:
    return _from_event(Click, data, "a click")


def invocation_from_event(data: dict[str, Any]) -> Invocation:
    """The Invocation that interaction_verify put into a (signed) event."""
    return _from_event(Invocation, data, "a command")


def _text(value: Any, what: str, limit: int = 256) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidInteraction(f"{what} is missing or malformed")
    return value


def _snowflake(value: Any, what: str) -> str:
    if not ids.is_snowflake(value):
        raise InvalidInteraction(f"{what} is missing or malformed")
    return value


def _optional_snowflake(value: Any, what: str) -> str | None:
    return None if value is None else _snowflake(value, what)


def read_invocation(body: dict[str, Any]) -> Invocation:
    """Read an APPLICATION_COMMAND interaction, rejecting shapes Discord never sends."""
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidInteraction("data is missing")
    user_id, roles = _caller(body)
    subcommand, options = _split_subcommand(data.get("options"))
    command_type = data.get("type")
    if not isinstance(command_type, int) or isinstance(command_type, bool):
        raise InvalidInteraction("command type is missing or malformed")
    return Invocation(
        interaction_id=_snowflake(body.get("id"), "id"),
        application_id=_snowflake(body.get("application_id"), "application_id"),
        token=_text(body.get("token"), "token", 1024),
        command=_text(data.get("name"), "command name", 32),
        subcommand=subcommand,
        options=options,
        guild_id=_optional_snowflake(body.get("guild_id"), "guild_id"),
        channel_id=_optional_snowflake(body.get("channel_id"), "channel_id"),
        user_id=user_id,
        member_roles=roles,
        command_type=command_type,
        parent_channel_id=parent_channel(body),
    )


def _caller(body: dict[str, Any]) -> tuple[str, list[str] | None]:
    """Who acts, and their roles (None in direct messages, where there is no `member`)."""
    member = body.get("member")
    if member is not None:
        if not isinstance(member, dict) or not isinstance(member.get("roles", []), list):
            raise InvalidInteraction("member is malformed")
        roles = member.get("roles", [])
        if not all(ids.is_snowflake(role) for role in roles):
            raise InvalidInteraction("member roles are malformed")
        user = member.get("user")
    else:
        roles = None
        user = body.get("user")
    if not isinstance(user, dict):
        raise InvalidInteraction("user is missing")
    return _snowflake(user.get("id"), "user id"), roles


def _split_subcommand(options: Any) -> tuple[str | None, list[Any]]:
    if options is None:
        return None, []
    if not isinstance(options, list):
        raise InvalidInteraction("options are malformed")
    if len(options) == 1 and isinstance(options[0], dict):
        first = options[0]
        if first.get("type") in _SUBCOMMAND_TYPES:
            name = _text(first.get("name"), "subcommand name", 32)
            nested = first.get("options") or []
            if first.get("type") == 2:  # a group holds one subcommand
                inner_name, nested = _split_subcommand(nested)
                name = f"{name}:{inner_name}" if inner_name else name
            if not isinstance(nested, list):
                raise InvalidInteraction("options are malformed")
            return name, nested
    return None, options


def safe_name(name: str) -> str:
    """A command or option name fit to echo inside `code`: no markdown, no mentions."""
    cleaned = "".join(ch for ch in name[:32] if ch.isalnum() or ch in "-_:")
    return cleaned or "?"


def clip(text: str, limit: int = CONTENT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pong() -> dict[str, Any]:
    return {"type": PONG}


def message(content: str, *, ephemeral: bool = True) -> dict[str, Any]:
    """An immediate reply (type 4) that pings nobody."""
    data: dict[str, Any] = {"content": clip(content), "allowed_mentions": NO_MENTIONS}
    if ephemeral:
        data["flags"] = EPHEMERAL
    return {"type": CHANNEL_MESSAGE, "data": data}


def deferred(*, ephemeral: bool) -> dict[str, Any]:
    """ "Thinking…": the reply is edited later through the interaction token."""
    return {"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": EPHEMERAL if ephemeral else 0}}


def deferred_update() -> dict[str, Any]:
    """A click acknowledged; the message is edited later through the interaction token."""
    return {"type": DEFERRED_UPDATE_MESSAGE}


def no_choices() -> dict[str, Any]:
    return {"type": AUTOCOMPLETE_RESULT, "data": {"choices": []}}
