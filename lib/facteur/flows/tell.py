"""How a flow tells the user something about a command: edit the deferred reply, or post in
the channel once the interaction token is past its lifetime; or, for a refusal, say it to the
user alone."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from facteur.decisions import render
from facteur.decisions.journey import Delivered, Journey, ReplyTo
from facteur.errors import DiscordError, TokenRejected
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


def tell_privately(
    discord: Discord,
    journey: Journey,
    ttl_seconds: int,
    content: str,
    *,
    now: float | None = None,
) -> Delivered | None:
    """Say `content` to the user alone: delete the deferred "thinking…" (public unless the
    command is ephemeral) and send it as an ephemeral follow-up. None (logged, never raised)
    when Discord could not be reached: nothing was said in the open, and a redelivery tries
    the private way again (the deferred reply already gone is fine).

    One path whether the deferred reply was public or not: deleting a private one is allowed,
    and costs one request, on refusals only. Once the token is past its lifetime there is no
    private way left, nor when Discord refuses this one for good (the token gone meanwhile):
    then it is said as tell() says anything, in the open rather than not at all.
    """
    call = journey.call
    now = time.time() if now is None else now
    if ReplyTo.of_journey(journey, ttl_seconds).token_lives(now):
        try:
            discord.delete_original(call.token)
            sent = discord.follow_up(call.token, render.whisper(content))
        except DiscordError as err:
            if _transient(err):
                log.error("could not tell user %s privately: %s", call.user_id, err.reason)
                return None
            log.warning("Discord refused a private answer (%s); answering openly", err.reason)
        else:
            message_id = sent.get("id")
            return Delivered("interaction", message_id if isinstance(message_id, str) else None)
    return tell(discord, journey, ttl_seconds, render.text(content))


def _transient(err: DiscordError) -> bool:
    """Discord unreachable or failing (after the client's own retries), not refusing."""
    if isinstance(err, TokenRejected):
        return False
    return err.status is None or err.status == 429 or err.status >= 500


def digest(message: dict[str, Any]) -> str:
    """What is said, as 16 hex characters, whatever order its keys were built in."""
    text = json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
