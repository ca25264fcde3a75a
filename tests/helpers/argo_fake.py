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
    }
)


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

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps({} if self.payload is None else self.payload).encode()


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
            if answer.raw is None and not answer.drop:
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
