"""facteur's internal events: CloudEvents sealed with an HMAC-SHA256.

The MAC covers the event's id, type, source and data, so a receiver can tell an event that
facteur emitted from one forged inside the cluster. Replays of a genuine event are caught by
the router's duplicate suppression on the interaction ID, not here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

from facteur.decisions import strict_json
from facteur.errors import EventRejected

# CloudEvents extension names: lower-case letters and digits only.
SIGNATURE_ATTRIBUTE = "facteursig"
_SCHEME = "v1="


def _mac(key: str, event_id: str, event_type: str, source: str, data: Any) -> str:
    # allow_nan=False: a MAC over text that is not JSON would seal an event no hop can read.
    canonical = json.dumps(
        [event_id, event_type, source, data], sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    digest = hmac.new(key.encode("utf-8"), canonical.encode("utf-8"), hashlib.sha256)
    return _SCHEME + digest.hexdigest()


def sealed(
    key: str, *, event_type: str, source: str, event_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """The context attributes of a signed event carrying `data` as JSON."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "datacontenttype": "application/json",
        "time": datetime.now(UTC).isoformat(),
        SIGNATURE_ATTRIBUTE: _mac(key, event_id, event_type, source, data),
    }


def seal(
    key: str, *, event_type: str, source: str, event_id: str, data: dict[str, Any]
) -> CloudEvent:
    """A signed CloudEvent carrying `data` as JSON."""
    attributes = sealed(key, event_type=event_type, source=source, event_id=event_id, data=data)
    return CloudEvent(attributes, data)


def structured(attributes: dict[str, Any], data: Any) -> tuple[dict[str, str], bytes]:
    """Headers and body of an HTTP POST in structured mode (CloudEvents' JSON format).

    Written directly rather than through the SDK's conversion, which cost more CPU than the rest
    of a hand-off; the receivers still parse it with the SDK, and tests hold the two together.
    """
    body = strict_json.dumps({**attributes, "data": data}).encode()
    return {"content-type": "application/cloudevents+json"}, body


def encode(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    """Headers and body for an HTTP POST of `event` (JSON data) in structured mode."""
    return structured(dict(event.get_attributes()), event.get_data())


def open_event(key: str, event: CloudEvent, accept: Collection[str]) -> dict[str, Any]:
    """Authenticate an incoming event and return its data, or raise EventRejected."""
    signature = event.get(SIGNATURE_ATTRIBUTE)
    if not isinstance(signature, str) or not signature:
        raise EventRejected(401, "event is not signed")
    data = event.get_data()
    try:
        expected = _mac(key, event["id"], event["type"], event["source"], data)
    except (TypeError, ValueError):
        # Binary data or values JSON cannot hold: facteur never sends these.
        raise EventRejected(401, "event signature does not match") from None
    if not signature.isascii() or not hmac.compare_digest(signature, expected):
        raise EventRejected(401, "event signature does not match")
    if event["type"] not in accept:
        raise EventRejected(400, "event type is not handled here")
    if not isinstance(data, dict):
        raise EventRejected(400, "event data is not an object")
    return data
