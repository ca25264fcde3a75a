"""The platform floor in ASGI mode: a functions-framework function that does nothing but answer.

bench_peers and bench_verify serve it beside interaction_verify when facteur is served with
`--asgi`, so the difference between the two is what facteur itself costs.
"""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

# Built once: the floor should cost the framework and nothing of ours.
PONG = b'{"type":1}'


@functions_framework.aio.http
async def empty(request: Request) -> Response:
    await request.body()
    return Response(PONG, status_code=200, media_type="application/json")
