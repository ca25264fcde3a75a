"""The platform floor: a functions-framework HTTP function that does nothing but answer.

bench/bench_verify.py serves it beside interaction_verify, so the difference between the two
is what facteur itself costs.
"""

import flask
import functions_framework

# Built once: the floor should cost the framework and nothing of ours.
PONG = b'{"type":1}'


@functions_framework.http
def empty(request: flask.Request) -> flask.Response:
    return flask.Response(PONG, status=200, mimetype="application/json")
