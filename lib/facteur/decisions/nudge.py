"""Reading a nudge: a Knative ApiServerSource event about one of facteur's workflows. Pure.

kubernetes/argo/apiserversource.yaml watches Argo Workflows in `mode: Reference`, so each event
carries only an object reference, as knative/eventing's adapter builds it
(pkg/adapter/apiserver/events/events.go: `getRef`, `makeEvent`):

- `type`: dev.knative.apiserver.ref.add, .update or .delete;
- `source`: the API server's URL (https://10.96.0.1:443); not checked, it says nothing facteur uses;
- `subject`: `/apis/<apiVersion>/namespaces/<namespace>/<resource>/<name>`, for a Workflow
  `/apis/argoproj.io/v1alpha1/namespaces/agents/workflows/<name>`;
- extensions `kind`, `name`, `namespace` (copies of the data's; not relied on);
- data (application/json): a corev1.ObjectReference with `apiVersion`, `kind`, `name` and
  `namespace` set, e.g. {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
  "name": "plan-…", "namespace": "agents"}.

Nothing authenticates such an event (the Broker's ingress takes any POST), so a nudge only ever
means "look at run X in Argo": a malformed one is refused (InvalidNudge, 400), one about another
kind or namespace is NotOurs (202, ignored), and a well-formed one is a Nudge for the flow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from facteur.decisions import ids, strict_json
from facteur.errors import InvalidNudge

ADD = "dev.knative.apiserver.ref.add"
UPDATE = "dev.knative.apiserver.ref.update"
DELETE = "dev.knative.apiserver.ref.delete"
NUDGE_TYPES = (ADD, UPDATE, DELETE)

KIND = "Workflow"
GROUP = "argoproj.io"
# What the API server pluralises Workflow to, in the subject (meta.UnsafeGuessKindToResource).
RESOURCE = "workflows"
# A reference is ~150 bytes; a structured-mode envelope around it well under 1 KiB.
MAX_BYTES = 4096
# Any string field of a reference: a Kubernetes name is at most 253 characters.
MAX_FIELD = 253
_API_VERSION = re.compile(r"[a-z0-9.-]{1,253}/v[0-9]+(?:(?:alpha|beta)[0-9]+)?|v[0-9]+")
_REQUIRED = ("apiVersion", "kind", "name", "namespace")
# The other fields of a corev1.ObjectReference: allowed, never used.
_OPTIONAL = ("uid", "resourceVersion", "fieldPath")
STRUCTURED = "application/cloudevents+json"


@dataclass(frozen=True)
class Nudge:
    """Look at run `name` in `namespace`; `deleted`: the API server says it is gone."""

    namespace: str
    name: str
    deleted: bool


@dataclass(frozen=True)
class NotOurs:
    """A well-formed reference to something facteur does not watch; the reason is safe to log."""

    reason: str


Header = Callable[[str], str | None]


def _structured(header: Header) -> bool:
    content_type = (header("Content-Type") or "").split(";")[0].strip().lower()
    return header("ce-specversion") is None and content_type == STRUCTURED


def _envelope(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BYTES:
        raise InvalidNudge(f"event is over {MAX_BYTES} bytes")
    try:
        envelope = strict_json.loads(body)
    except strict_json.NotStrictJson as err:
        raise InvalidNudge(f"event is {err}") from None
    if not isinstance(envelope, dict):
        raise InvalidNudge("event is not a JSON object")
    return envelope


def event_type(header: Header, body: bytes) -> str | None:
    """The CloudEvent's type, binary mode (ce-type) or structured; None when it has none."""
    if not _structured(header):
        return header("ce-type")
    try:
        found = _envelope(body).get("type")
    except InvalidNudge:
        return None
    return found if isinstance(found, str) else None


def is_nudge(header: Header, body: bytes) -> bool:
    # A structured event that is not strict JSON has no type to tell: a tick's 401 answers it.
    return event_type(header, body) in NUDGE_TYPES


