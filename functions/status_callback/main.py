"""status_callback: Argo exit handlers report a run's outcome here (HTTP).

Placeholder until reporting lands: it authenticates the caller's bearer token in constant time,
then answers 501.
"""

import flask
import functions_framework

from facteur import web
from facteur.config import boot

TOKEN = boot("status_callback", ("callback.token",), lambda s: s.callback.token.get_secret_value())
web.install_error_handlers()
web.limit_body()


@functions_framework.http
def status_callback(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        return web.error(405, "method not allowed", {"Allow": "POST"})
    if not web.bearer_matches(request, TOKEN):
        return web.error(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
    return web.error(501, "status reporting is not implemented yet")
