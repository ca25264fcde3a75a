"""In-memory fakes of the ports (facteur.flows.ports), and the flows wired on them as bootstrap
wires them: fast, port-level flow tests with no Redis and no HTTP.

Each fake keeps the method names and signatures of its Protocol (tests/flows/test_fakes.py
compares them), raises only the facteur.errors type its port names, and records what reached
it, so a test asserts on what a flow did rather than on how it did it. The integration tests
(tests/helpers/chain.py) keep checking the real adapters against real Redis and the specs.
"""

from __future__ import annotations

import copy
import functools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from facteur.adapters.argo import LOG_LINE_MAX, MAX_TAIL_LINES, RETRY_STATUSES
from facteur.adapters.sessions import RECENT_RUNS, RECENT_VALUES, VALUE_LIMIT, values_key
from facteur.adapters.signature import Verifier
from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from facteur.decisions.catalog import Catalog
from facteur.decisions.claims import LEASE_SECONDS, Claim
from facteur.decisions.ids import MAX_SUBDOMAIN, custom_id, is_namespace, is_ref, is_subdomain
from facteur.decisions.interactions import (
    ATTACHMENT_LIMIT,
    EPHEMERAL,
    MAX_ATTACHMENTS,
    Attachment,
    Click,
    read_click,
)
from facteur.decisions.journey import (
    WORKFLOW_REQUESTED,
    Delivered,
    DispatchResult,
    Journey,
    ReplyTo,
)
from facteur.decisions.pod_names import fnv32a, pod_name
from facteur.decisions.workflow import (
    MANAGED_BY,
    MANAGER,
    REF_LABEL,
    NodeState,
    Submitted,
    WorkflowRequest,
    WorkflowState,
    facteur_metadata,
)
from facteur.errors import ArgoError, DiscordError, SessionStoreError, SinkError, TokenRejected
from facteur.flows import ports
from facteur.flows.buttons import Buttons
from facteur.flows.command_route import Router
from facteur.flows.interaction_verify import Ingress
from facteur.flows.outcome import Outcome
from facteur.flows.status_callback import Reporter
from facteur.flows.workflow_submit import Submitter
from tests.helpers.support import (
    APP,
    CLICKER,
    GUILD,
    PUBLIC_KEY_HEX,
    ROLE_MAP,
    button_click,
    run_record,
)

# The methods each port declares: what a failure switch may name, and what the signature test
# compares.
STORE_METHODS = frozenset(name for name in vars(ports.SessionStore) if not name.startswith("_"))
ARGO_METHODS = frozenset(name for name in vars(ports.Argo) if not name.startswith("_"))
DISCORD_ROUTES = ("edit", "follow_up", "channel", "delete")
# How long Discord remembers a channel post's nonce (enforce_nonce): "the past few minutes" in
# its documentation; facteur relies on no more than its redeliveries' couple of minutes.
DISCORD_NONCE_SECONDS = 120.0


# -- the session store -------------------------------------------------------------------------


