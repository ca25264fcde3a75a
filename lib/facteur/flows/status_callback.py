"""status_callback's flow: report each run's final status to its user exactly once.

Outcomes arrive from Argo exit handlers, and from reconciliation ticks that ask Argo directly,
because Argo runs no exit handler for a terminated or deleted workflow. A callback is only a
hint: with an Argo server configured, the status is posted only once Argo itself shows it, so
whoever holds the callback token cannot make facteur say what Argo does not. Both paths claim
one key per attempt of a run, so a run has one outcome per attempt, and a tick racing a callback
posts once. Nothing here fails the caller's exit handler for facteur's own trouble: what cannot
be delivered now stays pending and the next tick retries it.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from facteur import logs, telemetry
from facteur.decisions import approval, render
from facteur.decisions.callback import FINAL_STATUSES, Report, status_in_argo
from facteur.decisions.catalog import Approval
from facteur.decisions.claims import Claim
from facteur.decisions.journey import DispatchResult, ReplyTo
from facteur.decisions.recovery import recover_session
from facteur.decisions.workflow import NodeState, WorkflowState, failed_steps, running_steps
from facteur.errors import ArgoError, DiscordError, NotRecoverable, SessionStoreError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Answer
from facteur.flows.ports import Argo, Discord, SessionStore
from facteur.flows.tell import digest

log = logging.getLogger("facteur.status_callback")

# What facteur reports when Argo no longer knows the workflow at all.
DELETED = "Deleted"


@dataclass
class TickSummary:
    checked: int = 0
    reported: int = 0
    still_running: int = 0
    errors: int = 0
    outcomes: list[str] = field(default_factory=list)
    # Runs Argo still shows unfinished that Redis had forgotten, pending again (recover()).
    recovered: int = 0


@dataclass(kw_only=True)
class Reporter:
    store: SessionStore
    discord: Discord
    ui_url: str
    token_ttl_seconds: int
    argo: Argo | None = None
    # Confirm each callback against Argo: on whenever argo is a real server, not a dry run.
    confirm: bool = False
    # Argo hands the exit handler its task before it saves the entrypoint's phase
    # (workflow/controller/operator.go: taskSetReconciliation inside operate, persistUpdates
    # deferred after it), so a quick callback may find the run not ended yet: read again briefly.
    confirm_attempts: int = 3
    confirm_delay_seconds: float = 0.5
    tick_batch: int = 50
    tick_seconds: float = 20.0
    # A running run's message is edited at most this often (card.min_edit_interval_seconds).
    card_interval_seconds: float = 5.0
    # Who edits a running run's message: a client that never waits out a 429 (bootstrap), so
    # that progress cannot hold up outcomes; `discord` when not given.
    live_discord: Discord | None = None
    # Where facteur submits (argo.namespace): the one namespace whose runs it rebuilds from Argo
    # when Redis has forgotten them, and only those of its own application.
    namespace: str | None = None
    application_id: str | None = None
    # Per tick, at most this many forgotten runs are saved again, out of this many listed.
    recover_batch: int = 50
    recover_scan: int = 500
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def report(self, report: Report) -> Answer:
        started = time.perf_counter()
        telemetry.count("facteur_callbacks_received_total")
        with logs.bound(workflow=report.name, namespace=report.namespace):
            outcome = self._report(report)
            logs.finished(str(outcome.body.get("result")), started, status=outcome.status)
        return outcome

    def _report(self, report: Report) -> Answer:
        try:
            session = self.store.find_workflow(report.namespace, report.name)
        except SessionStoreError as err:
            log.error("cannot look up %s/%s: %s", report.namespace, report.name, err)
            return _accepted("deferred", "session store unavailable; reconciliation will retry")
        if session is None:
            found = self._recovered(report)
            if isinstance(found, Answer):
                return found
            session = found
        if session is None:
            logs.audit("callback.ignored", reason="unknown workflow")
            return _accepted(
                "ignored", "facteur did not submit this workflow or no longer knows it"
            )
        if self.confirm and self.argo is not None:
            confirmed = self._confirm(self.argo, report)
            if isinstance(confirmed, Answer):
                return confirmed
            report = confirmed
        return self._deliver(session, report)

    def _recovered(self, report: Report) -> DispatchResult | Answer | None:
        """The session Redis has lost, rebuilt from the workflow's labels and annotations and
        saved back, without a token (so the outcome goes to the channel); None unless Argo
        knows the run and it is one of facteur's, in facteur's namespace."""
        if self.argo is None or report.namespace != self.namespace:
            return None
        try:
            state = self.argo.get_workflow(report.namespace, report.name)
        except ArgoError as err:
            log.warning("cannot read %s back from Argo: %s", report.name, err.reason)
            return _accepted("deferred", "Argo cannot say whose run it is now; reconciliation will")
        return self._recover_from(state, "callback")

    def _recover_from(self, state: WorkflowState | None, via: str) -> DispatchResult | None:
        # Pending until this report is told, whatever Argo's phase: a failed post stays a tick's.
        session = self._rebuilt(state, via, unreported=True)
        if session is not None:
            self._save_rebuilt(session, via)
        return session

    def nudge(self, namespace: str, name: str, *, deleted: bool) -> Answer:
        """An ApiServerSource event (decisions/nudge.py): "look at run `name`". It carries no
        signature, so it only makes facteur read the run from Argo, and report it through the
        tick's path (the same claim per attempt) once Argo shows it ended, or, for a delete,
        once Argo no longer has it. Anything else changes nothing."""
        started = time.perf_counter()
        telemetry.count("facteur_nudges_received_total", deleted=deleted)
        with logs.bound(workflow=name, namespace=namespace):
            outcome = self._nudge(namespace, name, deleted=deleted)
            logs.finished(str(outcome.body.get("result")), started, status=outcome.status)
        return outcome

    def _nudge(self, namespace: str, name: str, *, deleted: bool) -> Answer:
        if self.argo is None:
            return _accepted("ignored", "no Argo server to read the run from")
        if namespace != self.namespace:
            return _accepted("ignored", "not facteur's workflow namespace")
        try:
            state = self.argo.get_workflow(namespace, name)
        except ArgoError as err:
            log.warning("cannot read %s for a nudge: %s", name, err.reason)
            return _accepted("deferred", "Argo cannot say now; reconciliation will")
        if (state is None) != deleted:
            # A delete for a run Argo still has, or a change to one it no longer has: Argo's
            # word stands, and the tick reports whatever it shows.
            return _accepted("unconfirmed", "Argo does not show this; reconciliation will")
        if state is not None and state.phase not in FINAL_STATUSES:
            return self._live(state)
        try:
            session = self.store.find_workflow(namespace, name)
        except SessionStoreError as err:
            log.error("cannot look up %s/%s: %s", namespace, name, err)
            return _accepted("deferred", "session store unavailable; reconciliation will retry")
        if session is None:
            session = self._recover_from(state, "nudge")
        if session is None or not session.workflow_name or not session.namespace:
            reason = "facteur did not submit this workflow or no longer knows it"
            return _accepted("ignored", reason)
        if session.finished_at is not None:
            # Already told and recorded for this attempt (a Retry starts a new, unfinished one).
            return Answer(200, {"result": "duplicate", "status": session.status})
        return self._deliver(session, _report_from_state(session, state))

    def _close_thread(self, session: DispatchResult, report: Report) -> None:
        """The run's thread gets the failed steps it was not told of yet, then is archived.
        Best effort: the outcome is on the run's message already."""
        failures = [NodeState(f.node, f.node, "Pod", "Failed", f.message) for f in report.failures]
        self._post_failed_steps(session, failures)
        try:
            self.discord.archive_thread(session.thread_id or "")
        except DiscordError as err:
            log.warning("could not archive the run's thread: %s", err.reason)

    def _post_failed_steps(self, session: DispatchResult, nodes: list[NodeState]) -> None:
        """Each failed step once in the run's thread, as it fails or at the end (keyed by its
        name: the end's report names steps, not node IDs)."""
        new = []
        for node in nodes:
            key = f"{session.correlation_id}#{session.attempt}:{node.display_name}"
            try:
                if self.store.claim_once("step-told", key):
                    new.append((node.display_name, node.message or ""))
            except SessionStoreError:
                new.append((node.display_name, node.message or ""))
        if not new:
            return
        try:
            self.discord.post_to_thread(session.thread_id or "", render.failed_steps(new))
        except DiscordError as err:
            log.warning("could not post in the run's thread: %s", err.reason)

    def _nodes(self, state: WorkflowState) -> list[NodeState]:
        if self.argo is None:
            return []
        try:
            return self.argo.get_nodes(state.namespace, state.name)
        except ArgoError as err:
            log.warning("cannot read the steps of %s: %s", state.name, err.reason)
            return []

    def _live(self, state: WorkflowState, session: DispatchResult | None = None) -> Answer:
        """A running run's message, edited to show what Argo shows now: at most once per
        card_interval_seconds, and never to the same card again. Best effort: the outcome is
        what must arrive, and it does not go through here. `session`: the run's, when the
        caller has just read it (a tick), else looked up by the workflow."""
        try:
            if session is None:
                session = self.store.find_workflow(state.namespace, state.name)
        except SessionStoreError as err:
            log.warning("cannot look up %s for its card: %s", state.name, err)
            return _accepted("running", "the run has not ended")
        if session is None or session.finished_at is not None or session.status == "Cancelling":
            # A Cancel click's message ("cancelled by …") stays until the outcome replaces it.
            return _accepted("running", "the run has not ended")
        card_of = functools.partial(
            render.live,
            command=session.command,
            workflow=state.name,
            namespace=state.namespace,
            correlation_id=session.correlation_id,
            ui_url=self.ui_url,
            phase=state.phase or "Pending",
            ref=session.ref,
            user_id=session.user_id,
            summary=session.summary,
            started_at=session.received_at,
            progress=state.progress,
            estimated_duration=state.estimated_duration,
            message=state.message,
            waiting_for=state.waiting_for,
            gates_in_thread=bool(session.thread_id),
        )
        slot = max(1, math.ceil(self.card_interval_seconds))
        try:
            # The slot first: the steps (status.nodes, which can be large) are read at most
            # once per card interval, and what changed is judged on them too, since a step
            # that starts waiting for approval changes nothing else Argo shows of the run.
            paced = self.card_interval_seconds > 0
            if paced and not self.store.claim_once("card-slot", session.correlation_id, slot):
                return Answer(200, {"result": "coalesced"})
        except SessionStoreError as err:
            log.warning("cannot pace the card of %s: %s", state.name, err)
            return _accepted("running", "the run has not ended")
        nodes = self._nodes(state)
        gates = approval.gates(state.name, nodes, Approval())
        message = card_of(running=running_steps(nodes), gates=gates)
        card = ("card", f"{session.correlation_id}#{session.attempt}:{digest(message)}")
        try:
            if not self.store.claim_once(*card):
                return Answer(200, {"result": "unchanged"})
            token = self.store.token(session.correlation_id)
        except SessionStoreError as err:
            log.warning("cannot tell whether the card of %s changed: %s", state.name, err)
            return _accepted("running", "the run has not ended")
        if session.thread_id:
            self._post_failed_steps(session, failed_steps(nodes))
            self._post_gates(session, gates)
        try:
            to = ReplyTo.of_session(session, token, self.token_ttl_seconds)
            delivered = (self.live_discord or self.discord).reply(to, message)
        except DiscordError as err:
            log.warning("could not update the card of %s: %s", state.name, err.reason)
            quietly(log, "could not release the card", self.store.release_once, *card)
            return _accepted("running", "Discord unavailable; a later nudge will update it")
        return Answer(200, {"result": "updated", "via": delivered.via})

    def _post_gates(self, session: DispatchResult, gates: list[approval.Gate]) -> None:
        """Each gate once in the run's thread, with its buttons. Best effort, as the steps are:
        the card names the gates too."""
        if not session.ref:
            return
        new, keys = [], []
        for gate in gates:
            key = f"{session.correlation_id}#{session.attempt}:{gate.node_id}"
            try:
                if self.store.claim_once("gate-told", key):
                    new.append(gate)
                    keys.append(key)
            except SessionStoreError:
                new.append(gate)
        if not new:
            return
        message = render.gate_waiting(
            command=session.command,
            workflow=session.workflow_name or "",
            ref=session.ref,
            gates=new,
        )
        try:
            self.discord.post_to_thread(session.thread_id or "", message)
        except DiscordError as err:
            log.warning("could not post the approval in the run's thread: %s", err.reason)
            # Untold: the next card update posts it.
            for key in keys:
                quietly(log, "could not release a gate", self.store.release_once, "gate-told", key)

    def _rebuilt(
        self, state: WorkflowState | None, via: str, *, unreported: bool = False
    ) -> DispatchResult | None:
        if state is None:
            return None
        try:
            return recover_session(
                state, now=self.clock(), application_id=self.application_id, unreported=unreported
            )
        except NotRecoverable as err:
            logs.audit("session.unrecoverable", workflow=state.name, reason=err.reason, via=via)
            return None

    def _save_rebuilt(self, session: DispatchResult, via: str) -> bool:
        what = f"could not record the rebuilt session of {session.workflow_name}"
        saved = quietly(log, what, self.store.save, session)
        if saved:
            logs.audit("session.recovered", workflow=session.workflow_name, via=via)
        return saved

    def recover(self) -> int:
        """Save again, as pending, the unfinished runs Argo shows that Redis no longer knows
        (flushed, or a new empty instance), so that this tick and the next report them. At most
        recover_batch per tick, out of recover_scan listed; how many it saved."""
        if self.argo is None or not self.namespace:
            return 0
        try:
            states = self.argo.list_unfinished(self.namespace, self.recover_scan)
        except ArgoError as err:
            log.warning("cannot list unfinished runs to recover: %s", err.reason)
            return 0
        recovered = 0
        for state in states:
            if recovered >= self.recover_batch:
                break
            try:
                if self.store.find_workflow(state.namespace, state.name) is not None:
                    continue
            except SessionStoreError as err:
                log.warning("cannot tell which runs Redis has forgotten: %s", err)
                break
            session = self._rebuilt(state, "tick")
            if session is not None and self._save_rebuilt(session, "tick"):
                recovered += 1
        return recovered

    def _confirm(self, argo: Argo, report: Report) -> Report | Answer:
        """The report once Argo shows its status, or why it is left to the next tick."""
        shown: str | None = None
        for attempt in range(max(1, self.confirm_attempts)):
            if attempt:
                self.sleep(self.confirm_delay_seconds)
            try:
                state = argo.get_workflow(report.namespace, report.name)
            except ArgoError as err:
                logs.audit("callback.unconfirmed", claimed=report.status, argo=err.reason)
                return _accepted("deferred", "Argo cannot confirm it now; reconciliation will")
            shown = status_in_argo(state)
            if shown is not None or state is None:
                break
        if shown != report.status:
            logs.audit("callback.unconfirmed", claimed=report.status, argo=shown or "no outcome")
            return _accepted(
                "unconfirmed",
                "Argo does not show this status; reconciliation reports what it shows",
            )
        # Argo's word on how long it took once the run has ended; before, the handler's own.
        if state is not None and state.duration is not None:
            return replace(report, duration=state.duration)
        return report

    def _deliver(self, session: DispatchResult, report: Report) -> Answer:
        with logs.bound(
            correlation_id=session.correlation_id,
            interaction_id=session.interaction_id,
            command=session.command,
            user_id=session.user_id,
            workflow=report.name,
        ):
            return self._post(session, report)

    def _post(self, session: DispatchResult, report: Report) -> Answer:

        # One outcome per attempt: a later report of another status for it is a duplicate. The
        # claim is a lease until the post is made, so a crash in between leaves it to a tick.
        key = ("reported", f"{report.namespace}/{report.name}#{session.attempt}")
        try:
            claim = self.store.take(*key)
        except SessionStoreError as err:
            log.error("cannot claim the report of %s/%s: %s", report.namespace, report.name, err)
            return _accepted("deferred", "session store unavailable; reconciliation will retry")
        if claim is Claim.DONE:
            return Answer(200, {"result": "duplicate", "status": report.status})
        if claim is Claim.BUSY:
            return _accepted("deferred", "another delivery is reporting it now")
        try:
            token = self.store.token(session.correlation_id)
        except SessionStoreError as err:
            log.error("cannot read the token of %s: %s", report.name, err)
            quietly(log, "could not release the report claim", self.store.release_once, *key)
            return _accepted("deferred", "session store unavailable; reconciliation will retry")
        message = render.final_status(
            command=session.command,
            workflow=report.name,
            namespace=report.namespace,
            status=report.status,
            correlation_id=session.correlation_id,
            duration=report.duration,
            failures=[(f.node, f.message) for f in report.failures],
            message=report.message,
            ui_url=self.ui_url,
            ref=session.ref,
            user_id=session.user_id,
            summary=session.summary,
            started_at=session.received_at,
            ended_at=self.clock(),
        )
        try:
            # The attempt's one outcome, whichever copy of it gets past Redis: Discord keeps one.
            dedupe_key = f"outcome:{report.namespace}/{report.name}#{session.attempt}"
            to = ReplyTo.of_session(session, token, self.token_ttl_seconds, dedupe_key)
            delivered = self.discord.reply(to, message)
        except DiscordError as err:
            log.error("could not report %s/%s: %s", report.namespace, report.name, err.reason)
            quietly(log, "could not release the report claim", self.store.release_once, *key)
            return _accepted("deferred", "Discord unavailable; reconciliation will retry")
        quietly(log, f"reported {report.name} but could not mark it done", self.store.finish, *key)
        if session.thread_id:
            self._close_thread(session, report)
        finished = session.model_copy(update={"status": report.status, "finished_at": self.clock()})
        quietly(log, f"reported {report.name} but could not record it", self.store.save, finished)
        logs.audit("workflow.reported", status=report.status, via=delivered.via)
        return Answer(200, {"result": "reported", "status": report.status, "via": delivered.via})

    def tick(self) -> Answer:
        """Report final states that no exit handler reported. Each tick takes the runs checked
        least recently (a new run: never) and marks them checked, so the batches rotate and
        every pending run is checked within ceil(pending / tick_batch) ticks, however many
        long runs are still going."""

        summary = TickSummary()
        if self.argo is None:
            return Answer(200, {"result": "skipped", "reason": "argo.server_url is not set"})
        deadline = time.monotonic() + self.tick_seconds
        try:
            pending = self.store.pending(self.tick_batch)
        except SessionStoreError as err:
            log.error("tick cannot list pending sessions: %s", err)
            return Answer(503, {"error": "session store unavailable"})
        summary.recovered = self.recover()
        looked_at: list[str] = []
        for correlation_id in pending:
            if time.monotonic() > deadline:
                break
            summary.checked += 1
            looked_at.append(correlation_id)
            try:
                session = self.store.get(correlation_id)
                if session is None or not session.workflow_name or not session.namespace:
                    self.store.forget_pending(correlation_id)
                    continue
                state = self.argo.get_workflow(session.namespace, session.workflow_name)
            except (SessionStoreError, ArgoError) as err:
                log.warning("tick skipped %s: %s", correlation_id, err)
                summary.errors += 1
                continue
            if state is not None and state.phase not in FINAL_STATUSES:
                summary.still_running += 1
                # A card edit a nudge coalesced is made up here: a run that waits (for an
                # approval, a lock) changes no more, so no later nudge would bring it.
                self._live(state, session)
                continue
            report = _report_from_state(session, state)
            outcome = self._deliver(session, report)
            summary.outcomes.append(f"{report.name}:{outcome.body.get('result')}")
            if outcome.body.get("result") in ("reported", "duplicate"):
                summary.reported += 1
                if outcome.body.get("result") == "duplicate":
                    what = f"could not forget {correlation_id}"
                    quietly(log, what, self.store.forget_pending, correlation_id)
        # Behind the others for the next ticks, whatever came of each: one still running, and
        # one that could not be read or told now, waits its turn again. (Those reported here
        # are no longer pending and stay so.)
        what = "could not mark the checked runs; the next tick takes them again"
        quietly(log, what, self.store.checked, looked_at, self.clock())
        return Answer(200, {"result": "tick", **summary.__dict__})


def _report_from_state(session: DispatchResult, state: Any) -> Report:
    name, namespace = session.workflow_name or "", session.namespace or ""
    if state is None:
        return Report(
            name=name, namespace=namespace, status=DELETED, message=render.DELETED_BEFORE_OUTCOME
        )
    return Report(
        name=name,
        namespace=namespace,
        status=state.phase,
        message=state.message,
        duration=state.duration,
    )


def _accepted(result: str, reason: str) -> Answer:
    # 202 keeps the exit handler, and with it the user's workflow, from failing.
    return Answer(202, {"result": result, "reason": reason})
