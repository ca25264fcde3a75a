"""A fake Argo Server that holds every request facteur sends to Argo's own swagger.json.

One behaviour, two transports:
- `FakeArgo.mocked()` answers through `responses` (no sockets, fast). `responses` replays
  urllib3's status retries (429/5xx) itself, without sleeping, but not retries after connection
  errors or timeouts: an exception raised in its callback goes straight to the caller.
- `FakeArgo.served()` listens on 127.0.0.1 in a thread, so urllib3's Retry runs for real:
  timeouts, dropped connections, backoff and Retry-After.

Each request is checked against the spec: the method and path template exist in `paths` (literal
segments win over `{params}`, as in grpc-gateway), path and query parameters are declared, the
JSON body validates against the operation's body schema with `#/definitions/...` refs resolved,
and it holds no key that the schema does not name, at any depth (the definitions mostly allow
extra keys, so plain validation would let a misspelt field through). A body's namespace and name
must also agree with the path. Violations are answered with 400, kept in `.violations`, and
raised as AssertionError when the fake closes. The fake's own answers are checked the same way.

Default behaviour: create stores the workflow and answers 200 with it (409 AlreadyExists for a
name it holds; `templates=` makes it refuse unknown templates), GET answers the stored workflow
(honouring `fields`) with a phase set by `set_phase`, 404 for unknown names; stop, terminate,
retry and resubmit act on the stored workflow. List answers the namespace's workflows that match
`listOptions.labelSelector` (equality terms, parsed as Kubernetes does: a malformed selector or
limit is a violation), at most `listOptions.limit`, sorted as Argo sorts them, honouring `fields`;
`set_phase` keeps the controller's phase and completed labels. `queue()` scripts answers ahead
of that.

Gates and logs, as Argo's server and controller do them (workflow/util/util.go
updateSuspendedNode, util/logs): set and resume act only on Running Suspend nodes matching the
nodeFieldSelector (parsed as Kubernetes field selectors), else 500 with Argo's message; an output
parameter is set once, while its valueFrom.supplied is there; resume marks the node Succeeded.
`add_suspend_node` seeds a gate (node, and its template in the stored spec), `add_pod_node` a
pod and its log lines, `pod_gone` a pod whose logs fail, `wait_behind` a mutex wait. The log
API answers newline-delimited JSON as grpc-gateway streams it, each entry checked against the
operation's stream schema.
"""

from __future__ import annotations

import copy
import functools
import http.server
import json
import re
import secrets
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from requests.structures import CaseInsensitiveDict

from tests.helpers.contracts import specs_path
from tests.helpers.servers import serving

SPEC_URI = "urn:argo-workflows-swagger"
DEFINITIONS = "#/definitions/"
DEFAULT_BASE_URL = "https://argo.test:2746"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
# RFC 3986 pchar: anything else in a path segment should have been percent-encoded.
_PCHAR_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+")
_GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
_TERMINAL = ("Succeeded", "Failed", "Error")
_ON_ONE_WORKFLOW = frozenset(
    {
        "GetWorkflow",
        "DeleteWorkflow",
        "StopWorkflow",
        "TerminateWorkflow",
        "RetryWorkflow",
        "ResubmitWorkflow",
        "SetWorkflow",
        "ResumeWorkflow",
        "WorkflowLogs",
    }
)
POD_NAME_FORMAT = "workflows.argoproj.io/pod-name-format"
_LOG_QUERY = frozenset(
    {"podName", "logOptions.container", "logOptions.tailLines", "logOptions.limitBytes"}
)
# How a gone pod's logs fail: Argo's usual answer (no pod matched, so no entries), a stream
# that ends with a NotFound entry, or a plain HTTP 404.
GONE_MODES = ("empty", "stream", "http")


# -- the contract ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    operation: dict[str, Any]
    params: dict[str, str]  # path parameters, percent-decoded

    @property
    def operation_id(self) -> str:
        return self.operation.get("operationId", "")