class MemoryStore:
    """The SessionStore port on dicts, with the Redis store's semantics key for key.

    Every key expires (by `clock`); claim_* is set-if-absent under a lock, so True goes to the
    first caller only; `pending` is a sorted set scored by when a tick last checked each run
    (a new run by its received_at; ties by member, as Redis orders them) that expires as a
    whole `ttl_seconds` after the last save.
    """

    def __init__(
        self,
        ttl_seconds: int = 600,
        last_dispatch_ttl_seconds: int = 900,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl_seconds
        self._last_ttl = last_dispatch_ttl_seconds
        self._clock = clock
        self._lock = threading.RLock()
        # key -> (value, expires at); keys are spelled as the Redis store's, without `facteur:`.
        self._values: dict[str, tuple[str, float]] = {}
        self._pending: dict[str, float] = {}
        self._pending_expires = 0.0
        # Sorted sets (recent runs and values, limits' logs): key -> (member -> score, expires).
        self._sorted: dict[str, tuple[dict[str, float], float]] = {}
        # Redis down: every call raises. `failing`: only the methods named raise.
        self.down = False
        self.failing: set[str] = set()
        # Every port method called, in order, failed calls included.
        self.calls: list[str] = []

    # -- the switches -----------------------------------------------------------------------

    def fail(self, *methods: str) -> None:
        """Make only the methods named raise SessionStoreError (`down = True` fails them all)."""
        unknown = set(methods) - STORE_METHODS
        if unknown or not methods:
            raise ValueError(f"SessionStore has no method(s) {sorted(unknown)}")
        self.failing.update(methods)

    def recover(self) -> None:
        self.down = False
        self.failing.clear()

    def flush(self) -> None:
        """FLUSHALL: Redis has lost every key (flushed, or a new empty instance)."""
        with self._lock:
            self._values.clear()
            self._pending.clear()
            self._sorted.clear()

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.down or method in self.failing:
            # The real store names what it was doing, the redis error's class and, for a
            # connection's, its message (where it could not connect), nothing more.
            raise SessionStoreError(f"{method}: ConnectionError: Connection refused.")

    # -- for assertions -------------------------------------------------------------------

    def keys(self) -> set[str]:
        """The live keys, spelled as the Redis store's without `facteur:` (session:…, seen:…)."""
        with self._lock:
            kept = {key for key in list(self._values) if self._read(key) is not None}
            return kept | {key for key in list(self._sorted) if self._members(key)}

    def claimed(self, kind: str, ident: str) -> bool:
        """Whether a claim_once(kind, ident) is held now (claim() is kind "seen")."""
        return f"{kind}:{ident}" in self.keys()

    # -- plumbing -------------------------------------------------------------------------

    def _read(self, key: str) -> str | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._values[key]
            return None
        return found[0]

    def _write(self, key: str, value: str, ttl: int) -> None:
        self._values[key] = (value, self._clock() + ttl)

    def _members(self, key: str) -> dict[str, float]:
        """A live sorted set's members and scores (empty once expired, as Redis drops it)."""
        found = self._sorted.get(key)
        if found is None:
            return {}
        if found[1] <= self._clock() or not found[0]:
            del self._sorted[key]
            return {}
        return found[0]

    def _add_newest(self, key: str, member: str, score: float, keep: int, ttl: float) -> None:
        """ZADD, then keep the `keep` highest scores (ZREMRANGEBYRANK), then EXPIRE."""
        members = {**self._members(key), member: score}
        newest = sorted(members.items(), key=lambda item: (item[1], item[0]))[-keep:]
        self._sorted[key] = (dict(newest), self._clock() + ttl)

    def _newest(self, key: str, limit: int) -> list[str]:
        """ZREVRANGE 0 limit-1: highest score first, ties by member, also reversed."""
        ordered = sorted(self._members(key).items(), key=lambda item: (item[1], item[0]))
        return [member for member, _ in reversed(ordered)][: max(0, limit)]

    def _session(self, correlation_id: str | None) -> DispatchResult | None:
        raw = None if correlation_id is None else self._read(f"session:{correlation_id}")
        # Stored as JSON and parsed on read, as Redis does: callers never share an object.
        return None if raw is None else DispatchResult.model_validate_json(raw)

    def _live_pending(self) -> dict[str, float]:
        if self._pending and self._pending_expires <= self._clock():
            self._pending.clear()
        return self._pending

    def _claim(self, key: str, ttl_seconds: int | None) -> bool:
        ttl = ttl_seconds or self._ttl
        if ttl <= 0:  # Redis refuses SET … EX with a non-positive time
            raise SessionStoreError(f"claiming {key.partition(':')[0]}: ResponseError")
        with self._lock:
            if self._read(key) is not None:
                return False
            self._write(key, "1", ttl)
            return True

    # -- the port -------------------------------------------------------------------------

    def save(
        self,
        result: DispatchResult,
        token: str | None = None,
        token_expires_at: float | None = None,
        *,
        started: bool = False,
    ) -> None:
        self._enter("save")
        with self._lock:
            cid = result.correlation_id
            self._write(f"session:{cid}", result.model_dump_json(), self._ttl)
            if started:
                self._write(f"user:{result.user_id}:last", cid, self._last_ttl)
                recent = f"user:{result.user_id}:recent"
                self._add_newest(recent, cid, result.received_at, RECENT_RUNS, self._ttl)
            if result.workflow_name and result.namespace:
                self._write(f"workflow:{result.namespace}/{result.workflow_name}", cid, self._ttl)
            if result.ref:
                self._write(f"ref:{result.ref}", cid, self._ttl)
            pending = self._live_pending()
            if result.workflow_name and result.finished_at is None:
                pending.setdefault(cid, result.received_at)  # ZADD NX
            else:
                pending.pop(cid, None)
            if pending:  # EXPIRE on a key that no longer exists does nothing
                self._pending_expires = self._clock() + self._ttl
            seconds = int((token_expires_at or 0) - self._clock())
            if token and seconds > 0:
                self._write(f"token:{cid}", token, seconds)

    def get(self, correlation_id: str) -> DispatchResult | None:
        self._enter("get")
        with self._lock:
            return self._session(correlation_id)

    def last_for_user(self, user_id: str) -> DispatchResult | None:
        self._enter("last_for_user")
        with self._lock:
            return self._session(self._read(f"user:{user_id}:last"))

    def recent_for_user(self, user_id: str, limit: int = 10) -> list[DispatchResult]:
        self._enter("recent_for_user")
        with self._lock:
            found = [self._session(cid) for cid in self._newest(f"user:{user_id}:recent", limit)]
        return [session for session in found if session is not None]

    def remember_values(
        self, guild_id: str, command: str, values: Mapping[str, str], at: float
    ) -> None:
        self._enter("remember_values")
        with self._lock:
            for option, value in values.items():
                key = values_key(guild_id, command, option)
                if key and value.strip() and len(value) <= VALUE_LIMIT:
                    self._add_newest(key, value, at, RECENT_VALUES, self._ttl)

    def recent_values(self, guild_id: str, command: str, option: str, limit: int) -> list[str]:
        self._enter("recent_values")
        key = values_key(guild_id, command, option)
        with self._lock:
            return [] if key is None else self._newest(key, limit)

    def spend(
        self, key: str, member: str, limit: int, window_seconds: float, now: float
    ) -> float | None:
        # The Redis store's script, step for step, in its milliseconds.
        self._enter("spend")
        window, at = max(1, round(window_seconds * 1000)), round(now * 1000)
        with self._lock:
            expires = self._sorted.get(key, ({}, 0.0))[1]
            counted = {m: score for m, score in self._members(key).items() if score > at - window}
            self._sorted[key] = (counted, expires)
            if member in counted:
                return None
            if len(counted) < limit:
                counted[member] = at
                self._sorted[key] = (counted, self._clock() + window / 1000)
                return None
            # When enough have left for one more: the oldest, unless the limit was lowered.
            return (sorted(counted.values())[len(counted) - limit] + window) / 1000

    def find_workflow(self, namespace: str, name: str) -> DispatchResult | None:
        self._enter("find_workflow")
        with self._lock:
            return self._session(self._read(f"workflow:{namespace}/{name}"))

    def by_ref(self, ref: str) -> DispatchResult | None:
        self._enter("by_ref")
        with self._lock:
            return self._session(self._read(f"ref:{ref}"))

    def token(self, correlation_id: str) -> str | None:
        self._enter("token")
        with self._lock:
            return self._read(f"token:{correlation_id}")

    def take(self, kind: str, ident: str, lease_seconds: float = LEASE_SECONDS) -> Claim:
        self._enter("take")
        key = f"{kind}:{ident}"
        with self._lock:
            held = self._read(key)
            if held is None:
                self._values[key] = ("busy", self._clock() + lease_seconds)
                return Claim.TAKEN
            return Claim.BUSY if held == "busy" else Claim.DONE

    def finish(self, kind: str, ident: str) -> None:
        self._enter("finish")
        with self._lock:
            self._write(f"{kind}:{ident}", "done", self._ttl)

    def claim_once(self, kind: str, ident: str, ttl_seconds: int | None = None) -> bool:
        self._enter("claim_once")
        return self._claim(f"{kind}:{ident}", ttl_seconds)

    def release_once(self, kind: str, ident: str) -> None:
        self._enter("release_once")
        with self._lock:
            self._values.pop(f"{kind}:{ident}", None)

    def claim(self, interaction_id: str, ttl_seconds: int | None = None) -> bool:
        self._enter("claim")
        return self._claim(f"seen:{interaction_id}", ttl_seconds)

    def release(self, interaction_id: str) -> None:
        self._enter("release")
        with self._lock:
            self._values.pop(f"seen:{interaction_id}", None)

    def pending(self, limit: int) -> list[str]:
        self._enter("pending")
        with self._lock:
            ordered = sorted(self._live_pending().items(), key=lambda item: (item[1], item[0]))
        # ZRANGE 0 limit-1: a stop below zero counts from the end, so pending(0) lists all.
        stop = limit - 1 if limit > 0 else len(ordered) + limit - 1
        return [cid for cid, _ in ordered[: max(0, stop + 1)]]

    def checked(self, correlation_ids: list[str], at: float) -> None:
        if not correlation_ids:
            return  # the real store sends nothing
        self._enter("checked")
        with self._lock:
            pending = self._live_pending()
            for cid in correlation_ids:  # ZADD XX: only members already there
                if cid in pending:
                    pending[cid] = at

    def forget_pending(self, correlation_id: str) -> None:
        self._enter("forget_pending")
        with self._lock:
            self._live_pending().pop(correlation_id, None)

    def ping(self) -> bool:
        # The real store answers False rather than raising: readiness only asks.
        try:
            self._enter("ping")
        except SessionStoreError:
            return False
        return True


# -- Argo --------------------------------------------------------------------------------------


@dataclass
class ArgoRun:
    """One workflow as the fake Argo holds it."""

    namespace: str
    name: str
    template: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    cluster_scope: bool = False
    # The synchronization mutex the request asked for (spec.synchronization.mutexes).
    mutex: str | None = None
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    # The controller fills the status in later: a new workflow has no phase yet.
    phase: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    # The entrypoint node's phase; the exit handler runs once it has ended.
    entry_phase: str | None = None
    # Argo's "N/M" and estimate, as the controller writes them while the run goes.
    progress: str | None = None
    estimated_duration: float | None = None
    nodes: list[NodeState] = field(default_factory=list)
    # What stop or terminate asked for, as Argo's spec.shutdown records it.
    shutdown: str | None = None
    created_at: str = field(default_factory=lambda: _iso_now())
    # The run holding the mutex this one waits for, while it is kept Pending.
    waiting_for: str | None = None
    # Each pod's log lines by container, and the pods deleted since (their logs answer 404).
    logs: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    gone_pods: set[str] = field(default_factory=set)
    # The output parameters set on each node (node ID -> name -> value), as Argo keeps them.
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def state(self) -> WorkflowState:
        return WorkflowState(
            self.name,
            self.namespace,
            self.phase,
            self.started_at,
            self.finished_at,
            self.message,
            entry_phase=self.entry_phase,
            labels=facteur_metadata(self.labels),
            annotations=facteur_metadata(self.annotations),
            created_at=self.created_at,
            progress=self.progress,
            estimated_duration=self.estimated_duration,
            waiting_for=self.waiting_for,
        )

    @property
    def facteurs(self) -> bool:
        return self.labels.get(MANAGED_BY) == MANAGER

    def node(self, node_id: str) -> NodeState | None:
        return next((node for node in self.nodes if node.id == node_id), None)


@dataclass
class _ArgoFailure:
    operation: str
    error: ArgoError
    times: int | None
    # True: Argo did the work and only the answer was lost (a create that timed out).
    done: bool


@dataclass(frozen=True)
class NodeCall:
    """One set_node or resume_node, with what it asked of the node."""

    operation: str
    namespace: str
    name: str
    node_id: str
    message: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)


