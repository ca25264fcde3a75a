"""interaction_verify through functions-framework's own app (Flask test client)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from facteur.adapters.envelope import open_event
from facteur.decisions.journey import COMMAND_RECEIVED
from tests.helpers.contracts import assert_interaction_response
from tests.helpers.servers import Sink
from tests.helpers.support import (
    CHANNEL,
    EVENT_KEY,
    GUILD,
    ROLE_OTHER,
    USER,
    base_env,
    command,
    encode,
    sign,
)


@pytest.fixture
def client(load_function, sink: Sink):
    return load_function("interaction_verify", base_env(K_SINK=sink.url))


def _post(client, payload: Any, headers: dict[str, str] | None = None, raw: bytes | None = None):
    body = raw if raw is not None else encode(payload)
    return client.post("/", data=body, headers=headers if headers is not None else sign(body))


def _ok(response) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert_interaction_response(body)
    return body


def _ephemeral_text(response) -> str:
    body = _ok(response)
    assert body["type"] == 4
    assert body["data"]["flags"] == 64
    assert body["data"]["allowed_mentions"] == {"parse": []}
    return body["data"]["content"]


def test_ping_gets_pong(client, sink: Sink) -> None:
    assert _ok(_post(client, {"type": 1})) == {"type": 1}
    assert sink.received == []


def test_allowed_command_is_deferred_and_handed_off(client, sink: Sink) -> None:
    payload = command("plan", [{"name": "objective", "type": 3, "value": "ship it"}])
    body = _ok(_post(client, payload))
    assert body == {"type": 5, "data": {"flags": 0}}
    [event] = sink.events()
    data = open_event(EVENT_KEY, event, {COMMAND_RECEIVED})
    assert event["id"] == payload["id"]
    assert data["command"] == "plan"
    assert data["options"] == payload["data"]["options"]
    assert data["user_id"] == USER
    assert data["guild_id"] == GUILD
    assert data["channel_id"] == CHANNEL
    assert data["token"] == payload["token"]
    assert len(data["correlation_id"]) == 32
    assert abs(data["received_at"] - time.time()) < 60


def test_ephemeral_command_is_deferred_ephemerally(client, sink: Sink) -> None:
    body = _ok(_post(client, command("status", [], roles=[])))
    assert body == {"type": 5, "data": {"flags": 64}}
    assert len(sink.received) == 1


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (command("plan", roles=[ROLE_OTHER]), "You can't run `/plan`"),
        (command("plan", roles=[]), "You can't run `/plan`"),
        (command("plan", dm=True), "only be used in a server"),
        (command("status", [], dm=True), "only be used in a server"),
        (command("deploy", []), "Unknown command `/deploy`"),
    ],
)
def test_denied_commands_are_refused_privately(client, sink: Sink, payload, expected) -> None:
    assert expected in _ephemeral_text(_post(client, payload))
    assert sink.received == []


def test_command_absent_from_role_map_is_denied(load_function, sink: Sink) -> None:
    env = base_env(K_SINK=sink.url, FACTEUR_ROLE_MAP=json.dumps({"status": [GUILD]}))
    client = load_function("interaction_verify", env)
    assert "no roles are configured" in _ephemeral_text(_post(client, command("plan")))
    assert sink.received == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], "`objective` is required"),
        ([{"name": "objective", "type": 4, "value": 1}], "`objective` has the wrong type"),
        (
            [{"name": "objective", "type": 3, "value": "x" * 1001}],
            "`objective` is longer than 1000",
        ),
        (
            [
                {"name": "objective", "type": 3, "value": "x"},
                {"name": "colour", "type": 3, "value": "red"},
            ],
            "unknown option `colour`",
        ),
    ],
)
def test_invalid_options_are_explained(client, sink: Sink, options, expected) -> None:
    text = _ephemeral_text(_post(client, command("plan", options)))
    assert text.startswith("`/plan` was not sent:")
    assert expected in text
    assert sink.received == []


def test_user_text_cannot_ping(client, sink: Sink) -> None:
    options = [{"name": "@everyone <@&800000000000000010>", "type": 3, "value": "@here"}]
    text = _ephemeral_text(_post(client, command("plan", options)))
    assert "@everyone" not in text
    assert "<@&" not in text


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (404, 0.0), (202, 3.0)])
def test_sink_failure_tells_the_user(load_function, sink: Sink, status, delay) -> None:
    env = base_env(K_SINK=sink.url, FACTEUR_EVENTS_SINK_TIMEOUT_SECONDS="0.5")
    client = load_function("interaction_verify", env)
    sink.status, sink.delay = status, delay
    started = time.monotonic()
    text = _ephemeral_text(_post(client, command("plan")))
    assert time.monotonic() - started < 2.5
    assert "couldn't accept `/plan`" in text


def test_unreachable_sink_tells_the_user(load_function) -> None:
    client = load_function("interaction_verify", base_env(K_SINK="http://127.0.0.1:9/"))
    assert "couldn't accept" in _ephemeral_text(_post(client, command("plan")))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda h: h.pop("X-Signature-Ed25519"),
        lambda h: h.pop("X-Signature-Timestamp"),
        lambda h: h.update({"X-Signature-Ed25519": "nothex" * 20}),
        lambda h: h.update({"X-Signature-Ed25519": h["X-Signature-Ed25519"][:-2]}),
        lambda h: h.update({"X-Signature-Ed25519": "00" * 64}),
        lambda h: h.update({"X-Signature-Timestamp": "soon"}),
        lambda h: h.update({"X-Signature-Timestamp": str(int(h["X-Signature-Timestamp"]) + 1)}),
    ],
)
def test_unsigned_or_badly_signed_requests_get_401(client, sink: Sink, mutate) -> None:
    body = encode(command("plan"))
    headers = sign(body)
    mutate(headers)
    response = _post(client, None, headers, raw=body)
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid request signature"}
    assert sink.received == []


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_stale_and_future_timestamps_get_401(client, sink: Sink, offset: int) -> None:
    body = encode({"type": 1})
    response = _post(client, None, sign(body, int(time.time()) + offset), raw=body)
    assert response.status_code == 401


def test_replay_within_the_window_carries_the_same_event_id(client, sink: Sink) -> None:
    # verify is stateless; the router suppresses the duplicate by this ID.
    body = encode(command("plan"))
    headers = sign(body)
    for _ in range(2):
        assert _post(client, None, headers, raw=body).status_code == 200
    ids = {event["id"] for event in sink.events()}
    assert ids == {command("plan")["id"]}


def test_replay_after_the_window_is_refused(client, sink: Sink) -> None:
    body = encode(command("plan"))
    response = _post(client, None, sign(body, int(time.time()) - 600), raw=body)
    assert response.status_code == 401
    assert sink.received == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b"", 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (encode({"type": 99}), 400),
        (encode({"type": "1"}), 400),
        (encode({}), 400),
        (encode({"type": 2}), 400),
        (encode({**command("plan"), "member": {"roles": "admin", "user": {"id": USER}}}), 400),
        (encode({**command("plan"), "member": {"roles": ["<@&1>"], "user": {"id": USER}}}), 400),
        (encode({**command("plan"), "id": "../../etc"}), 400),
        (encode({**command("plan"), "member": None}), 400),
        (encode({**command("plan"), "data": {"name": 7}}), 400),
        (encode({**command("plan"), "data": {"name": "plan", "options": {"a": 1}}}), 400),
    ],
)
def test_malformed_bodies_get_400(client, sink: Sink, raw: bytes, status: int) -> None:
    response = _post(client, None, raw=raw)
    assert response.status_code == status
    assert "error" in response.get_json()
    assert sink.received == []


def test_oversized_body_gets_413(client, sink: Sink) -> None:
    body = b'{"type":1,"pad":"' + b"x" * (1_048_576) + b'"}'
    response = _post(client, None, raw=body)
    assert response.status_code == 413
    assert sink.received == []


def test_body_limit_is_configurable(load_function, sink: Sink) -> None:
    client = load_function(
        "interaction_verify", base_env(K_SINK=sink.url, FACTEUR_DISCORD_MAX_BODY_BYTES="2048")
    )
    assert _post(client, {"type": 1, "pad": "x" * 1500}).status_code == 200
    assert _post(client, {"type": 1, "pad": "x" * 2100}).status_code == 413


def test_get_is_a_liveness_check_and_other_methods_get_405(client) -> None:
    assert client.get("/").get_json() == {"status": "ok"}
    for method in ("put", "delete", "patch"):
        response = getattr(client, method)("/")
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("payload", "expected_type"),
    [
        ({"type": 3, "id": "1", "token": "t", "data": {"custom_id": "x"}}, 4),
        ({"type": 5, "id": "1", "token": "t", "data": {"custom_id": "x"}}, 4),
        ({"type": 4, "id": "1", "token": "t", "data": {"name": "plan"}}, 8),
    ],
)
def test_other_interaction_types_get_an_answer(client, sink: Sink, payload, expected_type) -> None:
    assert _ok(_post(client, payload))["type"] == expected_type
    assert sink.received == []


@pytest.mark.parametrize(
    "options",
    [
        [{"name": "deep", "type": 1, "options": []}],
        [
            {
                "name": "cancel",
                "type": 1,
                "options": [{"name": "objective", "type": 3, "value": "x"}],
            }
        ],
        [{"name": "admin", "type": 2, "options": [{"name": "deep", "type": 1, "options": []}]}],
    ],
    ids=["subcommand", "subcommand-named-like-a-button", "subcommand-group"],
)
def test_a_subcommand_the_catalog_does_not_declare_is_refused(
    load_function, sink: Sink, options: list
) -> None:
    # The hole: an undeclared subcommand ran as the plain command, and `plan:cancel` (the Cancel
    # button's rule) let a role that may only cancel start `/plan cancel`.
    role_map = {"plan": ["800000000000000999"], "plan:cancel": [GUILD]}
    client = load_function(
        "interaction_verify", base_env(K_SINK=sink.url, FACTEUR_ROLE_MAP=json.dumps(role_map))
    )
    payload = command("plan")
    payload["data"]["options"] = options
    assert "has no subcommand" in _ephemeral_text(_post(client, payload))
    assert sink.received == []


@pytest.mark.parametrize("command_type", [2, 3], ids=["user-menu", "message-menu"])
def test_a_context_menu_command_of_the_same_name_is_refused(
    client, sink: Sink, command_type: int
) -> None:
    payload = command("plan")
    payload["data"]["type"] = command_type
    assert "is not one of facteur's slash commands" in _ephemeral_text(_post(client, payload))
    assert sink.received == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_standard_json_literals_get_400(client, sink: Sink, literal: str) -> None:
    body = encode(command("plan"))
    body = body.replace(b'"type": 2', b'"type": 2, "extra": ' + literal.encode(), 1)
    assert literal.encode() in body
    response = _post(client, None, raw=body)
    assert response.status_code == 400
    assert "not standard JSON" in response.get_json()["error"]
    assert sink.received == []


@pytest.mark.parametrize("depth", [33, 486, 985, 5000])
def test_deep_nesting_gets_400_not_500(client, sink: Sink, depth: int) -> None:
    payload = command("plan")
    body = encode(payload)
    nested = b"[" * depth + b"1" + b"]" * depth
    body = body.replace(b'"type": 2', b'"type": 2, "deep": ' + nested, 1)
    response = _post(client, None, raw=body)
    assert response.status_code == 400
    assert sink.received == []


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\r", "\x7f", "\x85", "\ud800"])
def test_control_characters_in_an_option_get_an_ephemeral_refusal(
    client, sink: Sink, char: str
) -> None:
    payload = command("plan", [{"name": "objective", "type": 3, "value": f"ship{char}it"}])
    text = _ephemeral_text(_post(client, payload))
    assert "`objective`" in text
    assert f"U+{ord(char):04X}" in text
    assert sink.received == []


def test_tab_and_newline_are_kept(client, sink: Sink) -> None:
    typed = "line one\n\tline two"
    _ok(_post(client, command("plan", [{"name": "objective", "type": 3, "value": typed}])))
    assert sink.events()[0].get_data()["options"][0]["value"] == typed
