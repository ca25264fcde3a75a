"""Turning an allowed command into a workflow request: parameters, name, labels. Pure.

User text only ever becomes a parameter *value*, sent as structured JSON to Argo. It never
reaches a name, label, selector or URL: those are built from IDs facteur validated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from facteur.decisions import ids, parameter_text

LABEL_PREFIX = "facteur.dev/"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "facteur"
# The button reference, as a label: a click finds its run by it when Redis has forgotten it.
REF_LABEL = f"{LABEL_PREFIX}ref"
# Set to "true" by Argo's controller once the workflow has ended (common.LabelKeyCompleted).
COMPLETED_LABEL = "workflows.argoproj.io/completed"
ACTION_PARAMETER = "action"
# Sent only when the options are encoded, so that a template written for plain text never
# receives a parameter it does not declare.
ENCODING_PARAMETER = "encoding"
LAST_CORRELATION_PARAMETER = "last_correlation_id"
# Commands that receive the caller's previous correlation ID (the seed's contract).
WANTS_LAST_CORRELATION = frozenset({"review"})

_NAME_UNSAFE = re.compile(r"[^a-z0-9-]+")


def build_parameters(
    static: Mapping[str, str],
    options: Mapping[str, Any],
    command: str,
    last_correlation_id: str | None = None,
    encoding: parameter_text.Encoding = parameter_text.PLAIN,
) -> dict[str, str]:
    """Workflow parameters, in the documented order; later entries win on a clash.

    1. the static argo.parameters; 2. the supplied options, empty ones dropped, each in the
    command's encoding; 3. action=<command>, and encoding=base64 when the options are encoded;
    4. last_correlation_id for commands that want it, when one is known.
    """
    parameters = dict(static)
    for name, value in options.items():
        text = _as_text(value)
        if text.strip():
            parameters[name] = parameter_text.encode(text, encoding)
    parameters[ACTION_PARAMETER] = command
    if encoding != parameter_text.PLAIN:
        parameters[ENCODING_PARAMETER] = encoding
    if command in WANTS_LAST_CORRELATION and last_correlation_id:
        parameters[LAST_CORRELATION_PARAMETER] = last_correlation_id
    return parameters


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def workflow_name(command: str, interaction_id: str) -> str:
    """Deterministic per interaction, so a redelivery cannot start a second workflow."""
    if not interaction_id.isdigit():
        raise ValueError("interaction ID must be a snowflake")
    stem = _NAME_UNSAFE.sub("-", command.lower()).strip("-") or "command"
    return f"{stem}-{interaction_id}"


def label_value(text: str) -> str:
    """A valid Kubernetes label value: at most 63 characters of [A-Za-z0-9-_.], alnum at ends."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63].strip("-_.")


def run_labels(
    *,
    command: str,
    user_id: str,
    interaction_id: str,
    correlation_id: str,
    ref: str | None = None,
) -> dict[str, str]:
    """What selectors need: facteur's runs, one run by its correlation ID or button reference."""
    labels = {
        MANAGED_BY: MANAGER,
        f"{LABEL_PREFIX}command": label_value(command),
        f"{LABEL_PREFIX}user-id": label_value(user_id),
        f"{LABEL_PREFIX}interaction-id": label_value(interaction_id),
        f"{LABEL_PREFIX}correlation-id": label_value(correlation_id),
    }
    if ids.is_ref(ref):  # only a reference a selector can carry intact
        labels[REF_LABEL] = ref
    return labels


def run_annotations(
    *,
    command: str,
    user_id: str,
    interaction_id: str,
    correlation_id: str,
    guild_id: str | None,
    channel_id: str | None,
    traceparent: str | None = None,
    application_id: str | None = None,
    received_at: float | None = None,
) -> dict[str, str]:
    """The IDs exactly, and what it takes to report the run without Redis (never the token)."""
    found = {
        f"{LABEL_PREFIX}command": command,
        f"{LABEL_PREFIX}user-id": user_id,
        f"{LABEL_PREFIX}interaction-id": interaction_id,
        f"{LABEL_PREFIX}correlation-id": correlation_id,
        f"{LABEL_PREFIX}guild-id": guild_id,
        f"{LABEL_PREFIX}channel-id": channel_id,
        f"{LABEL_PREFIX}application-id": application_id,
        # Unix seconds when the interaction reached facteur: its token's clock started then.
        f"{LABEL_PREFIX}received-at": None if received_at is None else f"{received_at:.3f}",
        # The trace the workflow belongs to, when tracing is on.
        f"{LABEL_PREFIX}traceparent": traceparent,
    }
    return {key: value for key, value in found.items() if value}


