from __future__ import annotations

import json

import pytest
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent, from_http

from facteur.adapters.envelope import SIGNATURE_ATTRIBUTE, encode, open_event, seal
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED
from facteur.errors import EventRejected
from tests.helpers.support import EVENT_KEY

DATA = {"interaction_id": "900000000000000001", "options": [{"name": "a", "value": "é ✓"}]}


def _sealed(**overrides) -> CloudEvent:
    args = {
        "event_type": COMMAND_RECEIVED,
        "source": "/facteur/interaction_verify",
        "event_id": "900000000000000001",
        "data": DATA,
    }
    args.update(overrides)
    return seal(EVENT_KEY, **args)


def _roundtrip(event: CloudEvent) -> CloudEvent:
    headers, body = encode(event)
    assert headers["content-type"] == "application/cloudevents+json"
    return from_http(headers, body)


def test_sealed_event_survives_the_wire() -> None:
    received = _roundtrip(_sealed())
    assert open_event(EVENT_KEY, received, {COMMAND_RECEIVED}) == DATA
    assert received["id"] == "900000000000000001"
    assert received["type"] == COMMAND_RECEIVED


def test_the_written_json_reads_back_as_the_sdk_writes_it() -> None:
    # facteur writes structured mode itself (cheaper); the receivers read it with the SDK.
    event = _sealed()
    headers, body = to_structured(event)
    theirs = from_http(dict(headers), body)
    ours = _roundtrip(event)
    assert ours.get_attributes() == theirs.get_attributes()
    assert ours.get_data() == theirs.get_data() == DATA


def test_binary_mode_delivery_is_accepted() -> None:
    # A Broker may deliver in binary mode: attributes as ce- headers, data as the body.
    event = _sealed()
    headers = {f"ce-{k}": str(v) for k, v in event.get_attributes().items() if k != "data"}
    headers["content-type"] = "application/json"
    headers.pop("ce-datacontenttype")
    received = from_http(headers, json.dumps(DATA).encode())
    assert open_event(EVENT_KEY, received, {COMMAND_RECEIVED}) == DATA


def test_unsigned_event_is_rejected() -> None:
    event = CloudEvent({"type": COMMAND_RECEIVED, "source": "/x", "id": "1"}, DATA)
    with pytest.raises(EventRejected) as err:
        open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    assert err.value.status == 401


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.get_data().__setitem__("interaction_id", "1"),
        lambda e: e.__setitem__("id", "other"),
        lambda e: e.__setitem__("type", WORKFLOW_REQUESTED),
        lambda e: e.__setitem__("source", "/elsewhere"),
        lambda e: e.__setitem__(SIGNATURE_ATTRIBUTE, e[SIGNATURE_ATTRIBUTE][:-1] + "0"),
        lambda e: e.__setitem__(SIGNATURE_ATTRIBUTE, "v1=" + "é" * 64),
        lambda e: e.__setitem__(SIGNATURE_ATTRIBUTE, ""),
    ],
)
def test_tampered_events_are_rejected(tamper) -> None:
    event = _roundtrip(_sealed())
    tamper(event)
    with pytest.raises(EventRejected) as err:
        open_event(EVENT_KEY, event, {COMMAND_RECEIVED, WORKFLOW_REQUESTED})
    assert err.value.status == 401


def test_wrong_key_is_rejected() -> None:
    event = _roundtrip(
        seal("another-key-" * 4, event_type=COMMAND_RECEIVED, source="/x", event_id="1", data=DATA)
    )
    with pytest.raises(EventRejected):
        open_event(EVENT_KEY, event, {COMMAND_RECEIVED})


def test_genuine_event_of_another_type_is_refused_after_auth() -> None:
    event = _roundtrip(_sealed(event_type=WORKFLOW_REQUESTED))
    with pytest.raises(EventRejected) as err:
        open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    assert err.value.status == 400


def test_non_object_data_is_refused() -> None:
    event = _roundtrip(_sealed(data=["not", "an", "object"]))
    with pytest.raises(EventRejected) as err:
        open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    assert err.value.status == 400


def test_binary_data_is_refused() -> None:
    event = CloudEvent(
        {"type": COMMAND_RECEIVED, "source": "/x", "id": "1", SIGNATURE_ATTRIBUTE: "v1=00"},
        b"\x00\x01",
    )
    with pytest.raises(EventRejected) as err:
        open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    assert err.value.status == 401