_TERMINAL = frozenset({"Succeeded", "Failed", "Error"})
_ARGO_READS = frozenset({"get_workflow", "get_nodes", "find_by_ref", "list_unfinished", "logs"})


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _argo_500(reason: str) -> ArgoError:
    # How the real client reports Argo's gRPC Internal: a 500, which it counts as transient.
    return ArgoError(reason, status=500, transient=500 in RETRY_STATUSES)


def _no_suspended(node_id: str) -> ArgoError:
    return _argo_500(
        "currently, set only targets suspend nodes: no suspend nodes matching "
        f"nodeFieldSelector: id={node_id}"
    )


class MemoryArgo:
    """The Argo port on a dict of workflows, answering as the Argo Server does.

    A second create of a name is `created=False` (Argo's 409); acting on an unknown workflow
    is a permanent 404; retry refuses a run that is not Failed or Error (400); resubmit creates
    `<name>-xxxxx`. `fail()` scripts ArgoErrors ahead of that.

    Gates: set_node and resume_node act only on a Running Suspend node (else Argo's 500); an
    output parameter is set once, while the node still lists it in `supplied`; resume marks the
    node Succeeded. Logs: per pod of a run (`add_pod_node`, `set_pod_logs`); a pod made gone
    (`pod_gone`) answers 404. Mutexes: `queue_behind` keeps a run Pending behind another; with
    `hold_mutexes=True`, a submitted run whose mutex an unfinished run holds is queued so.
    """

    def __init__(
        self, *, templates: Collection[str] | None = None, hold_mutexes: bool = False
    ) -> None:
        # None: every template exists. Otherwise a create naming another is a 404.
        self.templates = None if templates is None else set(templates)
        self.hold_mutexes = hold_mutexes
        self.workflows: dict[tuple[str, str], ArgoRun] = {}
        # Every call, in order: (operation, namespace, name); failed ones included.
        self.calls: list[tuple[str, str, str]] = []
        # Every set_node and resume_node with its arguments; refused ones included.
        self.node_calls: list[NodeCall] = []
        self._failures: list[_ArgoFailure] = []
        self._lock = threading.RLock()

    # -- scripting --------------------------------------------------------------------------

    def fail(
        self,
        operation: str = "*",
        *,
        status: int | None = 503,
        reason: str | None = None,
        transient: bool | None = None,
        times: int | None = 1,
        done: bool = False,
    ) -> None:
        """The next `times` calls of `operation` (None: all of them) raise ArgoError.

        `transient` defaults as the real client decides it: no answer at all (status None) or a
        429/5xx but 501. `done=True` makes Argo carry the call out before the answer is lost.
        """
        if operation != "*" and operation not in ARGO_METHODS:
            raise ValueError(f"Argo has no operation {operation!r}")
        if transient is None:
            transient = status is None or status in RETRY_STATUSES
        if reason is None:
            reason = "no answer from Argo: ReadTimeout" if status is None else f"scripted {status}"
        error = ArgoError(reason, status=status, transient=transient)
        with self._lock:
            self._failures.append(_ArgoFailure(operation, error, times, done))

    def recover(self) -> None:
        """Argo is back: no scripted failure is left."""
        with self._lock:
            self._failures.clear()

    def add_workflow(
        self,
        namespace: str,
        name: str,
        phase: str | None = "Running",
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        **status: Any,
    ) -> ArgoRun:
        """Seed a workflow as if facteur had created it earlier (with these labels)."""
        with self._lock:
            run = self.workflows[(namespace, name)] = ArgoRun(
                namespace,
                name,
                template="seeded",
                labels=dict(labels or {}),
                annotations=dict(annotations or {}),
            )
        if phase is not None:
            self.set_phase(namespace, name, phase, **status)
        return run

    def set_phase(
        self,
        namespace: str,
        name: str,
        phase: str | None,
        *,
        message: str | None = None,
        started_at: str | None = None,
        finished_at: str | None = None,
        entry: str | None = None,
    ) -> None:
        """Move a workflow on, as the controller would; times default to now. The entrypoint
        takes `entry`, else the phase: ("Running", entry="Failed") runs its exit handler.
        A run that leaves Pending waits for no mutex any more."""
        with self._lock:
            run = self.workflows[(namespace, name)]
            run.phase = phase
            run.entry_phase = entry or phase
            if phase not in (None, "Pending"):
                run.started_at = started_at or run.started_at or _iso_now()
                run.waiting_for = None
            run.finished_at = (finished_at or _iso_now()) if phase in _TERMINAL else None
            if message is not None:
                run.message = message

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            del self.workflows[(namespace, name)]

    def queue_behind(self, namespace: str, name: str, holder: str) -> None:
        """Keep the run Pending behind `holder`, the run holding its mutex (set_phase to any
        other phase lets it go)."""
        with self._lock:
            run = self.workflows[(namespace, name)]
            self.set_phase(namespace, name, "Pending")
            run.waiting_for = holder

    def add_node(self, namespace: str, name: str, node: NodeState) -> NodeState:
        """Add (or replace, by ID) one node of the run."""
        with self._lock:
            run = self.workflows[(namespace, name)]
            run.nodes = [n for n in run.nodes if n.id != node.id] + [node]
        return node

    def add_suspend_node(
        self,
        namespace: str,
        name: str,
        display_name: str = "approve",
        *,
        template: str = "approve",
        parameter: str | None = "decision",
        choices: tuple[str, ...] = ("approve", "reject"),
        suspend_seconds: float | None = None,
        phase: str = "Running",
    ) -> NodeState:
        """A suspend step waiting for `parameter` (one of `choices`), as get_nodes reads it."""
        node_name = f"{name}.{display_name}"
        return self.add_node(
            namespace,
            name,
            NodeState(
                id=_node_id(name, node_name),
                display_name=display_name,
                type="Suspend",
                phase=phase,
                name=node_name,
                template_name=template,
                started_at=_iso_now(),
                supplied=(parameter,) if parameter else (),
                choices=((parameter, tuple(choices)),) if parameter and choices else (),
                suspend_seconds=suspend_seconds,
            ),
        )

    def add_pod_node(
        self,
        namespace: str,
        name: str,
        display_name: str,
        *,
        template: str = "run",
        phase: str = "Running",
        lines: Sequence[str] = (),
        container: str = "main",
        message: str | None = None,
    ) -> NodeState:
        """A Pod step, its pod named as Argo's v2 format names it, and that pod's log lines."""
        node_name = f"{name}.{display_name}"
        node_id = _node_id(name, node_name)
        node = NodeState(
            id=node_id,
            display_name=display_name,
            type="Pod",
            phase=phase,
            message=message,
            name=node_name,
            template_name=template,
            started_at=_iso_now(),
            pod_name=pod_name(name, node_name, template, node_id),
        )
        self.add_node(namespace, name, node)
        assert node.pod_name is not None
        self.set_pod_logs(namespace, name, node.pod_name, lines, container)
        return node

    def set_pod_logs(
        self,
        namespace: str,
        name: str,
        pod: str,
        lines: Sequence[str],
        container: str = "main",
    ) -> None:
        with self._lock:
            self.workflows[(namespace, name)].logs.setdefault(pod, {})[container] = list(lines)

    def pod_gone(self, namespace: str, name: str, pod: str) -> None:
        """The pod was deleted: its logs answer 404 from now on."""
        with self._lock:
            self.workflows[(namespace, name)].gone_pods.add(pod)

    # -- for assertions -----------------------------------------------------------------------

    @property
    def actions(self) -> list[tuple[str, str]]:
        """(operation, name) of every call that asks Argo to change something."""
        return [(op, name) for op, _, name in self.calls if op not in _ARGO_READS]

    def run(self, namespace: str, name: str) -> ArgoRun:
        return self.workflows[(namespace, name)]

    # -- plumbing -----------------------------------------------------------------------------

    def _enter(self, operation: str, namespace: str, name: str) -> _ArgoFailure | None:
        """Record the call; the scripted failure due now, if any (raised at once unless done)."""
        with self._lock:
            self.calls.append((operation, namespace, name))
            for index, failure in enumerate(self._failures):
                if failure.operation in ("*", operation):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            del self._failures[index]
                    if not failure.done:
                        raise failure.error
                    return failure
        return None

    def _known(self, namespace: str, name: str) -> ArgoRun:
        run = self.workflows.get((namespace, name))
        if run is None:
            raise ArgoError(f'workflows.argoproj.io "{name}" not found', status=404)
        return run

    @staticmethod
    def _after(failure: _ArgoFailure | None) -> None:
        if failure is not None:
            raise failure.error

    def _holder(self, namespace: str, mutex: str) -> ArgoRun | None:
        # The unfinished run that holds `mutex`: one of that mutex not itself waiting.
        for (ns, _), run in self.workflows.items():
            held = run.mutex == mutex and run.waiting_for is None
            if ns == namespace and held and run.phase not in _TERMINAL:
                return run
        return None

    @staticmethod
    def _suspended(run: ArgoRun, node_id: str) -> NodeState:
        node = run.node(node_id)
        if node is None or node.type != "Suspend" or node.phase != "Running":
            raise _no_suspended(node_id)
        return node

    @staticmethod
    def _check_node_id(node_id: str) -> None:
        # The real client refuses, before any request, an ID a selector could be built from.
        if not is_subdomain(node_id, MAX_SUBDOMAIN):
            raise ArgoError("node ID must be a lowercase RFC 1123 subdomain of at most 253")

    # -- the port -------------------------------------------------------------------------

    def submit(self, request: WorkflowRequest) -> Submitted:
        namespace, name, template = request.namespace, request.name, request.template
        failure = self._enter("submit", namespace, name)
        with self._lock:
            existing = self.workflows.get((namespace, name))
            if existing is not None:
                self._after(failure)
                return Submitted(name=name, namespace=namespace, uid=None, created=False)
            if self.templates is not None and template not in self.templates:
                kind = "clusterworkflowtemplates" if request.cluster_scope else "workflowtemplates"
                raise ArgoError(f'{kind}.argoproj.io "{template}" not found', status=404)
            holder = None
            if self.hold_mutexes and request.mutex is not None:
                holder = self._holder(namespace, request.mutex)
            run = ArgoRun(
                namespace,
                name,
                template=template,
                parameters=dict(request.parameters),
                labels=dict(request.labels),
                annotations=dict(request.annotations),
                service_account=request.service_account,
                cluster_scope=request.cluster_scope,
                mutex=request.mutex,
            )
            self.workflows[(namespace, name)] = run
            if holder is not None:
                self.queue_behind(namespace, name, holder.name)
        self._after(failure)
        return Submitted(name=name, namespace=namespace, uid=run.uid, created=True)

    def get_nodes(self, namespace: str, name: str) -> list[NodeState]:
        failure = self._enter("get_nodes", namespace, name)
        self._after(failure)
        with self._lock:
            run = self.workflows.get((namespace, name))
            return [] if run is None else list(run.nodes)

    def get_workflow(self, namespace: str, name: str) -> WorkflowState | None:
        failure = self._enter("get_workflow", namespace, name)
        self._after(failure)
        with self._lock:
            run = self.workflows.get((namespace, name))
            return None if run is None else run.state()

    def find_by_ref(self, namespace: str, ref: str) -> list[WorkflowState]:
        # The call records the reference where the others record a name.
        self._after(self._enter("find_by_ref", namespace, ref))
        if not is_ref(ref):
            return []  # the real client sends no selector it cannot build
        with self._lock:
            return [
                run.state()
                for run in self._listed(namespace)
                if run.facteurs and run.labels.get(REF_LABEL) == ref
            ]

    def list_unfinished(self, namespace: str, limit: int = 500) -> list[WorkflowState]:
        self._after(self._enter("list_unfinished", namespace, ""))
        with self._lock:
            found = [
                run.state()
                for run in self._listed(namespace)
                if run.facteurs and run.phase not in _TERMINAL
            ]
        return found[: max(1, limit)]

    def _listed(self, namespace: str) -> list[ArgoRun]:
        # As Argo sorts a page: the unfinished first, the newest first.
        runs = [run for (ns, _), run in self.workflows.items() if ns == namespace]
        newest = sorted(runs, key=lambda run: run.created_at, reverse=True)
        return sorted(newest, key=lambda run: run.finished_at is not None)

    def stop(self, namespace: str, name: str, message: str | None = None) -> None:
        self._shutdown("stop", namespace, name, "Stop")

    def terminate(self, namespace: str, name: str) -> None:
        self._shutdown("terminate", namespace, name, "Terminate")

    def _shutdown(self, operation: str, namespace: str, name: str, strategy: str) -> None:
        failure = self._enter(operation, namespace, name)
        with self._lock:
            # The phase moves later, when the controller acts; the spec says what was asked.
            self._known(namespace, name).shutdown = strategy
        self._after(failure)

    def retry(self, namespace: str, name: str) -> None:
        failure = self._enter("retry", namespace, name)
        with self._lock:
            run = self._known(namespace, name)
            if run.phase not in ("Failed", "Error"):
                raise ArgoError(f"Cannot retry a workflow in phase {run.phase}", status=400)
            self.set_phase(namespace, name, "Running")
            run.shutdown = None
        self._after(failure)

    def resubmit(self, namespace: str, name: str) -> Submitted:
        failure = self._enter("resubmit", namespace, name)
        with self._lock:
            run = self._known(namespace, name)
            # Argo resubmits under generateName "<name>-": five random characters follow.
            again = replace(
                run,
                name=f"{name[:58]}-{secrets.token_hex(3)[:5]}",
                uid=str(uuid.uuid4()),
                phase=None,
                started_at=None,
                finished_at=None,
                message=None,
                shutdown=None,
                created_at=_iso_now(),
                waiting_for=None,
                logs={},
                gone_pods=set(),
                outputs={},
            )
            self.workflows[(namespace, again.name)] = again
        self._after(failure)
        return Submitted(name=again.name, namespace=namespace, uid=again.uid, created=True)

    def set_node(
        self,
        namespace: str,
        name: str,
        node_id: str,
        *,
        message: str | None = None,
        outputs: Mapping[str, str] | None = None,
    ) -> None:
        self._check_node_id(node_id)
        if not message and not outputs:
            raise ArgoError("set_node needs a message or output parameters")
        asked = dict(outputs or {})
        failure = self._enter("set_node", namespace, name)
        with self._lock:
            self.node_calls.append(NodeCall("set_node", namespace, name, node_id, message, asked))
            run = self._known(namespace, name)
            node = self._suspended(run, node_id)
            already = run.outputs.get(node_id, {})
            for key in asked:
                if key in already:
                    raise _argo_500(
                        f"cannot set output parameter '{key}' because it does not use "
                        "valueFrom.raw or it was already set"
                    )
                if key not in node.supplied:
                    raise _argo_500(f"node is not expecting output parameter '{key}'")
            # Argo writes all of it or none: the checks above come first.
            run.outputs.setdefault(node_id, {}).update(asked)
            changed = replace(
                node,
                message=message or node.message,
                supplied=tuple(p for p in node.supplied if p not in asked),
                outputs=(*node.outputs, *asked.items()),
            )
            run.nodes = [changed if n.id == node_id else n for n in run.nodes]
        self._after(failure)

    def resume_node(self, namespace: str, name: str, node_id: str) -> None:
        self._check_node_id(node_id)
        failure = self._enter("resume_node", namespace, name)
        with self._lock:
            self.node_calls.append(NodeCall("resume_node", namespace, name, node_id))
            run = self._known(namespace, name)
            node = self._suspended(run, node_id)
            done = replace(node, phase="Succeeded")
            run.nodes = [done if n.id == node_id else n for n in run.nodes]
        self._after(failure)

    def logs(
        self,
        namespace: str,
        name: str,
        pod_name: str,
        *,
        container: str = "main",
        tail_lines: int = 40,
    ) -> list[str]:
        if not is_subdomain(pod_name, MAX_SUBDOMAIN) or not is_namespace(container):
            raise ArgoError("pod name or container is not a name Kubernetes allows")
        self._after(self._enter("logs", namespace, name))
        with self._lock:
            run = self._known(namespace, name)
            if pod_name in run.gone_pods:
                raise ArgoError(f'pods "{pod_name}" not found', status=404)
            # A pod Argo does not know has no lines: its log API matches no pod.
            lines = run.logs.get(pod_name, {}).get(container, [])
            keep = max(1, min(tail_lines, MAX_TAIL_LINES))
            return [line[:LOG_LINE_MAX] for line in lines[-keep:]]


