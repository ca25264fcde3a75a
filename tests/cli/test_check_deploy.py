"""`facteur check-deploy` on the shipped overlays, filled in as an operator would, and on broken
copies: one line for each problem."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from facteur.cli import deploy_check
from facteur.cli.main import main
from tests.helpers.k8s_schemas import kubectl, kustomize
from tests.helpers.support import ROOT

Manifest = dict[str, Any]
TICK = "ab" * 32
FILLED = {
    '"0000000000000000000000000000000000000000000000000000000000000000"': '"' + "5c" * 32 + '"',
    '"123456789012345678"': '"987654321098765432"',
    '"223456789012345678"': '"876543210987654321"',
    '"323456789012345678"': '"765432109876543210"',
    "https://argo.example.com": "https://argo.acme.test",
}


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A copy of kubernetes/ with every placeholder replaced, as the README's steps 4-6 do."""
    root = tmp_path / "kubernetes"
    shutil.copytree(ROOT / "kubernetes", root)
    config = root / "base" / "configmap-facteur-config.yaml"
    text = config.read_text()
    for placeholder, value in FILLED.items():
        text = text.replace(placeholder, value)
    config.write_text(text)
    overlay = root / "overlays" / "production" / "kustomization.yaml"
    text = overlay.read_text().replace("REPLACE-WITH-callback.tick_token", TICK)
    text = text.replace(
        "  - name: registry.example.com/facteur\n",
        "  - name: registry.example.com/facteur\n    newName: ghcr.io/acme/facteur\n",
    )
    overlay.write_text(text)
    return root


def _run(objects: list[Manifest], tmp_path: Path, *extra: str) -> tuple[int, list[str]]:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objects))
    return _main(["check-deploy", "--rendered", str(rendered), *extra])


def _main(argv: list[str]) -> tuple[int, list[str]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue().splitlines()


def _production(root: Path) -> list[Manifest]:
    return kustomize(root / "overlays" / "production")


def _one(objects: list[Manifest], kind: str, name: str) -> Manifest:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_the_filled_production_overlay_passes(filled: Path, tmp_path: Path) -> None:
    token = tmp_path / "tick-token"
    token.write_text(TICK + "\n")
    code, lines = _run(_production(filled), tmp_path, "--tick-token-file", str(token))
    assert code == 0, lines
    assert len(lines) == 1
    assert lines[0].startswith("ok: ")


def test_the_shipped_overlays_name_their_placeholders(tmp_path: Path) -> None:
    for overlay in ("production", "production-sentinel", "dev"):
        objects = kustomize(ROOT / "kubernetes" / "overlays" / overlay)
        code, lines = _run(objects, tmp_path, "--dev")
        assert code == 1
        text = "\n".join(lines)
        for where in (
            "discord.public_key",
            "discord.application_id",
            "discord.guild_id",
            "argo.ui_url",
            "role_map.plan[0]",
            "containers[0].image",
            "PingSource facteur/facteur-reconcile: its tick token is still the placeholder",
        ):
            assert where in text, (overlay, where)
        # One line a problem, and none about what the README creates by hand.
        assert not [line for line in lines if "Secret" in line and "needs" in line]


def test_a_missing_secret_or_key_is_one_line(filled: Path, tmp_path: Path) -> None:
    objects = _production(filled)
    route = _one(objects, "Service", "command-route")
    env = route["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "X", "valueFrom": {"secretKeyRef": {"name": "nowhere", "key": "x"}}})
    env.append(
        {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "facteur", "key": "FACTEUR_NOPE"}}}
    )
    env.append(
        {"name": "Z", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "z", "optional": True}}}
    )
    code, lines = _run(objects, tmp_path)
    assert code == 1
    assert lines == [
        "Service facteur/command-route: needs Secret facteur/nowhere (key x), which is neither "
        "rendered nor created by a documented command",
        "Service facteur/command-route: needs key FACTEUR_NOPE of Secret facteur/facteur, which "
        f"the README's command does not create ({deploy_check.HAND_MADE['facteur'].created_by})",
    ]


def test_a_rendered_secret_must_hold_the_key(filled: Path, tmp_path: Path) -> None:
    objects = _production(filled)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "facteur", "namespace": "facteur"},
            "stringData": {"FACTEUR_CALLBACK_TICK_TOKEN": TICK},
        }
    )
    code, lines = _run(objects, tmp_path)
    assert code == 1
    assert sorted(lines) == [
        "Redis facteur/redis: needs key FACTEUR_REDIS_PASSWORD of Secret facteur/facteur, "
        "which it lacks",
        "Service facteur/interaction-verify: needs key FACTEUR_EVENTS_SIGNING_KEY of Secret "
        "facteur/facteur, which it lacks",
    ]