class SwaggerContract:
    """Argo's swagger.json as a checker of requests and answers."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        resource = Resource(contents=spec, specification=DRAFT4)
        self._registry = Registry().with_resource(SPEC_URI, resource)
        self._routes: list[tuple[str, list[str], str, dict[str, Any]]] = []
        for template, item in spec["paths"].items():
            for method, operation in item.items():
                if method.upper() in METHODS:
                    segments = template.strip("/").split("/")
                    self._routes.append((method.upper(), segments, template, operation))

    @classmethod
    @functools.cache
    def load(cls) -> SwaggerContract:
        path = specs_path("argo-workflows", "swagger.json")
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def definition(self, name: str) -> dict[str, Any]:
        return self.spec["definitions"][name]

    # Routing

    def route(self, method: str, path: str) -> Route | str:
        """The operation for a request, or a sentence saying why there is none."""
        raw = path.strip("/").split("/")
        for segment in raw:
            if not _PCHAR_RE.fullmatch(segment):
                return f"path segment {segment!r} is empty or not percent-encoded"
        matches: list[tuple[int, str, str, dict[str, Any], dict[str, str]]] = []
        for route_method, segments, template, operation in self._routes:
            params = _match(segments, raw)
            if params is not None:
                literals = sum(not s.startswith("{") for s in segments)
                matches.append((literals, route_method, template, operation, params))
        if not matches:
            return f"no path template in swagger.json matches {path}"
        best = max(literal for literal, *_ in matches)
        found = [m for m in matches if m[0] == best]
        for _, route_method, template, operation, params in found:
            if route_method == method:
                return Route(method, template, operation, params)
        allowed = sorted({m[1] for m in found})
        return f"{method} is not an operation of {found[0][2]} (spec has {allowed})"

    # Requests

    def check_request(
        self,
        route: Route,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[Any, list[str]]:
        """Parse and check one request; answer (parsed JSON body or None, problems)."""
        problems: list[str] = []
        declared = route.operation.get("parameters", [])
        path_names = {p["name"] for p in declared if p["in"] == "path"}
        if path_names != set(route.params):
            problems.append(f"path parameters {sorted(route.params)} != spec {sorted(path_names)}")
        query_names = {p["name"] for p in declared if p["in"] == "query"}
        for name, values in query.items():
            if name not in query_names:
                problems.append(f"query parameter {name!r} is not declared for {route.template}")
            elif len(values) != 1:
                problems.append(f"query parameter {name!r} given {len(values)} times")

        body_params = [p for p in declared if p["in"] == "body"]
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                problems.append("body is not JSON")
                return None, problems
            content_type = headers.get("Content-Type", "")
            if content_type.split(";")[0].strip() != "application/json":
                problems.append(f"body sent as {content_type!r}, spec consumes application/json")
        if body_params:
            if not body:
                if body_params[0].get("required"):
                    problems.append(f"{route.operation_id} requires a JSON body")
            else:
                problems.extend(self.check_instance(body_params[0]["schema"], parsed, "body"))
                problems.extend(_consistency(route, parsed))
        elif body:
            problems.append(f"{route.operation_id} takes no body")
        return parsed, problems

    def check_response(self, route: Route, status: int, payload: Any) -> list[str]:
        responses = route.operation.get("responses", {})
        answer = responses.get(str(status)) or responses.get("default")
        if not answer or "schema" not in answer:
            return []
        return self.check_instance(answer["schema"], payload, f"answer {status}")

    # Schemas

    def check_instance(self, schema: dict[str, Any], instance: Any, where: str) -> list[str]:
        """Validate `instance`; also refuse keys the schema does not name, at any depth."""
        validator = self._validator(json.dumps(schema, sort_keys=True))
        problems = [
            f"{where}{_pointer(error.absolute_path)}: {error.message}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        ]
        problems.extend(
            f"{where}: {key} is not in the schema" for key in self.unknown_keys(schema, instance)
        )
        return problems

    @functools.cache  # noqa: B019 - one contract per process; schemas are few
    def _validator(self, schema_json: str) -> Draft4Validator:
        schema = _rebase(json.loads(schema_json))
        return Draft4Validator(schema, registry=self._registry)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith(DEFINITIONS) or seen > 50:
                raise ValueError(f"unsupported $ref {ref}")
            schema = self.definition(ref[len(DEFINITIONS) :])
            seen += 1
        return schema

    def unknown_keys(
        self, schema: dict[str, Any], instance: Any, where: str = "$"
    ) -> Iterator[str]:
        schema = self.resolve(schema)
        if isinstance(instance, dict):
            properties = schema.get("properties")
            extra = schema.get("additionalProperties")
            if properties is None and not isinstance(extra, dict) and "type" not in schema:
                return  # no type at all: any JSON value by design (e.g. v1alpha1.Item)
            for key, value in instance.items():
                if properties and key in properties:
                    yield from self.unknown_keys(properties[key], value, f"{where}.{key}")
                elif isinstance(extra, dict):
                    yield from self.unknown_keys(extra, value, f"{where}.{key}")
                else:
                    yield f"{where}.{key}"
        elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(instance):
                yield from self.unknown_keys(schema["items"], item, f"{where}[{index}]")


def _match(segments: list[str], raw: list[str]) -> dict[str, str] | None:
    if len(segments) != len(raw):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(segments, raw, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            params[expected[1:-1]] = unquote(actual)
        elif expected != actual:
            return None
    return params


def _rebase(schema: Any) -> Any:
    # The spec's refs are document-relative; the validator's root is not the spec.
    if isinstance(schema, dict):
        return {
            k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _rebase(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


def _pointer(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _consistency(route: Route, body: Any) -> list[str]:
    """What Argo's server assumes but swagger cannot say: the body names what the path names."""
    if not isinstance(body, dict):
        return []
    problems = []
    for key in ("namespace", "name"):
        if key in body and key in route.params and body[key] != route.params[key]:
            problems.append(f"body {key} {body[key]!r} != path {key} {route.params[key]!r}")
    workflow = body.get("workflow")
    if isinstance(workflow, dict) and "namespace" in route.params:
        meta = workflow.get("metadata") or {}
        namespace = meta.get("namespace")
        if namespace is not None and namespace != route.params["namespace"]:
            problems.append(f"workflow.metadata.namespace {namespace!r} != path namespace")
    return problems


# -- the server ------------------------------------------------------------------------------


@dataclass
class ArgoRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    operation: str | None
    params: dict[str, str]
    query: dict[str, str]
    headers: CaseInsensitiveDict
    json: Any
    problems: list[str]


@dataclass
class _Script:
    method: str
    path: re.Pattern[str] | None
    status: int | None
    body: Any
    headers: dict[str, str]
    delay: float
    drop: bool
    times: int | None

    def matches(self, method: str, path: str) -> bool:
        return self.method == method and (self.path is None or bool(self.path.search(path)))


