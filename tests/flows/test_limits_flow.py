"""Cooldowns and quotas at command_route: spent per user then per guild, once per interaction,
in a sliding window; refused privately with when to try again; not enforced when Redis is down.
And the option values a run was asked with, remembered for autocomplete."""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from facteur.adapters.sessions import SessionStore
from facteur.decisions import render
from facteur.decisions.catalog import Autocomplete, Catalog, Limits
from facteur.decisions.journey import Journey
from facteur.decisions.limits import Limit, Rate, Refused
from tests.helpers.chain import FOLLOW_UP, Chain, journey
from tests.helpers.discord_fake import ORIGINAL
from tests.helpers.fakes import MemoryStore, World, catalog
from tests.helpers.servers import free_port
from tests.helpers.support import GUILD, USER

OTHER_USER = "800000000000000101"


def limited(*, name: str = "plan", **limits: str) -> Catalog:
    """The shipped catalog, with these limits on one command."""
    shipped = catalog()
    commands = [
        c.model_copy(update={"limits": Limits(**limits)}) if c.name == name else c
        for c in shipped.commands
    ]
    return shipped.model_copy(update={"commands": commands})


def by(
    user_id: str = USER, name: str = "plan", options: list[dict[str, Any]] | None = None
) -> Journey:
    """A command of this user's, with a token of its own (Discord gives each interaction one)."""
    trip = journey(name, options, roles=[] if name == "status" else None)
    token = f"interaction-token-{uuid.uuid4().hex}"
    return replace(trip, call=replace(trip.call, user_id=user_id, token=token))


class Clock:
    """command_route's clock, from the journeys' own now (their tokens live by it)."""

    def __init__(self) -> None:
        self.start = self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world() -> World:
    return World()


def _said_privately(world: World, trip: Journey) -> str:
    deleted, said = [s for s in world.discord.sent if s.token == trip.call.token]
    assert (deleted.route, said.route, said.message["flags"]) == ("delete", "follow_up", 64)
    return said.content


# -- per user, per guild, in a sliding window -------------------------------------------------


def test_a_user_over_their_limit_is_refused_privately_with_when_again(
    world: World, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "facteur.audit")
    router = world.router(catalog=limited(per_user="2/10m"), clock=clock)
    first, second, third = by(USER), by(USER), by(USER)
    assert router.handle(first).result == "requested"
    clock.now += 60
    assert router.handle(second).result == "requested"
    clock.now += 60
    outcome = router.handle(third)
    assert (outcome.status, outcome.result) == (200, "limited")
    said = _said_privately(world, third)
    # Again when the first run leaves the window: ten minutes after it.
    again = math.ceil(clock.start + 600)
    assert said == render.limited("plan", Refused(Limit("user", "", Rate(2, 600)), again))
    assert f"<t:{again}:R>" in said
    assert len(world.sink.events) == 2
    [audit] = [r for r in caplog.records if r.getMessage() == "command.limited"]
    assert [getattr(audit, k) for k in ("scope", "retry_at", "by")] == ["user", again, USER]
    # Another user is not held back by this one's limit.
    assert router.handle(by(OTHER_USER)).result == "requested"


def test_the_window_slides(world: World, clock: Clock) -> None:
    router = world.router(catalog=limited(per_user="1/1m"), clock=clock)
    assert router.handle(by(USER)).result == "requested"
    clock.now += 59.9
    assert router.handle(by(USER)).result == "limited"
    clock.now += 0.1
    assert router.handle(by(USER)).result == "requested"
    assert len(world.sink.events) == 2


def test_a_redelivered_command_is_counted_once(world: World, clock: Clock) -> None:
    router = world.router(catalog=limited(per_user="1/10m"), clock=clock)
    trip = by(USER)
    # Nothing could take or say it: Knative redelivers, and the redelivery is not over the limit.
    world.sink.down = world.discord.down = True
    assert router.handle(trip).status == 503
    world.sink.down = world.discord.down = False
    clock.now += 5
    assert router.handle(trip).result == "requested"
    assert router.handle(by(USER)).result == "limited"


def test_a_guild_limit_counts_everyone(world: World, clock: Clock) -> None:
    router = world.router(catalog=limited(per_user="5/1h", per_guild="2/1h"), clock=clock)
    assert [router.handle(by(u)).result for u in (USER, OTHER_USER)] == ["requested"] * 2
    clock.now += 10
    third = by("800000000000000102")
    assert router.handle(third).result == "limited"
    assert "on this server" in _said_privately(world, third)
    assert f"<t:{math.ceil(clock.start + 3600)}:R>" in _said_privately(world, third)
    # The guild's refusal kept the user's count (no refund; command_route says why): the
    # user's own limit counted it.
    assert world.store.spend(f"limit:plan:user:{USER}", "probe", 5, 3600, clock.now) is None


def test_each_command_has_its_own_limits(world: World, clock: Clock) -> None:
    router = world.router(catalog=limited(per_user="1/1h"), clock=clock)
    review = [
        {"name": "project", "type": 3, "value": "f"},
        {"name": "artifact", "type": 3, "value": "a"},
    ]
    assert router.handle(by(USER)).result == "requested"
    assert router.handle(by(USER, "review", review)).result == "requested"
    assert router.handle(by(USER)).result == "limited"


