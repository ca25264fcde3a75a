"""kubernetes/argo: facteur-dispatch, its exit handler, its RBAC and the callback Secret template.

The WorkflowTemplate is checked against Argo's real CRD and JSON Schema (from the specs folder,
never copied here), the core kinds with kubernetes-validate, and the exit handler's body is
rendered the way Argo's controller renders it, then read by status_callback's own parser.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft4Validator, Draft202012Validator

from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from facteur.decisions.callback import Report, parse_report
from facteur.decisions.workflow import (
    ACTION_PARAMETER,
    ENCODING_PARAMETER,
    LAST_CORRELATION_PARAMETER,
)
from facteur.errors import InvalidReport
from tests.helpers.contracts import specs_path
from tests.helpers.k8s_schemas import crd_schema, crd_validator, documents, errors, kustomize
from tests.helpers.support import ROOT

ARGO_DIR = ROOT / "kubernetes" / "argo"
TEMPLATE_FILE = ARGO_DIR / "workflowtemplate-facteur-dispatch.yaml"
RBAC_FILE = ARGO_DIR / "rbac.yaml"
EXECUTOR_RBAC_FILE = ARGO_DIR / "rbac-executor.yaml"
SECRET_FILE = ARGO_DIR / "secret-facteur-callback.yaml"
SECRET_NAME = "facteur-callback"
SERVICE_ACCOUNT = "facteur-agent"
EXECUTOR_ACCOUNT = "facteur-executor"
SA_TOKEN = "kubernetes.io/service-account-token"
CALLBACK_URL = "http://status-callback.facteur.svc.cluster.local"


def _template() -> dict[str, Any]:
    (document,) = documents(TEMPLATE_FILE)
    return document


def _exit_handler(template: dict[str, Any]) -> dict[str, Any]:
    (handler,) = [
        t for t in template["spec"]["templates"] if t["name"] == template["spec"]["onExit"]
    ]
    return handler


def _workflow_namespace() -> str:
    example = yaml.safe_load((ROOT / "config" / "facteur.example.yaml").read_text())
    return example["argo"]["namespace"]


# --- The WorkflowTemplate against Argo's CRD and JSON Schema ------------------------------------


def _crd_schema() -> dict[str, Any]:
    path = specs_path("argo-workflows", "argoproj.io_workflowtemplates.yaml")
    return crd_schema(path, "v1alpha1")


def _crd_errors(document: dict[str, Any]) -> list[str]:
    """A WorkflowTemplate against Argo's CRD, objects closed (k8s_schemas.structural)."""
    path = specs_path("argo-workflows", "argoproj.io_workflowtemplates.yaml")
    return errors(crd_validator(path, "v1alpha1"), document)


@functools.cache
def _json_schema_validator() -> Draft202012Validator:
    schema = json.loads(specs_path("argo-workflows", "schema.json").read_text())
    # The top-level oneOf admits any Argo kind; validate against the WorkflowTemplate branch only,
    # keeping the root so that its #/definitions references resolve.
    root = {key: value for key, value in schema.items() if key != "oneOf"}
    root["$ref"] = "#/definitions/io.argoproj.workflow.v1alpha1.WorkflowTemplate"
    assert {"$ref": root["$ref"]} in schema["oneOf"]
    return Draft202012Validator(root)


def test_template_validates_against_the_crd() -> None:
    assert _crd_errors(_template()) == []


def test_template_validates_against_argos_json_schema() -> None:
    assert errors(_json_schema_validator(), _template()) == []


def test_the_schemas_bite() -> None:
    broken = _template()
    broken["spec"]["onExit"] = 5
    assert _crd_errors(broken)
    assert errors(_json_schema_validator(), broken)
    # A misspelt http field: the CRD itself does not forbid it (the server would prune it silently
    # or, under strict field validation, refuse it), so only the structural reading catches it.
    misspelt = _template()
    _exit_handler(misspelt)["http"]["successCondtion"] = "true"
    assert Draft4Validator(_crd_schema()).is_valid(misspelt)
    assert any("successCondtion" in error for error in _crd_errors(misspelt))


# --- The template's contract with facteur ---------------------------------------------------------


