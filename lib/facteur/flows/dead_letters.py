"""command_route's /dead-letter path: what Knative gave up delivering, told to its user once.

Knative sends an event here once its delivery budget (decisions/delivery.py) is spent. The event
is facteur's own, sealed like any other, so the same HMAC authenticates it. This path is the
last delivery of that event: it takes the same claim the hop would have taken, so a user who
already got an answer hears nothing more, and one who did not hears once that nothing started,
and why. What it says comes from Argo's state: a workflow that exists after all is announced
as started, never as failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facteur import logs, telemetry
from facteur.decisions import render
from facteur.decisions.claims import REPLIED, SEEN, Claim
from facteur.decisions.interactions import Click, safe_name
from facteur.decisions.journey import COMMAND_RECEIVED, Journey
from facteur.decisions.workflow import workflow_name
from facteur.errors import ArgoError, DiscordError, SessionStoreError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Discord, SessionStore
from facteur.flows.tell import tell

log = logging.getLogger("facteur.dead_letters")

GAVE_UP = "gave-up"


@dataclass(kw_only=True)
class DeadLetters:
    store: SessionStore
    discord: Discord
    token_ttl_seconds: int
    ui_url: str = ""
    argo: Argo | None = None
    namespace: str | None = None

    def command(self, journey: Journey, event_type: str, error: str | None = None) -> Outcome:
        """A command event Knative could not deliver: route's (COMMAND_RECEIVED) or submit's."""
        call = journey.call
        telemetry.count("facteur_command_events_dlq_total", type=event_type)
        with logs.bound(
            correlation_id=journey.correlation_id,
            interaction_id=call.interaction_id,
            command=safe_name(call.command),
            user_id=call.user_id,
        ):
            logs.audit("command.dead_lettered", type=event_type, knative_error=error or "")
            kind = SEEN if event_type == COMMAND_RECEIVED else REPLIED
            claim = self._take(kind, call.interaction_id)
            if claim is Claim.DONE:
                return Outcome(200, "already-answered")
            if claim is Claim.BUSY:
                # A delivery is still on it and may yet answer: saying "not started" could
                # contradict it.
                return Outcome(200, "in-progress")
            message = self._message(journey, event_type)
            if tell(self.discord, journey, self.token_ttl_seconds, message) is None:
                quietly(
                    log,
                    "could not release the claim",
                    self.store.release_once,
                    kind,
                    call.interaction_id,
                )
                return Outcome(503, "untold")
            quietly(
                log, "could not mark the claim done", self.store.finish, kind, call.interaction_id
            )
            return Outcome(200, "told")

    def click(self, click: Click) -> Outcome:
        """A click Knative could not deliver: the clicker hears once that nothing changed."""
        telemetry.count("facteur_command_events_dlq_total", type="click")
        with logs.bound(interaction_id=click.interaction_id, user_id=click.user_id):
            logs.audit("button.dead_lettered", action=click.action)
            try:
                first = self.store.claim_once(GAVE_UP, click.interaction_id)
            except SessionStoreError:
                first = True
            if not first:
                return Outcome(200, "already-answered")
            try:
                self.discord.follow_up(
                    click.token, render.whisper(render.click_gave_up(click.action))
                )
            except DiscordError as err:
                log.error("could not answer user %s: %s", click.user_id, err.reason)
                return Outcome(503, "untold")
            return Outcome(200, "told")

    def _take(self, kind: str, interaction_id: str) -> Claim:
        try:
            return self.store.take(kind, interaction_id)
        except SessionStoreError as err:
            log.warning("claim unavailable (%s); telling the user anyway", err)
            return Claim.TAKEN

    def _message(self, journey: Journey, event_type: str) -> dict[str, object]:
        call = journey.call
        if event_type == COMMAND_RECEIVED:
            return render.text(render.gave_up(call.command, render.FACTEUR_DOWN))
        name = workflow_name(call.command, call.interaction_id)
        if self._exists(name):
            # Argo created it after all (its answer was lost): say so, as the run it is.
            return render.submitted(
                command=call.command,
                workflow=name,
                namespace=self.namespace or "",
                correlation_id=journey.correlation_id,
                ui_url=self.ui_url,
                last_correlation_id=journey.last_correlation_id,
                ref=None,
                note=render.NOT_RECORDED,
                user_id=call.user_id,
                summary=render.request_summary(call.options),
                started_at=journey.received_at,
            )
        return render.text(render.gave_up(call.command, render.ARGO_DOWN))

    def _exists(self, name: str) -> bool:
        if self.argo is None or not self.namespace:
            return False
        try:
            return self.argo.get_workflow(self.namespace, name) is not None
        except ArgoError as err:
            log.warning("could not ask Argo about %s: %s", name, err.reason)
            return False