def facteur_metadata(found: Any) -> dict[str, str]:
    """Of a workflow's labels or annotations, facteur's own (facteur.dev/…, managed-by)."""
    if not isinstance(found, Mapping):
        return {}
    return {
        key: value
        for key, value in found.items()
        if isinstance(key, str)
        and isinstance(value, str)
        and (key.startswith(LABEL_PREFIX) or key == MANAGED_BY)
    }


# Label selectors (Kubernetes syntax), built from constants and validated IDs only.
UNFINISHED_SELECTOR = f"{MANAGED_BY}={MANAGER},{COMPLETED_LABEL}!=true"


def ref_selector(ref: str) -> str:
    """facteur's runs carrying this button reference (a resubmitted run copies its labels)."""
    if not ids.is_ref(ref):
        raise ValueError("a button reference a label selector cannot carry")
    return f"{MANAGED_BY}={MANAGER},{REF_LABEL}={ref}"


# -- what facteur asks of Argo, and what Argo says of a run ------------------------------------


@dataclass(frozen=True)
class WorkflowRequest:
    """One workflow to create from a (Cluster)WorkflowTemplate: everything the create needs.

    User text only ever sits in `parameters` values; the adapter still checks every name.
    """

    namespace: str
    name: str
    template: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    cluster_scope: bool = False
    # An Argo synchronization mutex the run holds while it runs (decisions/concurrency.py):
    # runs of one command on one key go one at a time, the others wait Pending in Argo.
    mutex: str | None = None


@dataclass(frozen=True)
class Submitted:
    name: str
    namespace: str
    uid: str | None
    created: bool  # False when a workflow of that name already existed (409)


@dataclass(frozen=True)
class WorkflowState:
    name: str
    namespace: str
    phase: str | None
    started_at: str | None
    finished_at: str | None
    message: str | None
    # The entrypoint node's phase (its ID is the workflow's name). While the exit handler runs,
    # the workflow is still Running and this is what {{workflow.status}} reports.
    entry_phase: str | None = None
    # facteur's own labels and annotations (facteur_metadata), and when Argo created the run:
    # what decisions/recovery.py rebuilds a forgotten session from.
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    created_at: str | None = None
    # Argo's "N/M" of nodes done, and its estimate of the whole run in seconds (from earlier
    # runs of the template), when it has them: what a running run's card shows.
    progress: str | None = None
    estimated_duration: float | None = None
    # The run this one waits behind for a mutex (status.synchronization.mutex.waiting's holder),
    # by workflow name, while Argo keeps it Pending.
    waiting_for: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, when Argo reports both."""
        if not self.started_at or not self.finished_at:
            return None
        try:
            begin = datetime.fromisoformat(self.started_at.replace("Z", "+00:00"))
            end = datetime.fromisoformat(self.finished_at.replace("Z", "+00:00"))
        except ValueError:
            return None
        return max(0.0, (end - begin).total_seconds())


@dataclass(frozen=True)
class NodeState:
    """One step of a run, as Argo's status.nodes shows it."""

    id: str
    display_name: str
    type: str
    phase: str | None
    message: str | None = None
    # The node's full name ("run[0].build"): what Argo hashes into a pod's name.
    name: str = ""
    template_name: str | None = None
    started_at: str | None = None
    # The pod of a Pod node, by the run's pod-name format (Argo's GeneratePodName).
    pod_name: str | None = None
    # A Suspend node's output parameters that still wait for a value (valueFrom.supplied), and
    # the allowed values (enum) of its input parameters, by name.
    supplied: tuple[str, ...] = ()
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Its output parameters that hold a value: for a Suspend node, those already set.
    outputs: tuple[tuple[str, str], ...] = ()
    # A Suspend node's template duration in seconds: Argo resumes it by itself then.
    suspend_seconds: float | None = None


# The nodes that are a step's own work, not the steps, DAG or retry nodes around them.
_WORK_TYPES = frozenset({"Pod", "Container", "HTTP", "Plugin", "Resource", "Suspend"})
MAX_NODES = 500


def running_steps(nodes: Sequence[NodeState]) -> list[str]:
    """The display names of the steps running now, in Argo's order."""
    return [n.display_name for n in nodes if n.type in _WORK_TYPES and n.phase == "Running"]


def failed_steps(nodes: Sequence[NodeState]) -> list[NodeState]:
    return [n for n in nodes if n.type in _WORK_TYPES and n.phase in ("Failed", "Error")]
