"""Structured logs: JSON lines with the request's fields, an audit trail, no secrets."""

from __future__ import annotations

import json
import logging
import time

import pytest

from facteur import logs
from facteur.config import load_settings, secret_values


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]):
    logs.configure("command_route", secrets=["s3cret-value-0123456789"])

    def lines() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    yield lines
    for handler in [h for h in logging.getLogger().handlers if getattr(h, "facteur", False)]:
        logging.getLogger().removeHandler(handler)


def test_lines_are_json_with_the_requests_fields(json_logs) -> None:
    with logs.bound(correlation_id="c1", interaction_id="i1", command="plan", user_id="u1"):
        logs.bind(workflow="plan-1")
        logs.audit("workflow.submitted", namespace="agents", created=True, by="u1")
        logs.finished("submitted", 0.0, status=200)
    logging.getLogger("facteur.other").warning("outside any request")
    audit, done, outside = json_logs()
    for line in (audit, done):
        assert line["function"] == "command_route"
        assert (line["correlation_id"], line["interaction_id"]) == ("c1", "i1")
        assert (line["command"], line["user_id"], line["workflow"]) == ("plan", "u1", "plan-1")
    assert audit["audit"] is True and audit["event"] == "workflow.submitted"
    assert audit["created_"] is True  # a LogRecord attribute's name, kept apart
    assert done["outcome"] == "submitted" and done["duration_ms"] >= 0
    assert (done["event"], outside["event"]) == ("handled", "outside any request")
    assert "correlation_id" not in outside  # nothing leaks between requests


def test_secrets_are_scrubbed_from_messages_and_fields(json_logs) -> None:
    logging.getLogger("facteur.x").error("token=%s", "s3cret-value-0123456789")
    logs.audit("x", reason="s3cret-value-0123456789 leaked")
    text = json.dumps(json_logs())
    assert "s3cret-value-0123456789" not in text
    assert text.count("[redacted]") >= 2