def test_parameters_are_the_catalog_options_plus_facteurs_own() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_FILE)
    # Built-ins (/status, /help) start no workflow, so their options are not parameters.
    options = {
        option.name
        for command in catalog.commands
        if not command.builtin
        for option in command.options
    }
    parameters = _template()["spec"]["arguments"]["parameters"]
    names = [p["name"] for p in parameters]
    assert len(names) == len(set(names))
    own = {ACTION_PARAMETER, ENCODING_PARAMETER, LAST_CORRELATION_PARAMETER}
    assert set(names) == options | own
    # Every command sends only its own options, so each parameter needs a default.
    assert all(p["value"] == "" for p in parameters)


def test_template_identity_and_wiring() -> None:
    template = _template()
    assert template["metadata"]["name"] == "facteur-dispatch"
    assert template["metadata"]["namespace"] == _workflow_namespace()
    assert template["spec"]["serviceAccountName"] == SERVICE_ACCOUNT
    names = [t["name"] for t in template["spec"]["templates"]]
    assert template["spec"]["entrypoint"] in names
    http = _exit_handler(template)["http"]
    assert http["url"] == CALLBACK_URL
    assert http["method"] == "POST"
    assert http["successCondition"] == "response.statusCode >= 200 && response.statusCode < 300"


def test_placeholder_agent_never_splices_user_text_into_its_script() -> None:
    template = _template()
    (agent,) = [t for t in template["spec"]["templates"] if t["name"] == "agent"]
    script = " ".join(agent["container"]["command"] + agent["container"]["args"])
    assert "{{" not in script
    passed = {env["value"] for env in agent["container"]["env"]}
    for parameter in template["spec"]["arguments"]["parameters"]:
        assert f"{{{{workflow.parameters.{parameter['name']}}}}}" in passed


def test_headers_take_authorization_from_the_secret() -> None:
    headers = {h["name"]: h for h in _exit_handler(_template())["http"]["headers"]}
    assert set(headers) == {"Content-Type", "Authorization"}
    assert headers["Content-Type"]["value"] == "application/json"
    authorization = headers["Authorization"]
    assert "value" not in authorization
    assert authorization["valueFrom"] == {
        "secretKeyRef": {"name": SECRET_NAME, "key": "authorization"}
    }
    (secret,) = documents(SECRET_FILE)
    assert secret["metadata"]["name"] == SECRET_NAME
    assert set(secret["stringData"]) == {"authorization"}


# --- Rendering the exit handler's body as Argo does ---------------------------------------------
#
# Argo's controller marshals a template to JSON, substitutes the tags inside that JSON text and
# unmarshals the result, so each value goes in escaped and the field ends up holding it raw. Simple
# tags ({{workflow.name}}) are replaced by the variable's value, or left as they are when it is
# unknown. Expression tags ({{=...}}) are evaluated with expr, with sprig's functions under
# `sprig.` and Argo's own `toJson`; one that uses workflow.failures or workflow.status while it is
# unset is left as it is. A string result goes in like a simple value.
#
# Only the expression syntax and the functions that the body uses are emulated below: calls,
# dotted names and quoted strings, with sprig.trimPrefix, trimSuffix, hasPrefix and ternary (Go's
# strings.TrimPrefix, TrimSuffix, HasPrefix, and a choice between two already evaluated values)
# and toJson (Go's json.Marshal, which escapes <, > and & as \u003c etc.). Anything else raises,
# so a change to the body that uses more must extend the emulation deliberately.

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_GUARDED = ("workflow.failures", "workflow.status")
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)|(?P<string>'(?:[^'\\]|\\.)*'"
    r'|"(?:[^"\\]|\\.)*")|(?P<punct>[(),]))'
)


def go_json(value: Any) -> str:
    """Go's json.Marshal: compact, keys sorted, HTML characters and U+2028/9 escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toJson": go_json,
    "sprig.trimPrefix": lambda prefix, s: s.removeprefix(prefix),
    "sprig.trimSuffix": lambda suffix, s: s.removesuffix(suffix),
    "sprig.hasPrefix": lambda prefix, s: s.startswith(prefix),
    "sprig.ternary": lambda if_true, if_false, condition: if_true if condition else if_false,
}


def _tokens(expression: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        if not match:
            raise ValueError(f"unsupported expression syntax at {expression[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def _unquote(literal: str) -> str:
    """An expr string literal's value (Go escapes: \\uXXXX and the one-letter ones)."""

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        if code not in _ESCAPES:
            raise ValueError(f"escape \\{code} is not emulated")
        return _ESCAPES[code]

    return _ESCAPE.sub(unescape, literal[1:-1])


