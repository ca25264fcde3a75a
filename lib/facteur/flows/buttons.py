"""command_route's buttons: Cancel (and its confirmation), Retry, Approve, Reject and Logs.

A click acts only on a run of the server it was made in, and is checked against the role
policy of the command that started the run, with the keys `<command>:cancel`, `:retry`,
`:approve` and `:logs` falling back to the command's own rule (ids.ACTION_RULES). Each click is
handled once however often Knative delivers it, and each action happens once per attempt of a
run (an approval: once per gate) however many people click; a refusal is an ephemeral answer that
changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from facteur import logs
from facteur.decisions import render
from facteur.decisions.catalog import Catalog, Command
from facteur.decisions.claims import ACTED, CLICKED, Claim
from facteur.decisions.ids import APPROVE, CANCEL, LOGS, REJECT, RETRY, STOP
from facteur.decisions.interactions import Click, safe_name
from facteur.decisions.journey import DispatchResult
from facteur.decisions.policy import decide
from facteur.decisions.recovery import recover_by_ref
from facteur.errors import ArgoError, NotRecoverable, SessionStoreError
from facteur.flows.click_replies import ClickReplies
from facteur.flows.effects import quietly
from facteur.flows.gates import Gates
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Discord, SessionStore
from facteur.flows.step_logs import StepLogs

log = logging.getLogger("facteur.command_route")

# The command of a run the catalog no longer lists: Cancel asks first, as by default.
_UNLISTED = Command(name="unlisted", description="a command the catalog no longer lists")


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
    # The catalog entry of a run's command: whether Cancel asks first, who may approve, how many
    # log lines to show. None: every command's defaults.
    catalog: Catalog | None = None
    # To edit a run's own message from a click on another one (a confirmation).
    token_ttl_seconds: int = 900
    # What a step's logs are scrubbed of before anyone sees them: facteur's secrets.
    scrub: Callable[[str], str] = lambda text: text
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self._replies = ClickReplies(
            discord=self.discord, store=self.store, token_ttl_seconds=self.token_ttl_seconds
        )
        self._gates = Gates(store=self.store, replies=self._replies, ui_url=self.ui_url or "")
        self._step_logs = StepLogs(replies=self._replies, scrub=self.scrub)

    def click(self, click: Click) -> Outcome:
        """A click on one of facteur's buttons: the role policy of the run's command, then one
        answer per delivery and one action per attempt (or per gate)."""
        started = time.perf_counter()
        with logs.bound(interaction_id=click.interaction_id, user_id=click.user_id):
            outcome = self._click(click)
            logs.finished(outcome.result, started, status=outcome.status, action=click.action)
        return outcome

    def _click(self, click: Click) -> Outcome:
        try:
            seen = self.store.take(CLICKED, click.interaction_id)
        except SessionStoreError as err:
            # Going on is safe: every action below has its own claim.
            log.warning("duplicate check unavailable (%s); going on without it", err)
            seen = Claim.TAKEN
        if seen is Claim.DONE:
            return Outcome(200, "duplicate")
        if seen is Claim.BUSY:
            return Outcome(503, "in-progress")
        try:
            outcome = self._once(click)
        except BaseException:
            quietly(
                log,
                "could not release the click",
                self.store.release_once,
                CLICKED,
                click.interaction_id,
            )
            raise
        settle = self.store.release_once if outcome.status >= 500 else self.store.finish
        quietly(log, "could not settle the click", settle, CLICKED, click.interaction_id)
        return outcome

    def _once(self, click: Click) -> Outcome:
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
            event = "approval.denied" if verb in (APPROVE, REJECT) else "button.denied"
            logs.audit(event, action=verb, reason=decision.reason, by=click.user_id)
            return self._whisper(click, render.click_denied(verb, command, decision.reason))
        entry = self._command(session.command)
        if verb in (CANCEL, STOP) and session.finished_at is not None:
            return self._whisper(click, render.RUN_ALREADY_FINISHED)
        if verb == RETRY and session.status not in ("Failed", "Error"):
            return self._whisper(click, render.ONLY_FAILED_RUNS_RETRY)
        if verb == CANCEL and entry.confirm_cancel:
            # Only the confirmation acts; the question changes nothing.
            question = render.confirm_stop(
                command=session.command,
                workflow=session.workflow_name,
                ref=session.ref or click.ref,
            )
            return self._replies.whisper_message(click, question)
        if self.argo is None:
            # Before the claim: nothing was done, so the next click is told the same.
            return self._whisper(click, render.no_argo_configured())
        if verb in (APPROVE, REJECT):
            return self._gates.answer(click, session, entry, self.argo)
        if verb == LOGS:
            return self._step_logs.show(click, session, entry, self.argo)
        key = _action_key(session, CANCEL if verb == STOP else verb)
        try:
            claim = self.store.take(*key)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._whisper(click, render.store_unavailable_for_click())
        if claim is Claim.DONE:
            # Someone else's click did it already (this click's own redelivery stops above).
            logs.audit("button.duplicate_suppressed", action=verb, by=click.user_id)
            done = render.ALREADY_RETRIED if verb == RETRY else render.ALREADY_STOPPING
            return self._whisper(click, done)
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
        action = CANCEL if click.action == STOP else click.action
        what = f"could not release the {action} claim"
        try:
            if action == CANCEL:
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
            log.error("%s of %s/%s failed: %s", action, namespace, name, err.reason)
            quietly(log, what, self.store.release_once, *key)
            return self._whisper(click, render.argo_refused_action(action, err.reason))
        except BaseException:
            # Whatever else went wrong (a bug, the worker stopping), the click did not act as
            # far as facteur knows: release it, so a redelivery or the next click is not taken
            # for a duplicate. The error goes on to the function's guard (500: redelivered).
            quietly(log, what, self.store.release_once, *key)
            raise
        # Done as soon as Argo took it: from here a redelivery must not act again.
        marked = f"the {action} of {name} happened but could not be marked done"
        quietly(log, marked, self.store.finish, *key)
        logs.audit(f"workflow.{action}", workflow=name, by=click.user_id)
        quietly(log, f"could not record the {action} of {name}", self.store.save, updated)
        message = render.acted(
            command=session.command,
            workflow=updated.workflow_name or name,
            namespace=namespace,
            ui_url=self.ui_url or "",
            action=action,
            user_id=click.user_id,
            ref=updated.ref,
            attempt=updated.attempt,
        )
        if click.action == STOP:
            # The click was on the question: it becomes the answer, and the run's own message
            # is edited as its other messages are (the command's token, else the bot).
            self._replies.edit(click.token, render.stop_confirmed(name), "the question")
            self._replies.edit_run(session, message)
        else:
            self._replies.edit(click.token, message, "the message")
        return Outcome(200, click.action)

    # -- answering ---------------------------------------------------------------------------

    def _command(self, name: str) -> Command:
        found = self.catalog.get(name) if self.catalog is not None else None
        return found or _UNLISTED

    def _whisper(self, click: Click, text: str) -> Outcome:
        return self._replies.whisper(click, text)

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
    return ACTED, f"{session.correlation_id}:{action}#{session.attempt}"


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
