"""Deployment files against the real schemas."""

from __future__ import annotations

import json

import yaml
from jsonschema import Draft4Validator

from tests.helpers.contracts import specs_path
from tests.helpers.support import ROOT


def test_func_yaml_validates_against_funcs_schema() -> None:
    schema = json.loads(specs_path("knative", "func_yaml-schema.json").read_text())
    document = yaml.safe_load((ROOT / "func.yaml").read_text())
    errors = [e.message for e in Draft4Validator(schema).iter_errors(document)]
    assert errors == []


def test_func_yaml_runs_the_function_it_builds() -> None:
    document = yaml.safe_load((ROOT / "func.yaml").read_text())
    build = {env["name"]: env["value"] for env in document["build"]["buildEnvs"]}
    run = {env["name"]: env["value"] for env in document["run"]["envs"] if "name" in env}
    assert build["GOOGLE_FUNCTION_TARGET"] == run["FUNCTION_TARGET"] == "interaction_verify"
    assert (ROOT / build["GOOGLE_FUNCTION_SOURCE"]).is_file()
    assert (ROOT / run["FUNCTION_SOURCE"]).is_file()


def test_the_schema_bites() -> None:
    # func has no deploy.env (runtime env lives in run.envs); the schema must say so.
    schema = json.loads(specs_path("knative", "func_yaml-schema.json").read_text())
    document = yaml.safe_load((ROOT / "func.yaml").read_text())
    document["deploy"]["env"] = [{"name": "X", "value": "1"}]
    assert not Draft4Validator(schema).is_valid(document)


def test_dockerfile_copies_what_exists_and_serves_every_function() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copied = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    for sources in copied:
        for source in sources:
            assert (ROOT / source).exists(), source
    [cmd] = [line for line in lines if line.startswith("CMD ")]
    assert "functions/$FUNCTION_TARGET/main.py" in cmd
    names = {p.parent.name for p in (ROOT / "functions").glob("*/main.py")}
    assert names == {"interaction_verify", "command_route", "workflow_submit", "status_callback"}


def test_readme_exit_handler_matches_the_shipped_template() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("   - name: report-to-facteur")
    block = readme[start : readme.index("   ```", start)]
    documented = yaml.safe_load("".join(line[3:] + "\n" for line in block.splitlines()))[0]
    template = yaml.safe_load(
        (ROOT / "kubernetes/argo/workflowtemplate-facteur-dispatch.yaml").read_text()
    )
    [shipped] = [t for t in template["spec"]["templates"] if t["name"] == "report-to-facteur"]
    assert documented == shipped
