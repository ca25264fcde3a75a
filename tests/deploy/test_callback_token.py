"""Who can read callback.token: only the Argo agent, never the user's step containers.

The exit handler's Authorization header (the Secret facteur-callback) lets its bearer report any
workflow's outcome to status_callback, so the rendered kubernetes/argo and every overlay are
checked for how Argo hands out Kubernetes credentials (argoproj/argo-workflows @ f016ad89eb,
cited in kubernetes/README.md, "Who can read the callback token"):

- The agent pod, which runs HTTP templates, runs as the workflow's spec.serviceAccountName and
  mounts that account's token Secret itself (workflow/controller/agent.go:155-167, 220-221); it
  reads the header's secretKeyRef through the Kubernetes API (workflow/executor/agent.go:344-345).
- A step pod runs as the template's serviceAccountName, else the workflow's; its token is not
  automounted when the template's automountServiceAccountToken, else the workflow's, is false, and
  then only Argo's executor containers get executor.serviceAccountName's token
  (workflow/controller/workflowpod.go:1813-1857, 1314-1320).
- Argo finds an account's token in the Secret `<account>.service-account-token`, which
  Kubernetes >= 1.24 no longer creates (util/secrets/secret_name.go:12-24).

RBAC is evaluated as the API server does: Roles through RoleBindings in their namespace,
ClusterRoles through either binding, "*" and the service-account groups included.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.k8s_schemas import Manifest, kustomize
from tests.helpers.support import ROOT

KUBERNETES = ROOT / "kubernetes"
RENDERED = [
    KUBERNETES / "argo",
    KUBERNETES / "overlays" / "production",
    KUBERNETES / "overlays" / "dev",
    KUBERNETES / "overlays" / "production-sentinel",
]
CALLBACK_SECRET = "facteur-callback"
SA_TOKEN = "kubernetes.io/service-account-token"
# Template types that Argo runs in a pod of their own; steps, dag, suspend and http do not
# (http and plugin templates run in the agent pod).
POD_TEMPLATE_TYPES = ("container", "script", "containerSet", "resource", "data")
# What reads a Secret's value: get, and list or watch, which return whole objects.
READ_VERBS = ("get", "list", "watch")
# The least the agent needs (Argo's manifests/quick-start/base/agent-role.yaml, plus the Secret)
# and the least the executor needs (docs/workflow-rbac.md, Argo >= 3.4).
AGENT_NEEDS = {
    ("argoproj.io", "workflowtasksets", "list", None),
    ("argoproj.io", "workflowtasksets", "watch", None),
    ("argoproj.io", "workflowtasksets/status", "patch", None),
    ("", "secrets", "get", CALLBACK_SECRET),
}
EXECUTOR_NEEDS = {
    ("argoproj.io", "workflowtaskresults", "create", None),
    ("argoproj.io", "workflowtaskresults", "patch", None),
}

Account = tuple[str, str]  # (namespace, name)


# --- Reading the rendered objects ---------------------------------------------------------------


def _one(objects: list[Manifest], kind: str) -> Manifest:
    (document,) = [d for d in objects if d["kind"] == kind]
    return document


# The template with the exit handler; the others reuse it by templateRef.
DISPATCH = "facteur-dispatch"


def _dispatch(objects: list[Manifest]) -> Manifest:
    (document,) = [
        d for d in objects if d["kind"] == "WorkflowTemplate" and d["metadata"]["name"] == DISPATCH
    ]
    return document


def _workflow_templates(objects: list[Manifest]) -> list[Manifest]:
    return [d for d in objects if d["kind"] == "WorkflowTemplate"]


def _label(path: Path) -> str:
    return str(path.relative_to(KUBERNETES))


def _template_type(template: Manifest) -> str | None:
    return next((t for t in POD_TEMPLATE_TYPES if t in template), None)


def _pod_templates(workflow_template: Manifest) -> Iterator[Manifest]:
    for template in workflow_template["spec"]["templates"]:
        if _template_type(template) is not None:
            yield template


def _inherited(template: Manifest, spec: Manifest, field: str) -> Any:
    """A template's field, else the workflow's: how Argo resolves the three below."""
    return template[field] if template.get(field) is not None else spec.get(field)


def _pod_account(template: Manifest, spec: Manifest) -> str:
    # workflowpod.go:1825-1829; a workflow without one runs as `default`.
    return _inherited(template, spec, "serviceAccountName") or "default"


def _executor_account(template: Manifest, spec: Manifest) -> str | None:
    # workflowpod.go:1813-1820.
    return (_inherited(template, spec, "executor") or {}).get("serviceAccountName") or None


def _agent_account(workflow_template: Manifest) -> str:
    # agent.go:155: the workflow's spec.serviceAccountName, whatever the templates say.
    return workflow_template["spec"].get("serviceAccountName") or "default"


# --- RBAC, as the API server evaluates it ---------------------------------------------------------


def _matches(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def _binds(binding: Manifest, account: Account) -> bool:
    namespace, name = account
    # The subjects that stand for this account: itself, and the groups every account is in.
    as_user = f"system:serviceaccount:{namespace}:{name}"
    groups = {
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    }
    binding_namespace = binding["metadata"].get("namespace", "")
    for subject in binding.get("subjects") or []:
        kind, subject_name = subject["kind"], subject["name"]
        # An account subject without a namespace: kustomize's namespace transformer sets the
        # binding's.
        subject_namespace = subject.get("namespace") or binding_namespace
        if (
            (kind == "ServiceAccount" and (subject_namespace, subject_name) == account)
            or (kind == "User" and subject_name == as_user)
            or (kind == "Group" and subject_name in groups)
        ):
            return True
    return False


def _rules_for(objects: list[Manifest], account: Account) -> list[Manifest]:
    """Every rule the account holds, each tagged with the namespace it applies in ("" = all)."""
    roles = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in objects
    }
    rules: list[Manifest] = []
    for binding in objects:
        if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
            continue
        if not _binds(binding, account):
            continue
        scope = binding["metadata"].get("namespace", "") if binding["kind"] == "RoleBinding" else ""
        ref = binding["roleRef"]
        role_namespace = scope if ref["kind"] == "Role" else ""
        role = roles.get((ref["kind"], role_namespace, ref["name"]))
        for rule in (role or {}).get("rules") or []:
            rules.append({**rule, "scope": scope})
    return rules


def _allowed(
    objects: list[Manifest],
    account: Account,
    group: str,
    resource: str,
    verb: str,
    name: str | None,
    namespace: str,
) -> bool:
    for rule in _rules_for(objects, account):
        if rule["scope"] not in {"", namespace}:
            continue
        if not (
            _matches(rule.get("apiGroups") or [], group)
            and _matches(rule.get("resources") or [], resource)
            and _matches(rule.get("verbs") or [], verb)
        ):
            continue
        names = rule.get("resourceNames") or []
        # resourceNames narrows a rule to those objects; a request for no name (list, watch) or
        # for another one is not covered by it.
        if not names or (name is not None and name in names):
            return True
    return False


def _reads_callback_secret(objects: list[Manifest], account: Account) -> bool:
    namespace = account[0]
    return any(
        _allowed(objects, account, "", "secrets", verb, CALLBACK_SECRET, namespace)
        for verb in READ_VERBS
    )


def _accounts(objects: list[Manifest]) -> set[Account]:
    return {
        (d["metadata"].get("namespace", ""), d["metadata"]["name"])
        for d in objects
        if d["kind"] == "ServiceAccount"
    }


# --- The checks, as functions so that the bite tests can run them on broken copies --------------


def _problems(objects: list[Manifest]) -> list[str]:
    """Every way a user's step container could get a Kubernetes token that reads the Secret,
    in every WorkflowTemplate shipped."""
    return [p for w in _workflow_templates(objects) for p in _problems_of(objects, w)]


def _problems_of(objects: list[Manifest], workflow_template: Manifest) -> list[str]:
    spec = workflow_template["spec"]
    namespace = workflow_template["metadata"]["namespace"]
    accounts = _accounts(objects)
    problems: list[str] = []
    for template in _pod_templates(workflow_template):
        name = template["name"]
        if _inherited(template, spec, "automountServiceAccountToken") is not False:
            problems.append(f"{name}: the pod's token is automounted into the user's containers")
        executor = _executor_account(template, spec)
        if executor is None:
            problems.append(f"{name}: no executor.serviceAccountName (Argo refuses the pod)")
        for role, account in (("pod", _pod_account(template, spec)), ("executor", executor)):
            if account is None:
                continue
            if (namespace, account) not in accounts:
                problems.append(f"{name}: its {role} account {account} is not shipped")
            if _reads_callback_secret(objects, (namespace, account)):
                problems.append(f"{name}: its {role} account {account} may read {CALLBACK_SECRET}")
    return problems


# --- Tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_no_step_container_gets_a_token_that_reads_the_callback_secret(directory: Path) -> None:
    objects = kustomize(directory)
    workflow_template = _dispatch(objects)
    assert list(_pod_templates(workflow_template)), "no pod template to check"
    assert _problems(objects) == []


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_pod_templates_set_it_themselves_too(directory: Path) -> None:
    # The spec covers templates a user adds; the template's own settings keep a copy of it safe.
    for workflow_template in _workflow_templates(kustomize(directory)):
        spec = workflow_template["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["executor"]["serviceAccountName"]
        for template in _pod_templates(workflow_template):
            assert template["automountServiceAccountToken"] is False, template["name"]
            assert template["executor"]["serviceAccountName"], template["name"]
            assert template["serviceAccountName"] != _agent_account(workflow_template)


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_only_the_agent_account_reads_the_callback_secret(directory: Path) -> None:
    objects = kustomize(directory)
    workflow_template = _dispatch(objects)
    namespace = workflow_template["metadata"]["namespace"]
    readers = {a for a in _accounts(objects) if _reads_callback_secret(objects, a)}
    assert readers == {(namespace, _agent_account(workflow_template))}
    # The exit handler names that Secret, in the namespace the agent reads it from.
    (handler,) = [
        t
        for t in workflow_template["spec"]["templates"]
        if t["name"] == workflow_template["spec"]["onExit"]
    ]
    references = {
        h["valueFrom"]["secretKeyRef"]["name"]
        for h in handler["http"]["headers"]
        if "valueFrom" in h
    }
    assert references == {CALLBACK_SECRET}
    # And nobody may read the other Secrets of the namespace, the token Secrets included.
    for account in _accounts(objects):
        for verb in READ_VERBS:
            assert not _allowed(objects, account, "", "secrets", verb, None, namespace), (
                account,
                verb,
            )


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_the_agent_and_the_executor_get_what_they_need(directory: Path) -> None:
    objects = kustomize(directory)
    workflow_template = _dispatch(objects)
    namespace = workflow_template["metadata"]["namespace"]
    agent = (namespace, _agent_account(workflow_template))
    for group, resource, verb, name in AGENT_NEEDS:
        assert _allowed(objects, agent, group, resource, verb, name, namespace), (resource, verb)
    for template in _pod_templates(workflow_template):
        executor = (namespace, _executor_account(template, workflow_template["spec"]) or "")
        for group, resource, verb, name in EXECUTOR_NEEDS:
            assert _allowed(objects, executor, group, resource, verb, name, namespace), (
                template["name"],
                resource,
                verb,
            )
        # Nothing else: no pods/patch (Argo <= 3.3 only), no Secret, no workflow.
        rules = _rules_for(objects, executor)
        granted = {
            (g, r, v)
            for rule in rules
            for g in rule["apiGroups"]
            for r in rule["resources"]
            for v in rule["verbs"]
        }
        assert granted == {(g, r, v) for g, r, v, _ in EXECUTOR_NEEDS}


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_every_account_argo_mounts_has_its_token_secret(directory: Path) -> None:
    # Argo mounts `<account>.service-account-token` for the agent and the executor; without it
    # their pods wait for the volume forever. Kubernetes fills the Secret in.
    objects = kustomize(directory)
    workflow_template = _dispatch(objects)
    namespace = workflow_template["metadata"]["namespace"]
    mounted = {_agent_account(workflow_template)} | {
        _executor_account(t, workflow_template["spec"]) for t in _pod_templates(workflow_template)
    }
    secrets = {
        (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in objects
        if d["kind"] == "Secret"
    }
    for account in mounted:
        secret = secrets[(namespace, f"{account}.service-account-token")]
        assert secret["type"] == SA_TOKEN
        assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == account


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_no_account_of_the_workflow_automounts_its_token(directory: Path) -> None:
    # Argo sets a pod's automountServiceAccountToken only when it is false, so the account's own
    # `false` keeps its token out of any pod that does not mount it explicitly, as Argo does.
    objects = kustomize(directory)
    workflow_template = _dispatch(objects)
    spec = workflow_template["spec"]
    names = (
        {_agent_account(workflow_template)}
        | {_executor_account(t, spec) for t in _pod_templates(workflow_template)}
        | {_pod_account(t, spec) for t in _pod_templates(workflow_template)}
    )
    for document in objects:
        if document["kind"] == "ServiceAccount" and document["metadata"]["name"] in names:
            assert document.get("automountServiceAccountToken") is False, document["metadata"][
                "name"
            ]


# --- The checks bite ------------------------------------------------------------------------------


def _broken(objects: list[Manifest], kind: str, name: str) -> tuple[list[Manifest], Manifest]:
    objects = copy.deepcopy(objects)
    (document,) = [d for d in objects if d["kind"] == kind and d["metadata"]["name"] == name]
    return objects, document


def test_the_checks_bite() -> None:
    objects = kustomize(KUBERNETES / "argo")
    workflow_template = _dispatch(objects)
    name = workflow_template["metadata"]["name"]
    agent = _agent_account(workflow_template)

    # The layout this module was written against: one account for everything, token automounted.
    broken, template = _broken(objects, "WorkflowTemplate", name)
    template["spec"].pop("automountServiceAccountToken")
    template["spec"].pop("executor")
    for step in _pod_templates(template):
        for field in ("automountServiceAccountToken", "executor", "serviceAccountName"):
            step.pop(field, None)
    problems = _problems(broken)
    assert any("automounted" in p for p in problems)
    assert any(f"pod account {agent} may read" in p for p in problems)

    # Turning automounting back on in one template is caught though the spec still says false.
    broken, template = _broken(objects, "WorkflowTemplate", name)
    next(_pod_templates(template))["automountServiceAccountToken"] = True
    assert any("automounted" in p for p in _problems(broken))

    # The executor's account bound to a Role that reads Secrets.
    broken = copy.deepcopy(objects)
    executor = _executor_account(next(_pod_templates(workflow_template)), workflow_template["spec"])
    namespace = workflow_template["metadata"]["namespace"]
    broken.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "oops"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view-secrets",
            },
            "subjects": [{"kind": "Group", "name": f"system:serviceaccounts:{namespace}"}],
        }
    )
    broken.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "view-secrets"},
            "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["list"]}],
        }
    )
    assert any(f"executor account {executor} may read" in p for p in _problems(broken))
    # A resourceNames rule for another Secret reads not this one.
    assert not _allowed(objects, (namespace, agent), "", "secrets", "get", "other", namespace)
