"""The status callback contract: what an Argo exit handler posts to status_callback. Pure.

Body (JSON object): `name`, `namespace`, `status` (Succeeded | Failed | Error) are required;
`uid`, `duration` (seconds, string or number), `message` and `failures` are optional.
`failures` is `{{workflow.failures}}`: a JSON array, a string holding one, or, when nothing
failed, the unresolved literal itself. All three are accepted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from facteur.decisions import ids, strict_json
from facteur.decisions.workflow import WorkflowState
from facteur.errors import InvalidReport

FINAL_STATUSES = frozenset({"Succeeded", "Failed", "Error"})
MAX_FAILURES = 50
# How Argo turns the entrypoint node's phase into {{workflow.status}} for the exit handler
# (workflow/controller/operator.go, the workflowStatus map in operate).
_ENTRY_TO_STATUS = {
    "Succeeded": "Succeeded",
    "Skipped": "Succeeded",
    "Omitted": "Succeeded",
    "Failed": "Failed",
    "Error": "Error",
}

_UNRESOLVED = re.compile(r"^\{\{.*\}\}$", re.DOTALL)


@dataclass(frozen=True)
class Failure:
    node: str
    message: str
    phase: str | None = None


@dataclass(frozen=True)
class Report:
    name: str
    namespace: str
    status: str
    uid: str | None = None
    duration: float | None = None
    message: str | None = None
    failures: list[Failure] = field(default_factory=list)


def status_in_argo(state: WorkflowState | None) -> str | None:
    """The final status Argo itself shows for a run, or None while it shows none.

    That is the workflow's phase once it has ended, or, while its exit handler runs (the
    workflow is then still Running), the status Argo gave the handler: its entrypoint's.
    """
    if state is None:
        return None
    if state.phase in FINAL_STATUSES:
        return state.phase
    return _ENTRY_TO_STATUS.get(state.entry_phase or "")


def parse_report(raw: bytes) -> Report:
    try:
        body = strict_json.loads(raw)
    except strict_json.NotStrictJson as err:
        raise InvalidReport(f"body is {err}") from None
    if not isinstance(body, dict):
        raise InvalidReport("body is not a JSON object")
    missing = [key for key in ("name", "namespace", "status") if not body.get(key)]
    if missing:
        raise InvalidReport(f"missing required field(s): {', '.join(missing)}")
    name, namespace, status = body["name"], body["namespace"], body["status"]
    if not ids.is_workflow_name(name):
        raise InvalidReport("name is not a workflow name")
    if not ids.is_namespace(namespace):
        raise InvalidReport("namespace is not a namespace")
    if status not in FINAL_STATUSES:
        raise InvalidReport(f"status must be one of {', '.join(sorted(FINAL_STATUSES))}")
    return Report(
        name=name,
        namespace=namespace,
        status=status,
        uid=_optional_text(body.get("uid"), "uid", 64),
        duration=_duration(body.get("duration")),
        message=_optional_text(body.get("message"), "message", 4096),
        failures=_failures(body.get("failures")),
    )


def _resolved(value: Any) -> Any:
    """None for an Argo variable that was never resolved, such as '{{workflow.failures}}'."""
    if isinstance(value, str) and _UNRESOLVED.fullmatch(value.strip()):
        return None
    return value


def _optional_text(value: Any, what: str, limit: int) -> str | None:
    value = _resolved(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidReport(f"{what} must be a string")
    return value[:limit]


def _duration(value: Any) -> float | None:
    value = _resolved(value)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidReport("duration must be a number of seconds")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidReport("duration must be a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidReport("duration must be a number of seconds")
    return seconds


def _failures(value: Any) -> list[Failure]:
    value = _resolved(value)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = strict_json.loads(value)
        except strict_json.NotStrictJson:
            raise InvalidReport("failures is not a JSON array") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidReport("failures is not a JSON array")
    found = []
    for item in value[:MAX_FAILURES]:
        if not isinstance(item, dict):
            raise InvalidReport("failures holds something that is not an object")
        node = item.get("displayName") or item.get("name") or "?"
        found.append(
            Failure(
                node=str(node)[:256],
                message=str(item.get("message") or "")[:1024],
                phase=item.get("phase") if isinstance(item.get("phase"), str) else None,
            )
        )
    return found
