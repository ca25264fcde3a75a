"""Redis flushed while 20 runs are pending, on the real adapters: real Redis (FLUSHALL), the
Argo client against the swagger-validating fake, the Discord client against the spec-checking
fake. Every outcome is still told, once each, in the channel; a Cancel click still acts."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from facteur.adapters.argo import LIST_FIELDS, ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.decisions.callback import parse_report
from facteur.decisions.workflow import UNFINISHED_SELECTOR
from facteur.flows.buttons import Buttons
from facteur.flows.status_callback import Reporter
from tests.helpers.chain import CHANNEL_POST, EDIT, FOLLOW_UP, NAMESPACE, UI, Chain, journey
from tests.helpers.discord_fake import DISCORD_API
from tests.helpers.fakes import catalog, click
from tests.helpers.support import APP, CHANNEL, GUILD, ROLE_MAP, ROLE_OTHER, USER

RUNS = 20


def _clients(chain: Chain) -> tuple[DiscordClient, ArgoClient]:
    discord = DiscordClient(
        api_base_url=DISCORD_API, application_id=APP, bot_token="bot-SECRET", sleep=lambda _: None
    )
    return discord, ArgoClient(
        server_url=chain.argo.base_url, token="argo-SECRET", backoff_factor=0
    )


def _reporter(chain: Chain) -> Reporter:
    discord, argo = _clients(chain)
    return Reporter(
        store=chain.store,
        discord=discord,
        ui_url=UI,
        token_ttl_seconds=840,
        argo=argo,
        confirm=True,
        sleep=lambda _: None,
        namespace=NAMESPACE,
        application_id=APP,
    )


def _submitted(chain: Chain, count: int) -> list[str]:
    names = []
    for _ in range(count):
        trip = journey()
        assert [o.result for o in chain.run(trip)] == ["requested", "submitted"]
        names.append(f"plan-{trip.call.interaction_id}")
    return names


def _callback(chain: Chain, reporter: Reporter, name: str, status: str) -> Any:
    """The exit handler's POST, while Argo shows the entrypoint ended and the handler running."""
    chain.argo.set_phase(NAMESPACE, name, "Running", entry=status)
    body = json.dumps({"name": name, "namespace": NAMESPACE, "status": status}).encode()
    return reporter.report(parse_report(body)).body


def _told(chain: Chain) -> Counter[str]:
    prefix = f"{UI}/workflows/{NAMESPACE}/"
    return Counter(
        post.json["embeds"][0]["url"].removeprefix(prefix)
        for post in chain.discord.to(*CHANNEL_POST)
    )


def test_twenty_pending_runs_are_told_once_each_after_flushall(chain: Chain) -> None:
    names = _submitted(chain, RUNS)
    # What the workflow carries: facteur's IDs, never the interaction token.
    stored = chain.argo.workflow(NAMESPACE, names[0])
    assert stored is not None
    assert "interaction-token-SECRET" not in json.dumps(stored)
    assert {"facteur.dev/ref", "facteur.dev/correlation-id"} <= set(stored["metadata"]["labels"])
    assert {"facteur.dev/channel-id", "facteur.dev/received-at", "facteur.dev/application-id"} <= (
        set(stored["metadata"]["annotations"])
    )
    assert chain.store.pending(100) and chain.store._redis.flushall()
    assert chain.store.pending(100) == []
    reporter = _reporter(chain)

    # Ten exit handlers report before any tick; a tick then re-adds the ten still running.
    results = [_callback(chain, reporter, name, "Succeeded") for name in names[:10]]
    assert {(r["result"], r["via"]) for r in results} == {("reported", "channel")}
    for name in names[:10]:
        chain.argo.set_phase(NAMESPACE, name, "Succeeded")
    assert reporter.tick().body["recovered"] == 10
    # Five more exit handlers; five are terminated, which no exit handler reports.
    results = [_callback(chain, reporter, name, "Failed") for name in names[10:15]]
    assert {r["result"] for r in results} == {"reported"}
    for name in names[10:]:
        chain.argo.set_phase(NAMESPACE, name, "Failed")
    assert reporter.tick().body["reported"] == 5
    # Late copies of every callback and another tick: nothing more is said.
    assert {_callback(chain, reporter, name, "Failed")["result"] for name in names} == {"duplicate"}
    assert reporter.tick().body["checked"] == 0

    assert _told(chain) == Counter({name: 1 for name in names})
    posts = chain.discord.to(*CHANNEL_POST)
    assert {post.params["channel_id"] for post in posts} == {CHANNEL}
    assert all(post.json["content"].startswith(f"<@{USER}>") for post in posts)
    assert len(chain.discord.to(*EDIT)) == RUNS  # the "Started" replies, before the flush
    lists = [r for r in chain.argo.requests if r.operation == "WorkflowService_ListWorkflows"]
    assert len(lists) == 3
    assert {(r.query["listOptions.labelSelector"], r.query["fields"]) for r in lists} == {
        (UNFINISHED_SELECTOR, LIST_FIELDS)
    }
    assert chain.argo.violations == []


def test_a_cancel_after_flushall_still_acts_and_is_still_role_checked(chain: Chain) -> None:
    [name] = _submitted(chain, 1)
    [custom] = [
        button["custom_id"]
        for row in chain.edits()[-1]["components"]
        for button in row["components"]
        if "custom_id" in button
    ]
    ref = custom.rpartition(":")[2]
    chain.store._redis.flushall()
    discord, argo = _clients(chain)
    buttons = Buttons(
        role_map=ROLE_MAP,
        store=chain.store,
        discord=discord,
        argo=argo,
        ui_url=UI,
        guild_id=GUILD,
        namespace=NAMESPACE,
        catalog=catalog(confirm_cancel=False),
    )
    assert buttons.click(click("cancel", ref, roles=[ROLE_OTHER])).result == "refused"
    [whisper] = chain.discord.to(*FOLLOW_UP)
    assert "You can't cancel `/plan` runs" in whisper.json["content"]
    assert chain.argo.bodies("PUT") == []
    chain.store._redis.flushall()
    assert buttons.click(click("cancel", ref)).result == "cancel"
    assert chain.argo.bodies("PUT", "/stop$") == [{"name": name, "namespace": NAMESPACE}]
    [search, _again] = [
        r for r in chain.argo.requests if r.operation == "WorkflowService_ListWorkflows"
    ]
    assert search.query["listOptions.labelSelector"] == (
        f"app.kubernetes.io/managed-by=facteur,facteur.dev/ref={ref}"
    )
    assert chain.argo.violations == []
