"""How a flow tells the user something about a command: edit the deferred reply, or post in
the channel once the interaction token is past its lifetime."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from facteur.decisions.journey import Delivered, Journey, ReplyTo
from facteur.errors import DiscordError
from facteur.flows.ports import Discord

log = logging.getLogger("facteur.journey")


def tell(
    discord: Discord, journey: Journey, ttl_seconds: int, message: dict[str, Any]
) -> Delivered | None:
    """Tell the user; None (logged, never raised) when Discord could not be reached.

    A channel post is keyed by the interaction and what it says, so copies of the same reply
    (redeliveries that got past Redis) make one message; a different reply is its own.
    """
    dedupe_key = f"reply:{journey.call.interaction_id}:{digest(message)}"
    try:
        return discord.reply(ReplyTo.of_journey(journey, ttl_seconds, dedupe_key), message)
    except DiscordError as err:
        log.error("could not tell user %s: %s", journey.call.user_id, err.reason)
        return None


def digest(message: dict[str, Any]) -> str:
    """What is said, as 16 hex characters, whatever order its keys were built in."""
    text = json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
