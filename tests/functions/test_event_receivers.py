"""command_route, workflow_submit and status_callback: every caller is authenticated.

A signed event whose data is not a command passes authentication and then gets a 400 that says
so; anything unsigned or forged stops at 401 before that.
"""

from __future__ import annotations

import json

import pytest
from cloudevents.conversion import to_binary

from facteur.adapters.envelope import encode, seal
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED
from tests.helpers.support import CALLBACK_TOKEN, EVENT_KEY, base_env

RECEIVERS = [("command_route", COMMAND_RECEIVED), ("workflow_submit", WORKFLOW_REQUESTED)]


def _event(event_type: str, key: str = EVENT_KEY):
    return seal(key, event_type=event_type, source="/test", event_id="1", data={"a": 1})


@pytest.mark.parametrize(("name", "event_type"), RECEIVERS)
def test_signed_event_passes_authentication(load_function, name, event_type) -> None:
    client = load_function(name, base_env())
    headers, body = encode(_event(event_type))
    response = client.post("/", data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("event data ")


@pytest.mark.parametrize(("name", "event_type"), RECEIVERS)
def test_signed_binary_mode_event_passes(load_function, name, event_type) -> None:
    client = load_function(name, base_env())
    headers, body = to_binary(_event(event_type))
    response = client.post("/", data=body, headers=dict(headers))
    assert response.get_json()["error"].startswith("event data ")


@pytest.mark.parametrize(("name", "event_type"), RECEIVERS)
def test_forged_events_get_401(load_function, name, event_type) -> None:
    client = load_function(name, base_env())
    for event in (
        _event(event_type, key="a-different-key-that-is-long-enough"),
        seal(EVENT_KEY, event_type=event_type, source="/test", event_id="1", data={"a": 1}),
    ):
        headers, body = encode(event)
        if event["source"] == "/test" and event.get("facteursig"):
            assert b'"a":1' in body
            body = body.replace(b'"a":1', b'"a":2')  # tampered in transit
        response = client.post("/", data=body, headers=headers)
        assert response.status_code == 401, body
        assert response.get_json()["error"].startswith("event")


@pytest.mark.parametrize(("name", "event_type"), RECEIVERS)
def test_unsigned_event_gets_401(load_function, name, event_type) -> None:
    client = load_function(name, base_env())
    body = json.dumps(
        {"specversion": "1.0", "type": event_type, "source": "/x", "id": "1", "data": {}}
    )
    response = client.post("/", data=body, headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 401


@pytest.mark.parametrize(("name", "event_type"), RECEIVERS)
def test_event_of_the_wrong_type_gets_400(load_function, name, event_type) -> None:
    client = load_function(name, base_env())
    other = WORKFLOW_REQUESTED if event_type == COMMAND_RECEIVED else COMMAND_RECEIVED
    headers, body = encode(_event(other))
    assert client.post("/", data=body, headers=headers).status_code == 400


@pytest.mark.parametrize("name", [name for name, _ in RECEIVERS])
@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"not a cloudevent", {"Content-Type": "text/plain"}),
        (b"{", {"Content-Type": "application/cloudevents+json"}),
        (b"[]", {"Content-Type": "application/cloudevents+json"}),
        (b'{"specversion": "9.9"}', {"Content-Type": "application/cloudevents+json"}),
        (b"{}", {"ce-specversion": "1.0", "ce-id": "1", "Content-Type": "application/json"}),
        (
            b"{",
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-type": "t",
                "ce-source": "/s",
                "Content-Type": "application/json",
            },
        ),
        (b'{"context": {}, "data": {}}', {"Content-Type": "application/json"}),
        (b"\xff" * 64, {"Content-Type": "application/octet-stream"}),
    ],
)
def test_malformed_events_get_a_clean_4xx(load_function, name, body, headers) -> None:
    client = load_function(name, base_env())
    response = client.post("/", data=body, headers=headers)
    assert 400 <= response.status_code < 500
    text = response.get_data(as_text=True)
    assert "Traceback" not in text
    assert "Got HTTP headers" not in text
    assert response.get_json()["error"]


def test_status_callback_authenticates_the_caller(load_function) -> None:
    client = load_function("status_callback", base_env())
    good = {"Authorization": f"Bearer {CALLBACK_TOKEN}"}
    # Authenticated, then refused for the body: the contract's fields are missing.
    response = client.post("/", json={}, headers=good)
    assert response.status_code == 400
    assert "missing required field" in response.get_json()["error"]
    for headers in (
        {},
        {"Authorization": CALLBACK_TOKEN},
        {"Authorization": f"Basic {CALLBACK_TOKEN}"},
        {"Authorization": f"Bearer {CALLBACK_TOKEN}x"},
        {"Authorization": f"Bearer {CALLBACK_TOKEN[:-1]}"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer \udcff"},
        {"Authorization": "Bearer é"},
    ):
        response = client.post("/", json={}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/").get_json() == {"status": "ok"}  # liveness
    assert client.put("/").status_code == 405


@pytest.mark.parametrize("name", [name for name, _ in RECEIVERS])
def test_oversized_events_get_413(load_function, name) -> None:
    client = load_function(name, base_env())
    body = b'{"specversion": "1.0", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = client.post("/", data=body, headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code == 413
    assert b"exceeds" in response.get_data()


def test_the_dead_letter_path_authenticates_like_the_rest(load_function) -> None:
    client = load_function("command_route", base_env())
    body = json.dumps(
        {"specversion": "1.0", "type": WORKFLOW_REQUESTED, "source": "/x", "id": "1", "data": {}}
    )
    headers = {"Content-Type": "application/cloudevents+json"}
    assert client.post("/dead-letter", data=body, headers=headers).status_code == 401
    forged = seal(
        "a-different-key-that-is-long-enough",
        event_type=WORKFLOW_REQUESTED,
        source="/x",
        event_id="1",
        data={},
    )
    headers, raw = encode(forged)
    assert client.post("/dead-letter", data=raw, headers=headers).status_code == 401
    # Signed, but not a journey: refused for its shape, and nothing is said to anyone.
    headers, raw = encode(_event(WORKFLOW_REQUESTED))
    response = client.post("/dead-letter", data=raw, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("event data ")