def _node_id(workflow: str, node_name: str) -> str:
    # Argo's Workflow.NodeID: the workflow's name, and the FNV-1a hash of the node's name.
    return workflow if node_name == workflow else f"{workflow}-{fnv32a(node_name)}"


# -- Discord -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One message Discord took: an edit of the original reply, a follow-up or a channel post.

    `message` is the body as the flow gave it; the real client adds the `<@user>` prefix of a
    channel post itself, so here it is `mention_user_id`.
    """

    # edit: the original reply by its token; message: a message edited by the bot; delete: the
    # original reply deleted by its token (its message is empty).
    route: Literal["edit", "follow_up", "channel", "message", "delete"]
    message: dict[str, Any]
    message_id: str
    token: str | None = None
    channel_id: str | None = None
    mention_user_id: str | None = None
    # A channel post's nonce (DiscordClient sends it with enforce_nonce).
    nonce: str | None = None
    # The message a channel post replies to (message_reference).
    reply_to: str | None = None
    # The files a follow-up carried (multipart files[n]).
    files: tuple[Attachment, ...] = ()

    @property
    def content(self) -> str:
        return str(self.message.get("content", ""))

    @property
    def embed(self) -> dict[str, Any]:
        return dict(self.message["embeds"][0])

    @property
    def fields(self) -> dict[str, str]:
        return {f["name"]: f["value"] for f in self.embed.get("fields", [])}

    @property
    def button_ids(self) -> list[str]:
        return [
            c["custom_id"]
            for row in self.message.get("components", [])
            for c in row["components"]
            if "custom_id" in c
        ]


@dataclass(frozen=True)
class ReplyCall:
    """The arguments of one reply() call, and where it landed (None when it raised)."""

    token: str | None
    token_expires_at: float
    channel_id: str | None
    mention_user_id: str | None
    delivered: Delivered | None
    dedupe_key: str | None = None


def check_message(message: Any) -> None:
    """facteur's rule: every Discord message sets allowed_mentions, and it pings nobody."""
    assert isinstance(message, dict), f"a Discord message must be a dict, not {message!r}"
    allowed = message.get("allowed_mentions")
    assert isinstance(allowed, dict), f"message sets no allowed_mentions: {message!r}"
    assert allowed.get("parse") == [], f"allowed_mentions lets mentions through: {allowed!r}"
    content = message.get("content")
    assert content is None or isinstance(content, str), "message content must be a string"


