"""interaction_verify: Discord's interactions endpoint (HTTP).

Checks the Ed25519 signature, answers PING, refuses at once what the role policy or the catalog
forbids, and defers the rest after handing it to K_SINK as a signed CloudEvent.
"""

import flask
import functions_framework

from facteur import web
from facteur.config import boot
from facteur.flows.interaction_verify import from_settings
from facteur.health import checks_for

REQUIRED = ("discord.public_key", "events.signing_key", "k_sink")
INGRESS, CHECKS = boot(
    "interaction_verify",
    REQUIRED,
    lambda s: (from_settings(s), checks_for(s, sink=True)),
)
MAX_BODY = INGRESS.max_body_bytes
web.install_error_handlers()
web.add_health(CHECKS)


@functions_framework.http
def interaction_verify(request: flask.Request) -> flask.Response:
    if request.method == "GET":
        return web.alive()
    if request.method != "POST":
        return web.error(405, "method not allowed", {"Allow": "GET, POST"})
    body = web.read_body(request, MAX_BODY)
    if body is None:
        return web.too_large(MAX_BODY)
    answer = INGRESS.handle(request.headers, body)
    return web.json_response(answer.status, answer.body)
