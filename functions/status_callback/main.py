"""status_callback: Argo exit handlers report a run's outcome here (HTTP).

A POST with `Authorization: Bearer <callback.token>` and the callback body reports one run. A
Knative PingSource tick (a CloudEvent whose data carries callback.tick_token) makes it check the
runs still pending against Argo, for workflows whose exit handler never ran.
"""

import flask
import functions_framework

from facteur import bootstrap, telemetry, web
from facteur.decisions.callback import parse_report
from facteur.errors import InvalidReport

FUNCTION = bootstrap.status_callback()
web.prepare(FUNCTION.checks, events=True)


@functions_framework.http
def status_callback(request: flask.Request) -> flask.Response:
    if request.method == "GET":
        return web.alive()
    if request.method != "POST":
        return web.error(405, "method not allowed", {"Allow": "GET, POST"})
    if web.is_cloudevent(request):
        if not web.tick_token_matches(request, FUNCTION.tick_token):
            return web.error(401, "missing or wrong tick token")
        with telemetry.span("status_callback.tick"):
            outcome = FUNCTION.flow.tick()
        return web.json_response(outcome.status, outcome.body)
    if not web.bearer_matches(request, FUNCTION.token):
        return web.error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    try:
        report = parse_report(request.get_data(cache=True))
    except InvalidReport as err:
        return web.error(400, str(err))
    with telemetry.span("status_callback", workflow=report.name):
        outcome = FUNCTION.flow.report(report)
    return web.json_response(outcome.status, outcome.body)
