"""One command's journey after interaction_verify: the event data every hop carries, and how a
hop tells the user something (edit the deferred reply, or post in the channel once the
interaction token is past its lifetime)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from facteur.decisions.interactions import Invocation, invocation_from_event
from facteur.errors import InvalidInteraction

if TYPE_CHECKING:
    from facteur.adapters.discord import Delivered, DiscordClient

log = logging.getLogger("facteur.journey")


@dataclass(frozen=True)
class Journey:
    call: Invocation
    correlation_id: str
    received_at: float
    # Filled in by command_route for workflow_submit.
    parameters: dict[str, str] = field(default_factory=dict)
    workflow_template: str | None = None
    last_correlation_id: str | None = None

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Journey:
        correlation_id, received_at = data.get("correlation_id"), data.get("received_at")
        if not isinstance(correlation_id, str) or not isinstance(received_at, int | float):
            raise InvalidInteraction("event data lacks correlation_id or received_at")
        parameters = data.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidInteraction("event parameters are malformed")
        return cls(
            call=invocation_from_event(data),
            correlation_id=correlation_id,
            received_at=float(received_at),
            parameters={str(k): str(v) for k, v in parameters.items()},
            workflow_template=data.get("workflow_template"),
            last_correlation_id=data.get("last_correlation_id"),
        )

    def to_event(self) -> dict[str, Any]:
        return asdict(self.call) | {
            "correlation_id": self.correlation_id,
            "received_at": self.received_at,
            "parameters": self.parameters,
            "workflow_template": self.workflow_template,
            "last_correlation_id": self.last_correlation_id,
        }


def tell(
    discord: DiscordClient, journey: Journey, ttl_seconds: int, message: dict[str, Any]
) -> Delivered | None:
    """Tell the user; None (logged, never raised) when Discord could not be reached."""
    from facteur.errors import DiscordError

    try:
        return discord.reply(
            token=journey.call.token,
            token_expires_at=journey.received_at + ttl_seconds,
            channel_id=journey.call.channel_id,
            message=message,
            mention_user_id=journey.call.user_id,
        )
    except DiscordError as err:
        log.error("could not tell user %s: %s", journey.call.user_id, err.reason)
        return None
