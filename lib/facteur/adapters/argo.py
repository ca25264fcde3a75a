"""The Argo Server REST client: create workflows from templates, read their state, act on them.

Decision: plain `requests` with urllib3's `Retry`, not Argo's SDK (hera's WorkflowsService).
Measured in fresh processes here: `import hera.workflows` costs ~410 ms of import time (~445 ms wall
above a bare interpreter) against ~65-90 ms (~100 ms wall) for `import requests`, which facteur
already needs. Scale-to-zero functions pay that on every cold start, for five REST calls.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from facteur.decisions import ids
from facteur.decisions.pod_names import pod_name, pod_name_version, suspend_seconds
from facteur.decisions.workflow import (
    MAX_NODES,
    UNFINISHED_SELECTOR,
    NodeState,
    Submitted,
    WorkflowRequest,
    WorkflowState,
    facteur_metadata,
    ref_selector,
)
from facteur.errors import ArgoError, ArgoTLSError

log = logging.getLogger("facteur.argo")

API = "/api/v1/workflows"
# Rate limits and server errors are retried; 501 is gRPC Unimplemented (a server too old for the
# call), which no retry can fix.
RETRY_STATUSES = frozenset({429, *range(500, 600)} - {501})
# A server's Retry-After must not park a function for minutes (urllib3 allows six hours).
RETRY_AFTER_MAX_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 5.0
REASON_MAX = 300
# Only what WorkflowState needs, so Argo sends none of status.nodes (often megabytes) but the
# entrypoint node's phase: Argo's util/fields keeps exactly the dotted paths asked for. The labels
# and annotations are what a forgotten session is rebuilt from (decisions/recovery.py).
GET_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.creationTimestamp",
    "metadata.labels",
    "metadata.annotations",
    "status.phase",
    "status.startedAt",
    "status.finishedAt",
    "status.message",
    "status.progress",
    "status.estimatedDuration",
    # Whom a run kept Pending by a mutex waits behind (WorkflowState.waiting_for).
    "status.synchronization",
)
PROGRESS = re.compile(r"[0-9]{1,6}/[0-9]{1,6}")
# The same of each workflow in a list (ListWorkflows), without the uid and the nodes.
# Lists feed recovery, which reads neither the uid nor a running run's progress.
_NOT_LISTED = (
    "metadata.uid",
    "status.progress",
    "status.estimatedDuration",
    "status.synchronization",
)
LIST_FIELDS = ",".join(f"items.{path}" for path in GET_FIELDS if path not in _NOT_LISTED)
# A button reference is on one run and the runs resubmitted from it: a few at most.
REF_LIMIT = 20
# What get_nodes reads: the nodes, the pod-name format (an annotation), and the templates a
# suspend node's duration is in. A run from a WorkflowTemplate has them in its stored spec, an
# inline one in spec.templates; Argo's util/fields keeps each dotted path whole.
NODE_FIELDS = ",".join(
    (
        "metadata.annotations",
        "status.nodes",
        "status.storedWorkflowTemplateSpec.templates",
        "spec.templates",
    )
)
# Bounds on what one node may bring: Argo's parameter names, a few gates and choices each.
MAX_TEMPLATES = 500
MAX_PARAMETERS = 32
MAX_CHOICES = 50
MAX_CHOICE_CHARS = 256
MAX_NODE_NAME = 1024
PARAMETER_NAME = re.compile(r"[-a-zA-Z0-9_]{1,128}")
# Of a mutex's waiting list, the few first entries; a holder is "ns/workflow[/node]" or a name.
MAX_WAITING = 8
MAX_HOLDER = 600
# The log API: lines asked for, the bytes the kubelet may send (limitBytes), and what the
# client reads of the stream (JSON-escaped, so larger); each line is cut for display.
MAX_TAIL_LINES = 1000
LOG_LIMIT_BYTES = 1024 * 1024
LOG_READ_BYTES = 4 * LOG_LIMIT_BYTES
LOG_LINE_MAX = 4096
# Of an error answer read from a stream, enough for Argo's message.
ERROR_READ_BYTES = 64 * 1024
# gRPC NotFound, as a log stream's error entry carries it.
GRPC_NOT_FOUND = 5


def get_fields(name: str) -> str:
    # The entrypoint node's ID is the workflow's name (Workflow.NodeID in Argo's workflow_types.go).
    return ",".join((*GET_FIELDS, f"status.nodes.{name}.phase"))


# Characters a bearer token may hold in a header without requests quoting them back in an error.
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


# Failures that a later attempt may not repeat. SSLError subclasses ConnectionError but means
# bad certificates or CA settings, which only an operator fixes: it is caught first, apart.
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


# What an operator sets to fix each TLS failure; the adapter reads no Settings, so it names them.
TRUST_HINT = (
    "set argo.ca_file (FACTEUR_ARGO_CA_FILE) to its CA, or argo.verify_tls: false (insecure)"
)
HOST_HINT = "set argo.server_url to a host name the certificate covers, or reissue it for that name"
HANDSHAKE_HINT = "check argo.server_url (https to a plain-HTTP server?) and argo.ca_file"


# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH: trusted, wrong name.
_HOST_MISMATCH = frozenset({62, 64})


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ssl module's error inside requests' and urllib3's wrappers, if there is one."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLError):
            return item
        # urllib3's MaxRetryError keeps the cause in .reason; requests' errors in args.
        stack.extend((item.__cause__, item.__context__, getattr(item, "reason", None), *item.args))
    return None


def tls_reason(exc: BaseException) -> str:
    """One safe line for a failed TLS session with argo-server, naming the setting that fixes it."""
    cause = _ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = " ".join(str(cause.verify_message or "certificate verify failed").split())
        if cause.verify_code in _HOST_MISMATCH:
            return f"TLS certificate of argo-server does not match its host ({detail}): {HOST_HINT}"
        return f"TLS certificate of argo-server not trusted ({detail}): {TRUST_HINT}"
    code = getattr(cause, "reason", None) or type(cause or exc).__name__
    return f"TLS handshake with argo-server failed ({code}): {HANDSHAKE_HINT}"


def trusted_bundle(verify: bool | str) -> bool | str:
    """What requests trusts for `verify`, for a TLS probe to check the same: for True, the bundle
    it resolves (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's), else `verify` itself."""
    if verify is not True:
        return verify
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    environ = os.environ
    return (
        environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or DEFAULT_CA_BUNDLE_PATH
    )


class _BoundedRetry(Retry):
    """urllib3's Retry with Retry-After capped; survives Retry.new() since that uses type(self)."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), RETRY_AFTER_MAX_SECONDS)


def _check_namespace(namespace: object) -> str:
    if not ids.is_namespace(namespace):
        raise ArgoError("namespace must be an RFC 1123 label (a-z, 0-9, '-', at most 63)")
    return namespace


def _check_name(
    name: object, what: str = "workflow name", limit: int = ids.MAX_WORKFLOW_NAME
) -> str:
    if not ids.is_subdomain(name, limit):
        raise ArgoError(f"{what} must be a lowercase RFC 1123 subdomain of at most {limit}")
    return name


def _check_strings(values: Mapping[str, str], what: str) -> None:
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str):
            # Names only: values may be user text.
            raise ArgoError(f"{what} {key!r} must map a string to a string")


def _clean_token(token: str | None) -> str | None:
    if token is None:
        return None
    # Secrets mounted from files end in a newline; Argo's own docs put "Bearer " in ARGO_TOKEN.
    token = token.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        return None
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError("argo token holds whitespace or control characters")
    return token


class ArgoClient:
    """One Argo Server. Retries transient failures inside each call, then raises ArgoError."""

    def __init__(
        self,
        *,
        server_url: str,
        token: str | None,
        verify: bool | str = True,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_factor: float = 0.2,
        session: requests.Session | None = None,
    ) -> None:
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("argo server_url must be an http(s) URL")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._base = server_url.rstrip("/")
        self._token = _clean_token(token)
        self._verify = verify
        if verify is False and parts.scheme == "https":
            # Once, at start-up: every request after this one trusts whoever answers.
            log.warning(
                "TLS VERIFICATION OFF for argo-server %s (argo.verify_tls: false): anyone on the "
                "path can read argo.token and forge Argo's answers; set argo.ca_file instead",
                parts.hostname,
            )
        self._timeout = timeout
        self._session = session or requests.Session()
        self._retry = self._policy(max_attempts, backoff_factor, replay=True)
        # Resubmit makes a new, server-named workflow each time, so a replay could duplicate it;
        # set and resume answer 500 for a node no longer suspended as for a failure, so a replay
        # after either is refused: only failures to connect (nothing was sent) are retried there.
        self._once = self._policy(max_attempts, backoff_factor, replay=False)
        # Mounted on this server's prefix only, so a shared session keeps its other adapters.
        self._session.mount(self._base + "/", HTTPAdapter(max_retries=self._retry))
        self._once_session: requests.Session | None = None

    @staticmethod
    def _policy(max_attempts: int, backoff_factor: float, *, replay: bool) -> Retry:
        retries = max_attempts - 1
        return _BoundedRetry(
            total=retries,
            connect=retries,
            # allowed_methods=None retries POST and PUT too: workflow names are deterministic,
            # so a replayed create answers 409, which counts as success.
            read=retries if replay else 0,
            status=retries if replay else 0,
            other=0,  # TLS and certificate failures: a configuration error, not a blip
            allowed_methods=None,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_factor,
            backoff_max=BACKOFF_MAX_SECONDS,
            respect_retry_after_header=True,
            raise_on_status=False,  # hand back the last answer, so its status and message show
        )

    # -- operations ------------------------------------------------------------------------

    def submit(self, request: WorkflowRequest) -> Submitted:
        """Create the workflow from its (Cluster)WorkflowTemplate; a 409 means it already exists.

        Uses the structured create endpoint: each parameter is its own JSON object, so user text
        holding '=' or ',' cannot become another parameter as in /submit's "k=v" strings.
        """
        body = create_request(request)
        namespace, name = request.namespace, request.name
        response = self._send("POST", [namespace], body=body)
        if response.status_code == 409:
            log.info("argo workflow %s/%s already exists", namespace, name)
            return Submitted(name=name, namespace=namespace, uid=None, created=False)
        self._raise_unless_ok(response)
        meta = _object(self._json(response), "metadata")
        return Submitted(
            name=_text(meta, "name") or name,
            namespace=_text(meta, "namespace") or namespace,
            uid=_text(meta, "uid"),
            created=True,
        )

    def get_workflow(self, namespace: str, name: str) -> WorkflowState | None:
        """The workflow's phase and times, or None when Argo does not know it (404)."""
        _check_namespace(namespace)
        _check_name(name)
        response = self._send("GET", [namespace, name], params={"fields": get_fields(name)})
        if response.status_code == 404:
            return None
        self._raise_unless_ok(response)
        return _state(self._json(response), namespace, name)

    def get_nodes(self, namespace: str, name: str) -> list[NodeState]:
        """The run's steps: status.nodes, which can be large, so only for a card about to be
        edited (at most once per card interval), with what gates and logs need of each."""
        _check_namespace(namespace)
        _check_name(name)
        response = self._send("GET", [namespace, name], params={"fields": NODE_FIELDS})
        if response.status_code == 404:
            return []
        self._raise_unless_ok(response)
        return _nodes(self._json(response), name)

    def find_by_ref(self, namespace: str, ref: str) -> list[WorkflowState]:
        """facteur's runs labelled facteur.dev/ref=<ref>; none for a reference no label carries."""
        if not ids.is_ref(ref):
            return []
        return self._list(namespace, ref_selector(ref), REF_LIMIT)

    def list_unfinished(self, namespace: str, limit: int = 500) -> list[WorkflowState]:
        """Up to `limit` of facteur's runs without Argo's completed=true label."""
        return self._list(namespace, UNFINISHED_SELECTOR, limit)

    def _list(self, namespace: str, selector: str, limit: int) -> list[WorkflowState]:
        _check_namespace(namespace)
        params = {
            "listOptions.labelSelector": selector,
            "listOptions.limit": str(max(1, limit)),
            "fields": LIST_FIELDS,
        }
        response = self._send("GET", [namespace], params=params)
        self._raise_unless_ok(response)
        data = self._json(response)
        items = data.get("items") if isinstance(data, dict) else None
        # Go sends an empty list as null; a server that ignores the limit is cut short here.
        found = [item for item in items or [] if isinstance(item, dict)][: max(1, limit)]
        states = [_state(item, namespace, "") for item in found]
        return [state for state in states if state.name]

    def stop(self, namespace: str, name: str, message: str | None = None) -> None:
        """Stop: running steps finish, exit handlers run."""
        body: dict[str, Any] = {"name": name, "namespace": namespace}
        if message is not None:
            body["message"] = message
        self._act(namespace, name, "stop", body)

    def terminate(self, namespace: str, name: str) -> None:
        """Terminate at once; exit handlers do not run (argo-workflows #1405)."""
        self._act(namespace, name, "terminate", {"name": name, "namespace": namespace})

    def retry(self, namespace: str, name: str) -> None:
        self._act(namespace, name, "retry", {"name": name, "namespace": namespace})

    def resubmit(self, namespace: str, name: str) -> Submitted:
        """Run the workflow again under a new name that Argo generates."""
        body = {"name": name, "namespace": namespace}
        data = self._act(namespace, name, "resubmit", body, replay=False)
        meta = _object(data, "metadata")
        new_name = _text(meta, "name")
        if new_name is None:
            raise ArgoError("resubmit answered without the new workflow's name")
        return Submitted(
            name=new_name,
            namespace=_text(meta, "namespace") or namespace,
            uid=_text(meta, "uid"),
            created=True,
        )

    def set_node(
        self,
        namespace: str,
        name: str,
        node_id: str,
        *,
        message: str | None = None,
        outputs: Mapping[str, str] | None = None,
    ) -> None:
        """PUT …/set on one suspended node: its message and supplied output parameters.

        Not replayed once sent: Argo answers 500 both when the node is no longer suspended (or
        a parameter was already set) and when it failed, so a replay could only be refused.
        """
        body: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "nodeFieldSelector": _node_selector(node_id),
        }
        if message:
            body["message"] = message
        if outputs:
            _check_strings(outputs, "output parameter")
            # Argo reads a JSON object of strings from this one string field.
            body["outputParameters"] = json.dumps(dict(outputs))
        if len(body) == 3:
            # Argo would call this "no suspend nodes matching": say what is really wrong.
            raise ArgoError("set_node needs a message or output parameters")
        self._act(namespace, name, "set", body, replay=False, answer=False)

    def resume_node(self, namespace: str, name: str, node_id: str) -> None:
        """PUT …/resume with a node selector: that suspended node succeeds, the run goes on.
        Not replayed once sent, as set_node."""
        body = {"name": name, "namespace": namespace, "nodeFieldSelector": _node_selector(node_id)}
        self._act(namespace, name, "resume", body, replay=False, answer=False)

    def logs(
        self,
        namespace: str,
        name: str,
        pod_name: str,
        *,
        container: str = "main",
        tail_lines: int = 40,
    ) -> list[str]:
        """The last `tail_lines` lines of one pod's container (GET …/log, a stream of JSON
        lines); ArgoError with status 404 when Argo knows no such workflow or pod."""
        _check_namespace(namespace)
        _check_name(name)
        _check_name(pod_name, "pod name", ids.MAX_SUBDOMAIN)
        if not ids.is_namespace(container):
            raise ArgoError("container must be an RFC 1123 label (a-z, 0-9, '-', at most 63)")
        if not isinstance(tail_lines, int) or isinstance(tail_lines, bool):
            raise ArgoError("tail_lines must be a number of lines")
        lines = max(1, min(tail_lines, MAX_TAIL_LINES))
        params = {
            "podName": pod_name,
            "logOptions.container": container,
            "logOptions.tailLines": str(lines),
            "logOptions.limitBytes": str(LOG_LIMIT_BYTES),
        }
        response = self._send("GET", [namespace, name, "log"], params=params, stream=True)
        try:
            ok = 200 <= response.status_code < 300
            content, complete = self._read(response, LOG_READ_BYTES if ok else ERROR_READ_BYTES)
        finally:
            response.close()
        if not ok:
            self._raise_stream_error(response, content)
        return self._log_lines(content, complete, lines, response.status_code)

    # -- plumbing --------------------------------------------------------------------------

    def _act(
        self,
        namespace: str,
        name: str,
        action: str,
        body: dict[str, Any],
        *,
        replay: bool = True,
        answer: bool = True,
    ) -> Any:
        _check_namespace(namespace)
        _check_name(name)
        response = self._send("PUT", [namespace, name, action], body=body, replay=replay)
        self._raise_unless_ok(response)
        # set and resume answer the whole workflow, which nothing reads.
        return self._json(response) if answer else None

    def _read(self, response: requests.Response, limit: int) -> tuple[bytes, bool]:
        """At most `limit` bytes of a streamed answer; True when that was all of it."""
        chunks: list[bytes] = []
        size = 0
        broken: str | None = None
        try:
            for chunk in response.iter_content(chunk_size=64 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size >= limit:
                    return b"".join(chunks)[:limit], False
        except requests.RequestException as exc:
            broken = type(exc).__name__  # the class only, as _send: messages carry URLs
        if broken is not None:
            log.warning("argo log stream broke: %s", broken)
            raise ArgoError(f"Argo's answer broke off: {broken}", transient=True)
        return b"".join(chunks), True

    def _raise_stream_error(self, response: requests.Response, content: bytes) -> None:
        """An error answer to a stream: the gateway's error entry, or Argo's usual error."""
        status = response.status_code
        data: Any = None
        # The usual error is one JSON object; a stream's is its first line.
        for candidate in (content, content.split(b"\n", 1)[0]):
            try:
                data = json.loads(candidate)
                break
            except ValueError:
                continue
        text = self._redact(_reason_text(data))[:REASON_MAX] or f"HTTP {status}"
        if 300 <= status < 400:
            text = "unexpected redirect"
        transient = status in RETRY_STATUSES
        log.warning("argo GET log answered %d (transient=%s): %s", status, transient, text)
        raise ArgoError(text, status=status, transient=transient)

    def _log_lines(self, content: bytes, complete: bool, keep: int, status: int) -> list[str]:
        """The `content` of each of the stream's JSON lines; an error entry raises."""
        rows = content.split(b"\n")
        if not complete:
            rows = rows[:-1]  # cut off at the read bound: its last line is partial
        found: list[str] = []
        for row in rows:
            if not row.strip():
                continue
            try:
                entry = json.loads(row)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                raise ArgoError(f"answer {status} was not a stream of JSON lines", status=status)
            error = entry.get("error")
            if isinstance(error, dict):
                raise self._entry_error(error)
            content_text = _object(entry, "result").get("content")
            if isinstance(content_text, str):
                found.append(self._redact(content_text)[:LOG_LINE_MAX])
        return found[-keep:]

    def _entry_error(self, error: dict[str, Any]) -> ArgoError:
        """The error entry a stream ends with, as ArgoError: NotFound is 404, else the HTTP
        status it names, else a 502 no retry would fix."""
        code, http_code = error.get("grpc_code"), error.get("http_code")
        if code == GRPC_NOT_FOUND:
            status, transient = 404, False
        elif isinstance(http_code, int) and 400 <= http_code < 600:
            status, transient = http_code, http_code in RETRY_STATUSES
        else:
            status, transient = 502, False
        reason = self._redact(_reason_text({"error": error}))[:REASON_MAX]
        reason = reason or f"log stream failed ({status})"
        log.warning("argo log stream ended with an error %d: %s", status, reason)
        return ArgoError(reason, status=status, transient=transient)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text

    def _send(
        self,
        method: str,
        segments: list[str],
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        replay: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        path = API + "".join("/" + quote(segment, safe="") for segment in segments)
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        session = self._session if replay else self._single_session()
        started = time.monotonic()
        failure: str | None = None
        transient = True
        untrusted: str | None = None
        try:
            response = session.request(
                method,
                self._base + path,
                json=body,
                params=params,
                headers=headers,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,  # a redirect means a proxy or login page, not Argo
                stream=stream,  # the log API: read with a bound, not whole
            )
        except requests.exceptions.SSLError as exc:
            untrusted = tls_reason(exc)
        except requests.RequestException as exc:
            # The class name only: requests' messages embed URLs and, for bad headers, values.
            failure = type(exc).__name__
            transient = isinstance(exc, _TRANSIENT_ERRORS)
        except OSError as exc:
            # requests' own check that the CA path in `verify` exists (argo.ca_file removed since
            # start-up); any other OSError is not ours to name.
            if not isinstance(self._verify, str):
                raise
            untrusted = f"argo.ca_file (FACTEUR_ARGO_CA_FILE) cannot be read ({type(exc).__name__})"
        # Raised outside the except blocks so the original exception is not chained as context.
        if untrusted is not None:
            untrusted = untrusted[:REASON_MAX]
            log.error("argo %s %s failed: %s", method, path, untrusted)
            raise ArgoTLSError(untrusted)
        if failure is not None:
            log.warning("argo %s %s failed: %s (transient=%s)", method, path, failure, transient)
            raise ArgoError(f"no answer from Argo: {failure}", transient=transient)
        elapsed_ms = (time.monotonic() - started) * 1000
        log.debug(
            "argo %s %s answered %d in %.0f ms", method, path, response.status_code, elapsed_ms
        )
        return response

    def _single_session(self) -> requests.Session:
        # Created on first use: resubmit, set and resume are rare, and most functions never
        # call them. Its own session, since requests picks adapters per session; verify and
        # headers go per request.
        if self._once_session is None:
            self._once_session = requests.Session()
            self._once_session.mount(self._base + "/", HTTPAdapter(max_retries=self._once))
        return self._once_session

    def _raise_unless_ok(self, response: requests.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        transient = status in RETRY_STATUSES
        reason = self._reason(response)
        where = f"{response.request.method} {urlsplit(response.request.url or '').path}"
        log.warning("argo %s answered %d (transient=%s): %s", where, status, transient, reason)
        raise ArgoError(reason, status=status, transient=transient)

    def _reason(self, response: requests.Response) -> str:
        """Argo's `{"code", "message"}` message, one line, bounded, without the token."""
        try:
            data = response.json()
        except ValueError:
            data = None
        text = _reason_text(data)
        if 300 <= response.status_code < 400:
            text = "unexpected redirect"
        return self._redact(text or f"HTTP {response.status_code}")[:REASON_MAX]

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            pass  # raised below, unchained: the decode error carries the whole answer
        raise ArgoError(f"answer {response.status_code} was not JSON", status=response.status_code)


def create_request(request: WorkflowRequest) -> dict[str, Any]:
    """The WorkflowCreateRequest body for a workflow from a (Cluster)WorkflowTemplate."""
    namespace, name, template = request.namespace, request.name, request.template
    parameters, labels, annotations = request.parameters, request.labels, request.annotations
    service_account = request.service_account
    _check_namespace(namespace)
    _check_name(name)
    _check_name(template, "template name", 253)
    if service_account is not None:
        _check_name(service_account, "service account", 253)
    _check_strings(parameters, "parameter")
    _check_strings(labels, "label")
    _check_strings(annotations, "annotation")

    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    ref: dict[str, Any] = {"name": template}
    if request.cluster_scope:
        ref["clusterScope"] = True
    spec: dict[str, Any] = {"workflowTemplateRef": ref}
    if parameters:
        spec["arguments"] = {
            "parameters": [{"name": key, "value": value} for key, value in parameters.items()]
        }
    if service_account:
        spec["serviceAccountName"] = service_account
    if request.mutex is not None:
        # Argo's mutex, by name in the run's namespace (Synchronization, v3.6 and later).
        if not ids.is_namespace(request.mutex):
            raise ArgoError("mutex must be an RFC 1123 label (a-z, 0-9, '-', at most 63)")
        spec["synchronization"] = {"mutexes": [{"name": request.mutex}]}
    return {"namespace": namespace, "workflow": {"metadata": metadata, "spec": spec}}


def _node_selector(node_id: object) -> str:
    """Argo's nodeFieldSelector for one node: an ID that is a subdomain holds none of the
    selector's syntax (',', '=', '!', '\\'), so nothing but that node can be selected."""
    if not ids.is_subdomain(node_id, ids.MAX_SUBDOMAIN):
        raise ArgoError("node ID must be a lowercase RFC 1123 subdomain of at most 253")
    return f"id={node_id}"


def _reason_text(data: Any) -> str:
    """One line of an error answer: Argo's `message` (or `error`), or a stream's error entry."""
    text = ""
    if isinstance(data, dict):
        entry = data.get("error")
        if isinstance(entry, dict):  # grpc-gateway's stream error: {"error": {"message", …}}
            data = entry
        for key in ("message", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                text = data[key]
                break
    # Cut by the caller, after the token is taken out: a cut could leave part of it.
    return " ".join(text.split())


def _state(data: Any, namespace: str, name: str) -> WorkflowState:
    """A workflow (or a list's item) as WorkflowState; `name` is the one asked for, if any."""
    meta, status = _object(data, "metadata"), _object(data, "status")
    name = _text(meta, "name") or name
    return WorkflowState(
        name=name,
        namespace=_text(meta, "namespace") or namespace,
        phase=_text(status, "phase"),
        started_at=_text(status, "startedAt"),
        finished_at=_text(status, "finishedAt"),
        message=_text(status, "message"),
        entry_phase=_text(_object(_object(status, "nodes"), name), "phase"),
        labels=facteur_metadata(meta.get("labels")),
        annotations=facteur_metadata(meta.get("annotations")),
        created_at=_text(meta, "creationTimestamp"),
        progress=_progress(status.get("progress")),
        estimated_duration=_seconds(status.get("estimatedDuration")),
        waiting_for=_waiting_for(status, _text(meta, "namespace") or namespace, name),
    )


def _waiting_for(status: dict[str, Any], namespace: str, name: str) -> str | None:
    """The workflow holding the mutex this run waits for, by name: Argo's holder keys are
    "namespace/workflow[/node]" (or a bare name, from older controllers). Never the run itself
    (one of its own steps may hold it), never a run of another namespace."""
    waiting = _object(_object(status, "synchronization"), "mutex").get("waiting")
    if not isinstance(waiting, list):
        return None
    for entry in waiting[:MAX_WAITING]:
        holder = entry.get("holder") if isinstance(entry, dict) else None
        if not isinstance(holder, str) or len(holder) > MAX_HOLDER:
            continue
        parts = holder.split("/")
        if len(parts) == 1:
            held_by = parts[0]
        elif len(parts) in (2, 3) and parts[0] == namespace:
            held_by = parts[1]
        else:
            continue
        if ids.is_workflow_name(held_by) and held_by != name:
            return held_by
    return None


def _nodes(data: Any, name: str) -> list[NodeState]:
    """A workflow's status.nodes as NodeStates, at most MAX_NODES, each field checked."""
    meta, status, spec = _object(data, "metadata"), _object(data, "status"), _object(data, "spec")
    version = pod_name_version(meta.get("annotations"))
    templates = _templates(_object(status, "storedWorkflowTemplateSpec").get("templates"))
    for key, template in _templates(spec.get("templates")).items():
        templates.setdefault(key, template)
    found = []
    for node_id, node in list(_object(status, "nodes").items())[:MAX_NODES]:
        if not isinstance(node, dict) or not isinstance(node_id, str):
            continue
        node_type = _text(node, "type") or ""
        full_name = _text(node, "name") or ""
        template_name = _template_of(node)
        pod = None
        if node_type == "Pod" and full_name:
            guess = pod_name(name, full_name, template_name, node_id, version)
            pod = guess if ids.is_subdomain(guess, ids.MAX_SUBDOMAIN) else None
        seconds = None
        if node_type == "Suspend" and template_name in templates:
            duration = _object(templates[template_name], "suspend").get("duration")
            seconds = suspend_seconds(duration)
        found.append(
            NodeState(
                id=node_id[:253],
                display_name=(_text(node, "displayName") or full_name or "?")[:256],
                type=node_type,
                phase=_text(node, "phase"),
                message=(_text(node, "message") or "")[:1024] or None,
                name=full_name[:MAX_NODE_NAME],
                template_name=template_name,
                started_at=(_text(node, "startedAt") or "")[:64] or None,
                pod_name=pod,
                supplied=_supplied(_object(node, "outputs").get("parameters")),
                outputs=_output_values(_object(node, "outputs").get("parameters")),
                choices=_choices(_object(node, "inputs").get("parameters")),
                suspend_seconds=seconds,
            )
        )
    return found


def _templates(items: Any) -> dict[str, dict[str, Any]]:
    """Templates by name, the first of a name winning."""
    found: dict[str, dict[str, Any]] = {}
    for item in items[:MAX_TEMPLATES] if isinstance(items, list) else []:
        template_name = _text(item, "name") if isinstance(item, dict) else None
        if template_name is not None:
            found.setdefault(template_name, item)
    return found


def _template_of(node: dict[str, Any]) -> str | None:
    # As Argo's GetTemplateFromNode: a templateRef's template, else the node's templateName.
    ref = node.get("templateRef")
    found = _text(ref, "template") if isinstance(ref, dict) else _text(node, "templateName")
    return found[:253] if found else None


def _parameters(items: Any) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(items, list):
        return []
    found = []
    for item in items[:MAX_PARAMETERS]:
        parameter_name = _text(item, "name") if isinstance(item, dict) else None
        if parameter_name is not None and PARAMETER_NAME.fullmatch(parameter_name):
            found.append((parameter_name, item))
    return found


def _supplied(items: Any) -> tuple[str, ...]:
    """Output parameters still waiting for a value: valueFrom.supplied is there until set."""
    return tuple(
        parameter_name
        for parameter_name, item in _parameters(items)
        if isinstance(_object(item, "valueFrom").get("supplied"), dict)
    )


def _output_values(items: Any) -> tuple[tuple[str, str], ...]:
    """Output parameters that hold a value (a supplied one once set), values cut for display."""
    return tuple(
        (parameter_name, item["value"][:MAX_CHOICE_CHARS])
        for parameter_name, item in _parameters(items)
        if isinstance(item.get("value"), str) and "valueFrom" not in item
    )


def _choices(items: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each input parameter's enum; a value too long to show whole is left out, not cut, so
    that any value offered is one Argo's UI would accept."""
    found = []
    for parameter_name, item in _parameters(items):
        enum = item.get("enum")
        if not isinstance(enum, list):
            continue
        values = tuple(
            value
            for value in enum[:MAX_CHOICES]
            if isinstance(value, str) and value and len(value) <= MAX_CHOICE_CHARS
        )
        if values:
            found.append((parameter_name, values))
    return tuple(found)


def _progress(value: Any) -> str | None:
    # "N/M" as Argo writes it; anything else is not shown.
    return value if isinstance(value, str) and PROGRESS.fullmatch(value) else None


def _seconds(value: Any) -> float | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**8:
        return float(value)
    return None


def _object(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None
