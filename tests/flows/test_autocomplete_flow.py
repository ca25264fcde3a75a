"""interaction_verify's autocomplete on the in-memory ports: ranked suggestions from the
catalog, the guild's recent values and the caller's runs, within the budget, for callers who
may run the command; the store built only when a lookup needs it, and its failures answered
with no suggestions."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import yaml

from facteur.config import DEFAULT_CATALOG_FILE
from facteur.decisions.catalog import Catalog, parse_catalog
from facteur.flows.interaction_verify import Ingress, Lookup
from tests.helpers.contracts import assert_interaction_response
from tests.helpers.fakes import MemoryStore, World
from tests.helpers.support import GUILD, ROLE_OTHER, command, encode, run_record, sign

NOW = 1_800_000_000.0
ENVIRONMENTS = [f"env-{name}" for name in ("prod", "preprod", "staging", "dev", "qa")]


def asking_catalog() -> Catalog:
    """The shipped catalog with a suggestion source on three options."""
    data = yaml.safe_load(DEFAULT_CATALOG_FILE.read_text())
    commands = {entry["name"]: entry for entry in data["commands"]}
    commands["plan"]["options"][1]["autocomplete"] = {"source": "recent"}
    review = commands["review"]["options"]
    review[3]["autocomplete"] = {"source": "values", "values": ENVIRONMENTS, "shown": 3}
    commands["status"]["options"][0]["autocomplete"] = {"source": "runs"}
    return parse_catalog(data)


class Factory:
    """A store factory that counts its calls, and can fail or hand out another store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls = 0
        self.fails = False

    def __call__(self) -> Any:
        self.calls += 1
        if self.fails:
            raise RuntimeError("no redis here")
        return self.store


@pytest.fixture
def world() -> World:
    return World(store=MemoryStore(clock=lambda: NOW))


@pytest.fixture
def factory(world: World) -> Factory:
    return Factory(world.store)


def _ingress(world: World, factory: Any, **overrides: Any) -> Ingress:
    options = {"catalog": asking_catalog(), "store": factory, "clock": lambda: NOW}
    return world.ingress(**(options | overrides))


def typing(
    name: str, option: str, typed: str, *, roles: list[str] | None = None, **others: str
) -> dict[str, Any]:
    """An AUTOCOMPLETE interaction while `option` of /`name` is being typed."""
    options: list[dict[str, Any]] = [
        {"name": key, "type": 3, "value": value} for key, value in others.items()
    ]
    options.append({"name": option, "type": 3, "value": typed, "focused": True})
    payload = command(name, options, roles=roles)
    payload["type"] = 4
    return payload


def _post(ingress: Ingress, payload: Any) -> Any:
    body = encode(payload)
    return ingress.handle(sign(body, int(NOW)), body)


def suggested(answer: Any) -> list[str]:
    assert answer.status == 200
    assert_interaction_response(answer.body)
    assert answer.body["type"] == 8
    return [choice["value"] for choice in answer.body["data"]["choices"]]


def test_values_from_the_catalog_are_ranked_without_the_store(world: World, factory) -> None:
    ingress = _ingress(world, factory)
    answer = _post(ingress, typing("review", "deadline", "PROD", project="x"))
    assert suggested(answer) == ["env-prod", "env-preprod"]
    # `shown` caps the answer; nothing typed yet: the catalog's first ones.
    assert suggested(_post(ingress, typing("review", "deadline", ""))) == ENVIRONMENTS[:3]
    assert factory.calls == 0
    assert world.sink.events == []


def test_recent_values_of_this_guild_are_ranked_most_recent_first(world: World, factory) -> None:
    for at, project in enumerate(["facteur", "other", "fac-two", "legacy-fac", "facteur"]):
        world.store.remember_values(GUILD, "plan", {"project": project}, NOW + at)
    world.store.remember_values("800000000000000009", "plan", {"project": "fac-elsewhere"}, NOW)
    ingress = _ingress(world, factory)
    read = ingress.read(sign(body := encode(typing("plan", "project", "fac")), int(NOW)), body)
    assert isinstance(read, Lookup)  # the store is waited for off the event loop
    assert suggested(ingress.hand_off(read)) == ["facteur", "fac-two", "legacy-fac"]
    assert suggested(_post(ingress, typing("plan", "project", ""))) == [
        "facteur",
        "legacy-fac",
        "fac-two",
        "other",
    ]
    assert factory.calls == 1  # built once, on first use
    assert world.sink.events == []


def test_runs_are_the_callers_own_in_this_guild(world: World, factory) -> None:
    for at, name in enumerate(["plan-100", "review-200", "plan-300"]):
        world.store.save(run_record(workflow_name=name, received_at=NOW + at), started=True)
    world.store.save(
        run_record(workflow_name="plan-400", user_id="800000000000000999"), started=True
    )
    ingress = _ingress(world, factory)
    assert suggested(_post(ingress, typing("status", "workflow", "plan"))) == [
        "plan-300",
        "plan-100",
    ]
    assert suggested(_post(ingress, typing("status", "workflow", ""))) == [
        "plan-300",
        "review-200",
        "plan-100",
    ]


