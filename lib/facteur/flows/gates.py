"""command_route's Approve and Reject: an approval gate answered once, by someone other than the
requester (unless the catalog says self_approve), as Argo's API means it: PUT …/set for the
node's message and supplied parameter, then PUT …/resume of that node only, or a stop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facteur import logs
from facteur.decisions import approval, render
from facteur.decisions.catalog import Command
from facteur.decisions.claims import ACTED, Claim
from facteur.decisions.ids import APPROVE
from facteur.decisions.interactions import Click
from facteur.decisions.journey import DispatchResult
from facteur.errors import ArgoError, SessionStoreError
from facteur.flows.click_replies import ClickReplies
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, SessionStore

log = logging.getLogger("facteur.command_route")


@dataclass(kw_only=True)
class Gates:
    store: SessionStore
    replies: ClickReplies
    ui_url: str

    def answer(self, click: Click, session: DispatchResult, entry: Command, argo: Argo) -> Outcome:
        """An Approve or Reject click that passed the role policy, on the gate it names."""
        approve = click.action == APPROVE
        problem = approval.self_approval_problem(
            session.user_id, click.user_id, self_approve=entry.self_approve
        )
        if problem:
            logs.audit("approval.denied", reason="two-person rule", by=click.user_id)
            return self.replies.whisper(click, render.approval_refused(problem))
        name, namespace = session.workflow_name or "", session.namespace or ""
        try:
            waiting = approval.gates(name, argo.get_nodes(namespace, name), entry.approval)
        except ArgoError as err:
            return self.replies.whisper(click, render.argo_refused_action(click.action, err.reason))
        gate = approval.find(waiting, click.step)
        if gate is None:
            return self.replies.whisper(click, render.GATE_GONE)
        if approval.answered_otherwise(gate, entry.approval, approve=approve):
            return self.replies.whisper(click, render.gate_already_answered(gate.name))
        if problem := approval.value_problem(gate, entry.approval):
            logs.audit("approval.denied", reason="catalog values", by=click.user_id)
            return self.replies.whisper(click, render.approval_refused(problem))
        # One answer per gate, whoever clicks: two approvers at once cause one resume.
        key = (ACTED, f"{session.correlation_id}:gate:{gate.node_id}")
        try:
            claim = self.store.take(*key)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self.replies.whisper(click, render.store_unavailable_for_click())
        if claim is Claim.DONE:
            return self.replies.whisper(click, render.gate_already_answered(gate.name))
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
            return self._refused(click, argo, session, gate, key, err)
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
            ui_url=self.ui_url,
            gate=gate.name,
            approved=approve,
            user_id=click.user_id,
            ref=session.ref,
            stopped=not plan.resume,
            on_card=not session.thread_id,
        )
        self.replies.edit(click.token, answered, "the gate's message")
        return Outcome(200, click.action)

    def _refused(
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
            return self.replies.whisper(click, render.gate_already_answered(gate.name))
        log.error("answering %s of %s failed: %s", gate.name, name, err.reason)
        quietly(log, "could not release the gate", self.store.release_once, *key)
        return self.replies.whisper(click, render.argo_refused_action(click.action, err.reason))
