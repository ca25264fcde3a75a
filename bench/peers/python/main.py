"""bench_peers' Python peer: a Discord interactions endpoint as PyPI's discord-interactions shapes
it, a Flask view behind `verify_key_decorator`, served by functions-framework with its defaults.

The decorator checks the Ed25519 signature and answers PING with PONG itself; the view defers an
APPLICATION_COMMAND (type 5) and hands it nowhere. It runs in the peers' own virtualenv
(bench/peers/requirements.txt), never in facteur's.
"""

import os

import flask
import functions_framework
from discord_interactions import InteractionResponseType, InteractionType, verify_key_decorator

PUBLIC_KEY = os.environ["DISCORD_PUBLIC_KEY"]


@functions_framework.http
@verify_key_decorator(PUBLIC_KEY)
def python_peer(request: flask.Request) -> flask.Response | tuple[flask.Response, int]:
    payload = request.get_json(silent=True) or {}
    if payload.get("type") == InteractionType.APPLICATION_COMMAND:
        return flask.jsonify({"type": InteractionResponseType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE})
    return flask.jsonify({"error": "unknown interaction type"}), 400
