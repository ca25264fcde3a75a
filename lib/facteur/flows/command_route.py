"""command_route's flow: authoritative checks, duplicate suppression, limits, built-ins,
hand-off.

Every path that ends here tells the user something; only when Discord itself cannot be reached
does it answer 503, so that Knative redelivers the event. Every refusal and failure is said to
the user alone (flows/tell.py, tell_privately); the built-ins' answers edit the reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from facteur import logs
from facteur.decisions import ids, render
from facteur.decisions.admission import admit
from facteur.decisions.catalog import Catalog, Command
from facteur.decisions.claims import SEEN, Claim
from facteur.decisions.concurrency import mutex_name
from facteur.decisions.interactions import Invocation, safe_name
from facteur.decisions.journey import WORKFLOW_REQUESTED, DispatchResult, Journey
from facteur.decisions.limits import Refused, limits_for, refused
from facteur.decisions.policy import allowed_commands
from facteur.decisions.workflow import WANTS_LAST_CORRELATION, WorkflowState, build_parameters
from facteur.errors import ArgoError, SessionStoreError, SinkError
from facteur.flows.effects import quietly
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo, Deliver, Discord, SessionStore
from facteur.flows.tell import tell, tell_privately

log = logging.getLogger("facteur.command_route")


@dataclass(kw_only=True)
class Router:
    catalog: Catalog
    role_map: Mapping[str, list[str]]
    store: SessionStore
    discord: Discord
    deliver: Deliver
    token_ttl_seconds: int
    static_parameters: Mapping[str, str]
    default_template: str | None
    guild_id: str | None = None
    argo: Argo | None = None
    ui_url: str | None = None
    namespace: str | None = None
    # Unix seconds now: limits' windows, the token's lifetime, when values were used.
    clock: Callable[[], float] = time.time

    def handle(self, journey: Journey) -> Outcome:
        call, started = journey.call, time.perf_counter()
        with logs.bound(
            correlation_id=journey.correlation_id,
            interaction_id=call.interaction_id,
            command=safe_name(call.command),
            user_id=call.user_id,
        ):
            outcome = self._handle(journey)
            logs.finished(outcome.result, started, status=outcome.status)
        return outcome

    def _handle(self, journey: Journey) -> Outcome:
        call = journey.call
        # The claim comes first, so that a redelivered refusal is not said twice either.
        claim = self._take(call.interaction_id)
        if claim is Claim.DONE:
            logs.audit("command.duplicate_suppressed")
            return Outcome(200, "duplicate")
        if claim is Claim.BUSY:
            # Another delivery is on it now; if it dies, its lease ends and a later one goes on.
            return Outcome(503, "in-progress")
        outcome = self._admitted(journey)
        if outcome.status >= 500:
            # The redelivery Knative will make must not be taken for a duplicate.
            what = f"could not release interaction {call.interaction_id}"
            quietly(log, what, self.store.release_once, SEEN, call.interaction_id)
        else:
            what = f"could not mark interaction {call.interaction_id} done"
            quietly(log, what, self.store.finish, SEEN, call.interaction_id)
        return outcome

    def _take(self, interaction_id: str) -> Claim:
        try:
            return self.store.take(SEEN, interaction_id)
        except SessionStoreError as err:
            # Going on is safe: the workflow's name comes from the interaction ID, so Argo's 409
            # still keeps a redelivery to one workflow. Refusing here instead could tell the
            # user "not started" after an earlier copy of this event had started it.
            log.warning("duplicate check unavailable (%s); going on without it", err)
            return Claim.TAKEN

    def _admitted(self, journey: Journey) -> Outcome:
        call = journey.call
        admission = admit(self.catalog, self.role_map, call, self.guild_id)
        if admission.refusal is not None or admission.command is None:
            logs.audit("command.refused", check=admission.check, by=call.user_id)
            return self._refuse(journey, admission.refusal or "", "refused")
        over = self._over_limit(call, admission.command)
        if over is not None:
            logs.audit(
                "command.limited",
                scope=over.limit.scope,
                retry_at=over.retry_at,
                by=call.user_id,
            )
            return self._refuse(journey, render.limited(call.command, over), "limited")
        if admission.command.builtin:
            return self._builtin(journey, admission.command, admission.values)
        return self._request(journey, admission.command, admission.values)

    def _over_limit(self, call: Invocation, command: Command) -> Refused | None:
        """Spend the command's limits, per user then per guild; the first that refuses.

        The interaction ID is what is counted, so a redelivery counts once. When the guild's
        limit refuses, the user's count is not given back: the attempt was theirs, giving it
        back would be a second write that can fail too, and a user retrying when told to
        (the refusal says when) counts once more at most.
        """
        try:
            limits = limits_for(command, call.user_id, call.guild_id)
        except ValueError as err:
            # Signed events carry Discord's IDs; one that is not cannot name a key.
            log.error("limits of /%s cannot be counted: %s", command.name, err)
            return None
        now = self.clock()
        for limit in limits:
            try:
                retry_at = self.store.spend(
                    limit.key, call.interaction_id, limit.rate.count, limit.rate.seconds, now
                )
            except SessionStoreError as err:
                # The same rule as duplicate suppression: Redis down must not stop commands.
                log.warning("limits unavailable (%s); going on without them", err)
                return None
            if retry_at is not None:
                return refused(limit, retry_at)
        return None

    def _request(self, journey: Journey, command: Command, values: dict[str, Any]) -> Outcome:
        call = journey.call
        last = None
        if command.name in WANTS_LAST_CORRELATION:
            last = self._last_correlation(call.user_id)
        template = command.workflow_template or self.default_template
        if not template:
            return self._fail(journey, render.NO_TEMPLATE_CONFIGURED)
        onward = replace(
            journey,
            parameters=build_parameters(
                self.static_parameters, values, command.name, last, command.parameter_encoding
            ),
            workflow_template=template,
            last_correlation_id=last,
            thread=command.thread,
            mutex=(
                mutex_name(command.name, command.concurrency.key, values)
                if command.concurrency
                else None
            ),
        )
        try:
            self.deliver(WORKFLOW_REQUESTED, call.interaction_id, onward.to_event())
        except SinkError as err:
            log.error("hand-off of /%s failed: %s", safe_name(call.command), err)
            return self._refuse(journey, render.not_accepted(call.command), "failed")
        logs.audit(
            "workflow.requested",
            template=template,
            parameters=sorted(onward.parameters),
            by=call.user_id,
        )
        self._remember(call, command, values)
        return Outcome(200, "requested")

    def _remember(self, call: Invocation, command: Command, values: dict[str, Any]) -> None:
        """The values of the options that suggest what this guild used lately (autocomplete's
        `recent` source): only those, so no other text is kept for nothing. Best effort."""
        recent = {
            option.name: values[option.name]
            for option in command.options
            if option.autocomplete is not None
            and option.autocomplete.source == "recent"
            and isinstance(values.get(option.name), str)
        }
        if recent and call.guild_id:
            what = f"could not remember the values of /{command.name}"
            quietly(
                log,
                what,
                self.store.remember_values,
                call.guild_id,
                command.name,
                recent,
                self.clock(),
            )

    def _last_correlation(self, user_id: str) -> str | None:
        try:
            last = self.store.last_for_user(user_id)
        except SessionStoreError as err:  # the context is optional; go on without it
            log.warning("could not read the last dispatch: %s", err)
            return None
        return last.correlation_id if last else None

    def _builtin(self, journey: Journey, command: Command, values: dict[str, Any]) -> Outcome:
        if command.name == "help":
            return self._help(journey)
        if command.name == "status":
            return self._status(journey, values.get("workflow"))
        return self._fail(journey, render.BUILTIN_UNAVAILABLE)

    def _help(self, journey: Journey) -> Outcome:
        call = journey.call
        names = allowed_commands(
            self.role_map,
            [command.name for command in self.catalog.commands],
            guild_id=call.guild_id,
            member_roles=call.member_roles,
            expected_guild_id=self.guild_id,
        )
        commands = [c for c in self.catalog.commands if c.name in names]
        return self._say(journey, render.help_text(commands), "help")

    def _status(self, journey: Journey, workflow: Any) -> Outcome:
        call = journey.call
        if not workflow:
            return self._recent(journey)
        if not ids.is_workflow_name(workflow):
            return self._say(journey, render.text(render.NOT_A_WORKFLOW_NAME), "status")
        try:
            session = self.store.find_workflow(self.namespace or "", workflow)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._say(journey, render.text(render.STORE_UNAVAILABLE), "failed")
        # Runs from other servers stay private to them.
        if session is None or session.guild_id != call.guild_id:
            return self._say(journey, render.text(render.unknown_run(workflow)), "status")
        state = self._state(session)
        phase = (state.phase if state else None) or session.status
        duration = state.duration if state else None
        if duration is None and session.finished_at:
            duration = session.finished_at - session.received_at
        message = render.status_report(
            command=session.command,
            workflow=session.workflow_name,
            namespace=session.namespace,
            correlation_id=session.correlation_id,
            phase=phase,
            received_at=session.received_at,
            duration=duration,
            ui_url=self.ui_url,
            summary=session.summary,
        )
        return self._say(journey, message, "status")

    def _recent(self, journey: Journey) -> Outcome:
        """The caller's recent runs in this server, newest first, each with its phase now."""
        call = journey.call
        try:
            sessions = self.store.recent_for_user(call.user_id, render.MAX_LISTED_RUNS)
        except SessionStoreError as err:
            log.error("session store unavailable: %s", err)
            return self._say(journey, render.text(render.STORE_UNAVAILABLE), "failed")
        sessions = [s for s in sessions if s.guild_id == call.guild_id]
        if not sessions:
            return self._say(journey, render.text(render.NO_RECENT_RUNS), "status")
        lines, ask = [], self.argo is not None
        for session in sessions:
            phase = session.status
            if ask:
                try:
                    state = self._read_state(session)
                except ArgoError as err:
                    # Argo is not answering: the rest show what facteur recorded, at once.
                    log.warning("could not read the runs from Argo: %s", err.reason)
                    ask = False
                else:
                    phase = (state.phase if state else None) or phase
            line = render.RunLine(
                command=session.command,
                workflow=session.workflow_name,
                namespace=session.namespace,
                phase=phase,
                received_at=session.received_at,
                summary=session.summary,
            )
            lines.append(line)
        return self._say(journey, render.status_list(lines, self.ui_url), "status")

    def _state(self, session: DispatchResult) -> WorkflowState | None:
        """The run as Argo sees it now, or None when Argo cannot say."""
        try:
            return self._read_state(session)
        except ArgoError as err:
            log.warning("could not read %s from Argo: %s", session.workflow_name, err.reason)
            return None

    def _read_state(self, session: DispatchResult) -> WorkflowState | None:
        """The run as Argo sees it now (Deleted when Argo no longer knows it); None without Argo
        or a workflow to ask about. Raises ArgoError."""
        if not (self.argo and session.workflow_name and session.namespace):
            return None
        state = self.argo.get_workflow(session.namespace, session.workflow_name)
        if state is None:
            return WorkflowState(
                session.workflow_name, session.namespace, "Deleted", None, None, None
            )
        return state

    def _fail(self, journey: Journey, reason: str) -> Outcome:
        return self._refuse(journey, render.not_started(journey.call.command, reason), "failed")

    def _refuse(self, journey: Journey, content: str, result: str) -> Outcome:
        """A refusal or a failure, said to the user alone (tell_privately)."""
        now = self.clock()
        if tell_privately(self.discord, journey, self.token_ttl_seconds, content, now=now):
            return Outcome(200, result)
        return Outcome(503, result)

    def _say(self, journey: Journey, message: dict[str, Any], result: str) -> Outcome:
        """A built-in's answer, in the deferred reply (private when the catalog entry is
        ephemeral, as the shipped built-ins are)."""
        if tell(self.discord, journey, self.token_ttl_seconds, message):
            return Outcome(200, result)
        # Discord is unreachable: let Knative redeliver rather than end in silence.
        return Outcome(503, result)
