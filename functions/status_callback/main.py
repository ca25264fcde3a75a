"""status_callback: Argo exit handlers report a run's outcome here (HTTP, served with `--asgi`).

A POST with `Authorization: Bearer <callback.token>` and the callback body reports one run. A
Knative PingSource tick (a CloudEvent whose data carries callback.tick_token) makes it check the
runs still pending against Argo, for workflows whose exit handler never ran. A Knative
ApiServerSource event about one workflow (a nudge, unauthenticated) makes it read that run from
Argo, and report it only if Argo shows it ended (decisions/nudge.py).
"""

import functools
import logging

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from facteur import asgi, bootstrap, callers, serving, telemetry, web
from facteur.decisions import nudge
from facteur.decisions.callback import parse_report
from facteur.errors import InvalidNudge, InvalidReport

log = logging.getLogger("facteur.status_callback")

FUNCTION = bootstrap.status_callback()
EDGE = asgi.Edge(FUNCTION.checks)
serving.install_header_deadline()


@functions_framework.aio.http
@asgi.guarded
async def status_callback(request: Request) -> Response:
    body = await EDGE.posted(request, web.EVENT_MAX_BYTES)
    if isinstance(body, Response):
        return body
    if callers.is_cloudevent(request.headers):
        if nudge.is_nudge(request.headers.get, body):
            return await _nudged(request, body)
        if not callers.tick_token_matches(request.headers, body, FUNCTION.tick_token):
            # Else reconciliation silently never runs. Only why, never the token itself.
            log.warning("reconciliation tick refused (401): %s", _tick_refusal())
            return asgi.error(401, "missing or wrong tick token")
        with telemetry.span("status_callback.tick"):
            answer = await asgi.blocking(FUNCTION.flow.tick)
        return asgi.json_response(answer.status, answer.body)
    if not callers.bearer_matches(request.headers, FUNCTION.token):
        return asgi.error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    try:
        report = parse_report(body)
    except InvalidReport as err:
        return asgi.error(400, str(err))
    with telemetry.span("status_callback", workflow=report.name):
        answer = await asgi.blocking(FUNCTION.flow.report, report)
    return asgi.json_response(answer.status, answer.body)


def _tick_refusal() -> str:
    setting = "callback.tick_token (FACTEUR_CALLBACK_TICK_TOKEN)"
    if FUNCTION.tick_token is None:
        return f"{setting} is not set, so no tick is taken"
    return (
        f"the event is not a PingSource tick carrying {setting}; "
        "check the PingSource's data against the Secret"
    )


async def _nudged(request: Request, body: bytes) -> Response:
    # No signature: strictly read, then only ever a reason to read the run from Argo.
    try:
        found = nudge.read_http(request.headers.get, body, namespace=FUNCTION.flow.namespace)
    except InvalidNudge as err:
        return asgi.error(400, str(err))
    if isinstance(found, nudge.NotOurs):
        return asgi.json_response(202, {"result": "ignored", "reason": found.reason})
    with telemetry.span("status_callback.nudge", workflow=found.name):
        look = functools.partial(FUNCTION.flow.nudge, deleted=found.deleted)
        answer = await asgi.blocking(look, found.namespace, found.name)
    return asgi.json_response(answer.status, answer.body)
