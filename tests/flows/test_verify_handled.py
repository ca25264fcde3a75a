"""interaction_verify ends each request with the `handled` line the README promises: its
outcome and duration_ms, as every other function's requests end."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.helpers.fakes import World
from tests.helpers.support import ROLE_OTHER, command, encode, sign

NOW = 1_800_000_000.0


def _handled(world: World, caplog: pytest.LogCaptureFixture, payload: Any, **kw: Any) -> Any:
    body = encode(payload)
    headers = kw.get("headers", sign(body, int(NOW)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facteur"):
        world.ingress(clock=lambda: NOW).handle(headers, body)
    [line] = [r for r in caplog.records if r.getMessage() == "handled"]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
    return line


@pytest.mark.parametrize(
    ("payload", "headers", "outcome", "status"),
    [
        ({"type": 1}, None, "pong", 200),
        ({"type": 1}, {}, "unauthorized", 401),
        ({"type": 99}, None, "invalid", 400),
        (command("plan", roles=[ROLE_OTHER]), None, "answered", 200),  # refused at once
        (command("plan"), None, "handed-off", 200),
    ],
    ids=["ping", "unsigned", "unknown-type", "refused", "command"],
)
def test_every_request_ends_with_a_handled_line(
    caplog: pytest.LogCaptureFixture,
    payload: dict[str, Any],
    headers: dict[str, str] | None,
    outcome: str,
    status: int,
) -> None:
    kw = {} if headers is None else {"headers": headers}
    line = _handled(World(), caplog, payload, **kw)
    assert (line.outcome, line.status) == (outcome, status)  # type: ignore[attr-defined]


def test_a_hand_off_the_sink_refused_is_handled_too(caplog: pytest.LogCaptureFixture) -> None:
    world = World()
    world.sink.down = True
    payload = command("plan")
    line = _handled(world, caplog, payload)
    assert line.outcome == "not-handed-off"  # type: ignore[attr-defined]
    assert world.sink.events == []
