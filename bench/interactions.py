"""Signed Discord interactions to send: pools of pre-signed requests for bench_verify's warm
load, and /plan commands with their answers for the chain benchmarks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.helpers.support import APP, command, encode, sign

POOL_SIZE = 64


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]


def ping_pool(size: int = POOL_SIZE) -> list[Request]:
    """Signed PINGs, distinct ids, stamped now (verify accepts them for 300 s)."""
    pool = []
    for i in range(size):
        body = encode(
            {
                "id": str(910_000_000_000_000_000 + i),
                "application_id": APP,
                "type": 1,
                "token": "interaction-token-bench",
                "version": 1,
            }
        )
        pool.append(Request(body, sign(body)))
    return pool


def command_pool(size: int = POOL_SIZE) -> list[Request]:
    """Signed /plan commands that the test role map allows, so verify forwards each one."""
    pool = []
    for i in range(size):
        body = encode(command("plan", interaction_id=str(920_000_000_000_000_000 + i)))
        pool.append(Request(body, sign(body)))
    return pool


def answer_type(data: bytes) -> Any:
    """The interaction response type of an answer (1 PONG, 4 a message, 5 deferred)."""
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload.get("type") if isinstance(payload, dict) else None


@dataclass
class Sent:
    """One signed /plan command and what verify answered."""

    index: int
    interaction_id: str
    token: str
    user_id: str
    body: bytes
    headers: dict[str, str] | None = None  # set to replay these exact headers
    sent_at: float = 0.0
    answered_at: float = 0.0
    status: int | None = None
    kind: int | None = None  # the interaction response type: 5 deferred, 4 a message
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200 and self.kind == 5

    @property
    def ack_seconds(self) -> float:
        return self.answered_at - self.sent_at


def plan_commands(count: int, run: int = 0) -> list[Sent]:
    """Signed-to-be /plan commands, each with its own interaction ID, token and user."""
    items = []
    for index in range(count):
        interaction = str(1_300_000_000_000_000_000 + run * 100_000 + index)
        user = str(1_400_000_000_000_000_000 + run * 100_000 + index)
        payload = command("plan", interaction_id=interaction)
        payload["token"] = f"bench-token-{run}-{index}"
        payload["member"]["user"]["id"] = user  # so a channel post names its command
        items.append(Sent(index, interaction, payload["token"], user, json.dumps(payload).encode()))
    return items
