"""command_route's buttons: Cancel and Retry on a run's message.

A click acts only on a run of the server it was made in, and is checked against the role
policy of the command that started the run, with the keys `<command>:cancel` and
`<command>:retry` falling back to the command's own rule. Each action happens once per attempt
of a run, however often it is clicked; a refusal is an ephemeral answer that changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from facteur import logs
from facteur.decisions import render
from facteur.decisions.ids import CANCEL, RETRY
from facteur.decisions.interactions import Click, safe_name
from facteur.decisions.journey import DispatchResult
from facteur.decisions.policy import decide
from facteur.errors import ArgoError, DiscordError, SessionStoreError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Discord, SessionStore

log = logging.getLogger("facteur.command_route")


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

    def click(self, click: Click) -> Outcome:
        """Cancel or Retry from a run's message: same role policy, one action per click."""
        started = time.perf_counter()
        with logs.bound(interaction_id=click.interaction_id, user_id=click.user_id):
            outcome = self._click(click)
            logs.finished(outcome.result, started, status=outcome.status, action=click.action)
        return outcome

    def _click(self, click: Click) -> Outcome:
        try:
            session = self.store.by_ref(click.ref)
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
        try:
            if not self.store.claim_action(*_action_key(session, verb)):
                logs.audit("button.duplicate_suppressed", action=verb, by=click.user_id)
                return Outcome(200, "duplicate")
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._whisper(click, render.store_unavailable_for_click())
        return self._act(click, session)

    def _act(self, click: Click, session: DispatchResult) -> Outcome:

        name, namespace = session.workflow_name or "", session.namespace or ""
        if self.argo is None:
            return self._whisper(click, render.no_argo_configured())
        try:
            if click.action == CANCEL:
                if self.cancel_strategy == "terminate":
                    self.argo.terminate(namespace, name)
                else:
                    self.argo.stop(namespace, name)
                updated = session.model_copy(update={"status": "Cancelling"})
            elif self.retry_strategy == "resubmit":
                again = self.argo.resubmit(namespace, name)
                updated = _rerun(session, again.name)
            else:
                self.argo.retry(namespace, name)
                updated = _rerun(session, name)
        except ArgoError as err:
            log.error("%s of %s/%s failed: %s", click.action, namespace, name, err.reason)
            what = f"could not release the {click.action} claim"
            quietly(log, what, self.store.release_action, *_action_key(session, click.action))
            return self._whisper(click, render.argo_refused_action(click.action, err.reason))
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


def _action_key(session: DispatchResult, action: str) -> tuple[str, str, int]:
    # One action per attempt of a run: a retried run may be cancelled again.
    return session.correlation_id, action, session.attempt


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
