"""The Flask side of functions-framework: JSON answers, bounded bodies, and clean errors.

functions-framework answers an unhandled exception with a 500 carrying the exception text, and a
body that is not a CloudEvent with a 400 echoing the request. Neither may reach a caller.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, NoReturn, TypeVar

import flask
from werkzeug.exceptions import HTTPException

from facteur.errors import EventRejected, InvalidInteraction

T = TypeVar("T")

log = logging.getLogger("facteur")

# An event carries one interaction (Discord's bodies are far below 1 MiB) and facteur's fields;
# an exit handler's report or a tick is smaller still.
EVENT_MAX_BYTES = 2 * 1024 * 1024


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> flask.Response:
    return json_response(status, {"error": message}, headers)


def abort(status: int, message: str) -> NoReturn:
    """Stop handling with a JSON error (usable inside CloudEvent functions)."""
    flask.abort(error(status, message))


def too_large(limit: int) -> flask.Response:
    # A streamed body stops functions-framework from draining the oversized request after us.
    def body() -> Iterator[bytes]:
        yield json.dumps({"error": f"body exceeds {limit} bytes"}).encode()

    return flask.Response(
        body(), status=413, mimetype="application/json", headers={"Connection": "close"}
    )


def install_error_handlers(app: flask.Flask | None = None) -> None:
    """Answer every failure with a short JSON body and never a traceback or an echo."""
    target = app or flask.current_app

    def on_http(exc: HTTPException) -> Any:
        if exc.response is not None:  # raised by abort() above: already ours
            return exc.response
        return error(exc.code or 400, _http_message(exc.code or 400))

    def on_exception(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return on_http(exc)
        if flask.request.endpoint == "cloudevent" and not flask.g.get("facteur_reached"):
            # Failed inside functions-framework's CloudEvent parsing, before our code ran.
            return error(400, "body is not a valid CloudEvent")
        # Its class and message for the logs (every line is scrubbed of configured secrets);
        # the caller learns nothing of it.
        log.error("unhandled %s in %s", described(exc), flask.request.path)
        return error(500, "internal error")

    target.register_error_handler(HTTPException, on_http)
    target.register_error_handler(Exception, on_exception)


def described(exc: BaseException, limit: int = 500) -> str:
    """`ClassName: message` (the class alone when there is none), for a log line only."""
    text = str(exc)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def limit_body(max_body: int = EVENT_MAX_BYTES, app: flask.Flask | None = None) -> None:
    """Refuse bodies over `max_body` with 413 before functions-framework reads them whole."""
    target = app or flask.current_app

    def check() -> flask.Response | None:
        request = flask.request
        length = request.content_length
        if length is not None:
            return too_large(max_body) if length > max_body else None
        # Chunked: read at most one byte past the limit, then hand the framework what was read.
        environ = request.environ
        data = environ["wsgi.input"].read(max_body + 1)
        if len(data) > max_body:
            return too_large(max_body)
        environ["wsgi.input"] = io.BytesIO(data)
        environ["CONTENT_LENGTH"] = str(len(data))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ.pop("wsgi.input_terminated", None)
        return None

    target.before_request(check)


def _http_message(code: int) -> str:
    return {
        400: "body is not a valid CloudEvent",
        404: "not found",
        405: "method not allowed",
        413: "body too large",
    }.get(code, "request failed")


def open_or_abort(
    open_event: Callable[[Any, Collection[str]], dict[str, Any]],
    event: Any,
    accept: Collection[str],
) -> dict[str, Any]:
    """An authenticated event's data; a forged or foreign event stops here with a 4xx."""
    flask.g.facteur_reached = True
    try:
        return open_event(event, accept)
    except EventRejected as err:
        abort(err.status, err.reason)


def parsed(parse: Callable[[dict[str, Any]], T], data: dict[str, Any]) -> T:
    """What an authenticated event carries; 400 when its data is not what the type promises."""
    try:
        return parse(data)
    except InvalidInteraction as err:
        abort(400, str(err))


DEAD_LETTER_PATH = "/dead-letter"


def dead_letter() -> bool:
    """Whether Knative sent this event to the dead-letter path (the Triggers' deadLetterSink)."""
    return flask.request.path.rstrip("/") == DEAD_LETTER_PATH


def finish(status: int, result: str) -> None:
    """End a CloudEvent function: 2xx acknowledges, 5xx asks Knative to redeliver."""
    if status >= 300:
        abort(status, result)


def add_health(checks: Mapping[str, Callable[[], bool]], app: flask.Flask | None = None) -> None:
    """GET /healthz (liveness) and GET /readyz (this function's dependencies) on any function."""
    from facteur.health import Readiness

    target = app or flask.current_app
    readiness = Readiness(checks)

    def ready() -> flask.Response:
        status, body = readiness()
        return json_response(status, body)

    target.add_url_rule("/healthz", "facteur_healthz", alive, methods=["GET"])
    target.add_url_rule("/readyz", "facteur_readyz", ready, methods=["GET"])


def prepare(checks: Mapping[str, Callable[[], bool]]) -> None:
    """Set up the app a CloudEvent function's main.py is loaded into: clean errors, health, and
    every body bounded before functions-framework reads it."""
    install_error_handlers()
    add_health(checks)
    limit_body()


def alive() -> flask.Response:
    """GET /healthz: a cheap liveness check."""
    return json_response(200, {"status": "ok"})
