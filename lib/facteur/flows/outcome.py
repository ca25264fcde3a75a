"""How a flow ends, in the two shapes the functions answer with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """A CloudEvent flow's end: 2xx acknowledges the event, 5xx asks Knative to redeliver it."""

    status: int
    # What happened, for logs and tests: requested, duplicate, refused, submitted, failed…
    result: str
    workflow: str | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP flow's answer: the status and the JSON body."""

    status: int
    body: dict[str, Any]