def test_a_tick_token_that_differs_is_one_line(filled: Path, tmp_path: Path) -> None:
    objects = _production(filled)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "facteur", "namespace": "facteur"},
        "stringData": {key: "cd" * 32 for key in deploy_check.HAND_MADE["facteur"].keys},
    }
    code, lines = _run([*objects, secret], tmp_path)
    assert code == 1
    assert lines == [
        "PingSource facteur/facteur-reconcile: its tick token differs from Secret "
        "facteur/facteur's FACTEUR_CALLBACK_TICK_TOKEN: every tick would be refused (401) and "
        "reconciliation would never run"
    ]
    saved = tmp_path / "tick-token"
    saved.write_text("ef" * 32)
    code, lines = _run(objects, tmp_path, "--tick-token-file", str(saved))
    assert code == 1
    assert len(lines) == 1
    assert "differs from the saved tick token (--tick-token-file)" in lines[0]


def test_a_public_function_is_one_line(filled: Path, tmp_path: Path) -> None:
    objects = _production(filled)
    route = _one(objects, "Service", "command-route")
    del route["metadata"]["labels"][deploy_check.VISIBILITY_LABEL]
    verify = _one(objects, "Service", "interaction-verify")
    verify["metadata"]["labels"][deploy_check.VISIBILITY_LABEL] = deploy_check.CLUSTER_LOCAL
    code, lines = _run(objects, tmp_path)
    assert code == 1
    assert sorted(lines) == [
        "Service facteur/command-route: command_route is public: label it "
        "networking.knative.dev/visibility=cluster-local (only interaction_verify faces the "
        "internet)",
        "Service facteur/interaction-verify: networking.knative.dev/visibility=cluster-local, "
        "but Discord must reach interaction_verify from the internet",
    ]


def test_verify_at_min_scale_zero_is_one_line(filled: Path, tmp_path: Path) -> None:
    # A broken copy of the overlay: without the warm patch, verify scales to zero.
    overlay = filled / "overlays" / "production" / "kustomization.yaml"
    document = yaml.safe_load(overlay.read_text())
    document["patches"] = [
        p for p in document["patches"] if p.get("path") != "interaction-verify-warm.yaml"
    ]
    overlay.write_text(yaml.safe_dump(document))
    objects = _production(filled)
    code, lines = _run(objects, tmp_path)
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(
        "Service facteur/interaction-verify: autoscaling.knative.dev/min-scale is 0"
    )
    assert _run(objects, tmp_path, "--dev")[0] == 0


def test_a_placeholder_in_a_rendered_secret_names_the_key_not_the_value(
    filled: Path, tmp_path: Path
) -> None:
    template = yaml.safe_load((ROOT / "kubernetes/base/secret-facteur.template.yaml").read_text())
    code, lines = _run([*_production(filled), template], tmp_path)
    assert code == 1
    placeholders = [line for line in lines if "placeholder" in line]
    assert len(placeholders) == len(template["stringData"])
    assert not any("REPLACE" in line for line in placeholders)


def test_hand_made_secrets_match_the_readme_and_the_templates() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deployment") : readme.index("## Wiring the exit handler")]
    for name, made in deploy_check.HAND_MADE.items():
        command = re.search(
            rf"create secret generic {re.escape(name)} \\\n((?:.*\\\n)*.*)", section
        )
        assert command, name
        keys = set(re.findall(r"--from-literal=([A-Za-z_.]+)=", command.group(1)))
        assert keys == made.keys, name
        step = re.search(r"step (\d+)", made.created_by)
        assert step
        assert f"\n{step.group(1)}. **Create the two Secrets**" in section
    template = yaml.safe_load((ROOT / "kubernetes/base/secret-facteur.template.yaml").read_text())
    assert set(template["stringData"]) == deploy_check.HAND_MADE["facteur"].keys
    callback = yaml.safe_load((ROOT / "kubernetes/argo/secret-facteur-callback.yaml").read_text())
    assert set(callback["stringData"]) == deploy_check.HAND_MADE["facteur-callback"].keys


@pytest.mark.skipif(kubectl() is None, reason="renders with kubectl")
def test_renders_the_directory_itself(filled: Path) -> None:
    code, lines = _main(["check-deploy", str(filled / "overlays" / "production")])
    assert (code, len(lines)) == (0, 1), lines
    code, lines = _main(["check-deploy", str(ROOT / "kubernetes" / "overlays" / "production")])
    assert code == 1
    assert any("discord.public_key" in line for line in lines)


def test_no_renderer_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deploy_check.shutil, "which", lambda _name: None)
    assert main(["check-deploy", str(ROOT / "kubernetes" / "overlays" / "production")]) == 2
    assert "--rendered FILE" in capsys.readouterr().err


def test_reads_a_render_from_stdin(
    filled: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    text = yaml.safe_dump_all(copy.deepcopy(_production(filled)))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert main(["check-deploy", "--rendered", "-"]) == 0
    assert capsys.readouterr().out.startswith("ok: stdin:")


def test_the_shipped_tick_token_patch_is_the_only_placeholder_left_there() -> None:
    objects = kustomize(ROOT / "kubernetes" / "overlays" / "production")
    ping = _one(objects, "PingSource", "facteur-reconcile")
    assert json.loads(ping["spec"]["data"]) == {"token": "REPLACE-WITH-callback.tick_token"}
