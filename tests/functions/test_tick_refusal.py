"""A refused reconciliation tick is logged at warning level, without the token (issue 18): else
an operator never learns why reconciliation does not run."""

from __future__ import annotations

import logging

import pytest

from tests.helpers.support import base_env, ping_event

TICK_TOKEN = "a-tick-token-of-at-least-32-characters"
WRONG = "a-wrong-token-that-is-also-32-characters-long"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("reconciliation tick refused")]


def test_a_wrong_tick_token_is_logged_without_it(load_function, caplog) -> None:
    client = load_function("status_callback", base_env(FACTEUR_CALLBACK_TICK_TOKEN=TICK_TOKEN))
    body, headers = ping_event(WRONG)
    with caplog.at_level(logging.WARNING, logger="facteur.status_callback"):
        response = client.post("/", data=body, headers=headers)
    assert response.status_code == 401
    (record,) = _refusals(caplog)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "reconciliation tick refused (401): the event is not a PingSource tick carrying "
        "callback.tick_token (FACTEUR_CALLBACK_TICK_TOKEN); check the PingSource's data "
        "against the Secret"
    )
    assert WRONG not in caplog.text and TICK_TOKEN not in caplog.text


def test_a_tick_without_a_configured_token_says_so(load_function, caplog) -> None:
    client = load_function("status_callback", base_env())
    body, headers = ping_event(TICK_TOKEN)
    with caplog.at_level(logging.WARNING, logger="facteur.status_callback"):
        assert client.post("/", data=body, headers=headers).status_code == 401
    (record,) = _refusals(caplog)
    assert "callback.tick_token (FACTEUR_CALLBACK_TICK_TOKEN) is not set" in record.getMessage()
    assert TICK_TOKEN not in caplog.text
