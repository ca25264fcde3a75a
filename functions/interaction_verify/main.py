"""interaction_verify: Discord's interactions endpoint (HTTP, served with `--asgi`).

Checks the Ed25519 signature, answers PING, refuses at once what the role policy or the catalog
forbids, and defers the rest after handing it to K_SINK as a signed CloudEvent.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from facteur import asgi, bootstrap, serving
from facteur.flows.outcome import Answer

FUNCTION = bootstrap.interaction_verify()
EDGE = asgi.Edge(FUNCTION.checks)
serving.install_header_deadline()


@functions_framework.aio.http
@asgi.guarded
async def interaction_verify(request: Request) -> Response:
    body = await EDGE.posted(request, FUNCTION.max_body_bytes)
    if isinstance(body, Response):
        return body
    # Reading, verifying and deciding are quick CPU work; the hand-off to K_SINK is awaited.
    # The whole interaction stays on the event loop, and no thread waits on a slow sink.
    step = FUNCTION.flow.read(request.headers, body)
    if isinstance(step, Answer):
        answer = step
    else:
        answer = await FUNCTION.flow.hand_off_async(step, FUNCTION.deliver_async)
    return asgi.json_response(answer.status, answer.body)
