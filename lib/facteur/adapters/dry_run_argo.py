"""The local loop's dry-run Argo (dev.embedded without argo.server_url): it logs the exact
request it would send, creates nothing, and shows each run going through a Lifecycle, so that
the loop's messages change as a real run's do.

The local loop runs the functions in several processes (command_route stops and answers runs,
status_callback reads them, workflow_submit submits), so what the dry run knows of a run lives
in a state directory: one JSON file a workflow (Record), replaced whole with os.replace. What a
run shows at a given time is computed from that file and the Lifecycle alone (a Plan), so the
dry run stays deterministic, and cheap: no process runs anything in the background.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from facteur.adapters.argo import create_request
from facteur.adapters.local import say
from facteur.decisions import ids
from facteur.decisions.pod_names import fnv32a, pod_name
from facteur.decisions.workflow import NodeState, Submitted, WorkflowRequest, WorkflowState
from facteur.errors import ArgoError

log = logging.getLogger("facteur.standins")


# Discord's epoch: a snowflake's top bits are milliseconds since then.
DISCORD_EPOCH_MS = 1_420_070_400_000
_SNOWFLAKE_IN_NAME = re.compile(r"-([1-9][0-9]{15,19})(?:-|$)")
STEPS = 5
# The approval gate: its display name, template and supplied output parameter, the values that
# parameter's input allows (Argo's own example), and how many steps run before it.
GATE = "approve"
YES, NO = "YES", "NO"
GATE_AFTER = STEPS // 2
# A step's pod prints this many lines of work between its first line and its last.
WORK_LINES = 8
_DRY = "[argo DRY RUN: no argo.server_url]"


@dataclass(frozen=True)
class Lifecycle:
    """What the dry run shows of a run, by its age (from the interaction ID in its name):
    Pending, then Running through its steps, then `outcome`. With `gate`, the run stops after
    GATE_AFTER steps at a Suspend node that waits for an answer, or `gate_seconds`."""

    outcome: str = "Succeeded"
    seconds: float = 20.0
    gate: bool = False
    gate_seconds: float = 600.0

    @property
    def pending(self) -> float:
        return self.seconds * 0.15

    @property
    def step_seconds(self) -> float:
        return (self.seconds - self.pending) / STEPS


@dataclass(frozen=True)
class Record:
    """One dry run's state file: when it was born (its interaction ID's time), what was asked of
    it and when. Times are Unix seconds."""

    namespace: str
    name: str
    born: float
    submitted: float | None = None
    mutex: str | None = None
    stopped_at: float | None = None
    strategy: str | None = None  # "Stop" or "Terminate"
    # The gate's answer: set_node's message and approve value, and when resume_node came.
    message: str | None = None
    approve: str | None = None
    resumed_at: float | None = None


_TIMES = ("born", "submitted", "stopped_at", "resumed_at")
_TEXTS = ("namespace", "name", "mutex", "strategy", "message", "approve")


def _record_from(data: Any) -> Record | None:
    """A Record from a state file's JSON, or None for one of any other shape."""
    if not isinstance(data, dict):
        return None
    found: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(Record)}
    times_ok = all(
        isinstance(found[k], int | float) and not isinstance(found[k], bool)
        for k in _TIMES
        if found[k] is not None
    )
    texts_ok = all(isinstance(found[k], str) for k in _TEXTS if found[k] is not None)
    if not times_ok or not texts_ok or found["born"] is None or not found["name"]:
        return None
    return Record(**found)


@dataclass(frozen=True)
class Plan:
    """A run's whole timeline as its record says it now: every later call only adds answers at
    later times, so what a Plan showed for the past never changes."""

    record: Record
    lifecycle: Lifecycle
    # When its clock starts: its birth, or when the run before it on its mutex ended; `holder`
    # is that run, which it waits behind until then.
    origin: float
    holder: str | None
    # When it reaches the gate, and how long it waits there (None, 0: no gate).
    gate_at: float | None
    wait: float
    end: float
    phase: str
    message: str
    # Why it ended: "outcome" (the lifecycle's), "rejected" (at the gate) or "stopped".
    why: str

    @property
    def started(self) -> float:
        return self.origin + self.lifecycle.pending

    @property
    def resume_at(self) -> float | None:
        return None if self.gate_at is None else self.gate_at + self.wait

    def step_start(self, step: int) -> float:
        """When step 1..STEPS starts; those after the gate wait for its answer."""
        return _step_start(self.lifecycle, self.origin, self.wait, step)


