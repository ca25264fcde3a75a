"""The route-and-submit chain in one process: Router and Submitter wired as Knative would,
with the sink captured in between, a real Redis, and spec-validating Argo and Discord fakes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import responses
from cloudevents.http import from_http

from facteur.adapters.argo import ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.adapters.envelope import CloudEvent, open_event
from facteur.adapters.sessions import SessionStore
from facteur.adapters.sink import Sink
from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from facteur.decisions.interactions import read_invocation
from facteur.decisions.journey import WORKFLOW_REQUESTED, Journey
from facteur.errors import SinkError
from facteur.flows.command_route import Router
from facteur.flows.workflow_submit import Submitter
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.discord_fake import DISCORD_API, DiscordFake
from tests.helpers.support import EVENT_KEY, GUILD, ROLE_MAP, command, fresh_snowflake

EDIT = ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
FOLLOW_UP = ("POST", "/webhooks/{webhook_id}/{webhook_token}")
CHANNEL_POST = ("POST", "/channels/{channel_id}/messages")
NAMESPACE = "agents"
UI = "https://argo.example.test"


class Chain:
    """Router and Submitter wired as Knative would, with the sink captured in between."""

    def __init__(self, store: SessionStore, discord: DiscordFake, argo: FakeArgo) -> None:
        self.store, self.discord, self.argo = store, discord, argo
        self.sent: list[CloudEvent] = []
        self.sink_fails = False
        self.sleeps: list[float] = []
        discord_client = DiscordClient(
            api_base_url=DISCORD_API,
            application_id="800000000000000300",
            bot_token="bot-token-SECRET",
            sleep=self.sleeps.append,
        )
        argo_client = ArgoClient(server_url=argo.base_url, token="argo-SECRET", backoff_factor=0)
        self.router = Router(
            catalog=load_catalog(DEFAULT_CATALOG_FILE),
            role_map=ROLE_MAP,
            store=store,
            discord=discord_client,
            deliver=Sink("", EVENT_KEY, "/facteur/command_route", 2.0, post=self._post),
            token_ttl_seconds=840,
            static_parameters={"repoURL": "https://git.example/r.git"},
            default_template="facteur-dispatch",
            guild_id=GUILD,
            argo=argo_client,
            ui_url=UI,
            namespace=NAMESPACE,
        )
        self.submitter = Submitter(
            argo=argo_client,
            store=store,
            discord=discord_client,
            namespace=NAMESPACE,
            ui_url=UI,
            token_ttl_seconds=840,
            service_account="facteur-agent",
        )

    def _post(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> None:
        if self.sink_fails:
            raise SinkError("sink answered 503")
        self.sent.append(from_http(headers, body))

    def route(self, journey: Journey):
        return self.router.handle(journey)

    def submit(self, event: CloudEvent):
        return self.submitter.handle(
            Journey.from_event(open_event(EVENT_KEY, event, {WORKFLOW_REQUESTED}))
        )

    def run(self, journey: Journey) -> list[Any]:
        before = len(self.sent)
        outcomes = [self.route(journey)]
        for event in self.sent[before:]:
            outcomes.append(self.submit(event))
        return outcomes

    def edits(self) -> list[dict[str, Any]]:
        return [r.json for r in self.discord.to(*EDIT)]

    def created(self) -> list[Any]:
        return self.argo.bodies("POST")


def journey(
    name: str = "plan",
    options: list[dict[str, Any]] | None = None,
    *,
    received_at: float | None = None,
    **extra: Any,
) -> Journey:
    interaction_id = fresh_snowflake()
    payload = command(name, options, interaction_id=interaction_id, **extra)
    return Journey(
        read_invocation(payload),
        correlation_id=uuid.uuid4().hex,
        received_at=time.time() if received_at is None else received_at,
    )


def captured(events: list[CloudEvent]) -> Callable[[str, dict[str, str], bytes, float], None]:
    """A sink `post` that keeps each sealed event, read back as a receiver reads it."""
    return lambda url, headers, body, timeout: events.append(from_http(headers, body))


@contextmanager
def peers() -> Iterator[tuple[DiscordFake, FakeArgo]]:
    """Discord (mocked under requests) and Argo (served on loopback, so retries are real)."""
    with (
        FakeArgo.served() as argo,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        mock.add_passthru(argo.base_url)
        discord = DiscordFake(mock, DISCORD_API)
        yield discord, argo
        discord.assert_clean()


@pytest.fixture
def chain(store: SessionStore) -> Iterator[Chain]:
    with peers() as (discord, argo):
        yield Chain(store, discord, argo)