def test_the_async_path_answers_the_same(world: World, factory) -> None:
    world.store.remember_values(GUILD, "plan", {"project": "facteur"}, NOW)
    ingress = _ingress(world, factory)
    body = encode(typing("plan", "project", "f"))
    step = ingress.read(sign(body, int(NOW)), body)
    assert isinstance(step, Lookup)

    async def nothing(*_: Any) -> None:
        raise AssertionError("an autocomplete hands nothing off")

    answer = asyncio.run(ingress.hand_off_async(step, nothing))
    assert suggested(answer) == ["facteur"]


@pytest.mark.parametrize(
    "payload",
    [
        typing("plan", "project", "fa", roles=[ROLE_OTHER]),  # may not run /plan
        typing("deploy", "project", "fa"),  # no such command
        typing("plan", "objective", "fa"),  # an option without suggestions
        typing("plan", "colour", "fa"),  # no such option
    ],
    ids=["denied", "unknown-command", "no-source", "unknown-option"],
)
def test_no_suggestions_for_what_the_caller_may_not_or_cannot_ask(
    world: World, factory, payload: dict[str, Any]
) -> None:
    world.store.remember_values(GUILD, "plan", {"project": "facteur"}, NOW)
    assert suggested(_post(_ingress(world, factory), payload)) == []
    assert factory.calls == 0  # the store is not even built


def test_a_direct_message_gets_no_suggestions(world: World, factory) -> None:
    payload = typing("plan", "project", "")
    payload.pop("guild_id")
    payload["user"] = payload.pop("member")["user"]
    assert suggested(_post(_ingress(world, factory), payload)) == []


@pytest.mark.parametrize("failure", ["down", "factory", "none"])
def test_a_failing_store_answers_no_suggestions(world: World, factory, failure: str) -> None:
    world.store.remember_values(GUILD, "plan", {"project": "facteur"}, NOW)
    if failure == "down":
        world.store.down = True
    factory.fails = failure == "factory"
    ingress = _ingress(world, None if failure == "none" else factory)
    assert suggested(_post(ingress, typing("plan", "project", "f"))) == []
    assert suggested(_post(ingress, typing("status", "workflow", "p"))) == []
    # A build that failed is tried again next time (Redis may be back).
    if failure == "factory":
        factory.fails = False
        assert suggested(_post(ingress, typing("plan", "project", "f"))) == ["facteur"]


class Stuck:
    """A store whose lookups wait until released, as a Redis that stopped answering."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    def recent_values(self, *_: Any) -> list[str]:
        self.started += 1
        self.release.wait(10)
        return ["facteur"]


def test_a_slow_store_is_waited_for_no_longer_than_the_budget(world: World) -> None:
    stuck = Stuck()
    ingress = _ingress(world, Factory(stuck), suggest_budget_seconds=0.1)
    try:
        started = time.monotonic()
        answers = [_post(ingress, typing("plan", "project", "f")) for _ in range(6)]
        elapsed = time.monotonic() - started
        assert [suggested(answer) for answer in answers] == [[]] * 6
        # Each waited its budget, no more, though the lookups still hang.
        assert elapsed < 6 * 0.1 + 0.5
        # Four workers at most wait on the store; the lookups queued behind them never ran.
        assert stuck.started <= 4
    finally:
        stuck.release.set()


def test_a_slow_store_on_the_event_loop_is_waited_for_no_longer_than_the_budget(
    world: World,
) -> None:
    stuck = Stuck()
    ingress = _ingress(world, Factory(stuck), suggest_budget_seconds=0.1)
    body = encode(typing("plan", "project", "f"))

    async def many() -> list[Any]:
        steps = [ingress.read(sign(body, int(NOW)), body) for _ in range(10)]
        return await asyncio.gather(*(ingress.hand_off_async(s, None) for s in steps))  # type: ignore[arg-type]

    try:
        started = time.monotonic()
        answers = asyncio.run(many())
        # Awaited side by side: together within about one budget.
        assert time.monotonic() - started < 0.1 + 0.5
        assert [suggested(answer) for answer in answers] == [[]] * 10
    finally:
        stuck.release.set()


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["data"]["options"][0].pop("focused"),
        lambda p: p["data"]["options"][0].update(value=7),
        lambda p: p.pop("member"),
        lambda p: p.pop("data"),
    ],
    ids=["no-focus", "value-not-text", "no-caller", "no-data"],
)
def test_a_malformed_autocomplete_gets_no_suggestions(world: World, factory, change: Any) -> None:
    # Discord takes only suggestions in answer to an autocomplete: a shape it never sends gets
    # none, and nothing is looked up.
    world.store.remember_values(GUILD, "plan", {"project": "facteur"}, NOW)
    payload = typing("plan", "project", "fa")
    change(payload)
    assert suggested(_post(_ingress(world, factory), payload)) == []
    assert factory.calls == 0


def test_ping_commands_and_clicks_never_build_the_store(world: World, factory) -> None:
    ingress = _ingress(world, factory)
    _post(ingress, {"type": 1})
    _post(ingress, command("plan"))
    _post(ingress, typing("review", "deadline", "p"))
    assert factory.calls == 0
