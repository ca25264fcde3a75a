"""workflow_submit's flow: create the workflow once, record the session, edit the reply.

The workflow name is derived from the interaction ID, so a redelivered event meets a 409 and
is treated as already done. A reply that could not be delivered answers 503, so that Knative
redelivers and the (idempotent) path runs again.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from facteur import logs, telemetry
from facteur.decisions import ids, render
from facteur.decisions.claims import REPLIED, RETRYING, Claim
from facteur.decisions.ids import is_ref
from facteur.decisions.journey import DispatchResult, Journey
from facteur.decisions.workflow import (
    REF_LABEL,
    Submitted,
    WorkflowRequest,
    run_annotations,
    run_labels,
    workflow_name,
)
from facteur.errors import ArgoError, DiscordError, SessionStoreError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Discord, SessionStore
from facteur.flows.tell import tell

log = logging.getLogger("facteur.workflow_submit")


@dataclass(kw_only=True)
class Submitter:
    argo: Argo
    store: SessionStore
    discord: Discord
    namespace: str
    ui_url: str
    token_ttl_seconds: int
    service_account: str | None = None

    def handle(self, journey: Journey) -> Outcome:
        call, started = journey.call, time.perf_counter()
        with logs.bound(
            correlation_id=journey.correlation_id,
            interaction_id=call.interaction_id,
            command=call.command,
            user_id=call.user_id,
            workflow=workflow_name(call.command, call.interaction_id),
        ):
            outcome = self._handle(journey)
            logs.finished(outcome.result, started, status=outcome.status)
        return outcome

    def _handle(self, journey: Journey) -> Outcome:

        call = journey.call
        name = workflow_name(call.command, call.interaction_id)
        if not journey.workflow_template:
            return self._fail(journey, render.NO_TEMPLATE_NAMED)
        ids = {
            "command": call.command,
            "user_id": call.user_id,
            "interaction_id": call.interaction_id,
            "correlation_id": journey.correlation_id,
        }
        # The button reference, random and a valid label value (hex), so that a click can find
        # the run in Argo by it once Redis has forgotten the session.
        ref = secrets.token_hex(9)
        try:
            request = WorkflowRequest(
                namespace=self.namespace,
                name=name,
                template=journey.workflow_template,
                parameters=journey.parameters,
                labels=run_labels(**ids, ref=ref),
                annotations=run_annotations(
                    **ids,
                    guild_id=call.guild_id,
                    channel_id=call.channel_id,
                    traceparent=telemetry.traceparent(),
                    application_id=call.application_id,
                    received_at=journey.received_at,
                ),
                service_account=self.service_account,
                mutex=journey.mutex,
            )
            submitted = self.argo.submit(request)
        except ArgoError as err:
            existing = self._committed_anyway(name) if err.transient else None
            if existing is None:
                logs.audit(
                    "workflow.submit_failed",
                    status=err.status,
                    transient=err.transient,
                    reason=err.reason,
                    by=call.user_id,
                )
                if err.transient:
                    return self._retry_later(journey)
                reason = (
                    render.ARGO_NOT_TRUSTED
                    if err.tls_misconfigured
                    else render.argo_refused(err.reason)
                )
                return self._fail(journey, reason)
            submitted = existing
        result = "submitted" if submitted.created else "already-submitted"
        logs.audit(
            "workflow.submitted",
            namespace=submitted.namespace,
            new=submitted.created,
            by=call.user_id,
        )
        # One reply per interaction, however many copies of the event arrive, even at once. The
        # claim is a lease until the reply is sent: a crash in between leaves it to a redelivery.
        claim = self._claim_reply(call.interaction_id)
        if claim is Claim.DONE:
            return Outcome(200, "already-submitted", submitted.name)
        if claim is Claim.BUSY:
            return Outcome(503, "in-progress", submitted.name)
        ref = self._ref_of(submitted, ref)
        session = self._session(journey, submitted.name, submitted.namespace, ref)
        recorded = self._save(
            session,
            journey.call.token,
            journey.received_at + self.token_ttl_seconds,
            started=True,
        )
        message = render.submitted(
            command=call.command,
            workflow=submitted.name,
            namespace=submitted.namespace,
            correlation_id=journey.correlation_id,
            ui_url=self.ui_url,
            last_correlation_id=journey.last_correlation_id,
            # Buttons need the session: without it they would lead nowhere.
            ref=session.ref if recorded else None,
            note=None if recorded else render.NOT_RECORDED,
            user_id=call.user_id,
            summary=session.summary,
            started_at=journey.received_at,
        )
        delivered = tell(self.discord, journey, self.token_ttl_seconds, message)
        if delivered is None:
            what = "could not release the reply claim"
            quietly(log, what, self.store.release_once, REPLIED, call.interaction_id)
            return Outcome(503, result, submitted.name)
        quietly(
            log, "could not mark the reply done", self.store.finish, REPLIED, call.interaction_id
        )
        if recorded:
            # Which Discord message holds the run; the reply claim is what stops a second reply.
            update: dict[str, str | None] = {"message_id": delivered.message_id or "sent"}
            if journey.thread:
                update["thread_id"] = self._thread(session, delivered.message_id)
            self._save(session.model_copy(update=update))
        return Outcome(200, result, submitted.name)

    def _thread(self, session: DispatchResult, message_id: str | None) -> str | None:
        """The run's thread, started from its message; None (logged) when Discord would not."""
        if not session.channel_id or not ids.is_snowflake(message_id):
            return None
        name = f"/{session.command} {session.workflow_name}"
        try:
            return self.discord.start_thread(session.channel_id, message_id, name)
        except DiscordError as err:
            log.warning("could not start the run's thread: %s", err.reason)
            return None

    def _committed_anyway(self, name: str) -> Submitted | None:
        """After a create that timed out: Argo may have created the workflow all the same."""

        try:
            state = self.argo.get_workflow(self.namespace, name)
        except ArgoError:
            return None
        if state is None:
            return None
        return Submitted(name=state.name, namespace=state.namespace, uid=None, created=False)

    def _claim_reply(self, interaction_id: str) -> Claim:
        try:
            return self.store.take(REPLIED, interaction_id)
        except SessionStoreError as err:
            # Better a second copy of the reply than none at all.
            log.warning("could not claim the reply: %s", err)
            return Claim.TAKEN

    def _retry_later(self, journey: Journey) -> Outcome:
        """Argo is down for longer than the client's own retries: answer 503, so that Knative
        redelivers within its budget, and tell the user once that facteur keeps trying. The
        dead-letter path says "not started" if the budget runs out."""
        call = journey.call
        try:
            first = self.store.claim_once(RETRYING, call.interaction_id)
        except SessionStoreError:
            first = True  # an edit of the same reply: harmless if said again
        if first:
            text = render.still_trying(call.command, render.ARGO_DOWN)
            tell(self.discord, journey, self.token_ttl_seconds, render.text(text))
        return Outcome(503, "retrying")

    def _ref_of(self, submitted: Submitted, ref: str) -> str:
        """The button reference on the workflow: ours, or on a workflow an earlier delivery
        created, the one its label holds, so that the buttons and the label agree."""
        if submitted.created:
            return ref
        try:
            state = self.argo.get_workflow(submitted.namespace, submitted.name)
        except ArgoError:
            return ref
        labelled = state.labels.get(REF_LABEL) if state is not None else None
        return labelled if is_ref(labelled) else ref

    def _session(self, journey: Journey, name: str, namespace: str, ref: str) -> DispatchResult:
        call = journey.call
        return DispatchResult(
            correlation_id=journey.correlation_id,
            interaction_id=call.interaction_id,
            command=call.command,
            user_id=call.user_id,
            guild_id=call.guild_id,
            channel_id=call.channel_id,
            application_id=call.application_id,
            workflow_name=name,
            namespace=namespace,
            received_at=journey.received_at,
            status="Submitted",
            ref=ref,
            summary=render.request_summary(call.options),
        )

    def _save(
        self,
        session: DispatchResult,
        token: str | None = None,
        expires_at: float | None = None,
        *,
        started: bool = False,
    ) -> bool:
        what = f"could not record session {session.correlation_id}"
        return quietly(log, what, self.store.save, session, token, expires_at, started=started)

    def _fail(self, journey: Journey, reason: str) -> Outcome:
        message = render.text(render.not_started(journey.call.command, reason))
        status = 200 if tell(self.discord, journey, self.token_ttl_seconds, message) else 503
        return Outcome(status, "failed")