def test_console_format_for_the_local_loop(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("workflow_submit", fmt="console")
    try:
        with logs.bound(correlation_id="c1"):
            logs.audit("workflow.submitted", by="u1")
        out = capsys.readouterr().out
        assert out.startswith("[workflow_submit] info AUDIT workflow.submitted")
        assert "correlation_id=c1" in out
    finally:
        for handler in [h for h in logging.getLogger().handlers if getattr(h, "facteur", False)]:
            logging.getLogger().removeHandler(handler)


def test_every_secret_setting_is_known_to_the_scrubber() -> None:
    settings = load_settings(
        environ={
            "FACTEUR_DISCORD_BOT_TOKEN": "bot-0123456789",
            "FACTEUR_ARGO_TOKEN": "argo-0123456789",
            "FACTEUR_CALLBACK_TOKEN": "c" * 40,
            "FACTEUR_CALLBACK_TICK_TOKEN": "t" * 40,
            "FACTEUR_EVENTS_SIGNING_KEY": "e" * 40,
        }
    )
    assert sorted(secret_values(settings)) == sorted(
        ["bot-0123456789", "argo-0123456789", "c" * 40, "t" * 40, "e" * 40]
    )


def test_url_passwords_are_known_to_the_scrubber() -> None:
    settings = load_settings(
        environ={
            "FACTEUR_REDIS_URL": "redis://:s3cret%40password@redis:6379/0",
            "FACTEUR_ARGO_SERVER_URL": "https://argo:argo-password@argo:2746",
            "K_SINK": "http://broker.example/",  # no userinfo: nothing to scrub
        }
    )
    assert sorted(secret_values(settings)) == [
        "argo-password",
        "s3cret%40password",  # as written in the URL
        "s3cret@password",  # as the client sends it
    ]


def test_a_logged_url_is_scrubbed_of_its_password(capsys: pytest.CaptureFixture[str]) -> None:
    url = "redis://:s3cretpassword@redis:6379/0"
    settings = load_settings(environ={"FACTEUR_REDIS_URL": url})
    logs.configure("status_callback", secrets=secret_values(settings))
    try:
        logging.getLogger("facteur.x").error("cannot reach %s", url)
        logs.audit("x", url=url)
        out = capsys.readouterr().out
    finally:
        for handler in [h for h in logging.getLogger().handlers if getattr(h, "facteur", False)]:
            logging.getLogger().removeHandler(handler)
    assert "s3cretpassword" not in out
    assert out.count("redis://:[redacted]@redis:6379/0") >= 2  # the message and the field


# -- unexpected errors: the class and the message, scrubbed ------------------------------------

_SECRET = "s3cret-value-0123456789"


def test_an_unhandled_error_in_a_cloudevent_function_is_logged_whole_but_scrubbed(
    json_logs,
) -> None:
    import flask

    from facteur import web

    app = flask.Flask("guarded")
    web.install_error_handlers(app)

    @app.post("/")
    def fails() -> str:
        raise RuntimeError(f"cannot use {_SECRET} here")

    response = app.test_client().post("/")
    assert (response.status_code, response.get_json()) == (500, {"error": "internal error"})
    [line] = [line for line in json_logs() if line["message"].startswith("unhandled")]
    assert line["message"] == "unhandled RuntimeError: cannot use [redacted] here in /"
    assert line["level"] == "error"


def test_an_unhandled_error_in_an_http_function_is_logged_whole_but_scrubbed(json_logs) -> None:
    import asyncio

    from starlette.requests import Request

    from facteur import asgi

    @asgi.guarded
    async def handler(request: Request) -> object:
        raise KeyError(f"no {_SECRET}")

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    response = asyncio.run(handler(Request(scope)))
    assert response.status_code == 500 and _SECRET.encode() not in response.body
    [line] = [line for line in json_logs() if line["message"].startswith("unhandled")]
    assert line["message"] == "unhandled KeyError: 'no [redacted]' in /"


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ValueError(), "ValueError"),
        (ValueError("x" * 600), "ValueError: " + "x" * 499 + "…"),
        # OSError picks its subclass by errno.
        (OSError(111, "refused"), "ConnectionRefusedError: [Errno 111] refused"),
    ],
)
def test_an_error_is_described_by_its_class_and_message(exc: BaseException, text: str) -> None:
    from facteur import asgi, web

    assert web.described(exc) == asgi.described(exc) == text


def test_a_store_error_names_the_connection_but_never_a_commands_arguments(
    redis_url: str,
) -> None:
    from facteur.adapters.sessions import SessionStore
    from facteur.decisions.journey import DispatchResult
    from facteur.errors import SessionStoreError
    from tests.helpers.servers import free_port

    port = free_port()
    down = SessionStore.from_url(f"redis://:{_SECRET}@127.0.0.1:{port}/0", ttl_seconds=60)
    with pytest.raises(SessionStoreError) as refused:
        down.get("c1")
    # Where it could not connect, which a password never is part of.
    assert str(refused.value).startswith("reading a session: ConnectionError: ")
    assert f"127.0.0.1:{port}" in str(refused.value) and _SECRET not in str(refused.value)
    # A command's error quotes the command (a pipeline's: the SET of the token too).
    store = SessionStore.from_url(redis_url, ttl_seconds=60)
    store._redis.set("facteur:pending", "not a sorted set")
    run = DispatchResult(
        correlation_id="c-wrongtype",
        interaction_id="1300000000000000001",
        command="plan",
        user_id="1300000000000000002",
        workflow_name="plan-1",
    )
    try:
        with pytest.raises(SessionStoreError) as wrong:
            store.save(run, f"itok-{_SECRET}", time.time() + 60)
        assert str(wrong.value) == "saving a session: ResponseError"
    finally:
        store._redis.delete("facteur:pending")
        store._redis.close()


def test_a_sink_error_names_the_socket_problem(json_logs) -> None:
    from facteur.adapters import sink
    from facteur.errors import SinkError
    from tests.helpers.servers import free_port

    with pytest.raises(SinkError) as refused:
        sink.send(f"http://127.0.0.1:{free_port()}/", {}, b"{}", 1.0)
    assert str(refused.value).startswith("sink unreachable: ConnectionRefusedError: [Errno 111]")
