"""Posting a CloudEvent to K_SINK (the Broker in Knative, the next function locally)."""

from __future__ import annotations

from .envelope import CloudEvent, encode


class SinkError(Exception):
    """The sink did not accept the event. The message is safe to log."""


def deliver(url: str, event: CloudEvent, timeout: float) -> None:
    """POST one event; raise SinkError unless the sink answers 2xx within `timeout`."""
    # urllib rather than requests: this runs on interaction_verify's cold path.
    import urllib.error
    import urllib.request

    headers, body = encode(event)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read(65536)
    except urllib.error.HTTPError as err:
        raise SinkError(f"sink answered {err.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise SinkError(f"sink unreachable: {type(reason).__name__}") from None
