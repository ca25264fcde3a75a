"""status_callback: Argo exit handlers report a run's outcome here (HTTP).

A POST with `Authorization: Bearer <callback.token>` and the callback body reports one run. A
Knative PingSource tick (a CloudEvent whose data carries callback.tick_token) makes it check the
runs still pending against Argo, for workflows whose exit handler never ran.
"""

import flask
import functions_framework

from facteur import telemetry, web
from facteur.config import boot
from facteur.decisions.callback import parse_report
from facteur.errors import InvalidReport
from facteur.flows.status_callback import from_settings
from facteur.health import checks_for

REQUIRED = ("callback.token", "redis.url", "discord.application_id")
REPORTER, CHECKS, TOKEN, TICK_TOKEN = boot(
    "status_callback",
    REQUIRED,
    lambda s: (
        from_settings(s),
        checks_for(s, redis=True, argo=True, discord=True),
        s.callback.token.get_secret_value(),
        s.callback.tick_token.get_secret_value() if s.callback.tick_token else None,
    ),
)
web.install_error_handlers()
web.add_health(CHECKS)
web.limit_body()


@functions_framework.http
def status_callback(request: flask.Request) -> flask.Response:
    if request.method == "GET":
        return web.alive()
    if request.method != "POST":
        return web.error(405, "method not allowed", {"Allow": "GET, POST"})
    if web.is_cloudevent(request):
        if not web.tick_token_matches(request, TICK_TOKEN):
            return web.error(401, "missing or wrong tick token")
        with telemetry.span("status_callback.tick"):
            outcome = REPORTER.tick()
        return web.json_response(outcome.status, outcome.body)
    if not web.bearer_matches(request, TOKEN):
        return web.error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    try:
        report = parse_report(request.get_data(cache=True))
    except InvalidReport as err:
        return web.error(400, str(err))
    with telemetry.span("status_callback", workflow=report.name):
        outcome = REPORTER.report(report)
    return web.json_response(outcome.status, outcome.body)