def _step_start(lifecycle: Lifecycle, origin: float, wait: float, step: int) -> float:
    start = origin + lifecycle.pending + (step - 1) * lifecycle.step_seconds
    return start + wait if step > GATE_AFTER and lifecycle.gate else start


def plan(lifecycle: Lifecycle, record: Record, origin: float, holder: str | None) -> Plan:
    """The lifecycle from `origin`, paused at the gate until it is resumed (or its duration
    passes, as Argo resumes a suspend by itself), cut short by a rejection or a stop."""
    gate_at, wait = None, 0.0
    if lifecycle.gate:
        gate_at = _step_start(lifecycle, origin, 0.0, GATE_AFTER + 1)
        resumed = record.resumed_at
        wait = (resumed if resumed is not None else gate_at + lifecycle.gate_seconds) - gate_at
    # As the last step's end is computed, to the bit: that step ends with the run.
    end = _step_start(lifecycle, origin, wait, STEPS) + lifecycle.step_seconds
    phase, message, why = lifecycle.outcome, "dry run", "outcome"
    if gate_at is not None and record.approve is not None and record.approve != YES:
        # A template would branch on the value; the dry run just ends there.
        end, phase, message, why = gate_at + wait, "Failed", f"rejected at {GATE}", "rejected"
    if record.stopped_at is not None and record.stopped_at < end:
        strategy = record.strategy or "Stop"
        end, phase, message = record.stopped_at, "Failed", f"Stopped with strategy '{strategy}'"
        why = "stopped"
    return Plan(record, lifecycle, origin, holder, gate_at, wait, end, phase, message, why)


@dataclass(frozen=True)
class _Step:
    """One node of a run now, with what its pod's log is made from."""

    node: NodeState
    step: int | None  # None for the gate
    start: float


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _born(name: str) -> float | None:
    match = _SNOWFLAKE_IN_NAME.search(name)
    return None if match is None else ((int(match[1]) >> 22) + DISCORD_EPOCH_MS) / 1000


def default_state_dir() -> Path:
    """Per user, so that two people's loops on one machine never read each other's runs."""
    return Path(tempfile.gettempdir()) / f"facteur-dry-run-{os.getuid()}"


