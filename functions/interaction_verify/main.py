"""interaction_verify: Discord's interactions endpoint (HTTP).

Checks the Ed25519 signature, answers PING, refuses at once what the role policy or the catalog
forbids, and defers the rest after handing it to K_SINK as a signed CloudEvent.
"""

import flask
import functions_framework

from facteur import bootstrap, web

FUNCTION = bootstrap.interaction_verify()
web.prepare(FUNCTION.checks)


@functions_framework.http
def interaction_verify(request: flask.Request) -> flask.Response:
    if request.method == "GET":
        return web.alive()
    if request.method != "POST":
        return web.error(405, "method not allowed", {"Allow": "GET, POST"})
    body = web.read_body(request, FUNCTION.max_body_bytes)
    if body is None:
        return web.too_large(FUNCTION.max_body_bytes)
    answer = FUNCTION.flow.handle(request.headers, body)
    return web.json_response(answer.status, answer.body)
