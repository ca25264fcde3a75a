"""status_callback: Argo exit handlers report a run's outcome here (HTTP, served with `--asgi`).

A POST with `Authorization: Bearer <callback.token>` and the callback body reports one run. A
Knative PingSource tick (a CloudEvent whose data carries callback.tick_token) makes it check the
runs still pending against Argo, for workflows whose exit handler never ran.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from facteur import asgi, bootstrap, callers, serving, telemetry, web
from facteur.decisions.callback import parse_report
from facteur.errors import InvalidReport

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
        if not callers.tick_token_matches(request.headers, body, FUNCTION.tick_token):
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