def evaluate(expression: str, variables: dict[str, str]) -> Any:
    """Evaluate the subset of expr that the body uses."""
    tokens = _tokens(expression)

    def parse(at: int) -> tuple[Any, int]:
        kind, text = tokens[at]
        if kind == "string":
            return _unquote(text), at + 1
        if kind != "name":
            raise ValueError(f"unexpected {text!r} in {expression!r}")
        if at + 1 < len(tokens) and tokens[at + 1] == ("punct", "("):
            if text not in _FUNCTIONS:
                raise ValueError(f"function {text} is not emulated")
            args, at = [], at + 2
            while tokens[at] != ("punct", ")"):
                value, at = parse(at)
                args.append(value)
                if tokens[at] == ("punct", ","):
                    at += 1
                elif tokens[at] != ("punct", ")"):
                    raise ValueError(f"expected , or ) in {expression!r}")
            return _FUNCTIONS[text](*args), at + 1
        return variables[text], at + 1

    value, end = parse(0)
    if end != len(tokens):
        raise ValueError(f"trailing tokens in {expression!r}")
    return value


def render_like_argo(field: str, variables: dict[str, str]) -> str:
    """One template field after Argo's substitution (see the comment above)."""

    def substitute(match: re.Match[str]) -> str:
        tag = match.group(1)
        if tag.startswith("="):
            expression = json.loads(f'"{tag[1:]}"')  # undo the JSON escaping, as Argo does
            if any(name in expression and name not in variables for name in _GUARDED):
                return match.group(0)
            result = evaluate(expression, variables)
            assert isinstance(result, str), f"{expression} gave {result!r}, not a string"
            return json.dumps(result, ensure_ascii=False)[1:-1]
        value = variables.get(tag.strip())
        if value is None:
            return match.group(0)
        return json.dumps(value, ensure_ascii=False)[1:-1]

    return json.loads(_TAG.sub(substitute, json.dumps(field, ensure_ascii=False)))


FAILED_NODES = [
    {
        "displayName": "agent",
        "message": 'exit code 2: "plan" failed\n<see log> & retry \\ é',
        "templateName": "agent",
        "phase": "Failed",
        "podName": "plan-900000000000000001-agent-1",
        "finishedAt": "2026-01-01T00:00:05Z",
    },
    {
        "displayName": "plan-900000000000000001",
        "message": "child 'agent' failed",
        "templateName": "agent",
        "phase": "Error",
        "podName": "plan-900000000000000001",
        "finishedAt": "2026-01-01T00:00:06Z",
    },
]


def _run_variables(status: str, **extra: str) -> dict[str, str]:
    return {
        "workflow.name": "plan-900000000000000001",
        "workflow.namespace": "agents",
        "workflow.uid": "4f5f3c1e-2b1a-4c5d-9e8f-0a1b2c3d4e5f",
        "workflow.status": status,
        # Argo formats the duration with Go's %f.
        "workflow.duration": "12.500000",
        **extra,
    }


def _render_body(variables: dict[str, str]) -> str:
    return render_like_argo(_exit_handler(_template())["http"]["body"], variables)


def _assert_run(report: Report, status: str) -> None:
    assert report.name == "plan-900000000000000001"
    assert report.namespace == "agents"
    assert report.uid == "4f5f3c1e-2b1a-4c5d-9e8f-0a1b2c3d4e5f"
    assert report.status == status
    assert report.duration == 12.5


def _assert_failures(report: Report) -> None:
    assert [(f.node, f.message, f.phase) for f in report.failures] == [
        ("agent", FAILED_NODES[0]["message"], "Failed"),
        ("plan-900000000000000001", "child 'agent' failed", "Error"),
    ]


def test_succeeded_run_with_failures_unset() -> None:
    body = _render_body(_run_variables("Succeeded"))
    assert set(json.loads(body)) == {"name", "namespace", "uid", "status", "duration", "failures"}
    report = parse_report(body.encode())
    _assert_run(report, "Succeeded")
    assert report.failures == []


def test_failed_run_with_failures_as_a_json_array() -> None:
    body = _render_body(_run_variables("Failed", **{"workflow.failures": go_json(FAILED_NODES)}))
    report = parse_report(body.encode())
    _assert_run(report, "Failed")
    _assert_failures(report)


