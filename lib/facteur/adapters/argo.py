"""The Argo Server REST client: create workflows from templates, read their state, act on them.

Decision: plain `requests` with urllib3's `Retry`, not Argo's SDK (hera's WorkflowsService).
Measured in fresh processes here: `import hera.workflows` costs ~410 ms of import time (~445 ms wall
above a bare interpreter) against ~65-90 ms (~100 ms wall) for `import requests`, which facteur
already needs. Scale-to-zero functions pay that on every cold start, for five REST calls.
"""

from __future__ import annotations

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
)
PROGRESS = re.compile(r"[0-9]{1,6}/[0-9]{1,6}")
# The same of each workflow in a list (ListWorkflows), without the uid and the nodes.
# Lists feed recovery, which reads neither the uid nor a running run's progress.
_NOT_LISTED = ("metadata.uid", "status.progress", "status.estimatedDuration")
LIST_FIELDS = ",".join(f"items.{path}" for path in GET_FIELDS if path not in _NOT_LISTED)
# A button reference is on one run and the runs resubmitted from it: a few at most.
REF_LIMIT = 20


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
        # Resubmit makes a new, server-named workflow each time, so a replay could duplicate it:
        # only failures to connect (nothing was sent) are retried there.
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
        edited (at most once per card interval)."""
        _check_namespace(namespace)
        _check_name(name)
        response = self._send("GET", [namespace, name], params={"fields": "status.nodes"})
        if response.status_code == 404:
            return []
        self._raise_unless_ok(response)
        nodes = _object(_object(self._json(response), "status"), "nodes")
        found = []
        for node_id, node in list(nodes.items())[:MAX_NODES]:
            if not isinstance(node, dict):
                continue
            found.append(
                NodeState(
                    id=str(node_id)[:253],
                    display_name=(_text(node, "displayName") or _text(node, "name") or "?")[:256],
                    type=_text(node, "type") or "",
                    phase=_text(node, "phase"),
                    message=(_text(node, "message") or "")[:1024] or None,
                )
            )
        return found

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

    # -- plumbing --------------------------------------------------------------------------

    def _act(
        self, namespace: str, name: str, action: str, body: dict[str, Any], *, replay: bool = True
    ) -> Any:
        _check_namespace(namespace)
        _check_name(name)
        response = self._send("PUT", [namespace, name, action], body=body, replay=replay)
        self._raise_unless_ok(response)
        return self._json(response)

    def _send(
        self,
        method: str,
        segments: list[str],
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        replay: bool = True,
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
        # Created on first use: resubmit is rare, and most functions never call it. Its own
        # session, since requests picks adapters per session; verify and headers go per request.
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
        text = ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("message", "error"):
                if isinstance(data.get(key), str) and data[key].strip():
                    text = data[key]
                    break
        if 300 <= response.status_code < 400:
            text = "unexpected redirect"
        text = " ".join(text.split()) or f"HTTP {response.status_code}"
        if self._token:
            text = text.replace(self._token, "[token]")
        return text[:REASON_MAX]

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
    return {"namespace": namespace, "workflow": {"metadata": metadata, "spec": spec}}


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
    )


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