def read_http(header: Header, body: bytes, *, namespace: str | None) -> Nudge | NotOurs:
    """A nudge as Knative delivers it: binary mode (ce-* headers, the data as the body) or
    structured (the whole event as JSON)."""
    if _structured(header):
        envelope = _envelope(body)
        if envelope.get("datacontenttype") not in (None, "application/json"):
            raise InvalidNudge("data is not application/json")
        return read_nudge(
            envelope.get("type"), envelope.get("subject"), envelope.get("data"), namespace=namespace
        )
    if len(body) > MAX_BYTES:
        raise InvalidNudge(f"event is over {MAX_BYTES} bytes")
    content_type = (header("Content-Type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidNudge("data is not application/json")
    try:
        data = strict_json.loads(body)
    except strict_json.NotStrictJson as err:
        raise InvalidNudge(f"data is {err}") from None
    return read_nudge(header("ce-type"), header("ce-subject"), data, namespace=namespace)


def read_nudge(type_: Any, subject: Any, data: Any, *, namespace: str | None) -> Nudge | NotOurs:
    """The reference in a nudge, checked strictly against the one namespace facteur submits to."""
    if type_ not in NUDGE_TYPES:
        raise InvalidNudge(f"type must be one of {', '.join(NUDGE_TYPES)}")
    if not isinstance(data, dict):
        raise InvalidNudge("data is not an object reference")
    unknown = sorted(set(data) - {*_REQUIRED, *_OPTIONAL})
    if unknown:
        raise InvalidNudge(f"data has unknown field(s): {', '.join(unknown[:5])[:200]}")
    for key in _REQUIRED:
        if not isinstance(data.get(key), str) or not data[key]:
            raise InvalidNudge(f"data.{key} is missing or not a string")
    for key in (*_REQUIRED, *_OPTIONAL):
        value = data.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD):
            raise InvalidNudge(f"data.{key} is not a string of at most {MAX_FIELD} characters")
    api_version, kind = data["apiVersion"], data["kind"]
    if not _API_VERSION.fullmatch(api_version):
        raise InvalidNudge("data.apiVersion is not an API version")
    if kind != KIND or api_version.partition("/")[0] != GROUP:
        return NotOurs("not an Argo Workflow")
    ref_namespace, name = data["namespace"], data["name"]
    if not ids.is_namespace(ref_namespace):
        raise InvalidNudge("data.namespace is not a namespace")
    if not namespace or ref_namespace != namespace:
        return NotOurs("not facteur's workflow namespace")
    if not ids.is_workflow_name(name):
        raise InvalidNudge("data.name is not a workflow name")
    expected = f"/apis/{api_version}/namespaces/{ref_namespace}/{RESOURCE}/{name}"
    if subject is not None and subject != expected:
        raise InvalidNudge("subject does not name the referenced workflow")
    return Nudge(namespace=ref_namespace, name=name, deleted=type_ == DELETE)


def event(
    name: str, namespace: str, /, *, verb: str = UPDATE, event_id: str, **data: Any
) -> tuple[bytes, dict[str, str]]:
    """A nudge as the ApiServerSource sends it in Reference mode (binary): what the local loop
    and the tests play. `data` overrides or adds reference fields."""
    api_version = f"{GROUP}/v1alpha1"
    ref: dict[str, Any] = {"apiVersion": api_version, "kind": KIND, "name": name}
    ref |= {"namespace": namespace, **data}
    subject = f"/apis/{ref['apiVersion']}/namespaces/{ref['namespace']}/{RESOURCE}/{ref['name']}"
    headers = {
        "ce-specversion": "1.0",
        "ce-type": verb,
        "ce-source": "https://kubernetes.default.svc",
        "ce-subject": subject,
        "ce-id": event_id,
        "ce-kind": KIND,
        "ce-name": str(ref["name"]),
        "ce-namespace": str(ref["namespace"]),
        "Content-Type": "application/json",
    }
    return json.dumps(ref).encode(), headers