# What Argo's controller (workflow/controller/operator.go) actually sets before the exit handler
# runs: strconv.Quote(json.Marshal(failed nodes)), a quoted JSON string, "null" when none failed.
# json.dumps spells it the same way for this input.
def _as_argo_sets_it(nodes: list[dict[str, str]] | None) -> str:
    return json.dumps(go_json(nodes), ensure_ascii=False)


def test_failed_run_with_failures_as_argo_quotes_them() -> None:
    variables = _run_variables("Failed", **{"workflow.failures": _as_argo_sets_it(FAILED_NODES)})
    report = parse_report(_render_body(variables).encode())
    _assert_run(report, "Failed")
    _assert_failures(report)


def test_succeeded_run_with_failures_as_argo_quotes_none() -> None:
    variables = _run_variables("Succeeded", **{"workflow.failures": _as_argo_sets_it(None)})
    report = parse_report(_render_body(variables).encode())
    _assert_run(report, "Succeeded")
    assert report.failures == []


@pytest.mark.parametrize(
    ("failures_field", "failures"),
    [
        # A simple tag inside quotes: the array's own quotes end the JSON string.
        ('"{{workflow.failures}}"', go_json(FAILED_NODES)),
        ('"{{workflow.failures}}"', _as_argo_sets_it(FAILED_NODES)),
        # A bare simple tag: valid for a value, not when Argo leaves it unresolved.
        ("{{workflow.failures}}", None),
    ],
)
def test_the_naive_encodings_break(failures_field: str, failures: str | None) -> None:
    # Why the body uses an expression: the renderer shows each simpler form breaking the JSON.
    body = '{"name": "{{workflow.name}}", "namespace": "agents", "status": "{{workflow.status}}", '
    body += f'"failures": {failures_field}}}'
    extra = {} if failures is None else {"workflow.failures": failures}
    with pytest.raises(InvalidReport, match="not JSON"):
        parse_report(render_like_argo(body, _run_variables("Failed", **extra)).encode())


def test_the_emulated_expression_evaluator_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="not emulated"):
        evaluate("sprig.upper(workflow.name)", _run_variables("Succeeded"))
    with pytest.raises(ValueError, match="unsupported"):
        evaluate("workflow.duration > 1", _run_variables("Succeeded"))


# --- RBAC and the Secret template ---------------------------------------------------------------


def _core_documents() -> list[dict[str, Any]]:
    return documents(RBAC_FILE) + documents(EXECUTOR_RBAC_FILE) + documents(SECRET_FILE)


def _by_kind(kind: str, name: str = SERVICE_ACCOUNT) -> dict[str, Any]:
    (document,) = [
        d for d in _core_documents() if d["kind"] == kind and d["metadata"]["name"] == name
    ]
    return document


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize(
    "document",
    [pytest.param(d, id=f"{d['kind']}/{d['metadata']['name']}") for d in _core_documents()],
)
def test_core_kinds_validate_against_kubernetes_schemas(document: dict[str, Any]) -> None:
    # kubernetes-validate bundles Kubernetes' own schemas; strict mode refuses unknown fields.
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(document, version, strict=True)


