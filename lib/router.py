"""command_route's flow: authoritative checks, duplicate suppression, built-ins, hand-off.

Every path that ends here tells the user something; only when Discord itself cannot be reached
does it answer 503, so that Knative redelivers the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import render
from .admission import admit
from .catalog import Catalog, Command
from .config import Settings, argo_client, discord_client, signing_key
from .envelope import WORKFLOW_REQUESTED, CloudEvent, seal
from .interactions import safe_name
from .journey import Journey, tell
from .routing import WANTS_LAST_CORRELATION, build_parameters
from .sessions import SessionStore, SessionStoreError
from .sink import SinkError

if TYPE_CHECKING:
    from .argo import ArgoClient
    from .discord import DiscordClient

log = logging.getLogger("facteur.command_route")

SOURCE = "/facteur/command_route"


@dataclass(frozen=True)
class Outcome:
    status: int
    # What happened, for logs and tests: requested, duplicate, refused, status, failed.
    result: str


class Router:
    def __init__(
        self,
        *,
        catalog: Catalog,
        role_map: Mapping[str, list[str]],
        store: SessionStore,
        discord: DiscordClient,
        deliver: Callable[[CloudEvent], None],
        signing_key: str,
        token_ttl_seconds: int,
        static_parameters: Mapping[str, str],
        default_template: str | None,
        guild_id: str | None = None,
        argo: ArgoClient | None = None,
        ui_url: str | None = None,
    ) -> None:
        self._catalog = catalog
        self._role_map = role_map
        self._store = store
        self._discord = discord
        self._deliver = deliver
        self._signing_key = signing_key
        self._ttl = token_ttl_seconds
        self._static = static_parameters
        self._default_template = default_template
        self._guild_id = guild_id
        self._argo = argo
        self._ui_url = ui_url

    def handle(self, journey: Journey) -> Outcome:
        call = journey.call
        admission = admit(self._catalog, self._role_map, call, self._guild_id)
        if admission.refusal is not None or admission.command is None:
            log.info(
                "refused /%s (%s) for %s", safe_name(call.command), admission.check, call.user_id
            )
            return self._say(journey, render.text(admission.refusal or ""), "refused")
        try:
            first = self._store.claim(call.interaction_id)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            reason = "facteur's session store is unavailable"
            return self._fail(journey, reason)
        if not first:
            log.info("suppressed duplicate interaction %s", call.interaction_id)
            return Outcome(200, "duplicate")
        if admission.command.builtin:
            outcome = self._builtin(journey, admission.command)
        else:
            outcome = self._request(journey, admission.command, admission.values)
        if outcome.status >= 500:
            # The redelivery Knative will make must not be taken for a duplicate.
            self._release(call.interaction_id)
        return outcome

    def _release(self, interaction_id: str) -> None:
        try:
            self._store.release(interaction_id)
        except SessionStoreError as err:
            log.error("could not release interaction %s: %s", interaction_id, err)

    def _request(self, journey: Journey, command: Command, values: dict[str, Any]) -> Outcome:
        call = journey.call
        last = None
        if command.name in WANTS_LAST_CORRELATION:
            last = self._last_correlation(call.user_id)
        template = command.workflow_template or self._default_template
        if not template:
            reason = "no WorkflowTemplate is configured for it"
            return self._fail(journey, reason)
        onward = replace(
            journey,
            parameters=build_parameters(self._static, values, command.name, last),
            workflow_template=template,
            last_correlation_id=last,
        )
        event = seal(
            self._signing_key,
            event_type=WORKFLOW_REQUESTED,
            source=SOURCE,
            event_id=call.interaction_id,
            data=onward.to_event(),
        )
        try:
            self._deliver(event)
        except SinkError as err:
            log.error("hand-off of /%s failed: %s", safe_name(call.command), err)
            return self._say(journey, render.text(render.not_accepted(call.command)), "failed")
        return Outcome(200, "requested")

    def _last_correlation(self, user_id: str) -> str | None:
        try:
            last = self._store.last_for_user(user_id)
        except SessionStoreError as err:  # the context is optional; go on without it
            log.warning("could not read the last dispatch: %s", err)
            return None
        return last.correlation_id if last else None

    def _builtin(self, journey: Journey, command: Command) -> Outcome:
        if command.name != "status":
            reason = "this built-in is not available yet"
            return self._fail(journey, reason)
        try:
            last = self._store.last_for_user(journey.call.user_id)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._say(
                journey, render.text("facteur's session store is unavailable."), "failed"
            )
        if last is None:
            return self._say(journey, render.text("You have no recent facteur runs."), "status")
        phase = last.status
        if self._argo and last.workflow_name and last.namespace:
            phase = self._phase(last.namespace, last.workflow_name, fallback=phase)
        message = render.status_report(
            command=last.command,
            workflow=last.workflow_name,
            namespace=last.namespace,
            correlation_id=last.correlation_id,
            phase=phase,
            received_at=last.received_at,
            ui_url=self._ui_url,
        )
        return self._say(journey, message, "status")

    def _phase(self, namespace: str, name: str, fallback: str) -> str:
        from .argo import ArgoError

        try:
            state = self._argo.get_workflow(namespace, name) if self._argo else None
        except ArgoError as err:
            log.warning("could not read %s/%s from Argo: %s", namespace, name, err.reason)
            return f"{fallback} (Argo unreachable)"
        if state is None:
            return "deleted"
        return state.phase or "Pending"

    def _fail(self, journey: Journey, reason: str) -> Outcome:
        return self._say(
            journey, render.text(render.not_started(journey.call.command, reason)), "failed"
        )

    def _say(self, journey: Journey, message: dict[str, Any], result: str) -> Outcome:
        if tell(self._discord, journey, self._ttl, message):
            return Outcome(200, result)
        # Discord is unreachable: let Knative redeliver rather than end in silence.
        return Outcome(503, result)


def from_settings(settings: Settings) -> Router:
    """Build command_route's router from validated settings."""
    from .catalog import load_catalog
    from .sink import deliver

    sink_url, timeout = settings.k_sink or "", settings.events.sink_timeout_seconds
    return Router(
        catalog=load_catalog(settings.commands.catalog_file),
        role_map=settings.role_map,
        store=SessionStore.from_settings(settings),
        discord=discord_client(settings),
        deliver=lambda event: deliver(sink_url, event, timeout),
        signing_key=signing_key(settings),
        token_ttl_seconds=settings.discord.interaction_token_ttl_seconds,
        static_parameters=settings.argo.parameters,
        default_template=settings.argo.workflow_template,
        guild_id=settings.discord.guild_id,
        argo=argo_client(settings),
        ui_url=settings.argo.ui_url or settings.argo.server_url,
    )
