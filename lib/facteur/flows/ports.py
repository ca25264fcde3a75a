"""The ports: what a flow needs from the outside world, as Protocols.

The real adapters (facteur.adapters.*), the local loop's stand-ins (adapters/local.py and
adapters/dry_run_argo.py) and the tests' in-memory fakes all implement these, so a type checker
catches any drift between them.
Each method raises the facteur.errors type named in its docstring, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from facteur.decisions.claims import LEASE_SECONDS, Claim
from facteur.decisions.interactions import Attachment
from facteur.decisions.journey import Delivered, DispatchResult, ReplyTo
from facteur.decisions.workflow import NodeState, Submitted, WorkflowRequest, WorkflowState


class Discord(Protocol):
    """Discord's REST API for one application. Raises DiscordError."""

    def reply(self, to: ReplyTo, message: dict[str, Any], *, now: float | None = None) -> Delivered:
        """Edit the original reply while the token lives, else post in the channel."""
        ...

    def edit_original(self, token: str, message: dict[str, Any]) -> dict[str, Any]: ...

    def delete_original(self, token: str) -> None:
        """Delete the interaction's original reply (its public "thinking…"), so that a refusal
        can be said privately instead."""
        ...

    def follow_up(
        self, token: str, message: dict[str, Any], files: Sequence[Attachment] = ()
    ) -> dict[str, Any]:
        """A follow-up message; with files, sent as multipart/form-data (payload_json and
        files[n]), each declared in the message's attachments."""
        ...

    def start_thread(self, channel_id: str, message_id: str, name: str) -> str:
        """Start a thread from a message (the bot's); the thread's channel ID."""
        ...

    def post_to_thread(self, thread_id: str, message: dict[str, Any]) -> None: ...

    def archive_thread(self, thread_id: str) -> None: ...


class Argo(Protocol):
    """One Argo Server. Raises ArgoError."""

    def submit(self, request: WorkflowRequest) -> Submitted:
        """Create the workflow; `created` is False when one of that name already existed."""
        ...

    def get_workflow(self, namespace: str, name: str) -> WorkflowState | None:
        """The run as Argo sees it now (with facteur's labels and annotations), or None when
        Argo does not know it."""
        ...

    def get_nodes(self, namespace: str, name: str) -> list[NodeState]:
        """The run's steps (status.nodes), or none when Argo does not know the run."""
        ...

    def find_by_ref(self, namespace: str, ref: str) -> list[WorkflowState]:
        """facteur's runs labelled with this button reference (none for a reference no label
        can carry); a resubmitted run carries its original's."""
        ...

    def list_unfinished(self, namespace: str, limit: int = 500) -> list[WorkflowState]:
        """Up to `limit` of facteur's runs that Argo has not marked completed."""
        ...

    def stop(self, namespace: str, name: str, message: str | None = None) -> None: ...

    def terminate(self, namespace: str, name: str) -> None: ...

    def retry(self, namespace: str, name: str) -> None: ...

    def resubmit(self, namespace: str, name: str) -> Submitted: ...

    def set_node(
        self,
        namespace: str,
        name: str,
        node_id: str,
        *,
        message: str | None = None,
        outputs: Mapping[str, str] | None = None,
    ) -> None:
        """PUT …/set on one suspended node (nodeFieldSelector id=<node_id>): its message and
        supplied output parameters. Argo refuses a node that is no longer suspended."""
        ...

    def resume_node(self, namespace: str, name: str, node_id: str) -> None:
        """PUT …/resume with nodeFieldSelector id=<node_id>: only that node goes on."""
        ...

    def logs(
        self,
        namespace: str,
        name: str,
        pod_name: str,
        *,
        container: str = "main",
        tail_lines: int = 40,
    ) -> list[str]:
        """The last lines of one pod's container, from Argo's log API (GET …/log); raises
        ArgoError with status 404 when Argo knows no such workflow or pod."""
        ...


class SessionStore(Protocol):
    """What facteur dispatched, for whom, and how it ended. Raises SessionStoreError.

    Every claim_* is atomic: True for the first caller only, so redeliveries act once.
    """

    def save(
        self,
        result: DispatchResult,
        token: str | None = None,
        token_expires_at: float | None = None,
        *,
        started: bool = False,
    ) -> None: ...

    def get(self, correlation_id: str) -> DispatchResult | None: ...

    def last_for_user(self, user_id: str) -> DispatchResult | None: ...

    def recent_for_user(self, user_id: str, limit: int = 10) -> list[DispatchResult]:
        """That user's runs facteur still knows, newest first (/status, autocomplete)."""
        ...

    def remember_values(
        self, guild_id: str, command: str, values: Mapping[str, str], at: float
    ) -> None:
        """Record the option values a command was run with in a guild (autocomplete's
        `recent` source), each option's list bounded."""
        ...

    def recent_values(self, guild_id: str, command: str, option: str, limit: int) -> list[str]:
        """Up to `limit` values this guild used for this option, most recent first."""
        ...

    def spend(
        self, key: str, member: str, limit: int, window_seconds: float, now: float
    ) -> float | None:
        """Count `member` (an interaction ID: a redelivery counts once) against `limit` per
        sliding `window_seconds` under `key`, atomically; None when it fits, else when the
        oldest counted one leaves the window (when to try again)."""
        ...

    def find_workflow(self, namespace: str, name: str) -> DispatchResult | None: ...

    def by_ref(self, ref: str) -> DispatchResult | None: ...

    def token(self, correlation_id: str) -> str | None: ...

    def take(self, kind: str, ident: str, lease_seconds: float = LEASE_SECONDS) -> Claim: ...

    def finish(self, kind: str, ident: str) -> None: ...

    def claim_once(self, kind: str, ident: str, ttl_seconds: int | None = None) -> bool: ...

    def release_once(self, kind: str, ident: str) -> None: ...

    def claim(self, interaction_id: str, ttl_seconds: int | None = None) -> bool: ...

    def release(self, interaction_id: str) -> None: ...

    def pending(self, limit: int) -> list[str]:
        """Up to `limit` runs not yet reported, least recently checked first (never checked:
        by received_at)."""
        ...

    def checked(self, correlation_ids: list[str], at: float) -> None:
        """Mark those still pending as checked `at`, behind the others; the rest stay gone."""
        ...

    def forget_pending(self, correlation_id: str) -> None: ...

    def ping(self) -> bool: ...


class Deliver(Protocol):
    """Hand one event to the next function (K_SINK). Raises SinkError unless it was taken."""

    def __call__(self, event_type: str, event_id: str, data: dict[str, Any]) -> None: ...


class AsyncDeliver(Protocol):
    """Deliver, awaited on an event loop (the ASGI functions). Raises SinkError."""

    async def __call__(self, event_type: str, event_id: str, data: dict[str, Any]) -> None: ...


class Headers(Protocol):
    """Request headers, looked up case-insensitively (werkzeug's Headers, or a dict in tests)."""

    def get(self, key: str) -> str | None: ...


class Verifier(Protocol):
    """Discord's request signature. Raises SignatureError."""

    def verify(
        self, signature: str | None, timestamp: str | None, body: bytes, now: float | None = None
    ) -> None: ...