def test_kubernetes_validate_bites() -> None:
    role = copy.deepcopy(_by_kind("Role"))
    role["rules"][0]["verb"] = ["get"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(role, kubernetes_validate.latest_version(), strict=True)


def test_everything_lives_in_the_workflow_namespace() -> None:
    namespace = _workflow_namespace()
    for document in [*_core_documents(), _template()]:
        assert document["metadata"]["namespace"] == namespace, document["kind"]
    for account in (SERVICE_ACCOUNT, EXECUTOR_ACCOUNT):
        (subject,) = _by_kind("RoleBinding", account)["subjects"]
        assert subject == {"kind": "ServiceAccount", "name": account, "namespace": namespace}


def test_each_account_has_its_own_role() -> None:
    for account in (SERVICE_ACCOUNT, EXECUTOR_ACCOUNT):
        assert _by_kind("ServiceAccount", account)["automountServiceAccountToken"] is False
        assert _by_kind("RoleBinding", account)["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": _by_kind("Role", account)["metadata"]["name"],
        }
        # The token Secret Argo mounts for it (util/secrets/secret_name.go); Kubernetes fills it in.
        token = _by_kind("Secret", f"{account}.service-account-token")
        assert token["type"] == SA_TOKEN
        assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": account}
        assert "data" not in token and "stringData" not in token


def test_the_agent_role_grants_what_the_agent_needs() -> None:
    assert _granted(_by_kind("Role", SERVICE_ACCOUNT)) == {
        ("argoproj.io", "workflowtasksets", "get"),
        ("argoproj.io", "workflowtasksets", "list"),
        ("argoproj.io", "workflowtasksets", "watch"),
        ("argoproj.io", "workflowtasksets/status", "patch"),
        ("", "secrets", "get"),
    }


def test_the_executor_role_grants_what_the_executor_needs() -> None:
    # Argo's docs/workflow-rbac.md, >= 3.4; no Secret, no pods.
    assert _granted(_by_kind("Role", EXECUTOR_ACCOUNT)) == {
        ("argoproj.io", "workflowtaskresults", "create"),
        ("argoproj.io", "workflowtaskresults", "patch"),
    }


def test_the_template_runs_the_agent_and_the_steps_as_their_accounts() -> None:
    spec = _template()["spec"]
    assert spec["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["automountServiceAccountToken"] is False
    assert spec["executor"] == {"serviceAccountName": EXECUTOR_ACCOUNT}
    (agent,) = [t for t in spec["templates"] if t["name"] == "agent"]
    assert agent["serviceAccountName"] == EXECUTOR_ACCOUNT
    assert agent["automountServiceAccountToken"] is False
    assert agent["executor"] == {"serviceAccountName": EXECUTOR_ACCOUNT}


def test_role_reads_only_the_callback_secret() -> None:
    roles = [d for d in _core_documents() if d["kind"] == "Role"]
    secret_rules = [r for role in roles for r in role["rules"] if "secrets" in r["resources"]]
    assert secret_rules == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": [SECRET_NAME],
            "verbs": ["get"],
        }
    ]
    assert secret_rules == [r for r in _by_kind("Role")["rules"] if "secrets" in r["resources"]]
    for role in roles:
        assert not any("*" in r["resources"] or "*" in r["verbs"] for r in role["rules"])


def test_secret_is_a_template_with_a_placeholder() -> None:
    secret = _by_kind("Secret", SECRET_NAME)
    assert secret["type"] == "Opaque"
    assert "data" not in secret
    value = secret["stringData"]["authorization"]
    assert value.startswith("Bearer ")
    assert "REPLACE" in value


# --- The kustomization --------------------------------------------------------------------------


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((ARGO_DIR / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(
        p.name
        for p in (
            RBAC_FILE,
            EXECUTOR_RBAC_FILE,
            ARGO_DIR / "rbac-facteur-api.yaml",
            SECRET_FILE,
            TEMPLATE_FILE,
            # The same with an approval gate, reusing its agent and exit handler by templateRef.
            ARGO_DIR / "workflowtemplate-facteur-dispatch-approval.yaml",
            # The ApiServerSource and its account (test_kubernetes checks them).
            ARGO_DIR / "apiserversource.yaml",
        )
    )


def test_kustomize_renders_the_objects() -> None:
    # kubectl kustomize where kubectl is on PATH, else k8s_schemas' Python emulation.
    rendered = kustomize(ARGO_DIR)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == sorted(
        [
            ("Role", "facteur-api"),
            ("Role", SERVICE_ACCOUNT),
            ("Role", EXECUTOR_ACCOUNT),
            ("RoleBinding", "facteur-api"),
            ("RoleBinding", SERVICE_ACCOUNT),
            ("RoleBinding", EXECUTOR_ACCOUNT),
            ("Secret", SECRET_NAME),
            ("Secret", "facteur-api-token"),
            ("Secret", f"{SERVICE_ACCOUNT}.service-account-token"),
            ("Secret", f"{EXECUTOR_ACCOUNT}.service-account-token"),
            ("ServiceAccount", "facteur-api"),
            ("ServiceAccount", SERVICE_ACCOUNT),
            ("ServiceAccount", EXECUTOR_ACCOUNT),
            ("WorkflowTemplate", "facteur-dispatch"),
            ("WorkflowTemplate", "facteur-dispatch-approval"),
            ("ServiceAccount", "facteur-watcher"),
            ("Role", "facteur-watcher"),
            ("RoleBinding", "facteur-watcher"),
            ("ApiServerSource", "facteur-workflows"),
        ]
    )
    # kustomize must pass the template through untouched, the exit handler's body included.
    (template,) = [
        d
        for d in rendered
        if d["kind"] == "WorkflowTemplate" and d["metadata"]["name"] == "facteur-dispatch"
    ]
    assert template == _template()
