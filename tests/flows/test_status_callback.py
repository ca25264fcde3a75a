"""status_callback: the callback contract, reporting once, and reconciliation ticks.

Real Redis; Discord and Argo fakes that validate every request against the real specs.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from facteur.adapters.argo import NODE_FIELDS, ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.adapters.sessions import SessionStore
from facteur.decisions.callback import parse_report
from facteur.decisions.journey import DispatchResult
from facteur.errors import InvalidReport, SessionStoreError
from facteur.flows.status_callback import Reporter
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.chain import CHANNEL_POST, EDIT, NAMESPACE, UI, peers
from tests.helpers.discord_fake import DISCORD_API, DiscordFake
from tests.helpers.support import (
    APP,
    CALLBACK_TOKEN,
    USER,
    base_env,
    nudge_event,
    ping_event,
    run_record,
)

TICK_TOKEN = "test-tick-token-0123456789abcdef0123"
BOT = "bot-token-SECRET-callback"


class World:
    def __init__(self, store: SessionStore, discord: DiscordFake, argo: FakeArgo) -> None:
        self.store, self.discord, self.argo = store, discord, argo
        self.reporter = Reporter(
            store=store,
            discord=DiscordClient(
                api_base_url=DISCORD_API,
                application_id=APP,
                bot_token=BOT,
                sleep=lambda _: None,
            ),
            ui_url=UI,
            token_ttl_seconds=840,
            argo=ArgoClient(server_url=argo.base_url, token="argo-SECRET", backoff_factor=0),
            confirm=True,
            sleep=lambda _: None,
            tick_batch=3,
        )

    def session(self, *, age: float = 60.0, token: str | None = "itok-SECRET") -> DispatchResult:
        session = run_record(namespace=NAMESPACE, received_at=time.time() - age, ref=None)
        self.store.save(session, token, session.received_at + 840)
        self.argo.add_workflow(NAMESPACE, session.workflow_name, "Running")
        return session

    def report(self, session: DispatchResult, status: str = "Succeeded", **extra: Any) -> Any:
        """What the exit handler posts: Argo shows the entrypoint ended, the handler running."""
        stored = self.argo.workflow(NAMESPACE, session.workflow_name)["status"]
        if stored.get("phase") not in ("Succeeded", "Failed", "Error"):
            self.argo.set_phase(NAMESPACE, session.workflow_name, "Running", entry=status)
        return self.reporter.report(parse_report(body(session, status, **extra)))

    def messages(self) -> list[Any]:
        return self.discord.to(*EDIT) + self.discord.to(*CHANNEL_POST)


@pytest.fixture
def world(store: SessionStore) -> Iterator[World]:
    with peers() as (discord, argo):
        yield World(store, discord, argo)


def body(session: DispatchResult, status: str = "Succeeded", **extra: Any) -> bytes:
    payload = {"name": session.workflow_name, "namespace": NAMESPACE, "status": status}
    payload.update(extra)
    return json.dumps(payload).encode()


# -- the contract, parsed --------------------------------------------------------------------


FAILURES = [
    {"displayName": "build", "message": "exit code 2", "templateName": "b", "phase": "Failed"},
    {"displayName": "test", "message": "timeout", "templateName": "t", "phase": "Error"},
]


@pytest.mark.parametrize(
    "failures", [FAILURES, json.dumps(FAILURES)], ids=["array", "string-holding-array"]
)
def test_failures_arrive_as_an_array_or_a_string(failures: Any) -> None:
    report = parse_report(
        json.dumps(
            {"name": "plan-1", "namespace": "agents", "status": "Failed", "failures": failures}
        ).encode()
    )
    assert [(f.node, f.message) for f in report.failures] == [
        ("build", "exit code 2"),
        ("test", "timeout"),
    ]


def test_unresolved_failures_literal_means_none() -> None:
    raw = b'{"name":"plan-1","namespace":"agents","status":"Succeeded",'
    raw += b'"failures":"{{workflow.failures}}","duration":"12.5","uid":"{{workflow.uid}}"}'
    report = parse_report(raw)
    assert report.failures == []
    assert report.duration == 12.5
    assert report.uid is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b"{}", "missing required field(s): name, namespace, status"),
        (b'{"name":"plan-1","namespace":"agents"}', "missing required field(s): status"),
        (b'{"name":"plan-1","namespace":"agents","status":"Running"}', "status must be"),
        (b'{"name":"Plan_1","namespace":"agents","status":"Failed"}', "name is not"),
        (b'{"name":"plan-1","namespace":"a/b","status":"Failed"}', "namespace is not"),
        (b'{"name":"plan-1","namespace":"agents","status":"Failed","duration":"soon"}', "duration"),
        (b'{"name":"plan-1","namespace":"agents","status":"Failed","duration":-1}', "duration"),
        (b'{"name":"plan-1","namespace":"agents","status":"Failed","failures":"[1"}', "failures"),
        (
            b'{"name":"plan-1","namespace":"agents","status":"Failed","failures":{"a":1}}',
            "failures",
        ),
        (b'{"name":"plan-1","namespace":"agents","status":"Failed","failures":[1]}', "failures"),
        (b'{"name":"plan-1","namespace":"agents","status":"Failed","message":7}', "message"),
    ],
)
def test_malformed_reports_name_the_problem(raw: bytes, problem: str) -> None:
    with pytest.raises(InvalidReport) as err:
        parse_report(raw)
    assert problem in str(err.value)


# -- reporting ---------------------------------------------------------------------------------


def test_success_edits_the_reply_with_a_green_embed(world: World) -> None:
    session = world.session()
    outcome = world.report(session, duration="75")
    assert (outcome.status, outcome.body["result"]) == (200, "reported")
    [edit] = world.discord.to(*EDIT)
    assert edit.params["webhook_token"] == "itok-SECRET"
    embed = edit.json["embeds"][0]
    assert embed["color"] == 0x2ECC71
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    # The workflow is named once, in the content, and linked; the correlation ID in the footer.
    assert "Workflow" not in fields
    assert fields["Duration"] == "1 min 15 s"
    assert embed["footer"]["text"] == f"correlation {session.correlation_id}"
    assert embed["url"] == f"{UI}/workflows/{NAMESPACE}/{session.workflow_name}"
    assert edit.json["allowed_mentions"] == {"parse": []}
    recorded = world.store.get(session.correlation_id)
    assert recorded.status == "Succeeded"
    assert recorded.finished_at
    assert world.store.pending(10) == []


def test_failure_lists_failed_nodes_within_discords_limits(world: World) -> None:
    session = world.session()
    many = [{"displayName": f"step-{i}", "message": "x" * 2000} for i in range(30)]
    world.report(session, "Failed", failures=many)
    [edit] = world.discord.to(*EDIT)
    embed = edit.json["embeds"][0]
    assert embed["color"] == 0xE74C3C
    assert len(embed["fields"]) <= 25
    total = len(embed["title"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert any(f["name"] == "Failed: step-0" for f in embed["fields"])
    assert any(f["name"] == "More failures" for f in embed["fields"])


def test_error_is_orange(world: World) -> None:
    session = world.session()
    world.report(session, "Error")
    assert world.discord.to(*EDIT)[0].json["embeds"][0]["color"] == 0xE67E22


def test_duplicate_callbacks_post_once(world: World) -> None:
    session = world.session()
    first = world.report(session, "Failed")
    second = world.report(session, "Failed")
    assert (first.body["result"], second.body["result"]) == ("reported", "duplicate")
    assert len(world.messages()) == 1


def test_unknown_workflow_is_ignored_with_202(world: World) -> None:
    outcome = world.reporter.report(
        parse_report(b'{"name":"not-ours","namespace":"agents","status":"Failed"}')
    )
    assert outcome.status == 202
    assert outcome.body["result"] == "ignored"
    assert world.messages() == []


def test_expired_token_posts_in_the_channel_pinging_only_the_user(world: World) -> None:
    session = world.session(age=3600, token=None)
    outcome = world.report(session)
    assert outcome.body["via"] == "channel"
    [post] = world.discord.to(*CHANNEL_POST)
    assert post.json["content"].startswith(f"<@{USER}> ")
    assert post.json["allowed_mentions"] == {"parse": [], "users": [USER]}
    assert post.headers["Authorization"] == f"Bot {BOT}"


@pytest.mark.parametrize("status", [401, 404])
def test_rejected_token_falls_back_to_the_channel(world: World, status: int) -> None:
    session = world.session()
    world.discord.queue(status, {"message": "Unknown Webhook", "code": 10015})
    outcome = world.report(session)
    assert outcome.body["via"] == "channel"
    assert len(world.discord.to(*CHANNEL_POST)) == 1


def test_discord_down_defers_to_the_next_tick(world: World) -> None:
    session = world.session()
    for _ in range(4):
        world.discord.queue_error(requests.ConnectionError("down"))
    outcome = world.report(session, "Failed")
    assert (outcome.status, outcome.body["result"]) == (202, "deferred")
    assert world.store.pending(10) == [session.correlation_id]
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Failed")
    tick = world.reporter.tick()
    assert tick.body["reported"] == 1
    assert world.store.pending(10) == []


class _RedisFailing:
    """The real store, but the methods named in `failing` raise as when Redis is down, and
    claims are taken for `lease_seconds` (so a lease can run out within a test)."""

    def __init__(self, store: SessionStore, lease_seconds: float) -> None:
        self._store, self._lease, self.failing = store, lease_seconds, set[str]()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def call(*args: Any) -> Any:
            if name in self.failing:
                raise SessionStoreError(f"{name}: ConnectionError: Connection refused.")
            return method(*args)

        return call

    def take(self, kind: str, ident: str, lease_seconds: float = 30.0) -> Any:
        return self.__getattr__("take")(kind, ident, self._lease)


def test_copies_of_outcomes_past_redis_make_one_channel_message_per_run(world: World) -> None:
    # Runs that outlived their interaction tokens: every outcome goes to the channel.
    runs = [world.session(age=3600, token=None) for _ in range(3)]
    store = _RedisFailing(world.store, lease_seconds=0.05)
    world.reporter.store = store  # type: ignore[assignment]
    # Redis fails once each claim is taken: nothing is marked done, nothing is recorded.
    store.failing |= {"finish", "save", "release_once", "checked"}
    for run in runs:
        for _ in range(2):  # every report arrives twice, the second after the lease ran out
            assert world.report(run).body["via"] == "channel"
            time.sleep(0.1)
    # Redis back, the runs ended: still pending, each is reported again by a tick, then done.
    store.failing.clear()
    for run in runs:
        world.argo.set_phase(NAMESPACE, run.workflow_name, "Succeeded")
    assert world.reporter.tick().body["reported"] == 3
    assert world.reporter.tick().body["checked"] == 0
    posts = world.discord.to(*CHANNEL_POST)
    assert len(posts) == 9  # without the nonce, nine messages
    assert len(world.discord.channel_messages) == 3  # one per run
    nonces = {post.json["nonce"] for post in posts}
    assert len(nonces) == 3 and all(post.json["enforce_nonce"] is True for post in posts)


# -- reconciliation ------------------------------------------------------------------------------


def test_tick_reports_a_terminated_workflow(world: World) -> None:
    session = world.session()
    world.argo.set_phase(
        NAMESPACE, session.workflow_name, "Failed", message="Stopped with strategy 'Terminate'"
    )
    outcome = world.reporter.tick()
    assert outcome.body["reported"] == 1
    [edit] = world.discord.to(*EDIT)
    assert edit.json["content"] == "`/plan` finished: **Failed**"
    assert "Terminate" in edit.json["embeds"][0]["description"]


def test_tick_reports_a_deleted_workflow(world: World) -> None:
    session = world.session()
    del world.argo.workflows[(NAMESPACE, session.workflow_name)]
    world.reporter.tick()
    [edit] = world.discord.to(*EDIT)
    assert "**Deleted**" in edit.json["content"]
    assert world.store.get(session.correlation_id).status == "Deleted"


def test_tick_reports_no_running_workflow_and_brings_its_card_up_to_date(world: World) -> None:
    session = world.session()
    outcome = world.reporter.tick()
    assert outcome.body["still_running"] == 1
    # No outcome; the card a nudge may have coalesced (a run that waits changes no more).
    [card] = world.messages()
    assert card.json["content"] == f"`/plan` is running as workflow `{session.workflow_name}`."
    world.reporter.tick()
    assert len(world.messages()) == 1  # the same card is not sent again
    assert world.store.pending(10) == [session.correlation_id]


def test_tick_racing_a_callback_posts_once(world: World) -> None:
    session = world.session()
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Succeeded")
    world.reporter.tick()
    world.report(session, "Succeeded")
    # And the other way round.
    other = world.session()
    world.report(other, "Failed")
    world.argo.set_phase(NAMESPACE, other.workflow_name, "Failed")
    world.reporter.tick()
    outcomes = [m for m in world.messages() if "finished:" in m.json["content"]]
    assert len(outcomes) == 2


def test_each_tick_is_bounded_oldest_first(world: World) -> None:
    sessions = [world.session(age=600 - i) for i in range(5)]
    for session in sessions:
        world.argo.set_phase(NAMESPACE, session.workflow_name, "Succeeded")
    first = world.reporter.tick()
    assert first.body["checked"] == 3
    assert world.store.pending(10) == [s.correlation_id for s in sessions[3:]]
    world.reporter.tick()
    assert world.store.pending(10) == []
    assert len(world.messages()) == 5


def test_ticks_rotate_through_every_pending_run(world: World) -> None:
    # Seven long runs still going and, newest, one deleted: with tick_batch 3 the oldest three
    # alone would be checked every tick; in rotation all eight are within ceil(8 / 3) ticks.
    running = [world.session(age=3600 - i) for i in range(7)]
    deleted = world.session(age=60)
    del world.argo.workflows[(NAMESPACE, deleted.workflow_name)]
    clock = itertools.count(time.time(), 1.0)
    world.reporter.clock = lambda: next(clock)
    reported = [world.reporter.tick().body["reported"] for _ in range(math.ceil(8 / 3))]
    assert reported == [0, 0, 1]
    [edit] = [e for e in world.discord.to(*EDIT) if "finished:" in e.json["content"]]
    assert "**Deleted**" in edit.json["content"]
    # The runs read (their steps are read too, for their cards: not counted here).
    reads = [r for r in world.argo.requests if r.method == "GET"]
    gets = [r.params.get("name") for r in reads if r.query.get("fields") != NODE_FIELDS]
    assert set(gets) == {s.workflow_name for s in [*running, deleted]} and len(gets) == 9
    # Redis holds the order: those checked longest ago (by the first tick, and not again by
    # the third, which took the two never checked and one of them) come first.
    order = world.store.pending(0)
    assert len(order) == 7 and set(order[:2]) < {r.correlation_id for r in running[:3]}
    assert set(order[2:5]) == {r.correlation_id for r in running[3:6]}


def test_tick_survives_argo_errors(world: World) -> None:
    session = world.session()
    world.argo.queue("GET", 403, times=None)
    outcome = world.reporter.tick()
    assert outcome.body["errors"] == 1
    assert world.store.pending(10) == [session.correlation_id]


# -- the HTTP function ---------------------------------------------------------------------------


@pytest.fixture
def callback(load_function, world: World):
    env = base_env(
        FACTEUR_REDIS_URL=_url(world),
        FACTEUR_ARGO_SERVER_URL=world.argo.base_url,
        FACTEUR_ARGO_UI_URL=UI,
        FACTEUR_DISCORD_BOT_TOKEN=BOT,
        FACTEUR_CALLBACK_TICK_TOKEN=TICK_TOKEN,
    )
    return load_function("status_callback", env)


def _url(world: World) -> str:
    kwargs = world.store._redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


AUTH = {"Authorization": f"Bearer {CALLBACK_TOKEN}", "Content-Type": "application/json"}


def test_http_contract(callback, world: World) -> None:
    session = world.session()
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Running", entry="Succeeded")
    ok = callback.post("/", data=body(session), headers=AUTH)
    assert ok.status_code == 200
    assert ok.get_json()["result"] == "reported"
    again = callback.post("/", data=body(session), headers=AUTH)
    assert again.get_json()["result"] == "duplicate"
    unknown = callback.post(
        "/", data=b'{"name":"x","namespace":"agents","status":"Failed"}', headers=AUTH
    )
    assert unknown.status_code == 202
    bad = callback.post("/", data=b'{"name":"x"}', headers=AUTH)
    assert bad.status_code == 400
    assert "missing required field" in bad.get_json()["error"]
    assert callback.post("/", data=body(session), headers={}).status_code == 401
    assert len(world.messages()) == 1


def _tick(token: str | None = TICK_TOKEN) -> tuple[bytes, dict[str, str]]:
    return ping_event(token)


def test_http_tick(callback, world: World) -> None:
    session = world.session()
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Succeeded")
    raw, headers = _tick()
    response = callback.post("/", data=raw, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["reported"] == 1
    # Binary mode too, as a Broker may deliver it.
    binary = {
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.sources.ping",
        "ce-source": "/ping",
        "ce-id": "2",
        "Content-Type": "application/json",
    }
    again = callback.post("/", data=json.dumps({"token": TICK_TOKEN}), headers=binary)
    assert again.status_code == 200


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef012345", CALLBACK_TOKEN])
def test_forged_ticks_get_401(callback, world: World, token: str | None) -> None:
    raw, headers = _tick(token)
    assert callback.post("/", data=raw, headers=headers).status_code == 401


def test_tick_without_a_configured_token_is_refused(load_function, world: World) -> None:
    client = load_function("status_callback", base_env(FACTEUR_REDIS_URL=_url(world)))
    raw, headers = _tick()
    assert client.post("/", data=raw, headers=headers).status_code == 401


# -- nudges from the ApiServerSource (decisions/nudge.py) ------------------------------------------


def _nudge(workflow: str, verb: str = "update", **data: Any) -> tuple[bytes, dict[str, str]]:
    return nudge_event(workflow, verb, NAMESPACE, **data)


def test_http_nudge_reports_what_argo_shows_once(callback, world: World) -> None:
    session = world.session()
    raw, headers = _nudge(session.workflow_name)
    running = callback.post("/", data=raw, headers=headers)
    assert (running.status_code, running.get_json()["result"]) == (200, "updated")
    # The run's message now shows what Argo shows: still running.
    [card] = world.messages()
    assert card.json["content"].startswith("`/plan` is running")
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Succeeded")
    ok = callback.post("/", data=raw, headers=headers)
    assert (ok.status_code, ok.get_json()["result"]) == (200, "reported")
    # The exit handler's callback, then a tick, find the attempt's outcome already told.
    again = callback.post("/", data=body(session), headers=AUTH)
    assert again.get_json()["result"] == "duplicate"
    tick_raw, tick_headers = _tick()
    assert callback.post("/", data=tick_raw, headers=tick_headers).status_code == 200
    outcomes = [m for m in world.messages() if "finished" in m.json["content"]]
    assert len(outcomes) == 1


def test_http_delete_nudge_needs_argos_404(callback, world: World) -> None:
    session = world.session()
    raw, headers = _nudge(session.workflow_name, "delete")
    still = callback.post("/", data=raw, headers=headers)
    assert (still.status_code, still.get_json()["result"]) == (202, "unconfirmed")
    world.argo.workflows.pop((NAMESPACE, session.workflow_name))
    gone = callback.post("/", data=raw, headers=headers)
    assert (gone.status_code, gone.get_json()) == (
        200,
        {"result": "reported", "status": "Deleted", "via": "interaction"},
    )
    assert callback.post("/", data=raw, headers=headers).get_json()["result"] == "duplicate"
    assert len(world.messages()) == 1


@pytest.mark.parametrize(
    ("data", "status", "result"),
    [
        ({"kind": "Pod"}, 202, "ignored"),
        ({"namespace": "default"}, 202, "ignored"),
        ({"name": "Not_A_Workflow"}, 400, None),
        ({"extra": "field"}, 400, None),
    ],
)
def test_http_nudges_about_anything_else_change_nothing(
    callback, world: World, data: dict[str, Any], status: int, result: str | None
) -> None:
    session = world.session()
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Succeeded")
    raw, headers = _nudge(session.workflow_name, **data)
    headers.pop("ce-subject")
    response = callback.post("/", data=raw, headers=headers)
    assert response.status_code == status
    assert response.get_json().get("result") == result
    assert world.messages() == []


def test_a_live_edit_never_waits_out_a_429_but_the_outcome_does(world: World) -> None:
    # Progress shares Discord's rate limits with outcomes: it gives way at once.
    impatient = DiscordClient(
        api_base_url=DISCORD_API,
        application_id=APP,
        bot_token=BOT,
        max_attempts=1,
        sleep=lambda _: None,
    )
    reporter = replace(
        world.reporter, live_discord=impatient, card_interval_seconds=0, namespace=NAMESPACE
    )
    session = world.session()
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Running")
    world.discord.queue_rate_limit(0.25)
    outcome = reporter.nudge(NAMESPACE, session.workflow_name, deleted=False)
    assert (outcome.status, outcome.body["result"]) == (202, "running")
    assert len(world.discord.to(*EDIT)) == 1  # answered 429, and not tried again
    # The outcome waits the 429 out and lands.
    world.discord.queue_rate_limit(0.25)
    world.argo.set_phase(NAMESPACE, session.workflow_name, "Succeeded")
    assert reporter.nudge(NAMESPACE, session.workflow_name, deleted=False).body["result"] == (
        "reported"
    )
    edits = world.discord.to(*EDIT)
    assert len(edits) == 3  # the live one's 429, then the outcome's 429 and its retry
    assert edits[-1].json["content"] == "`/plan` finished: **Succeeded**"