def check_files(message: dict[str, Any], files: Sequence[Attachment]) -> None:
    """Discord's rule for files: each one is declared in `attachments` by its index."""
    if not files:
        return
    assert len(files) <= MAX_ATTACHMENTS, "too many files for one message"
    # Discord's ids are snowflake strings; facteur's messages may declare them as integers.
    declared = {str(a.get("id")): a.get("filename") for a in message.get("attachments") or []}
    for index, file in enumerate(files):
        assert declared.get(str(index)) == file.filename, f"files[{index}] is not in attachments"
        assert len(file.content) <= ATTACHMENT_LIMIT, f"files[{index}] is too large"


@dataclass
class Thread:
    """A thread the bot started from a run's message, and what it said there."""

    channel_id: str
    message_id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    archived: bool = False


class MemoryDiscord:
    """The Discord port, recording every message, with DiscordClient.reply's fallback: edit
    the original while the token lives, else post in the channel (with a bot token), with the
    nonce of what is said (ReplyTo.nonce): Discord answers a second post of it within
    DISCORD_NONCE_SECONDS with the first's message (`collapsed`), and creates none."""

    def __init__(self, *, bot_token: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.bot_token = bot_token
        self._clock = clock
        self.sent: list[Sent] = []
        self.replies: list[ReplyCall] = []
        # A status (403, 404) for Discord to refuse the bot's edits of a message with.
        self.bot_edit_refused: int | None = None
        self.threads: dict[str, Thread] = {}
        # Discord unreachable: every route raises DiscordError, as after the client's retries.
        self.down = False
        self._failures: list[tuple[str, DiscordError, int | None]] = []
        self._originals: dict[str, str] = {}
        # Tokens whose original reply was deleted: Discord answers an edit of it 404.
        self._deleted: set[str] = set()
        # (channel, nonce) -> (message ID, when posted): Discord's enforce_nonce.
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}
        # Channel posts Discord answered with the message an earlier one with their nonce made.
        self.collapsed: list[Sent] = []
        self._ids = iter(range(1_100_000_000_000_000_001, 10**19))
        self._lock = threading.RLock()

    # -- scripting --------------------------------------------------------------------------

    def fail(
        self, route: str = "*", error: DiscordError | None = None, *, times: int | None = 1
    ) -> None:
        """The next `times` messages on `route` (edit, follow_up, channel, delete, *) raise
        `error`."""
        if route != "*" and route not in DISCORD_ROUTES:
            raise ValueError(f"Discord has no route {route!r}")
        error = error or DiscordError(None, f"{route}: gave up after 4 attempt(s): HTTP 503")
        with self._lock:
            self._failures.append((route, error, times))

    def reject_token(self, *, times: int | None = None) -> None:
        """Discord refuses the interaction token (401/404), as once the interaction is gone."""
        self.fail(
            "edit", TokenRejected(404, "PATCH …/@original: HTTP 404: Unknown Webhook"), times=times
        )

    # -- for assertions -----------------------------------------------------------------------

    def to(self, route: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.route == route]

    @property
    def edits(self) -> list[Sent]:
        return self.to("edit")

    @property
    def posts(self) -> list[Sent]:
        return self.to("channel")

    @property
    def whispers(self) -> list[str]:
        """The ephemeral follow-ups' texts: what only the clicker saw."""
        return [s.content for s in self.to("follow_up") if s.message.get("flags") == EPHEMERAL]

    @property
    def last(self) -> Sent:
        return self.sent[-1]

    # -- plumbing -----------------------------------------------------------------------------

    def _send(
        self,
        route: Literal["edit", "follow_up", "channel", "message"],
        message: dict[str, Any],
        *,
        token: str | None = None,
        channel_id: str | None = None,
        mention_user_id: str | None = None,
        nonce: str | None = None,
        target: str | None = None,
        reply_to: str | None = None,
        files: Sequence[Attachment] = (),
    ) -> dict[str, Any]:
        check_message(message)
        check_files(message, files)
        with self._lock:
            self._scripted(route)
            if route == "edit" and token in self._deleted:
                raise TokenRejected(404, "PATCH …/@original: HTTP 404: Unknown Message")
            now = self._clock()
            if route == "channel" and channel_id is not None and nonce is not None:
                earlier = self._nonces.get((channel_id, nonce))
                if earlier is not None and now - earlier[1] < DISCORD_NONCE_SECONDS:
                    # Discord returns the message made with this nonce and creates none.
                    body = copy.deepcopy(message)
                    kept = Sent(route, body, earlier[0], None, channel_id, mention_user_id, nonce)
                    self.collapsed.append(kept)
                    return {"id": earlier[0]}
            if route == "edit" and token is not None:
                # Edits land on the one original reply, so they keep its ID.
                message_id = self._originals.setdefault(token, str(next(self._ids)))
            elif route == "message" and target is not None:
                if self.bot_edit_refused is not None:
                    status = self.bot_edit_refused
                    raise DiscordError(status, f"PATCH channel message: HTTP {status}")
                message_id = target
            else:
                message_id = str(next(self._ids))
            if route == "channel" and channel_id is not None and nonce is not None:
                self._nonces[(channel_id, nonce)] = (message_id, now)
            self.sent.append(
                Sent(
                    route,
                    copy.deepcopy(message),
                    message_id,
                    token,
                    channel_id,
                    mention_user_id,
                    nonce,
                    reply_to,
                    tuple(files),
                )
            )
        return {"id": message_id}

    def _scripted(self, route: str) -> None:
        """Raise what Discord is scripted to answer on `route` now: down, or a failure."""
        if self.down:
            raise DiscordError(None, f"{route}: gave up after 4 attempt(s): ConnectionError")
        for index, (where, error, times) in enumerate(self._failures):
            if where in ("*", route):
                if times is not None:
                    if times <= 1:
                        del self._failures[index]
                    else:
                        self._failures[index] = (where, error, times - 1)
                raise error

    @staticmethod
    def _token(token: Any) -> str:
        if not isinstance(token, str) or not token:
            raise DiscordError(None, "interaction token is missing")
        return token

    # -- the port -------------------------------------------------------------------------

    def reply(self, to: ReplyTo, message: dict[str, Any], *, now: float | None = None) -> Delivered:
        check_message(message)
        record = functools.partial(
            ReplyCall,
            to.token,
            to.token_expires_at,
            to.channel_id,
            to.mention_user_id,
            dedupe_key=to.dedupe_key,
        )
        try:
            delivered = self._reply(to, message, now)
        except DiscordError:
            self.replies.append(record(None))
            raise
        self.replies.append(record(delivered))
        return delivered

    def _reply(self, to: ReplyTo, message: dict[str, Any], now: float | None) -> Delivered:
        # The same decisions as DiscordClient.reply, in the same order.
        now = self._clock() if now is None else now
        why = "the interaction token has expired"
        if to.token and to.token_lives(now):
            try:
                sent = self.edit_original(to.token, message)
                return Delivered(via="interaction", message_id=sent["id"])
            except TokenRejected:
                why = "Discord refused the interaction token"
        elif not to.token:
            why = "there is no interaction token"
        if not self.bot_token:
            raise DiscordError(None, f"{why} and no bot token is configured to post instead")
        if to.channel_id is None:
            raise DiscordError(None, f"{why} and the interaction has no channel to post in")
        if to.message_id is not None:
            try:
                sent = self.edit_message(to.channel_id, to.message_id, message)
                return Delivered(via="message", message_id=sent["id"])
            except DiscordError as err:
                if err.status not in (403, 404):
                    raise
        sent = self.post_to_channel(
            to.channel_id,
            message,
            mention_user_id=to.mention_user_id,
            nonce=to.nonce(),
            reply_to=to.message_id,
        )
        return Delivered(via="channel", message_id=sent["id"])

    def edit_original(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        return self._send("edit", message, token=self._token(token))

    def delete_original(self, token: str) -> None:
        """Recorded as a Sent of route "delete"; deleting it again is fine (the client takes
        Discord's 404 as done), and later edits of it are refused 404, as Discord does."""
        token = self._token(token)
        with self._lock:
            self._scripted("delete")
            message_id = self._originals.get(token) or str(next(self._ids))
            self._deleted.add(token)
            self.sent.append(Sent("delete", {}, message_id, token))

    def follow_up(
        self, token: str, message: dict[str, Any], files: Sequence[Attachment] = ()
    ) -> dict[str, Any]:
        return self._send("follow_up", message, token=self._token(token), files=files)

    def start_thread(self, channel_id: str, message_id: str, name: str) -> str:
        thread_id = str(next(self._ids))
        with self._lock:
            self.threads[thread_id] = Thread(channel_id, message_id, name)
        return thread_id

    def post_to_thread(self, thread_id: str, message: dict[str, Any]) -> None:
        check_message(message)
        with self._lock:
            thread = self.threads[thread_id]
            if thread.archived:
                raise DiscordError(400, "thread is archived")
            thread.messages.append(copy.deepcopy(message))

    def archive_thread(self, thread_id: str) -> None:
        with self._lock:
            self.threads[thread_id].archived = True

    def edit_message(
        self, channel_id: str, message_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """Not a port method: the bot's edit of one of its messages, as on DiscordClient;
        `bot_edit_refused` (403, 404) makes Discord refuse it."""
        if not self.bot_token:
            raise DiscordError(None, "cannot edit a message: no bot token is configured")
        return self._send("message", message, channel_id=channel_id, target=message_id)

    def post_to_channel(
        self,
        channel_id: str,
        message: dict[str, Any],
        *,
        mention_user_id: str | None = None,
        nonce: str | None = None,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """Not a port method: what reply() falls back to, as on DiscordClient. A second post
        with a nonce within DISCORD_NONCE_SECONDS is answered with the first's message."""
        if not self.bot_token:
            raise DiscordError(None, "cannot post to the channel: no bot token is configured")
        return self._send(
            "channel",
            message,
            channel_id=channel_id,
            mention_user_id=mention_user_id,
            nonce=nonce,
            reply_to=reply_to,
        )


# -- the sink ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    event_type: str
    event_id: str
    data: dict[str, Any]


class MemorySink:
    """The Deliver port: keeps each event the next function would receive."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        # The sink refuses (a 503 from the Broker, or no answer): every call raises SinkError.
        self.down = False
        self._lock = threading.Lock()

    def __call__(self, event_type: str, event_id: str, data: dict[str, Any]) -> None:
        if self.down:
            raise SinkError("sink answered 503")
        # Through JSON, as the real sink sends it: a value that cannot travel fails here too.
        carried = json.loads(json.dumps(data))
        with self._lock:
            self.events.append(Event(event_type, event_id, carried))

    def of_type(self, event_type: str) -> list[Event]:
        return [event for event in self.events if event.event_type == event_type]


# -- the flows, wired as bootstrap wires them --------------------------------------------------

NAMESPACE = "agents"
UI = "https://argo.example.test"
TOKEN_TTL = 840
TEMPLATE = "facteur-dispatch"
STATIC = {"repoURL": "https://git.example/r.git"}
# /review's options as Discord sends them; the empty optional one is dropped on the way.
REVIEW = [
    {"name": "project", "type": 3, "value": "facteur"},
    {"name": "artifact", "type": 3, "value": "pr/1"},
    {"name": "notes", "type": 3, "value": ""},
]
SERVICE_ACCOUNT = "facteur-agent"
# Someone other than the run's owner, who clicks its buttons.


@functools.cache
def catalog(*, confirm_cancel: bool = True) -> Catalog:
    """The shipped catalog; confirm_cancel=False makes Cancel act at its first click, as a
    catalog entry may say (the tests of what a cancel does)."""
    shipped = load_catalog(DEFAULT_CATALOG_FILE)
    if confirm_cancel:
        return shipped
    commands = [c.model_copy(update={"confirm_cancel": False}) for c in shipped.commands]
    return shipped.model_copy(update={"commands": commands})


@dataclass
class World:
    """The four fakes, and each flow built on them with bootstrap's constructor arguments."""

    store: MemoryStore = field(default_factory=MemoryStore)
    argo: MemoryArgo = field(default_factory=MemoryArgo)
    discord: MemoryDiscord = field(default_factory=MemoryDiscord)
    sink: MemorySink = field(default_factory=MemorySink)
    # The catalog's confirm_cancel for every command (the shipped default: ask first).
    confirm_cancel: bool = True

    def ingress(self, **overrides: Any) -> Ingress:
        options: dict[str, Any] = {
            "verifier": Verifier(PUBLIC_KEY_HEX, 300),
            "catalog": catalog(),
            "role_map": ROLE_MAP,
            "deliver": self.sink,
            "guild_id": GUILD,
        }
        return Ingress(**(options | overrides))

    def router(self, **overrides: Any) -> Router:
        options: dict[str, Any] = {
            "catalog": catalog(),
            "role_map": ROLE_MAP,
            "store": self.store,
            "discord": self.discord,
            "deliver": self.sink,
            "token_ttl_seconds": TOKEN_TTL,
            "static_parameters": STATIC,
            "default_template": TEMPLATE,
            "guild_id": GUILD,
            "argo": self.argo,
            "ui_url": UI,
            "namespace": NAMESPACE,
        }
        return Router(**(options | overrides))

    def buttons(self, **overrides: Any) -> Buttons:
        options: dict[str, Any] = {
            "role_map": ROLE_MAP,
            "store": self.store,
            "discord": self.discord,
            "argo": self.argo,
            "ui_url": UI,
            "guild_id": GUILD,
            "cancel_strategy": "stop",
            "retry_strategy": "retry",
            "namespace": NAMESPACE,
            "catalog": catalog(confirm_cancel=self.confirm_cancel),
            "token_ttl_seconds": TOKEN_TTL,
        }
        return Buttons(**(options | overrides))

    def submitter(self, **overrides: Any) -> Submitter:
        options: dict[str, Any] = {
            "argo": self.argo,
            "store": self.store,
            "discord": self.discord,
            "namespace": NAMESPACE,
            "ui_url": UI,
            "token_ttl_seconds": TOKEN_TTL,
            "service_account": SERVICE_ACCOUNT,
        }
        return Submitter(**(options | overrides))

    def reporter(self, **overrides: Any) -> Reporter:
        options: dict[str, Any] = {
            "store": self.store,
            "discord": self.discord,
            "ui_url": UI,
            "token_ttl_seconds": TOKEN_TTL,
            "argo": self.argo,
            "tick_batch": 50,
            "namespace": NAMESPACE,
            "application_id": APP,
        }
        return Reporter(**(options | overrides))

    # -- journeys -------------------------------------------------------------------------------

    def requested(self) -> list[Journey]:
        """The journeys command_route handed to workflow_submit, as it will read them."""
        return [Journey.from_event(e.data) for e in self.sink.of_type(WORKFLOW_REQUESTED)]

    def run(
        self, trip: Journey, *, router: Router | None = None, submitter: Submitter | None = None
    ) -> list[Outcome]:
        """command_route, then workflow_submit for each request it handed on: their outcomes."""
        before = len(self.sink.events)
        outcomes = [(router or self.router()).handle(trip)]
        for event in self.sink.events[before:]:
            if event.event_type == WORKFLOW_REQUESTED:
                outcomes.append(
                    (submitter or self.submitter()).handle(Journey.from_event(event.data))
                )
        return outcomes

    def recorded_run(
        self,
        *,
        status: str = "Submitted",
        phase: str | None = "Running",
        age: float = 60.0,
        token: str | None = "itok-SECRET",
        command: str = "plan",
        **extra: Any,
    ) -> DispatchResult:
        """A run as workflow_submit records it (its token too), and as Argo knows it."""
        received_at = time.time() - age
        session = run_record(
            command=command, namespace=NAMESPACE, received_at=received_at, status=status, **extra
        )
        self.store.save(session, token, session.received_at + TOKEN_TTL, started=True)
        if phase is not None:
            self.argo.add_workflow(NAMESPACE, session.workflow_name or "", phase)
        return session


def click(
    action: str,
    ref: str | None,
    *,
    roles: list[str] | None = None,
    dm: bool = False,
    user_id: str = CLICKER,
) -> Click:
    """A click on one of facteur's buttons, read as command_route reads it."""
    payload = button_click(custom_id(action, ref or ""), roles=roles, dm=dm, user_id=user_id)
    found = read_click(payload)
    assert found is not None, f"{action}:{ref} is not one of facteur's buttons"
    return found


if TYPE_CHECKING:
    # mypy checks each fake against its port, as it does the adapters and stand-ins.
    _store: ports.SessionStore = MemoryStore()
    _argo: ports.Argo = MemoryArgo()
    _discord: ports.Discord = MemoryDiscord()
    _deliver: ports.Deliver = MemorySink()