class DryRunArgo:
    """Logs the exact request it would send to the Argo Server and creates nothing; shows each
    run going through a Lifecycle, so that the local loop's messages change as a real run's do,
    and keeps what was asked of each run (stop, gate answers, mutex) in `state_dir`."""

    def __init__(
        self,
        lifecycle: Lifecycle | None = None,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifecycle = lifecycle or Lifecycle()
        self.state_dir = state_dir or default_state_dir()
        self.clock = clock

    # -- the Argo port -------------------------------------------------------------------------

    def submit(self, request: WorkflowRequest) -> Submitted:
        body = create_request(request)
        namespace, name = request.namespace, request.name
        say(
            f"{_DRY} would POST /api/v1/workflows/{namespace} "
            f"creating workflow {name}:\n{json.dumps(body, indent=2)}"
        )
        now = self.clock()
        # Always a fresh record, where Argo would answer 409: tests and replays reuse names, and
        # a run they left behind in the shared directory must not answer for the new one.
        with self._locked(namespace):
            born = _born(name) or now
            self._write(Record(namespace, name, born, submitted=now, mutex=request.mutex))
        return Submitted(name=name, namespace=namespace, uid=None, created=True)

    def get_workflow(self, namespace: str, name: str) -> WorkflowState | None:
        # `facteur callback` plays the exit handler at any point before the lifecycle ends.
        found = self._plan(namespace, name)
        if found is None:
            # Not facteur's (no interaction ID in the name): it just runs.
            return WorkflowState(name, namespace, "Running", None, None, "dry run")
        return self._state(found, self.clock())

    def get_nodes(self, namespace: str, name: str) -> list[NodeState]:
        found = self._plan(namespace, name)
        return [] if found is None else [s.node for s in self._steps(found, self.clock())]

    def find_by_ref(self, namespace: str, ref: str) -> list[WorkflowState]:
        # A dry run keeps no labels, so nothing carries a reference: Redis alone resolves it.
        return []

    def list_unfinished(self, namespace: str, limit: int = 500) -> list[WorkflowState]:
        return []

    def stop(self, namespace: str, name: str, message: str | None = None) -> None:
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/stop", "stopping", name)
        self._halt(namespace, name, "Stop")

    def terminate(self, namespace: str, name: str) -> None:
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/terminate", "terminating", name)
        self._halt(namespace, name, "Terminate")

    def retry(self, namespace: str, name: str) -> None:
        # The run's state stays as it is: a retried run still reads as it ended.
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/retry", "retrying", name)

    def resubmit(self, namespace: str, name: str) -> Submitted:
        # Argo names the new run itself; a dry run makes up a name of the same shape.
        again = f"{name[: ids.MAX_WORKFLOW_NAME - 6]}-{secrets.token_hex(2)}"
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/resubmit", "resubmitting", name)
        with self._locked(namespace):
            old = self._read(namespace, name)
            now = self.clock()
            # Born now: the name's interaction ID is the original's, and so would be its age.
            mutex = old.mutex if old else None
            self._write(Record(namespace, again, born=now, submitted=now, mutex=mutex))
        return Submitted(name=again, namespace=namespace, uid=None, created=True)

    def set_node(
        self,
        namespace: str,
        name: str,
        node_id: str,
        *,
        message: str | None = None,
        outputs: Mapping[str, str] | None = None,
    ) -> None:
        self._would(
            f"PUT /api/v1/workflows/{namespace}/{name}/set", f"setting node {node_id} of", name
        )
        outputs = dict(outputs or {})
        with self._locked(namespace):
            found = self._gate(namespace, name, node_id)
            record = found.record
            if not message and not outputs:
                raise ArgoError("currently, set only targets suspend nodes", status=500)
            for output in outputs:
                # Argo's own wording for each refusal (workflow/util updateSuspendedNode).
                if output != GATE:
                    raise ArgoError(
                        f"node is not expecting output parameter '{output}'", status=500
                    )
                if record.approve is not None:
                    raise ArgoError(
                        f"cannot set output parameter '{output}' because it does not use "
                        "valueFrom.raw or it was already set",
                        status=500,
                    )
            self._write(
                dataclasses.replace(
                    record,
                    message=message or record.message,
                    approve=outputs.get(GATE, record.approve),
                )
            )

    def resume_node(self, namespace: str, name: str, node_id: str) -> None:
        self._would(
            f"PUT /api/v1/workflows/{namespace}/{name}/resume", f"resuming node {node_id} of", name
        )
        with self._locked(namespace):
            found = self._gate(namespace, name, node_id)
            self._write(dataclasses.replace(found.record, resumed_at=self.clock()))

    def logs(
        self,
        namespace: str,
        name: str,
        pod_name: str,
        *,
        container: str = "main",
        tail_lines: int = 40,
    ) -> list[str]:
        found = self._plan(namespace, name)
        if found is None:
            raise ArgoError(f'workflows.argoproj.io "{name}" not found', status=404)
        now = self.clock()
        step = next((s for s in self._steps(found, now) if s.node.pod_name == pod_name), None)
        if step is None or step.step is None:
            raise ArgoError(f'pods "{pod_name}" not found', status=404)
        if container != "main":
            raise ArgoError(f"container {container} is not valid for pod {pod_name}", status=400)
        lines = self._log_lines(found, step, now)
        return lines[-tail_lines:] if tail_lines > 0 else []

    @staticmethod
    def _would(request: str, doing: str, name: str) -> None:
        say(f"{_DRY} would {request} ({doing} workflow {name})")

    # -- what a run shows ----------------------------------------------------------------------

    def _state(self, found: Plan, now: float) -> WorkflowState:
        r, lc = found.record, found.lifecycle
        steps = self._steps(found, now)
        done = sum(1 for s in steps if s.step is not None and s.node.phase != "Running")
        progress = f"{done}/{STEPS}"
        started = _iso(found.started) if min(now, found.end) > found.started else None
        if found.end <= now:
            progress_shown = progress if started else None
            return WorkflowState(
                r.name,
                r.namespace,
                found.phase,
                started,
                _iso(found.end),
                found.message,
                progress=progress_shown,
            )
        if now < found.origin and found.holder is not None:
            message = f"Waiting for {r.namespace}/Mutex/{r.mutex} lock. Lock status: 0/1"
            return WorkflowState(
                r.name, r.namespace, "Pending", None, None, message, waiting_for=found.holder
            )
        if started is None:
            message = "dry run: waiting for a dry-run lock"
            return WorkflowState(r.name, r.namespace, "Pending", None, None, message)
        return WorkflowState(
            r.name,
            r.namespace,
            "Running",
            started,
            None,
            "dry run",
            progress=progress,
            estimated_duration=lc.seconds - lc.pending,
        )

    def _steps(self, found: Plan, now: float) -> list[_Step]:
        """The nodes started by now, in order: steps done Succeeded, the one going Running, the
        gate when reached; at the end, the last step as the run ended."""
        r, lc = found.record, found.lifecycle
        until = min(now, found.end)
        ended = found.end <= now
        out: list[_Step] = []
        for step in range(1, STEPS + 1):
            if found.gate_at is not None and step == GATE_AFTER + 1:
                if found.gate_at > until:
                    break
                out.append(self._gate_step(found, now, index=len(out)))
            start = found.step_start(step)
            if start >= until:
                break
            finish = start + lc.step_seconds
            phase, message = "Running", None
            if finish <= until:
                phase = "Succeeded"
                if step == STEPS and found.why == "outcome" and found.phase != "Succeeded":
                    phase, message = found.phase, "Error (exit code 1)"
            elif ended:
                phase, message = "Failed", found.message
            template = f"step-{step}"
            node_name = f"{r.name}[{len(out)}].{template}"
            node_id = f"{r.name}-{fnv32a(node_name)}"
            node = NodeState(
                node_id,
                template,
                "Pod",
                phase,
                message,
                name=node_name,
                template_name=template,
                started_at=_iso(start),
                pod_name=pod_name(r.name, node_name, template, node_id),
            )
            out.append(_Step(node, step, start))
        return out

    @staticmethod
    def _gate_step(found: Plan, now: float, index: int) -> _Step:
        r, lc = found.record, found.lifecycle
        assert found.gate_at is not None and found.resume_at is not None
        phase, message = "Running", r.message
        if found.resume_at <= min(now, found.end):
            phase = "Succeeded"
        elif found.end <= now:
            phase, message = "Failed", found.message
        node_name = f"{r.name}[{index}].{GATE}"
        node = NodeState(
            f"{r.name}-{fnv32a(node_name)}",
            GATE,
            "Suspend",
            phase,
            message,
            name=node_name,
            template_name=GATE,
            started_at=_iso(found.gate_at),
            supplied=() if r.approve is not None else (GATE,),
            outputs=((GATE, r.approve),) if r.approve is not None else (),
            choices=((GATE, (YES, NO)),),
            suspend_seconds=lc.gate_seconds,
        )
        return _Step(node, None, found.gate_at)

    @staticmethod
    def _log_lines(found: Plan, step: _Step, now: float) -> list[str]:
        """Made-up but plausible: a first line, lines of work as the step goes, and a last line
        that says how it ended."""
        assert step.step is not None
        lc, who = found.lifecycle, f"step-{step.step}"
        elapsed = min(now, found.end) - step.start
        # The epsilon: a step that ran its whole time did all its work, floats or not.
        worked = min(WORK_LINES, int(elapsed / lc.step_seconds * WORK_LINES + 1e-9))
        lines = [f"{who}: starting on {found.record.name} (dry run: no pod ran)"]
        lines += [f"{who}: working ({n}/{WORK_LINES})" for n in range(1, worked + 1)]
        phase = step.node.phase
        if phase == "Succeeded":
            lines.append(f"{who}: done")
        elif phase == "Failed" and found.why == "stopped":
            lines.append(f"{who}: terminated: {found.message}")
        elif phase in ("Failed", "Error"):
            lines.append(f"{who}: error: exit code 1 (dev.dry_run_outcome is {found.phase})")
        return lines

    # -- the state directory -------------------------------------------------------------------

    def _plan(self, namespace: str, name: str) -> Plan | None:
        """The run's Plan now; None for a name of no dry run (no record, no interaction ID)."""
        record = self._read(namespace, name)
        if record is None:
            born = _born(name)
            if born is None:
                return None
            # Known by its name alone: a run of an older loop, or one `facteur callback` plays.
            return plan(self.lifecycle, Record(namespace, name, born), born, None)
        if record.mutex is None:
            return plan(self.lifecycle, record, record.born, None)
        return self._queued(record)

    def _queued(self, record: Record) -> Plan:
        """Runs on one mutex go one at a time in submit order: each one's clock starts when the
        lock is free, that is when the last run before it that held the lock ended."""
        queue = [
            r
            for r in self._records(record.namespace)
            if r.mutex == record.mutex and r.name != record.name
        ]
        queue.append(record)
        queue.sort(key=lambda r: (r.submitted or r.born, r.name))
        free: float | None = None
        holder: str | None = None
        for r in queue:
            origin = r.born if free is None else max(r.born, free)
            waits_for = holder if free is not None and free > r.born else None
            found = plan(self.lifecycle, r, origin, waits_for)
            if r is record:
                return found
            if found.end > origin:  # it held the lock (one stopped while waiting never did)
                free, holder = found.end, r.name
        raise AssertionError("the run is in its own queue")

    def _gate(self, namespace: str, name: str, node_id: str) -> Plan:
        """The run's Plan, when `node_id` is its gate and the gate waits now; else Argo's
        refusal."""
        found = self._plan(namespace, name)
        if found is None:
            raise ArgoError(f'workflows.argoproj.io "{name}" not found', status=404)
        now = self.clock()
        waiting = [
            s.node
            for s in self._steps(found, now)
            if s.node.type == "Suspend" and s.node.phase == "Running"
        ]
        if not ids.step_of(name, node_id) or not any(n.id == node_id for n in waiting):
            raise ArgoError("currently, set only targets suspend nodes", status=500)
        return found

    def _halt(self, namespace: str, name: str, strategy: str) -> None:
        with self._locked(namespace):
            found = self._plan(namespace, name)
            if found is None or found.record.stopped_at is not None:
                return  # not a dry run's, or already stopped: the first stop stands
            now = self.clock()
            self._write(dataclasses.replace(found.record, stopped_at=now, strategy=strategy))

    def _path(self, namespace: str, name: str) -> Path | None:
        # Only validated names become paths: nothing else may leave the directory.
        if not ids.is_namespace(namespace) or not ids.is_workflow_name(name):
            return None
        return self.state_dir / namespace / f"{name}.json"

    def _read(self, namespace: str, name: str) -> Record | None:
        path = self._path(namespace, name)
        return None if path is None else self._load(path)

    @staticmethod
    def _load(path: Path) -> Record | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.warning("dry run: cannot read %s (%s); ignoring it", path, err)
            return None
        record = _record_from(data)
        if record is None:
            log.warning("dry run: %s is not a dry run's state; ignoring it", path)
        return record

    def _records(self, namespace: str) -> list[Record]:
        folder = self.state_dir / namespace
        if not ids.is_namespace(namespace) or not folder.is_dir():
            return []
        found = (self._load(path) for path in sorted(folder.glob("*.json")))
        return [r for r in found if r is not None and r.namespace == namespace]

    def _write(self, record: Record) -> None:
        path = self._path(record.namespace, record.name)
        if path is None:
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Whole or not at all: another process may read the file at any moment.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(dataclasses.asdict(record), out, indent=2)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def _locked(self, namespace: str) -> Iterator[None]:
        """One writer at a time in a namespace, across processes: a read, then a write, of one
        run's file (and of its queue) must not interleave with another's."""
        if not ids.is_namespace(namespace):
            yield
            return
        folder = self.state_dir / namespace
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
