"""Every refusal command_route makes is said to the user alone: the deferred "thinking…" is
deleted, then an ephemeral follow-up says why. When Discord cannot be reached nothing is said
in the open and Knative redelivers; once the token is gone, the channel is the only way left."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
import requests

from facteur.decisions import render
from facteur.decisions.journey import Journey
from facteur.errors import DiscordError, TokenRejected
from tests.helpers.chain import CHANNEL_POST, EDIT, FOLLOW_UP, Chain, journey
from tests.helpers.discord_fake import ORIGINAL
from tests.helpers.fakes import World, catalog
from tests.helpers.support import ROLE_OTHER, USER


@pytest.fixture
def world() -> World:
    return World()


def denied(**extra: float) -> Journey:
    """A /plan its caller may not run, with a token of its own."""
    trip = journey("plan", roles=[ROLE_OTHER], **extra)
    return replace(trip, call=replace(trip.call, token=f"itok-{uuid.uuid4().hex}"))


SAID = "You can't run `/plan`"


def test_a_refusal_deletes_the_thinking_then_whispers(world: World) -> None:
    trip = denied()
    assert world.router().handle(trip).result == "refused"
    assert [(s.route, s.token) for s in world.discord.sent] == [
        ("delete", trip.call.token),
        ("follow_up", trip.call.token),
    ]
    [whisper] = world.discord.whispers
    assert whisper.startswith(SAID)
    assert world.discord.last.message["allowed_mentions"] == {"parse": []}


def test_an_ephemeral_command_takes_the_same_path(world: World) -> None:
    # Its "thinking…" is private already; deleting it too keeps one path for every refusal.
    shipped = catalog()
    commands = [c.model_copy(update={"ephemeral": True}) for c in shipped.commands]
    router = world.router(catalog=shipped.model_copy(update={"commands": commands}))
    assert router.handle(denied()).result == "refused"
    assert [s.route for s in world.discord.sent] == ["delete", "follow_up"]


@pytest.mark.parametrize("route", ["delete", "follow_up"])
def test_discord_unreachable_says_nothing_openly_and_the_redelivery_whispers(
    world: World, route: str
) -> None:
    trip, router = denied(), world.router()
    world.discord.fail(route)
    assert router.handle(trip).status == 503
    assert world.discord.edits == [] and world.discord.posts == []
    # Redelivered: the deferred reply may be gone already, which is fine; said once, privately.
    assert router.handle(trip).status == 200
    assert [w[: len(SAID)] for w in world.discord.whispers] == [SAID]
    assert world.discord.edits == [] and world.discord.posts == []
    assert router.handle(trip).result == "duplicate"


@pytest.mark.parametrize(
    "error",
    [
        TokenRejected(404, "POST …/webhooks: HTTP 404: Unknown Webhook"),
        DiscordError(400, "POST …/webhooks: HTTP 400: Invalid Form Body"),
    ],
    ids=["token-gone", "refused"],
)
def test_a_private_answer_discord_refuses_is_said_in_the_channel(
    world: World, error: DiscordError
) -> None:
    trip = denied()
    world.discord.fail("follow_up", error)
    assert world.router().handle(trip).status == 200
    # The deleted reply cannot be edited: the bot posts, naming the user, rather than be silent.
    [post] = world.discord.posts
    assert (post.channel_id, post.mention_user_id) == (trip.call.channel_id, USER)
    assert post.content.startswith(SAID)


def test_after_the_tokens_lifetime_the_refusal_is_posted(world: World) -> None:
    trip = denied(received_at=time.time() - 900)
    assert world.router().handle(trip).status == 200
    assert [s.route for s in world.discord.sent] == ["channel"]


def test_a_builtin_answer_still_edits_the_reply(world: World) -> None:
    assert world.router().handle(journey("status", [], roles=[])).result == "status"
    assert [s.route for s in world.discord.sent] == ["edit"]
    assert world.discord.last.content == render.NO_RECENT_RUNS


# -- through the real client, validated against Discord's spec -----------------------------------


def test_the_private_path_and_its_fallback_as_discord_takes_them(chain: Chain) -> None:
    trip = denied()
    # The follow-up's token is refused once the reply is deleted: the bot posts instead.
    chain.discord.queue(204).queue(404, {"message": "Unknown Webhook", "code": 10015})
    assert chain.route(trip).status == 200
    assert chain.discord.operations() == [
        f"DELETE {ORIGINAL}",
        " ".join(FOLLOW_UP),
        " ".join(EDIT),  # tell(): the deleted reply, 404 Unknown Message
        " ".join(CHANNEL_POST),
    ]
    [post] = chain.discord.to(*CHANNEL_POST)
    assert post.json["content"].startswith(f"<@{USER}> {SAID}")
    assert post.json["allowed_mentions"] == {"parse": [], "users": [USER]}


def test_discord_down_through_the_real_client_asks_for_redelivery(chain: Chain) -> None:
    for _ in range(4):
        chain.discord.queue_error(requests.ConnectionError("down"))
    trip = denied()
    assert chain.route(trip).status == 503
    assert chain.route(trip).status == 200
    follow_ups = chain.discord.to(*FOLLOW_UP)
    assert [r.json["flags"] for r in follow_ups] == [64]
    assert chain.discord.to(*EDIT) == [] and chain.discord.to(*CHANNEL_POST) == []
