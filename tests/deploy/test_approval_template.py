"""The shipped WorkflowTemplate with an approval gate answers what facteur's buttons set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from facteur.decisions.approval import ANSWERED_BY
from facteur.decisions.catalog import Approval
from tests.helpers.k8s_schemas import kustomize

ARGO_DIR = Path(__file__).resolve().parents[2] / "kubernetes" / "argo"
TEMPLATE_FILE = ARGO_DIR / "workflowtemplate-facteur-dispatch-approval.yaml"


def _templates(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in document["spec"]["templates"]}


def _gated() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE_FILE.read_text())


def test_the_gate_declares_the_parameter_facteur_sets_with_its_values() -> None:
    approval = Approval()
    gate = _templates(_gated())["approve"]
    assert "suspend" in gate
    declared, answered_by = gate["outputs"]["parameters"]
    # Who answered, kept where Argo's resume does not overwrite it.
    assert answered_by["name"] == ANSWERED_BY
    assert answered_by["valueFrom"] == {"supplied": {}, "default": ""}
    assert declared["name"] == approval.parameter
    assert declared["valueFrom"]["supplied"] == {}
    # Unanswered until its duration runs out: Argo takes the default, which means no.
    assert declared["valueFrom"]["default"] == approval.no
    assert gate["suspend"]["duration"]
    # Argo wants the same parameter among the inputs; its enum allows both of facteur's values.
    shown, _ = gate["inputs"]["parameters"]
    assert [p["name"] for p in gate["inputs"]["parameters"]] == [approval.parameter, ANSWERED_BY]
    assert shown["name"] == approval.parameter
    assert {approval.yes, approval.no} <= set(shown["enum"])


def test_the_agent_runs_only_on_yes_and_a_rejection_fails_the_run() -> None:
    approval = Approval()
    templates = _templates(_gated())
    first, second = templates[_gated()["spec"]["entrypoint"]]["steps"]
    assert [step["template"] for step in first] == ["approve"]
    answer = "{{steps.approve.outputs.parameters.approve}}"
    branches = {step["name"]: step for step in second}
    assert branches["agent"]["when"] == f"{answer} == {approval.yes}"
    assert branches["agent"]["templateRef"] == {"name": "facteur-dispatch", "template": "agent"}
    assert branches["rejected"]["when"] == f"{answer} != {approval.yes}"
    assert templates["rejected"]["container"]["args"][0].endswith("exit 1")


def test_it_reports_through_facteur_dispatchs_exit_handler() -> None:
    rendered = kustomize(ARGO_DIR)
    by_name = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "WorkflowTemplate"}
    gated, dispatch = by_name["facteur-dispatch-approval"], by_name["facteur-dispatch"]
    handler = _templates(gated)[gated["spec"]["onExit"]]
    [[step]] = handler["steps"]
    target = step["templateRef"]
    assert target["name"] == "facteur-dispatch"
    assert target["template"] == dispatch["spec"]["onExit"]
    # Same accounts and parameters, so the reused templates run as they do at home.
    for key in ("serviceAccountName", "automountServiceAccountToken", "executor", "arguments"):
        assert gated["spec"][key] == dispatch["spec"][key], key
