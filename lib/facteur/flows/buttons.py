"""command_route's buttons: Cancel and Retry on a run's message.

A click acts only on a run of the server it was made in, and is checked against the role
policy of the command that started the run, with the keys `<command>:cancel` and
`<command>:retry` falling back to the command's own rule. Each action happens once per attempt
of a run, however often it is clicked; a refusal is an ephemeral answer that changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from facteur import logs
from facteur.decisions import render
from facteur.decisions.claims import Claim
from facteur.decisions.ids import CANCEL, RETRY
from facteur.decisions.interactions import Click, safe_name
from facteur.decisions.journey import DispatchResult
from facteur.decisions.policy import decide
from facteur.decisions.recovery import recover_by_ref
from facteur.errors import ArgoError, DiscordError, NotRecoverable, SessionStoreError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Discord, SessionStore

log = logging.getLogger("facteur.command_route")

# The claim on a click's action: busy while it is carried out, done once Argo took it.
_ACTED = "acted"


@dataclass(kw_only=True)
class Buttons:
    role_map: Mapping[str, list[str]]
    store: SessionStore
    discord: Discord
    argo: Argo | None
    ui_url: str
    guild_id: str | None = None
    cancel_strategy: str = "stop"
    retry_strategy: str = "retry"
    # Where facteur submits (argo.namespace): where a click looks for a run Redis has forgotten.
    namespace: str | None = None
    clock: Callable[[], float] = time.time

    def click(self, click: Click) -> Outcome:
        """Cancel or Retry from a run's message: same role policy, one action per click."""
        started = time.perf_counter()
        with logs.bound(interaction_id=click.interaction_id, user_id=click.user_id):
            outcome = self._click(click)
            logs.finished(outcome.result, started, status=outcome.status, action=click.action)
        return outcome

    def _click(self, click: Click) -> Outcome:
        try:
            session = self.store.by_ref(click.ref) or self._recovered(click)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._whisper(click, render.store_unavailable_for_click())
        if session is None or not session.workflow_name or not session.namespace:
            return self._whisper(click, render.run_unknown())
        verb = click.action
        if click.guild_id is not None and click.guild_id != session.guild_id:
            # Another server's run: answered as unknown, so a leaked reference reveals nothing.
            # (Without a guild, in a direct message, the role policy below refuses.)
            logs.audit(
                "button.denied", action=verb, reason="another server's run", by=click.user_id
            )
            return self._whisper(click, render.run_unknown())
        decision = decide(
            self.role_map,
            session.command,
            action=verb,
            guild_id=click.guild_id,
            member_roles=click.member_roles,
            expected_guild_id=self.guild_id,
        )
        command = safe_name(session.command)
        if not decision.allowed:
            logs.audit("button.denied", action=verb, reason=decision.reason, by=click.user_id)
            return self._whisper(click, render.click_denied(verb, command, decision.reason))
        if verb == CANCEL and session.finished_at is not None:
            return self._whisper(click, render.RUN_ALREADY_FINISHED)
        if verb == RETRY and session.status not in ("Failed", "Error"):
            return self._whisper(click, render.ONLY_FAILED_RUNS_RETRY)
        if self.argo is None:
            # Before the claim: nothing was done, so the next click is told the same.
            return self._whisper(click, render.no_argo_configured())
        key = _action_key(session, verb)
        try:
            claim = self.store.take(*key)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._whisper(click, render.store_unavailable_for_click())
        if claim is Claim.DONE:
            logs.audit("button.duplicate_suppressed", action=verb, by=click.user_id)
            return Outcome(200, "duplicate")
        if claim is Claim.BUSY:
            # Another delivery of this click is acting now: Knative redelivers this one later,
            # when that one has finished (a duplicate) or its lease has ended (it crashed).
            log.info("another delivery is carrying out the %s; asking for a redelivery", verb)
            return Outcome(503, "busy")
        return self._act(click, session, self.argo, key)

    def _act(
        self, click: Click, session: DispatchResult, argo: Argo, key: tuple[str, str]
    ) -> Outcome:

        name, namespace = session.workflow_name or "", session.namespace or ""
        what = f"could not release the {click.action} claim"
        try:
            if click.action == CANCEL:
                if self.cancel_strategy == "terminate":
                    argo.terminate(namespace, name)
                else:
                    argo.stop(namespace, name)
                updated = session.model_copy(update={"status": "Cancelling"})
            elif self.retry_strategy == "resubmit":
                again = argo.resubmit(namespace, name)
                updated = _rerun(session, again.name)
            else:
                argo.retry(namespace, name)
                updated = _rerun(session, name)
        except ArgoError as err:
            log.error("%s of %s/%s failed: %s", click.action, namespace, name, err.reason)
            quietly(log, what, self.store.release_once, *key)
            return self._whisper(click, render.argo_refused_action(click.action, err.reason))
        except BaseException:
            # Whatever else went wrong (a bug, the worker stopping), the click did not act as
            # far as facteur knows: release it, so a redelivery or the next click is not taken
            # for a duplicate. The error goes on to the function's guard (500: redelivered).
            quietly(log, what, self.store.release_once, *key)
            raise
        # Done as soon as Argo took it: from here a redelivery must not act again.
        marked = f"the {click.action} of {name} happened but could not be marked done"
        quietly(log, marked, self.store.finish, *key)
        logs.audit(f"workflow.{click.action}", workflow=name, by=click.user_id)
        quietly(log, f"could not record the {click.action} of {name}", self.store.save, updated)
        message = render.acted(
            command=session.command,
            workflow=updated.workflow_name or name,
            namespace=namespace,
            ui_url=self.ui_url or "",
            action=click.action,
            user_id=click.user_id,
            ref=updated.ref,
            attempt=updated.attempt,
        )

        try:
            self.discord.edit_original(click.token, message)
        except DiscordError as err:
            # The action happened; only the message is stale. Redelivery would act again.
            log.error("could not update the message after %s: %s", click.action, err.reason)
        return Outcome(200, click.action)

    def _whisper(self, click: Click, text: str) -> Outcome:

        try:
            self.discord.follow_up(click.token, render.whisper(text))
        except DiscordError as err:
            log.error("could not answer user %s: %s", click.user_id, err.reason)
            return Outcome(503, "refused")
        return Outcome(200, "refused")

    def _recovered(self, click: Click) -> DispatchResult | None:
        """The session Redis has forgotten, rebuilt from the run labelled with the click's
        reference and saved back; the checks that follow (guild, roles) apply to it as to any."""
        if self.argo is None or not self.namespace:
            return None
        try:
            found = self.argo.find_by_ref(self.namespace, click.ref)
            if not found:
                return None
            session = recover_by_ref(
                found, click.ref, now=self.clock(), application_id=click.application_id
            )
        except ArgoError as err:
            log.warning("cannot look the run up in Argo: %s", err.reason)
            return None
        except NotRecoverable as err:
            logs.audit("session.unrecoverable", reason=err.reason, via="click")
            return None
        what = f"could not record the rebuilt session of {session.workflow_name}"
        if quietly(log, what, self.store.save, session):
            logs.audit("session.recovered", workflow=session.workflow_name, via="click")
        return session


def _action_key(session: DispatchResult, action: str) -> tuple[str, str]:
    # One action per attempt of a run: a retried run may be cancelled again.
    return _ACTED, f"{session.correlation_id}:{action}#{session.attempt}"


def _rerun(session: DispatchResult, name: str) -> DispatchResult:
    """The session of a retried run: pending again, reported again when it ends."""
    return session.model_copy(
        update={
            "workflow_name": name,
            "status": "Submitted",
            "finished_at": None,
            "attempt": session.attempt + 1,
        }
    )
