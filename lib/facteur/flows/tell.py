"""How a flow tells the user something about a command: edit the deferred reply, or post in
the channel once the interaction token is past its lifetime."""

from __future__ import annotations

import logging
from typing import Any

from facteur.decisions.journey import Delivered, Journey, ReplyTo
from facteur.errors import DiscordError
from facteur.flows.ports import Discord

log = logging.getLogger("facteur.journey")


def tell(
    discord: Discord, journey: Journey, ttl_seconds: int, message: dict[str, Any]
) -> Delivered | None:
    """Tell the user; None (logged, never raised) when Discord could not be reached."""
    try:
        return discord.reply(ReplyTo.of_journey(journey, ttl_seconds), message)
    except DiscordError as err:
        log.error("could not tell user %s: %s", journey.call.user_id, err.reason)
        return None
