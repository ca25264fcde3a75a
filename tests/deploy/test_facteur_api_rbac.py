"""What facteur's own Argo token (ServiceAccount facteur-api) may do: exactly what its calls need.

argo-server in its `client` auth mode builds its Kubernetes and Argo clients from the caller's
token (server/auth/gatekeeper.go:112, 183-184), so each call facteur makes needs these verbs on
the token's own RBAC (argoproj/argo-workflows @ f016ad89eb269d282aec06dc491c29f396a38df4,
v4.1.2, cited in kubernetes/argo/rbac-facteur-api.yaml):

- submit, CreateWorkflow: workflows create (server/workflow/workflow_server.go:141); the
  WorkflowTemplate is read by argo-server's own informer (:121,
  server/workflowtemplate/informer.go:57-65), not with the caller's client.
- get_workflow, GetWorkflow: workflows get (workflow_server.go:162 -> :762).
- find_by_ref and list_unfinished, ListWorkflows: workflows list, asked of the API server with a
  SelfSubjectAccessReview (:204, server/auth/authorizer.go:9-11); the list itself comes from
  argo-server's own store (:214, :238).
- stop and terminate: workflows get and patch (workflow/util/util.go:1570, 1577).
- retry, RetryWorkflow: workflows get (:762) and update (:529), and pods delete in the
  workflow's namespace (:481, :508) for the failed steps' pods, a missing pod being fine (:509).
- resubmit, ResubmitWorkflow: workflows get, workflowtemplates get while validating the new
  workflow (util.go:189-192, workflow/templateresolution/context.go:28-30), workflows create
  (util.go:209).
- set_node and resume_node, SetWorkflow and ResumeWorkflow with a nodeFieldSelector: workflows
  get and update (util.go:649-718, updateSuspendedNode).
- logs, WorkflowLogs: workflows get (util/logs/workflow-logger.go:66-67), pods watch and list
  (:180, :188) and pods/log get (:128), all with the caller's clients (workflow_server.go:724-745).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from facteur.adapters.argo import ArgoClient
from facteur.config import ArgoSettings
from tests.deploy.test_callback_token import RENDERED, _allowed, _dispatch, _label, _rules_for
from tests.helpers.k8s_schemas import Manifest, kustomize

ACCOUNT = "facteur-api"
WORKFLOWS = ("argoproj.io", "workflows")
TEMPLATES = ("argoproj.io", "workflowtemplates")
PODS = ("", "pods")
# (API group, resource, verb) for each ArgoClient call, from the source cited above.
NEEDS: dict[str, set[tuple[str, str, str]]] = {
    "submit": {(*WORKFLOWS, "create")},
    "get_workflow": {(*WORKFLOWS, "get")},
    "get_nodes": {(*WORKFLOWS, "get")},
    "find_by_ref": {(*WORKFLOWS, "list")},
    "list_unfinished": {(*WORKFLOWS, "list")},
    "stop": {(*WORKFLOWS, "get"), (*WORKFLOWS, "patch")},
    "terminate": {(*WORKFLOWS, "get"), (*WORKFLOWS, "patch")},
    "retry": {(*WORKFLOWS, "get"), (*WORKFLOWS, "update"), (*PODS, "delete")},
    "resubmit": {(*WORKFLOWS, "get"), (*TEMPLATES, "get"), (*WORKFLOWS, "create")},
    "set_node": {(*WORKFLOWS, "get"), (*WORKFLOWS, "update")},
    "resume_node": {(*WORKFLOWS, "get"), (*WORKFLOWS, "update")},
    "logs": {(*WORKFLOWS, "get"), (*PODS, "list"), (*PODS, "watch"), ("", "pods/log", "get")},
}
EVERYTHING_NEEDED = set().union(*NEEDS.values())


def _namespace(objects: list[Manifest]) -> str:
    return _dispatch(objects)["metadata"]["namespace"]


def _granted(objects: list[Manifest], namespace: str) -> set[tuple[str, str, str]]:
    """Every (group, resource, verb) the account holds, in any scope, with nothing wildcarded."""
    granted: set[tuple[str, str, str]] = set()
    for rule in _rules_for(objects, (namespace, ACCOUNT)):
        assert rule["scope"] == namespace, rule  # no ClusterRoleBinding, no other namespace
        assert not rule.get("resourceNames"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), rule
                    granted.add((group, resource, verb))
    return granted


def _missing(objects: list[Manifest]) -> dict[str, set[tuple[str, str, str]]]:
    namespace = _namespace(objects)
    account = (namespace, ACCOUNT)
    missing = {
        call: {
            need
            for need in needs
            if not _allowed(objects, account, *need, name="any", namespace=namespace)
        }
        for call, needs in NEEDS.items()
    }
    return {call: needs for call, needs in missing.items() if needs}


def test_every_call_of_the_argo_client_is_listed() -> None:
    # A new call needs its verbs found in Argo's source and added here (and to the Role).
    calls = {name for name in vars(ArgoClient) if not name.startswith("_")}
    assert calls == set(NEEDS)


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_facteur_api_may_make_every_call_facteur_makes(directory: Path) -> None:
    assert _missing(kustomize(directory)) == {}


@pytest.mark.parametrize("directory", RENDERED, ids=_label)
def test_facteur_api_holds_nothing_more(directory: Path) -> None:
    objects = kustomize(directory)
    assert _granted(objects, _namespace(objects)) == EVERYTHING_NEEDED


def test_the_default_retry_strategy_is_the_one_that_deletes_pods() -> None:
    # The pods grant is there for `retry`; were resubmit the default, it would be superfluous.
    assert ArgoSettings().retry_strategy == "retry"
    assert (*PODS, "delete") in NEEDS["retry"]
    assert all((*PODS, "delete") not in needs for call, needs in NEEDS.items() if call != "retry")
    # Deleting, and what the log API needs: facteur reads no pod's spec, and no Secret.
    objects = kustomize(RENDERED[0])
    namespace = _namespace(objects)
    core = {(r, v) for g, r, v in _granted(objects, namespace) if g == ""}
    assert core == {("pods", "delete"), ("pods", "list"), ("pods", "watch"), ("pods/log", "get")}


def test_the_checks_bite() -> None:
    objects = kustomize(RENDERED[0])
    namespace = _namespace(objects)
    # The Role as it shipped before: no pods, so every Retry click answered 403.
    broken = copy.deepcopy(objects)
    (role,) = [d for d in broken if d["kind"] == "Role" and d["metadata"]["name"] == ACCOUNT]
    role["rules"] = [r for r in role["rules"] if r["resources"] != ["pods"]]
    assert _missing(broken) == {
        "retry": {(*PODS, "delete")},
        "logs": {(*PODS, "list"), (*PODS, "watch")},
    }
    # Reading a pod's spec is more than any call needs.
    role["rules"].append({"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "get"]})
    assert _granted(broken, namespace) - EVERYTHING_NEEDED == {("", "pods", "get")}
    # A grant in another namespace does not cover the workflow's.
    elsewhere = copy.deepcopy(objects)
    for document in elsewhere:
        if document["kind"] in {"Role", "RoleBinding"} and document["metadata"]["name"] == ACCOUNT:
            document["metadata"]["namespace"] = "elsewhere"
    assert set(_missing(elsewhere)) == set(NEEDS)