@dataclass
class _Answer:
    status: int = 200
    payload: Any = None
    raw: bytes | None = None  # a non-JSON body, verbatim
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    # A streaming answer: one JSON object per line, as grpc-gateway writes them.
    entries: list[dict[str, Any]] | None = None

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.entries is not None:
            return b"".join(json.dumps(entry).encode() + b"\n" for entry in self.entries)
        return json.dumps({} if self.payload is None else self.payload).encode()


@dataclass
class PodLog:
    """One pod's log lines per container, and whether (and how) the pod is gone."""

    workflow: str
    lines: dict[str, list[str]] = field(default_factory=dict)
    gone: str | None = None


class FakeArgo:
    """An Argo Server holding workflows in memory. Use `mocked()` or `served()`."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        token: str | None = None,
        templates: set[str] | None = None,
        cluster_templates: set[str] | None = None,
        missing_template_status: int = 404,
    ) -> None:
        self.base_url = base_url
        self.token = token
        # None accepts any template name; a set makes the others missing.
        self.templates = templates
        self.cluster_templates = cluster_templates
        # Argo's validator returns the Kubernetes NotFound for a missing template as is, and the
        # server maps it by its HTTP code: most likely 404 (PLATFORM-FACTS guessed 400).
        self.missing_template_status = missing_template_status
        self.contract = SwaggerContract.load()
        self.requests: list[ArgoRequest] = []
        self.violations: list[str] = []
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        # (namespace, pod name) -> its logs; a pod not here has none (Argo matches no pod).
        self.pods: dict[tuple[str, str], PodLog] = {}
        # What resume writes as the node's message; Argo writes it only when it knows the user.
        self.resumed_by: str | None = None
        self._scripts: list[_Script] = []
        self._lock = threading.RLock()
        self._version = 0

    # -- transports ------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def mocked(cls, **kwargs: Any) -> Iterator[FakeArgo]:
        """Answer requests to `fake.base_url` through `responses`."""
        import responses

        fake = cls(**kwargs)
        pattern = re.compile(re.escape(fake.base_url) + r"(?:/.*)?$")
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            for method in METHODS:
                mock.add_callback(
                    method, pattern, callback=fake._responses_callback, content_type=None
                )
            yield fake
        fake.assert_clean()

    @classmethod
    @contextmanager
    def served(cls, *, tls: ssl.SSLContext | None = None, **kwargs: Any) -> Iterator[FakeArgo]:
        """Listen on 127.0.0.1; `fake.base_url` says where. With `tls`, a server-side context
        holding a certificate for 127.0.0.1, over HTTPS, as a stock argo-server serves."""
        fake = cls(**kwargs)
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = fake
        if tls is not None:
            # The handshake happens at the handler thread's first read, not in accept(), so a
            # client that refuses the certificate (or never speaks) holds up no other.
            server.socket = tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        with serving(server) as port:
            fake.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
            yield fake
        fake.assert_clean()

    def _responses_callback(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        import requests

        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = self.handle(request.method, request.path_url, request.headers, body)
        if answer.drop:
            raise requests.ConnectionError("fake argo dropped the connection")
        if answer.delay:
            timeout = getattr(request, "req_kwargs", {}).get("timeout")
            read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
            if read_timeout is not None and answer.delay >= read_timeout:
                raise requests.ReadTimeout("fake argo answered too late")
            time.sleep(answer.delay)
        return answer.status, _answer_headers(answer), answer.content()

    # -- scripting and state -----------------------------------------------------------------

    def queue(
        self,
        method: str,
        status: int | None = None,
        body: Any = None,
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        drop: bool = False,
        times: int | None = 1,
    ) -> None:
        """Script the next answer(s) to `method` (and paths matching regex `path`).

        `status` None keeps the default behaviour (state changes too) and only applies `delay`:
        the answer arrives late, as when Argo acted but the reply was slow. `drop` closes the
        connection without answering. `times` None repeats for ever. A body of str or bytes is
        sent verbatim; a missing error body becomes Argo's `{"code", "message"}`.
        """
        script = _Script(
            method=method.upper(),
            path=re.compile(path) if path else None,
            status=status,
            body=body,
            headers=dict(headers or {}),
            delay=delay,
            drop=drop,
            times=times,
        )
        with self._lock:
            self._scripts.append(script)

    def clear_queue(self) -> None:
        with self._lock:
            self._scripts.clear()

    def add_workflow(
        self,
        namespace: str,
        name: str,
        phase: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        **status: Any,
    ) -> dict[str, Any]:
        """Seed a workflow as if facteur had created it earlier (with these labels)."""
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        workflow = {"metadata": meta, "spec": {"workflowTemplateRef": {"name": "seeded"}}}
        with self._lock:
            stored = self._store(namespace, workflow)
        if phase is not None:
            self.set_phase(namespace, name, phase, **status)
        return stored

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
        """Move a workflow on, as the controller would; times default sensibly.

        The entrypoint node (ID: the workflow's name) takes `entry`, else the workflow's phase:
        `set_phase(..., "Running", entry="Failed")` is a run whose exit handler is running.
        """
        with self._lock:
            workflow = self.workflows[(namespace, name)]
            status = workflow.setdefault("status", {})
            if phase is None:
                status.clear()
                return
            status["phase"] = phase
            # The controller's own labels (operator.go markWorkflowPhase): what selectors see.
            labels = workflow["metadata"].setdefault("labels", {})
            labels[PHASE_LABEL] = phase
            labels[COMPLETED_LABEL] = "true" if phase in _TERMINAL else "false"
            root = {"id": name, "name": name, "type": "Steps", "phase": entry or phase}
            status.setdefault("nodes", {})[name] = root
            if phase != "Pending":
                status["startedAt"] = started_at or status.get("startedAt") or _now()
            if phase in _TERMINAL:
                status["finishedAt"] = finished_at or _now()
            else:
                status.pop("finishedAt", None)
            if message is not None:
                status["message"] = message

    def add_suspend_node(
        self,
        namespace: str,
        name: str,
        display_name: str = "approve",
        *,
        template: str = "approve",
        parameter: str | None = "decision",
        choices: tuple[str, ...] = ("approve", "reject"),
        duration: str | None = None,
        default: str | None = None,
        phase: str = "Running",
        node_name: str | None = None,
    ) -> str:
        """A suspend step as the controller makes it; its ID. The template goes into the stored
        spec (suspend.duration, an input with `choices` as enum, an output with valueFrom
        supplied, and `default`); the node copies its inputs and raw outputs."""
        body: dict[str, Any] = {"name": template, "suspend": {}}
        if duration is not None:
            body["suspend"]["duration"] = duration
        if parameter is not None:
            value_from: dict[str, Any] = {"supplied": {}}
            if default is not None:
                value_from["default"] = default
            inputs = {"name": parameter, "enum": list(choices)}
            if choices:
                inputs["value"] = choices[0]
            body["inputs"] = {"parameters": [inputs]}
            body["outputs"] = {"parameters": [{"name": parameter, "valueFrom": value_from}]}
        with self._lock:
            workflow = self.workflows[(namespace, name)]
            stored = workflow.setdefault("status", {}).setdefault("storedWorkflowTemplateSpec", {})
            templates = stored.setdefault("templates", [])
            templates[:] = [t for t in templates if t.get("name") != template] + [body]
            node = self._node(namespace, name, display_name, "Suspend", template, phase, node_name)
            if parameter is not None:
                node["inputs"] = copy.deepcopy(body["inputs"])
                node["outputs"] = copy.deepcopy(body["outputs"])
            return str(node["id"])

    def add_pod_node(
        self,
        namespace: str,
        name: str,
        display_name: str,
        *,
        template: str = "run",
        phase: str = "Running",
        lines: tuple[str, ...] | list[str] = (),
        container: str = "main",
        node_name: str | None = None,
    ) -> tuple[str, str]:
        """A Pod step and its pod's log lines; (node ID, pod name). The pod is named as Argo
        names it, by the workflow's pod-name-format annotation (v2 unless it says v1)."""
        with self._lock:
            node = self._node(namespace, name, display_name, "Pod", template, phase, node_name)
            annotations = self.workflows[(namespace, name)]["metadata"].get("annotations") or {}
            if annotations.get(POD_NAME_FORMAT) == "v1":
                pod = node["id"]
            elif node["name"] == name:
                pod = name
            else:
                pod = f"{f'{name}-{template}' if template else name}"[:242]
                pod = f"{pod}-{_fnv1a32(node['name'])}"
            self.pods[(namespace, pod)] = PodLog(workflow=name, lines={container: list(lines)})
            return str(node["id"]), pod

    def set_pod_logs(
        self, namespace: str, name: str, pod: str, lines: list[str], container: str = "main"
    ) -> None:
        with self._lock:
            log = self.pods.setdefault((namespace, pod), PodLog(workflow=name))
            log.lines[container] = list(lines)

    def pod_gone(self, namespace: str, pod: str, how: str = "stream") -> None:
        """The pod was deleted: its logs answer as GONE_MODES says."""
        if how not in GONE_MODES:
            raise ValueError(f"how must be one of {GONE_MODES}")
        with self._lock:
            self.pods[(namespace, pod)].gone = how

    def wait_behind(
        self,
        namespace: str,
        name: str,
        holder: str,
        *,
        mutex: str = "plan",
        node: str | None = None,
        key: str | None = None,
    ) -> None:
        """Keep the run Pending behind `holder`'s mutex, as the controller writes it: the
        holder key "namespace/workflow[/node]", or `key` verbatim (an older controller's)."""
        holder_key = key
        if holder_key is None:
            holder_key = "/".join([namespace, holder, *([node] if node else [])])
        waiting = {"mutex": f"{namespace}/Mutex/{mutex}", "holder": holder_key}
        self.set_phase(namespace, name, "Pending")
        with self._lock:
            status = self.workflows[(namespace, name)]["status"]
            status["synchronization"] = {"mutex": {"waiting": [waiting]}}

    def node(self, namespace: str, name: str, node_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.workflows[(namespace, name)]["status"]["nodes"][node_id])

    def _node(
        self,
        namespace: str,
        name: str,
        display_name: str,
        kind: str,
        template: str,
        phase: str,
        node_name: str | None,
    ) -> dict[str, Any]:
        # A node's ID is "<workflow>-<fnv32a of its name>" (Workflow.NodeID).
        full = node_name or f"{name}.{display_name}"
        node_id = name if full == name else f"{name}-{_fnv1a32(full)}"
        node = {
            "id": node_id,
            "name": full,
            "displayName": display_name,
            "type": kind,
            "templateName": template,
            "phase": phase,
            "startedAt": _now(),
        }
        status = self.workflows[(namespace, name)].setdefault("status", {})
        status.setdefault("nodes", {})[node_id] = node
        return node

    def workflow(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return copy.deepcopy(self.workflows.get((namespace, name)))

    def bodies(self, method: str | None = None, path: str | None = None) -> list[Any]:
        """Parsed JSON bodies of the requests seen, optionally filtered."""
        return [
            r.json
            for r in self.requests
            if (method is None or r.method == method) and (path is None or re.search(path, r.path))
        ]

    def assert_clean(self) -> None:
        if self.violations:
            listed = "\n  ".join(self.violations)
            raise AssertionError(f"requests broke Argo's swagger contract:\n  {listed}")

    # -- handling ----------------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        """Check one request against the contract, record it, and answer it."""
        method = method.upper()
        parts = urlsplit(url)
        query_lists = parse_qs(parts.query, keep_blank_values=True)
        headers = CaseInsensitiveDict(headers)
        with self._lock:
            route = self.contract.route(method, parts.path)
            parsed: Any = None
            if isinstance(route, str):
                problems = [route]
            else:
                parsed, problems = self.contract.check_request(route, query_lists, headers, body)
            problems = [f"{method} {parts.path}: {p}" for p in problems]
            self.requests.append(
                ArgoRequest(
                    method=method,
                    path=parts.path,
                    operation=None if isinstance(route, str) else route.operation_id,
                    params={} if isinstance(route, str) else dict(route.params),
                    query={k: v[-1] for k, v in query_lists.items()},
                    headers=headers,
                    json=parsed,
                    problems=problems,
                )
            )
            if problems:
                self.violations.extend(problems)
                return _error(400, "fake argo: " + "; ".join(problems))
            assert not isinstance(route, str)
            if self.token and headers.get("Authorization") != f"Bearer {self.token}":
                return _error(401, "token not valid. see https://argo-workflows.readthedocs.io/")
            script = self._next_script(method, parts.path)
            if script is not None and (script.drop or script.status is not None):
                answer = self._scripted(script)
            else:
                answer = self._default(route, {k: v[-1] for k, v in query_lists.items()}, parsed)
                answer.delay = script.delay if script else 0.0
            if answer.entries is not None:
                # Every entry, error ones too, is the stream schema of the 200 answer.
                for index, entry in enumerate(answer.entries):
                    found = self.contract.check_response(route, 200, entry)
                    self.violations.extend(f"fake argo's own entry {index}: {p}" for p in found)
            elif answer.raw is None and not answer.drop:
                found = self.contract.check_response(route, answer.status, answer.payload)
                self.violations.extend(f"fake argo's own {p}" for p in found)
            return answer

    def _next_script(self, method: str, path: str) -> _Script | None:
        for index, script in enumerate(self._scripts):
            if script.matches(method, path):
                if script.times is not None:
                    script.times -= 1
                    if script.times <= 0:
                        del self._scripts[index]
                return script
        return None

    @staticmethod
    def _scripted(script: _Script) -> _Answer:
        if script.drop:
            return _Answer(drop=True, delay=script.delay)
        status = script.status or 200
        answer = _Answer(status=status, headers=dict(script.headers), delay=script.delay)
        if isinstance(script.body, bytes | str):
            answer.raw = script.body.encode() if isinstance(script.body, str) else script.body
        elif script.body is None and status >= 400:
            answer.payload = _error(status, f"scripted {status}").payload
        else:
            answer.payload = copy.deepcopy(script.body)
        return answer

    def _default(self, route: Route, query: dict[str, str], body: Any) -> _Answer:
        namespace = route.params.get("namespace", "")
        operation = route.operation_id.removeprefix("WorkflowService_")
        if operation == "CreateWorkflow":
            return self._create(namespace, body["workflow"])
        if operation == "ListWorkflows":
            return self._list(namespace, query)
        if operation not in _ON_ONE_WORKFLOW:
            return _error(501, f"fake argo does not implement {route.operation_id}")
        name = route.params["name"]
        stored = self.workflows.get((namespace, name))
        if stored is None:
            return _error(404, f'workflows.argoproj.io "{name}" not found')
        if operation == "GetWorkflow":
            answer = _clean_fields(copy.deepcopy(stored), query.get("fields", ""))
            # Go marshals the struct after cleaning: required fields come back empty.
            answer.setdefault("metadata", {})
            answer.setdefault("spec", {})
            for node in answer.get("status", {}).get("nodes", {}).values():
                for key in ("id", "name", "type"):
                    node.setdefault(key, "")
            return _Answer(payload=answer)
        if operation == "DeleteWorkflow":
            del self.workflows[(namespace, name)]
            return _Answer(payload={})
        if operation == "SetWorkflow":
            return self._set(stored, body)
        if operation == "ResumeWorkflow":
            return self._resume(stored, body.get("nodeFieldSelector") or "")
        if operation == "WorkflowLogs":
            return self._logs(namespace, name, query)
        if operation == "RetryWorkflow":
            phase = stored["status"].get("phase")
            if phase not in ("Failed", "Error"):
                return _error(400, f"Cannot retry a workflow in phase {phase}")
            self.set_phase(namespace, name, "Running")
        elif operation == "ResubmitWorkflow":
            # Argo resubmits under generateName "<name>-": the name gets 5 random characters.
            spec = copy.deepcopy(stored["spec"])
            spec.pop("shutdown", None)
            meta = {"generateName": name[:58] + "-", "namespace": namespace}
            return self._create(namespace, {"metadata": meta, "spec": spec})
        else:  # StopWorkflow, TerminateWorkflow
            stored["spec"]["shutdown"] = "Stop" if operation == "StopWorkflow" else "Terminate"
        return _Answer(payload=copy.deepcopy(stored))

    # -- gates: set and resume (workflow/util/util.go updateSuspendedNode) --------------------

    def _set(self, stored: dict[str, Any], body: dict[str, Any]) -> _Answer:
        phase = body.get("phase") or ""
        if phase not in ("", "Succeeded", "Failed", "Error"):
            return _error(400, f"{phase} is an invalid phase to set to")
        outputs: Any = {}
        if body.get("outputParameters"):
            # The server decodes a JSON object of strings from this string field.
            try:
                outputs = json.loads(body["outputParameters"])
            except ValueError:
                outputs = None
            if not isinstance(outputs, dict) or not all(
                isinstance(v, str) for v in outputs.values()
            ):
                return _error(400, "unable to parse output parameter set request")
        selector = body.get("nodeFieldSelector") or ""
        if not selector:
            message = "'set' currently only targets suspend nodes, use a node field selector"
            return _error(500, message + " to target them")
        return self._update_suspended(stored, selector, phase, body.get("message") or "", outputs)

    def _resume(self, stored: dict[str, Any], selector: str) -> _Answer:
        message = f"Resumed by: {self.resumed_by}" if self.resumed_by else ""
        if selector:
            return self._update_suspended(stored, selector, "Succeeded", message, {})
        # Without a selector: the whole workflow, every active suspend node, defaults applied.
        nodes = copy.deepcopy(stored.get("status", {}).get("nodes", {}))
        for node in nodes.values():
            if node.get("type") == "Suspend" and node.get("phase") == "Running":
                for parameter in (node.get("outputs") or {}).get("parameters") or []:
                    source = parameter.get("valueFrom") or {}
                    if "supplied" in source:
                        if "default" not in source:
                            name = parameter["name"]
                            return _error(
                                500,
                                f"raw output parameter '{name}' has not been set and does not "
                                "have a default value",
                            )
                        parameter["value"] = source["default"]
                        del parameter["valueFrom"]
                node["phase"] = "Succeeded"
                node["finishedAt"] = _now()
                if message:
                    node["message"] = (
                        f"{node['message']}; {message}" if node.get("message") else message
                    )
        stored["spec"].pop("suspend", None)
        stored.setdefault("status", {})["nodes"] = nodes
        return _Answer(payload=copy.deepcopy(stored))

    def _update_suspended(
        self,
        stored: dict[str, Any],
        selector: str,
        phase: str,
        message: str,
        outputs: dict[str, str],
    ) -> _Answer:
        requirements = parse_field_selector(selector)
        if isinstance(requirements, str):
            return _error(500, requirements)
        # Argo changes a copy and writes it only if every node it touched took the change.
        nodes = copy.deepcopy(stored.get("status", {}).get("nodes", {}))
        updated = False
        for node in nodes.values():
            active = node.get("type") == "Suspend" and node.get("phase") == "Running"
            if not active or not matches(requirements, _node_fields(node)):
                continue
            if phase:
                node["phase"] = phase
                node["finishedAt"] = _now()
                updated = True
            if message:
                node["message"] = message
                updated = True
            if outputs:
                parameters = (node.get("outputs") or {}).get("parameters")
                if parameters is None:
                    return _error(
                        500,
                        "cannot set output parameters because node is not expecting any raw "
                        "parameters",
                    )
                for name, value in outputs.items():
                    found = next((p for p in parameters if p.get("name") == name), None)
                    if found is None:
                        return _error(500, f"node is not expecting output parameter '{name}'")
                    if "supplied" not in (found.get("valueFrom") or {}):
                        return _error(
                            500,
                            f"cannot set output parameter '{name}' because it does not use "
                            "valueFrom.raw or it was already set",
                        )
                    found["value"] = value
                    del found["valueFrom"]
                    updated = True
        if not updated:
            return _error(
                500,
                "currently, set only targets suspend nodes: no suspend nodes matching "
                f"nodeFieldSelector: {selector}",
            )
        stored["status"]["nodes"] = nodes
        return _Answer(payload=copy.deepcopy(stored))

    # -- logs (server/workflow PodLogs, util/logs WorkflowLogs) ------------------------------

    def _logs(self, namespace: str, name: str, query: dict[str, str]) -> _Answer:
        unsupported = set(query) - _LOG_QUERY
        if unsupported:
            return _error(501, f"fake argo does not implement {sorted(unsupported)}")
        problems = [
            f"{key} {query[key]!r} is not a number"
            for key in ("logOptions.tailLines", "logOptions.limitBytes")
            if key in query and not query[key].isdigit()
        ]
        if problems:
            self.violations.extend(
                f"GET /api/v1/workflows/{namespace}/{name}/log: {p}" for p in problems
            )
            return _error(400, "; ".join(problems))
        wanted = query.get("podName")
        container = query.get("logOptions.container", "main")
        pods = [
            (pod, log)
            for (ns, pod), log in self.pods.items()
            if ns == namespace and log.workflow == name and (wanted is None or pod == wanted)
        ]
        entries: list[dict[str, Any]] = []
        for pod, log in pods:
            if log.gone == "http":
                return _error(404, f'pods "{pod}" not found')
            if log.gone == "stream":
                # grpc-gateway (v1) sends the error's HTTP status only while nothing was sent.
                error = {
                    "grpc_code": 5,
                    "http_code": 404,
                    "http_status": "Not Found",
                    "message": f'pods "{pod}" not found',
                }
                entries.append({"error": error})
                return _Answer(status=200 if len(entries) > 1 else 404, entries=entries)
            if log.gone == "empty":
                continue
            entries.extend(
                {"result": {"content": line, "podName": pod}}
                for line in _kubelet(log.lines.get(container, []), query)
            )
        return _Answer(entries=entries)

    def _list(self, namespace: str, query: dict[str, str]) -> _Answer:
        """ListWorkflows: the label selector and limit as Kubernetes reads them, then `fields`."""
        unsupported = set(query) - {"listOptions.labelSelector", "listOptions.limit", "fields"}
        if unsupported:
            return _error(501, f"fake argo does not implement {sorted(unsupported)}")
        requirements = parse_selector(query.get("listOptions.labelSelector", ""))
        limit = query.get("listOptions.limit", "0")
        problems = []
        if isinstance(requirements, str):
            problems.append(f"listOptions.labelSelector: {requirements}")
        if not limit.isdigit():
            problems.append(f"listOptions.limit {limit!r} is not a number")
        if problems:
            self.violations.extend(f"GET /api/v1/workflows/{namespace}: {p}" for p in problems)
            return _error(400, "; ".join(problems))
        assert not isinstance(requirements, str)
        found = [
            copy.deepcopy(workflow)
            for (ns, _), workflow in self.workflows.items()
            if ns == namespace and matches(requirements, workflow["metadata"].get("labels", {}))
        ]
        # Argo sorts each page (Workflows.Less): the unfinished first, then the newest first.
        found.sort(key=lambda w: w["metadata"]["creationTimestamp"], reverse=True)
        found.sort(key=lambda w: bool(w.get("status", {}).get("finishedAt")))
        if int(limit):
            found = found[: int(limit)]
        answer = _clean_fields({"metadata": {}, "items": found}, query.get("fields", ""))
        # Go marshals the list after cleaning: required fields come back empty.
        answer.setdefault("metadata", {})
        answer.setdefault("items", [])
        for item in answer["items"]:
            item.setdefault("metadata", {})
            item.setdefault("spec", {})
        return _Answer(payload=answer)

    def _create(self, namespace: str, workflow: dict[str, Any]) -> _Answer:
        meta = workflow.get("metadata") or {}
        name = meta.get("name")
        if not name:
            if not meta.get("generateName"):
                return _error(400, "metadata.name or metadata.generateName is required")
            name = meta["generateName"] + secrets.token_hex(3)[:5]
        if (namespace, name) in self.workflows:
            return _error(409, f'workflows.argoproj.io "{name}" already exists')
        ref = (workflow.get("spec") or {}).get("workflowTemplateRef")
        if ref:
            cluster = bool(ref.get("clusterScope"))
            known = self.cluster_templates if cluster else self.templates
            if known is not None and ref.get("name") not in known:
                kind = "clusterworkflowtemplates" if cluster else "workflowtemplates"
                status = self.missing_template_status
                return _error(status, f'{kind}.argoproj.io "{ref.get("name")}" not found')
        workflow = copy.deepcopy(workflow)
        workflow["metadata"] = {**meta, "name": name}
        return _Answer(payload=copy.deepcopy(self._store(namespace, workflow)))

    def _store(self, namespace: str, workflow: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        meta = workflow["metadata"]
        meta.pop("generateName", None)
        meta.update(
            namespace=namespace,
            uid=str(uuid.uuid4()),
            resourceVersion=str(self._version),
            creationTimestamp=_now(),
        )
        workflow["apiVersion"] = "argoproj.io/v1alpha1"
        workflow["kind"] = "Workflow"
        workflow.setdefault("status", {})  # the controller fills it in later
        self.workflows[(namespace, meta["name"])] = workflow
        return workflow


# -- label selectors, as Kubernetes parses them (apimachinery/pkg/labels) --------------------

PHASE_LABEL = "workflows.argoproj.io/phase"
COMPLETED_LABEL = "workflows.argoproj.io/completed"
_NAME_PART = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
_LABEL_KEY = re.compile(rf"(?:{_PREFIX}/)?{_NAME_PART}")
_LABEL_VALUE = re.compile(rf"(?:{_NAME_PART})?")
_TERM = re.compile(r"(!?)([^=!]+)(?:(==|=|!=)(.*))?")

Requirement = tuple[str, str, str]  # (key, operator: = != exists !exists, value)


def parse_selector(selector: str) -> list[Requirement] | str:
    """The equality-based requirements of a selector, or why it is not one Kubernetes takes.
    Set-based terms (`in`, `notin`) are refused: facteur never sends them."""
    found: list[Requirement] = []
    for term in selector.split(",") if selector else []:
        parts = _TERM.fullmatch(term)
        if parts is None:
            return f"unable to parse requirement {term!r}"
        negated, key, operator, value = parts[1], parts[2], parts[3], parts[4] or ""
        if not _LABEL_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
            return f"invalid label key {key!r}"
        if negated and operator:
            return f"unable to parse requirement {term!r}"
        if operator is None:
            found.append((key, "!exists" if negated else "exists", ""))
            continue
        if not _LABEL_VALUE.fullmatch(value) or len(value) > 63:
            return f"invalid label value {value!r}"
        found.append((key, "!=" if operator == "!=" else "=", value))
    return found


def matches(requirements: list[Requirement], labels: Mapping[str, str]) -> bool:
    for key, operator, value in requirements:
        held = labels.get(key)
        if operator == "=" and held != value:
            return False
        if operator == "!=" and held == value:  # a missing label is not equal: it matches
            return False
        if operator == "exists" and held is None:
            return False
        if operator == "!exists" and held is not None:
            return False
    return True


# -- field selectors, as Kubernetes parses them (apimachinery/pkg/fields) ---------------------


def parse_field_selector(selector: str) -> list[Requirement] | str:
    """A field selector's terms, or why it is not one: "k=v", "k==v" or "k!=v", joined by
    unescaped ','; the first operator splits a term; in a value, '\\' escapes only '\\', ','
    and '=', and an unescaped '=' is refused (apimachinery fields.ParseSelector)."""
    terms: list[str] = []
    start, index = 0, 0
    while index < len(selector):
        if selector[index] == "\\":
            index += 2
            continue
        if selector[index] == ",":
            terms.append(selector[start:index])
            start = index + 1
        index += 1
    terms.append(selector[start:])
    found: list[Requirement] = []
    for term in terms if selector else []:
        split = _split_term(term)
        if split is None:
            return f"invalid selector: '{term}'; can't understand '{term}'"
        key, operator, raw = split
        value: list[str] = []
        index = 0
        while index < len(raw):
            char = raw[index]
            if char == "\\":
                if index + 1 >= len(raw) or raw[index + 1] not in "\\,=":
                    return f"invalid field selector: invalid escape sequence in {raw!r}"
                value.append(raw[index + 1])
                index += 2
                continue
            if char in ",=":
                return f"invalid field selector: unescaped character '{char}' in {raw!r}"
            value.append(char)
            index += 1
        found.append((key, "!=" if operator == "!=" else "=", "".join(value)))
    return found


def _split_term(term: str) -> tuple[str, str, str] | None:
    # The first place any operator starts wins, "!=" and "==" before "=" there.
    for index in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _node_fields(node: dict[str, Any]) -> dict[str, str]:
    """What a node selector matches on (util.go SelectorMatchesNode); a missing field is ""."""
    ref = node.get("templateRef") or {}
    fields = {
        "displayName": node.get("displayName", ""),
        "templateName": ref.get("template", "") if ref else node.get("templateName", ""),
        "phase": node.get("phase", ""),
        "name": node.get("name", ""),
        "id": node.get("id", ""),
    }
    if ref:
        fields["templateRef.name"] = ref.get("name", "")
        fields["templateRef.template"] = ref.get("template", "")
    for parameter in (node.get("inputs") or {}).get("parameters") or []:
        fields[f"inputs.parameters.{parameter['name']}.value"] = parameter.get("value", "")
    return fields


def _fnv1a32(text: str) -> int:
    # FNV-1a over UTF-8, kept apart from facteur's own so the fake checks it, not trusts it.
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) % 2**32
    return value


def _kubelet(lines: list[str], query: dict[str, str]) -> list[str]:
    """What the kubelet sends of a container's log: the last tailLines, at most limitBytes
    (so the last line may be cut), split into lines again as Argo's scanner does."""
    if "logOptions.tailLines" in query:
        tail = int(query["logOptions.tailLines"])
        lines = lines[-tail:] if tail else []
    text = "".join(line + "\n" for line in lines).encode()
    if "logOptions.limitBytes" in query:
        text = text[: int(query["logOptions.limitBytes"])]
    return text.decode(errors="replace").splitlines()


def _error(status: int, message: str) -> _Answer:
    return _Answer(status=status, payload={"code": _GRPC_CODES.get(status, 2), "message": message})


def _answer_headers(answer: _Answer) -> dict[str, str]:
    headers = {"Content-Type": "application/json" if answer.raw is None else "text/plain"}
    headers.update(answer.headers)
    return headers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean_fields(data: dict[str, Any], fields: str) -> dict[str, Any]:
    """Argo's util/fields Cleaner: "a.b,c" keeps only those paths, "-a.b" drops them."""
    if not fields:
        return data
    exclude = fields.startswith("-")
    wanted = set((fields[1:] if exclude else fields).split(","))

    def clean(path: list[str], item: Any) -> None:
        if isinstance(item, dict):
            for key in list(item):
                here = ".".join([*path, key])
                exact = here in wanted
                parent = exact or any(w.startswith(here) for w in wanted)
                if (exclude and not exact) or (not exclude and parent):
                    if not exact:
                        clean([*path, key], item[key])
                else:
                    del item[key]
        elif isinstance(item, list):
            for element in item:
                clean(path, element)

    clean([], data)
    return data


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeArgo

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that refused the certificate, or hung up after its handshake (readiness):
        # what the TLS tests provoke, not a fault of the fake.
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects
    wbufsize = -1  # one write per answer: headers and body apart meet delayed ACKs (~40 ms)
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = self.server.fake.handle(self.command, self.path, dict(self.headers), body)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.drop:
            self.close_connection = True
            return
        content = answer.content()
        try:
            self.send_response(answer.status)
            for key, value in _answer_headers(answer).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting: a timeout test

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass
