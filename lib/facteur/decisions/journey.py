"""One command's journey: the event data every hop carries, the session facteur records for it
in Redis, and where a reply landed. Pure records."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from facteur.decisions import ids
from facteur.decisions.interactions import Invocation, invocation_from_event
from facteur.errors import InvalidInteraction

# The CloudEvent types facteur's functions hand each other.
COMMAND_RECEIVED = "dev.facteur.command.received"
WORKFLOW_REQUESTED = "dev.facteur.workflow.requested"
COMPONENT_CLICKED = "dev.facteur.component.clicked"

# Discord's MessageCreateRequest takes a nonce of at most 25 characters.
NONCE_LENGTH = 25


@dataclass(frozen=True)
class Journey:
    call: Invocation
    correlation_id: str
    received_at: float
    # Filled in by command_route for workflow_submit.
    parameters: dict[str, str] = field(default_factory=dict)
    workflow_template: str | None = None
    last_correlation_id: str | None = None
    # The catalog says this command's run gets a thread.
    thread: bool = False
    # The Argo mutex the run holds (decisions/concurrency.py), when its command has one.
    mutex: str | None = None

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> Journey:
        correlation_id, received_at = data.get("correlation_id"), data.get("received_at")
        if not isinstance(correlation_id, str) or not isinstance(received_at, int | float):
            raise InvalidInteraction("event data lacks correlation_id or received_at")
        parameters = data.get("parameters") or {}
        # Exactly what command_route sends: a later hop coerces nothing into shape.
        if not isinstance(parameters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()
        ):
            raise InvalidInteraction("event parameters are malformed")
        template, last = data.get("workflow_template"), data.get("last_correlation_id")
        if not all(value is None or isinstance(value, str) for value in (template, last)):
            raise InvalidInteraction("event data is malformed")
        thread, mutex = data.get("thread", False), data.get("mutex")
        if not isinstance(thread, bool):
            raise InvalidInteraction("event data is malformed")
        # Made by command_route from a slug and a hash; checked again, as every name is.
        if mutex is not None and not ids.is_namespace(mutex):
            raise InvalidInteraction("event mutex is malformed")
        return cls(
            call=invocation_from_event(data),
            correlation_id=correlation_id,
            received_at=float(received_at),
            parameters=parameters,
            workflow_template=template,
            last_correlation_id=last,
            thread=thread,
            mutex=mutex,
        )

    def to_event(self) -> dict[str, Any]:
        # A shallow copy: asdict's deep copy cost a fifth of a hand-off, for data that is
        # serialised at once and never changed.
        call = {f.name: getattr(self.call, f.name) for f in fields(Invocation)}
        return call | {
            "correlation_id": self.correlation_id,
            "received_at": self.received_at,
            "parameters": self.parameters,
            "workflow_template": self.workflow_template,
            "last_correlation_id": self.last_correlation_id,
            "thread": self.thread,
            "mutex": self.mutex,
        }


class DispatchResult(BaseModel):
    """One command's journey, as recorded in Redis."""

    model_config = ConfigDict(extra="ignore")

    correlation_id: str
    interaction_id: str
    command: str
    user_id: str
    guild_id: str | None = None
    channel_id: str | None = None
    application_id: str | None = None
    workflow_name: str | None = None
    namespace: str | None = None
    # Unix seconds when Discord's interaction reached facteur; the token's clock starts here.
    received_at: float = Field(default_factory=time.time)
    status: str = "requested"
    message_id: str | None = None
    finished_at: float | None = None
    # The opaque reference buttons carry instead of the workflow's name.
    ref: str | None = None
    # Bumped by Retry, so the retried run's outcome is reported again.
    attempt: int = 1
    # What was asked, short (render.request_summary), for every message about the run.
    summary: str | None = None
    # The run's thread, when its command has one.
    thread_id: str | None = None


@dataclass(frozen=True)
class Delivered:
    """Where a reply landed."""

    # interaction: the original reply, by its token; message: the same message, by the bot
    # once the token is gone; channel: a new post, replying to the original when known.
    via: Literal["interaction", "message", "channel"]
    message_id: str | None


@dataclass(frozen=True)
class ReplyTo:
    """Where a message about a command goes: its deferred reply while the interaction token
    lives, else a post in its channel that names the user (the only mention allowed there)."""

    token: str | None
    token_expires_at: float
    channel_id: str | None
    mention_user_id: str | None = None
    # What is said, named the same by every copy of it (the run and its attempt, the
    # interaction and its message): a channel post carries a nonce made from it, so Discord
    # itself keeps one message when copies get past Redis. Edits need none: they are idempotent.
    dedupe_key: str | None = None
    # The original reply, once it was delivered: after the token, the bot edits it in place.
    message_id: str | None = None

    @classmethod
    def of_journey(
        cls, journey: Journey, ttl_seconds: int, dedupe_key: str | None = None
    ) -> ReplyTo:
        call = journey.call
        expires_at = journey.received_at + ttl_seconds
        return cls(call.token, expires_at, call.channel_id, call.user_id, dedupe_key)

    @classmethod
    def of_session(
        cls,
        session: DispatchResult,
        token: str | None,
        ttl_seconds: int,
        dedupe_key: str | None = None,
    ) -> ReplyTo:
        expires_at = session.received_at + ttl_seconds
        # "sent": delivered once, but Discord named no message (older sessions).
        message_id = session.message_id if ids.is_snowflake(session.message_id) else None
        return cls(token, expires_at, session.channel_id, session.user_id, dedupe_key, message_id)

    def token_lives(self, now: float) -> bool:
        return bool(self.token) and now < self.token_expires_at

    def nonce(self) -> str | None:
        """The channel post's nonce: the same for every copy of what is said, at most the 25
        characters Discord takes (100 bits of a SHA-256 of the key); None without a key."""
        if self.dedupe_key is None:
            return None
        return hashlib.sha256(self.dedupe_key.encode()).hexdigest()[:NONCE_LENGTH]
