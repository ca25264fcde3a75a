"""Interactions as Discord sends them from a guild channel, with the local loop's IDs, and
signed as Discord signs them (by default with the published development key)."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from facteur.decisions import interactions as ix
from facteur.decisions.forms import ACTION_ROW, TEXT_INPUT

if TYPE_CHECKING:
    from nacl.signing import SigningKey

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
BUTTON = 2  # the component type


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
    return _interaction(
        ix.APPLICATION_COMMAND,
        data,
        application_id=application_id,
        guild_id=guild_id,
        user_id=user_id,
        roles=roles,
    )


def button_click(
    custom_id: str,
    *,
    application_id: str,
    guild_id: str,
    user_id: str,
    roles: list[str],
    picked: str | None = None,
) -> dict[str, Any]:
    """A MESSAGE_COMPONENT interaction: a click on the button with this custom_id, or, with
    `picked`, the choice of that value in the string select menu of this custom_id."""
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": BUTTON}
    if picked is not None:
        data = {"custom_id": custom_id, "component_type": ix.STRING_SELECT, "values": [picked]}
    return _interaction(
        ix.MESSAGE_COMPONENT,
        data,
        application_id=application_id,
        guild_id=guild_id,
        user_id=user_id,
        roles=roles,
    )


def autocomplete(
    name: str,
    options: list[dict[str, Any]],
    *,
    application_id: str,
    guild_id: str,
    user_id: str,
    roles: list[str],
) -> dict[str, Any]:
    """An AUTOCOMPLETE interaction: the command being typed, one of its options `focused`."""
    data: dict[str, Any] = {"id": LOCAL_COMMAND_ID, "name": name, "type": 1, "options": options}
    return _interaction(
        ix.AUTOCOMPLETE,
        data,
        application_id=application_id,
        guild_id=guild_id,
        user_id=user_id,
        roles=roles,
    )


def modal_submit(
    custom_id: str,
    fields: list[tuple[str, str]],
    *,
    application_id: str,
    guild_id: str,
    user_id: str,
    roles: list[str],
) -> dict[str, Any]:
    """A MODAL_SUBMIT interaction: a form's text inputs as Discord returns them, each in its
    action row (as the modal held it), by custom_id, with the value typed ("" when left empty)."""
    rows = [
        {"type": ACTION_ROW, "components": [{"type": TEXT_INPUT, "custom_id": c, "value": v}]}
        for c, v in fields
    ]
    return _interaction(
        ix.MODAL_SUBMIT,
        {"custom_id": custom_id, "components": rows},
        application_id=application_id,
        guild_id=guild_id,
        user_id=user_id,
        roles=roles,
    )


def _interaction(
    kind: int,
    data: dict[str, Any],
    *,
    application_id: str,
    guild_id: str,
    user_id: str,
    roles: list[str],
) -> dict[str, Any]:
    return {
        "type": kind,
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


def signing_key(seed: bytes) -> SigningKey:
    from nacl.signing import SigningKey  # only send and click need it

    return SigningKey(seed)


def signed_headers(key: SigningKey, body: bytes) -> dict[str, str]:
    """The headers Discord sends with an interaction: a signature over timestamp + body."""
    stamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        ix.SIGNATURE_HEADER: key.sign(stamp.encode() + body).signature.hex(),
        ix.TIMESTAMP_HEADER: stamp,
    }