def test_a_refused_command_is_not_counted_against_its_limit(world: World, clock: Clock) -> None:
    router = world.router(catalog=limited(per_user="1/1h"), clock=clock)
    trip = by(USER)
    no_role = replace(trip, call=replace(trip.call, member_roles=[]))
    assert router.handle(no_role).result == "refused"
    assert router.handle(by(USER)).result == "requested"


@pytest.mark.parametrize("failing", ["down", "spend"])
def test_redis_down_the_limit_is_not_enforced(
    failing: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(store=MemoryStore())
    if failing == "down":
        world.store.down = True
    else:
        world.store.fail("spend")
    router = world.router(catalog=limited(per_user="1/1h", per_guild="1/1h"), clock=clock)
    assert [router.handle(by(USER)).result for _ in range(3)] == ["requested"] * 3
    assert "limits unavailable" in caplog.text
    assert world.discord.sent == []


def test_a_real_redis_that_cannot_be_reached_limits_nothing(world: World) -> None:
    down = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", 60)
    router = world.router(store=down, catalog=limited(per_user="1/1h"))
    assert [router.handle(by()).result for _ in range(2)] == ["requested"] * 2


def test_a_builtin_may_be_limited_too_and_its_refusal_is_private(
    world: World, clock: Clock
) -> None:
    # /status is ephemeral: its "thinking…" is private already; the refusal takes the one path.
    router = world.router(catalog=limited(name="status", per_user="1/1m"), clock=clock)
    assert router.handle(by(name="status", options=[])).result == "status"
    again = by(name="status", options=[])
    assert router.handle(again).result == "limited"
    assert "`/status` is limited to 1 run per minute" in _said_privately(world, again)


# -- 50 at once, on a real Redis ----------------------------------------------------------------


def test_cooldowns_hold_under_50_concurrent_commands_from_one_user(store: SessionStore) -> None:
    """Exactly the limit pass: the Router on a real Redis, 50 commands of one user at once."""
    world = World(store=store)
    router = world.router(catalog=limited(per_user="4/10m"))
    trips, start = [by(USER) for _ in range(50)], threading.Barrier(50)

    def handle(trip: Journey) -> str:
        start.wait()
        return router.handle(trip).result

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(handle, trips))
    assert (results.count("requested"), results.count("limited")) == (4, 46)
    assert len(world.sink.events) == 4
    assert len(world.discord.whispers) == 46
    # Each redelivered now: the four still pass, the others are done (said once each).
    assert [router.handle(trip).result for trip in trips].count("duplicate") == 50


# -- through the real clients, validated against Discord's spec --------------------------------


def test_a_limited_command_is_refused_privately_as_discord_takes_it(chain: Chain) -> None:
    chain.router.catalog = limited(per_user="1/10m")
    assert chain.route(by()).result == "requested"
    trip = by()
    assert chain.route(trip).result == "limited"
    assert chain.discord.operations() == [f"DELETE {ORIGINAL}", " ".join(FOLLOW_UP)]
    [deleted], [said] = chain.discord.to("DELETE", ORIGINAL), chain.discord.to(*FOLLOW_UP)
    assert deleted.params["webhook_token"] == said.params["webhook_token"] == trip.call.token
    assert deleted.json is None and "Authorization" not in deleted.headers
    assert said.json["flags"] == 64
    assert said.json["allowed_mentions"] == {"parse": []}
    assert "`/plan` is limited to 1 run per 10 minutes for each person" in said.json["content"]
    assert ":R>." in said.json["content"]
    assert len(chain.sent) == 1


# -- the values a run was asked with, for autocomplete -------------------------------------------


def _recent_project() -> Catalog:
    """The shipped catalog, where /plan's project suggests what the guild used lately."""
    shipped = catalog()
    plan = shipped.get("plan")
    assert plan is not None
    options = [
        o.model_copy(update={"autocomplete": Autocomplete(source="recent")})
        if o.name == "project"
        else o
        for o in plan.options
    ]
    commands = [
        plan.model_copy(update={"options": options}) if c.name == "plan" else c
        for c in shipped.commands
    ]
    return shipped.model_copy(update={"commands": commands})


PLAN = [
    {"name": "objective", "type": 3, "value": "ship it"},
    {"name": "project", "type": 3, "value": "facteur"},
]


def test_a_started_command_remembers_its_recent_values(world: World, clock: Clock) -> None:
    router = world.router(catalog=_recent_project(), clock=clock)
    assert router.handle(by(options=PLAN)).result == "requested"
    assert world.store.recent_values(GUILD, "plan", "project", 5) == ["facteur"]
    # Only the options that suggest recent values: the objective is not kept for nothing.
    assert world.store.recent_values(GUILD, "plan", "objective", 5) == []
    other = [PLAN[0], {"name": "project", "type": 3, "value": "bench"}]
    clock.now += 1
    router.handle(by(options=other))
    assert world.store.recent_values(GUILD, "plan", "project", 5) == ["bench", "facteur"]


def test_values_are_not_remembered_for_what_did_not_start(world: World) -> None:
    world.sink.down = True
    assert world.router(catalog=_recent_project()).handle(by(options=PLAN)).result == "failed"
    assert world.store.recent_values(GUILD, "plan", "project", 5) == []


def test_remembering_is_best_effort(world: World) -> None:
    world.store.fail("remember_values")
    trip = by(options=PLAN)
    assert world.router(catalog=_recent_project()).handle(trip).result == "requested"
    assert len(world.sink.events) == 1 and world.discord.sent == []
