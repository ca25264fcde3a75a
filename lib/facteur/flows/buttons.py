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
from typing import Any

from facteur import logs
from facteur.decisions import approval, render, run_logs
from facteur.decisions.catalog import Catalog, Command
from facteur.decisions.claims import Claim
from facteur.decisions.ids import APPROVE, CANCEL, LOGS, REJECT, RETRY, STOP
from facteur.decisions.interactions import Attachment, Click, safe_name
from facteur.decisions.journey import DispatchResult, ReplyTo
from facteur.decisions.policy import decide
from facteur.decisions.recovery import recover_by_ref
from facteur.errors import ArgoError, DiscordError, NotRecoverable, SessionStoreError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Discord, SessionStore

log = logging.getLogger("facteur.command_route")

# The claim on a click's action: busy while it is carried out, done once Argo took it.
_ACTED = "acted"
# The claim on a click itself: Knative's redelivery of one click is answered by nobody.
_CLICKED = "clicked"
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

    def click(self, click: Click) -> Outcome:
        """Cancel or Retry from a run's message: same role policy, one action per click."""
        started = time.perf_counter()
        with logs.bound(interaction_id=click.interaction_id, user_id=click.user_id):
            outcome = self._click(click)
            logs.finished(outcome.result, started, status=outcome.status, action=click.action)
        return outcome

    def _click(self, click: Click) -> Outcome:
        try:
            seen = self.store.take(_CLICKED, click.interaction_id)
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
                _CLICKED,
                click.interaction_id,
            )
            raise
        settle = self.store.release_once if outcome.status >= 500 else self.store.finish
        quietly(log, "could not settle the click", settle, _CLICKED, click.interaction_id)
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
            logs.audit("button.denied", action=verb, reason=decision.reason, by=click.user_id)
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
            return self._whisper_message(click, question)
        if self.argo is None:
            # Before the claim: nothing was done, so the next click is told the same.
            return self._whisper(click, render.no_argo_configured())
        if verb in (APPROVE, REJECT):
            return self._gate(click, session, entry, self.argo)
        if verb == LOGS:
            return self._logs(click, session, entry, self.argo)
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
            self._edit(click.token, render.stop_confirmed(name), "the question")
            self._edit_run(session, message)
        else:
            self._edit(click.token, message, "the message")
        return Outcome(200, click.action)

    # -- approval gates -------------------------------------------------------------------

    def _gate(self, click: Click, session: DispatchResult, entry: Command, argo: Argo) -> Outcome:
        approve = click.action == APPROVE
        problem = approval.self_approval_problem(
            session.user_id, click.user_id, self_approve=entry.self_approve
        )
        if problem:
            logs.audit("approval.denied", reason="two-person rule", by=click.user_id)
            return self._whisper(click, render.approval_refused(problem))
        name, namespace = session.workflow_name or "", session.namespace or ""
        try:
            gates = approval.gates(name, argo.get_nodes(namespace, name), entry.approval)
        except ArgoError as err:
            return self._whisper(click, render.argo_refused_action(click.action, err.reason))
        gate = approval.find(gates, click.step)
        if gate is None:
            return self._whisper(click, render.GATE_GONE)
        if problem := approval.value_problem(gate, entry.approval):
            logs.audit("approval.denied", reason="catalog values", by=click.user_id)
            return self._whisper(click, render.approval_refused(problem))
        key = (_ACTED, f"{session.correlation_id}:gate:{gate.node_id}")
        try:
            claim = self.store.take(*key)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._whisper(click, render.store_unavailable_for_click())
        if claim is Claim.DONE:
            return self._whisper(click, render.gate_already_answered(gate.name))
        if claim is Claim.BUSY:
            # Another approver's click is being carried out: this one is told once it is done.
            return Outcome(503, "busy")
        plan = approval.answer(gate, entry.approval, approve=approve, user_id=click.user_id)
        try:
            argo.set_node(namespace, name, gate.node_id, message=plan.message, outputs=plan.outputs)
            if plan.resume:
                argo.resume_node(namespace, name, gate.node_id)
            else:
                argo.stop(namespace, name, message=plan.message)
        except ArgoError as err:
            return self._gate_failed(click, argo, session, gate, key, err)
        except BaseException:
            quietly(log, "could not release the gate", self.store.release_once, *key)
            raise
        quietly(log, "the gate was answered but not marked", self.store.finish, *key)
        event = "approval.granted" if approve else "approval.rejected"
        logs.audit(event, workflow=name, step=gate.name, by=click.user_id)
        if not plan.resume:
            cancelling = session.model_copy(update={"status": "Cancelling"})
            quietly(log, f"could not record the stop of {name}", self.store.save, cancelling)
        answered = render.gate_answered(
            command=session.command,
            workflow=name,
            namespace=namespace,
            ui_url=self.ui_url or "",
            gate=gate.name,
            approved=approve,
            user_id=click.user_id,
            ref=session.ref,
            stopped=not plan.resume,
            on_card=not session.thread_id,
        )
        self._edit(click.token, answered, "the gate's message")
        return Outcome(200, click.action)

    def _gate_failed(
        self,
        click: Click,
        argo: Argo,
        session: DispatchResult,
        gate: approval.Gate,
        key: tuple[str, str],
        err: ArgoError,
    ) -> Outcome:
        """Argo refused: when the node no longer waits, someone answered it elsewhere (in Argo's
        UI, or its duration ran out), and that stands; else nothing happened, and the claim goes."""
        name, namespace = session.workflow_name or "", session.namespace or ""
        try:
            waiting = approval.gates(name, argo.get_nodes(namespace, name), approval.Approval())
        except ArgoError:
            waiting = [gate]
        if approval.find(waiting, gate.step) is None:
            quietly(log, "could not mark the gate", self.store.finish, *key)
            return self._whisper(click, render.gate_already_answered(gate.name))
        log.error("answering %s of %s failed: %s", gate.name, name, err.reason)
        quietly(log, "could not release the gate", self.store.release_once, *key)
        return self._whisper(click, render.argo_refused_action(click.action, err.reason))

    # -- logs --------------------------------------------------------------------------------

    def _logs(self, click: Click, session: DispatchResult, entry: Command, argo: Argo) -> Outcome:
        name, namespace = session.workflow_name or "", session.namespace or ""
        try:
            nodes = argo.get_nodes(namespace, name)
        except ArgoError as err:
            return self._whisper(click, render.argo_refused_action("read", err.reason))
        if click.step is not None:
            step = run_logs.step_named(name, nodes, click.step)
            if step is None:
                return self._whisper(click, render.NO_LOGS_YET)
        else:
            steps = run_logs.steps_with_logs(name, nodes)
            if not steps:
                return self._whisper(click, render.NO_LOGS_YET)
            if len(steps) > 1:
                return self._whisper_message(
                    click, render.logs_picker(ref=session.ref or click.ref, steps=steps)
                )
            step = steps[0]
        try:
            lines = argo.logs(namespace, name, step.pod_name, tail_lines=entry.log_lines)
        except ArgoError as err:
            if err.status == 404:
                return self._whisper(click, render.logs_gone(step.name))
            return self._whisper(click, render.argo_refused_action("read", err.reason))
        logs.audit("workflow.logs", workflow=name, step=step.name, by=click.user_id)
        message, files = render.logs_shown(run_logs.show(step, lines, self.scrub))
        return self._whisper_message(click, message, files)

    # -- answering ---------------------------------------------------------------------------

    def _command(self, name: str) -> Command:
        found = self.catalog.get(name) if self.catalog is not None else None
        return found or _UNLISTED

    def _edit(self, token: str, message: dict[str, Any], what: str) -> None:
        try:
            self.discord.edit_original(token, message)
        except DiscordError as err:
            # The action happened; only the message is stale. Redelivery would act again.
            log.error("could not update %s: %s", what, err.reason)

    def _edit_run(self, session: DispatchResult, message: dict[str, Any]) -> None:
        """The run's own message, as status_callback edits it: the command's interaction token
        while it lives, else the bot."""
        try:
            token = self.store.token(session.correlation_id)
            to = ReplyTo.of_session(session, token, self.token_ttl_seconds)
            self.discord.reply(to, message)
        except (SessionStoreError, DiscordError) as err:
            log.error("could not update the run's message: %s", err)

    def _whisper(self, click: Click, text: str) -> Outcome:
        outcome = self._whisper_message(click, render.whisper(text))
        return Outcome(outcome.status, "refused")

    def _whisper_message(
        self, click: Click, message: dict[str, Any], files: tuple[Attachment, ...] = ()
    ) -> Outcome:
        try:
            self.discord.follow_up(click.token, message, files)
        except DiscordError as err:
            log.error("could not answer user %s: %s", click.user_id, err.reason)
            return Outcome(503, "unanswered")
        return Outcome(200, "answered")

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
