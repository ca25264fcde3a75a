"""kubernetes/: every manifest against the schema it will meet, and every kustomization rendered.

Every YAML file under kubernetes/ is walked, so a new file cannot escape validation, and every
object is dispatched on its apiVersion and kind; a kind with no validator here fails.

Against real schemas (from the specs folder or kubernetes-validate; never copied into the repo):
- Knative Services: the openAPIV3Schema of knative/serving-service.yaml; Broker and Trigger: those
  of knative/eventing-broker.yaml and eventing-trigger.yaml. Objects are closed as the API server's
  strict field validation closes them, and also where these CRDs preserve unknown fields (the
  whole Trigger spec, every `delivery`), so that a misspelt field fails (k8s_schemas.structural).
- The WorkflowTemplate: Argo's CRD, through the helper test_exit_handler uses.
- The ApiServerSource (sources.knative.dev/v1): knative/sources-apiserversource.yaml, closed the
  same way (its CRD preserves unknown fields in the whole spec).
- Redis, RedisReplication and RedisSentinel (redis.redis.opstreelabs.in/v1beta2): the
  OT-CONTAINER-KIT redis-operator's CRDs (redis-operator/, v0.26.0), closed the same way; they
  embed Kubernetes' own types (resources, security contexts, affinity, the volume claim).
- Built-in kinds (ConfigMap, Secret, Namespace, ServiceAccount, Role, RoleBinding):
  kubernetes-validate, strict. The metadata of every custom resource: Kubernetes' ObjectMeta.

Against HAND-WRITTEN expectations, NOT the real schema:
- PingSource (sources.knative.dev/v1): the fields of Knative's PingSource reference
  (knative.dev/docs/eventing/sources/ping-source/reference): spec.sink required (a ref or a uri),
  schedule, timezone, contentType, data or dataBase64 (not both), ceOverrides; nothing else.
- Knative Serving's admission rules that its CRD does not express (reserved paths, variables and
  ports, read-only mounts): from its webhook's source, pkg/apis/serving/k8s_validation.go.
There is no SinkBinding: K_SINK is set explicitly (base/configmap-facteur-env.yaml says why).

Rendering uses `kubectl kustomize` when kubectl is on PATH, else k8s_schemas' Python emulation;
where kubectl is present, the two are also compared object for object.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator
from starlette.datastructures import Headers

from facteur import bootstrap, callers
from facteur.adapters.argo import RETRY_AFTER_MAX_SECONDS, ArgoClient
from facteur.adapters.discord import DiscordClient
from facteur.config import ArgoSettings, DiscordSettings, EventsSettings, env_var, load_settings
from facteur.decisions.claims import LEASE_SECONDS
from facteur.decisions.delivery import (
    BACKOFF_POLICY,
    RETRIES,
    backoff_delay,
    budget_seconds,
    waits,
)
from facteur.decisions.journey import COMMAND_RECEIVED, COMPONENT_CLICKED, WORKFLOW_REQUESTED
from facteur.decisions.nudge import NUDGE_TYPES
from facteur.decisions.redis_url import parse_sentinel_url
from facteur.decisions.workflow import MANAGED_BY, MANAGER
from facteur.errors import ConfigError
from tests.helpers.contracts import specs_path
from tests.helpers.k8s_schemas import (
    KUSTOMIZATION_FILES,
    OBJECT_META,
    Manifest,
    UnsupportedKustomization,
    core_definition_errors,
    core_errors,
    crd_validator,
    documents,
    errors,
    kubectl,
    kubectl_kustomize,
    kustomization_file,
    kustomize,
    object_id,
    render_kustomization,
)
from tests.helpers.support import ROOT

KUBERNETES = ROOT / "kubernetes"
BASE = KUBERNETES / "base"
ARGO = KUBERNETES / "argo"
PRODUCTION = KUBERNETES / "overlays" / "production"
DEV = KUBERNETES / "overlays" / "dev"
SENTINEL = KUBERNETES / "overlays" / "production-sentinel"
OVERLAYS = (PRODUCTION, DEV, SENTINEL)
# Manifests deliberately outside every kustomization (applying must never overwrite the real one).
TEMPLATES = {BASE / "secret-facteur.template.yaml"}
SECRET_TEMPLATE = BASE / "secret-facteur.template.yaml"

# Knative Service -> FUNCTION_TARGET (functions/<target>/main.py).
FUNCTIONS = {
    "interaction-verify": "interaction_verify",
    "command-route": "command_route",
    "workflow-submit": "workflow_submit",
    "status-callback": "status_callback",
}
PUBLIC = {"interaction-verify"}
IMAGE = "registry.example.com/facteur:0.1.0"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
VISIBILITY = "networking.knative.dev/visibility"
BROKER_CLASS = "eventing.knative.dev/broker.class"
# Knative's default max-revision-timeout-seconds: a longer timeoutSeconds is refused.
KNATIVE_MAX_TIMEOUT = 600
# The keys facteur reads from its Secret: every secret setting, by its variable.
SECRET_SETTINGS = (
    "discord.bot_token",
    "argo.token",
    "callback.token",
    "callback.tick_token",
    "events.signing_key",
    "redis.password",
)


# --- Finding the files --------------------------------------------------------------------------


def _yaml_files() -> list[Path]:
    return sorted(
        p
        for p in KUBERNETES.rglob("*")
        if p.is_file() and (p.suffix in {".yaml", ".yml"} or p.name in KUSTOMIZATION_FILES)
    )


def _kustomizations() -> list[Path]:
    return sorted({p.parent for p in _yaml_files() if p.name in KUSTOMIZATION_FILES})


def _referenced() -> tuple[set[Path], set[Path]]:
    """Files the kustomizations list as resources, and files they use as patches."""
    resources: set[Path] = set()
    patches: set[Path] = set()
    for directory in _kustomizations():
        spec = yaml.safe_load(kustomization_file(directory).read_text()) or {}
        for entry in spec.get("resources") or []:
            if (directory / entry).is_file():
                resources.add((directory / entry).resolve())
        for entry in spec.get("patches") or []:
            if "path" in entry:
                patches.add((directory / entry["path"]).resolve())
    return resources, patches


def _manifests() -> list[Path]:
    _, patches = _referenced()
    return [
        p for p in _yaml_files() if p.name not in KUSTOMIZATION_FILES and p.resolve() not in patches
    ]


def _label(path: Path) -> str:
    return str(path.relative_to(KUBERNETES))


# --- Validation, dispatched on apiVersion and kind ----------------------------------------------


def _knative_errors(file: str) -> Callable[[Manifest], list[str]]:
    def check(document: Manifest) -> list[str]:
        validator = crd_validator(specs_path("knative", file), "v1", close_preserved=True)
        return errors(validator, document)

    return check


def _workflow_template_errors(document: Manifest) -> list[str]:
    # The same helper and CRD as test_exit_handler, which checks the template in depth.
    path = specs_path("argo-workflows", "argoproj.io_workflowtemplates.yaml")
    return errors(crd_validator(path, "v1alpha1"), document)


_REFERENCE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "name"],
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
    },
}
_SINK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ref": _REFERENCE,
        "uri": {"type": "string"},
        "CACerts": {"type": "string"},
        "audience": {"type": "string"},
    },
    "anyOf": [{"required": ["ref"]}, {"required": ["uri"]}],
}
# HAND-WRITTEN from Knative's PingSource reference, not from its CRD (see the module docstring).
PING_SOURCE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "sources.knative.dev/v1"},
        "kind": {"const": "PingSource"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["sink"],
            "properties": {
                # Five cron fields (Knative also takes @every and similar, unused here).
                "schedule": {"type": "string", "pattern": r"^\S+( \S+){4}$"},
                "timezone": {"type": "string"},
                "contentType": {"type": "string"},
                "data": {"type": "string"},
                "dataBase64": {"type": "string"},
                "sink": _SINK,
                "ceOverrides": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "extensions": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
            },
            "not": {"required": ["data", "dataBase64"]},
        },
    },
}


def _hand_written(schema: dict[str, Any]) -> Callable[[Manifest], list[str]]:
    validator = Draft202012Validator(schema)
    return lambda document: errors(validator, document)


# The OT-CONTAINER-KIT redis-operator's CRDs (redis-operator/ in the specs folder, v0.26.0).
REDIS_CRDS = {
    "Redis": "redis.redis.opstreelabs.in_redis.yaml",
    "RedisReplication": "redis.redis.opstreelabs.in_redisreplications.yaml",
    "RedisSentinel": "redis.redis.opstreelabs.in_redissentinels.yaml",
}


def _redis_errors(kind: str) -> Callable[[Manifest], list[str]]:
    def check(document: Manifest) -> list[str]:
        validator = crd_validator(specs_path("redis-operator", REDIS_CRDS[kind]), "v1beta2")
        return errors(validator, document)

    return check


CUSTOM: dict[tuple[str, str], Callable[[Manifest], list[str]]] = {
    ("serving.knative.dev/v1", "Service"): _knative_errors("serving-service.yaml"),
    ("eventing.knative.dev/v1", "Broker"): _knative_errors("eventing-broker.yaml"),
    ("eventing.knative.dev/v1", "Trigger"): _knative_errors("eventing-trigger.yaml"),
    ("argoproj.io/v1alpha1", "WorkflowTemplate"): _workflow_template_errors,
    ("sources.knative.dev/v1", "PingSource"): _hand_written(PING_SOURCE),
    ("sources.knative.dev/v1", "ApiServerSource"): _knative_errors("sources-apiserversource.yaml"),
    **{("redis.redis.opstreelabs.in/v1beta2", kind): _redis_errors(kind) for kind in REDIS_CRDS},
}


def _is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


def validate(document: Manifest) -> list[str]:
    """Every problem with one object (pytest.skip when a schema it needs is absent)."""
    api_version, kind = document.get("apiVersion", ""), document.get("kind", "")
    if _is_builtin(api_version):
        return core_errors(document)
    check = CUSTOM.get((api_version, kind))
    if check is None:
        return [f"no validator for {api_version} {kind}: add one to tests/test_kubernetes.py"]
    metadata = [f"metadata{e}" for e in core_definition_errors(document["metadata"], OBJECT_META)]
    return metadata + check(document)


def _assert_valid(objects: list[Manifest]) -> None:
    problems: list[str] = []
    skipped: set[str] = set()
    for document in objects:
        try:
            problems += [f"{object_id(document)} {p}" for p in validate(document)]
        except pytest.skip.Exception as skip:
            skipped.add(str(skip))
    assert problems == []
    if skipped:
        pytest.skip("; ".join(sorted(skipped)))


@pytest.mark.parametrize("path", _manifests(), ids=_label)
def test_manifest_validates(path: Path) -> None:
    _assert_valid(documents(path))


@pytest.mark.parametrize("directory", _kustomizations(), ids=_label)
def test_kustomization_renders_and_validates(directory: Path) -> None:
    # The patched objects too: a patch file is not a whole object and is checked only here.
    objects = kustomize(directory)
    assert objects
    _assert_valid(objects)


def test_every_yaml_file_is_used_or_a_known_template() -> None:
    resources, patches = _referenced()
    kustomizations = {kustomization_file(d).resolve() for d in _kustomizations()}
    orphans = [
        _label(p)
        for p in _yaml_files()
        if p.resolve() not in resources | patches | kustomizations | TEMPLATES
    ]
    assert orphans == []
    # A template stays out of every kustomization, or applying would overwrite the real object.
    assert not TEMPLATES & resources


@pytest.mark.parametrize("directory", _kustomizations(), ids=_label)
def test_python_rendering_matches_kubectl(directory: Path) -> None:
    if kubectl() is None:
        pytest.skip("kubectl is not on PATH; the Python emulation renders alone")
    ours = sorted(render_kustomization(directory), key=object_id)
    assert ours == sorted(kubectl_kustomize(directory), key=object_id)


def test_python_rendering_refuses_what_it_does_not_emulate(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(UnsupportedKustomization, match="commonLabels"):
        render_kustomization(tmp_path)


# --- The validators bite ------------------------------------------------------------------------


def _one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [
        d for d in objects if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, (kind, name, [object_id(d) for d in found])
    return found[0]


def _base_object(kind: str, name: str | None = None) -> Manifest:
    return copy.deepcopy(_one([*kustomize(BASE), *kustomize(ARGO)], kind, name))


def _container(service: Manifest) -> Manifest:
    (container,) = service["spec"]["template"]["spec"]["containers"]
    return container


def _break_service(service: Manifest) -> None:
    service["spec"]["template"]["spec"]["containerConcurency"] = 4


def _unquote_scale(service: Manifest) -> None:
    service["spec"]["template"]["metadata"]["annotations"][MIN_SCALE] = 0


def _break_container(service: Manifest) -> None:
    _container(service)["envFrom"][0]["configMapRefs"] = {"name": "facteur-env"}


BITES: list[tuple[str, str, str | None, Callable[[Manifest], Any], str]] = [
    ("service field", "Service", "command-route", _break_service, "containerConcurency"),
    ("unquoted annotation", "Service", "command-route", _unquote_scale, "is not of type"),
    ("container field", "Service", "command-route", _break_container, "configMapRefs"),
    (
        "broker delivery",
        "Broker",
        None,
        lambda d: d["spec"]["delivery"].update(retyr=5),
        "retyr",
    ),
    (
        "trigger filter",
        "Trigger",
        "facteur-command-received",
        lambda d: d["spec"].update(filtre=d["spec"].pop("filter")),
        "filtre",
    ),
    (
        "trigger delivery type",
        "Trigger",
        "facteur-command-received",
        lambda d: d["spec"]["delivery"].update(retry="5"),
        "is not of type",
    ),
    (
        "metadata",
        "Trigger",
        "facteur-command-received",
        lambda d: d["metadata"].update(lables={"a": "b"}),
        "lables",
    ),
    ("pingsource field", "PingSource", None, lambda d: d["spec"].update(shedule="x"), "shedule"),
    ("pingsource sink", "PingSource", None, lambda d: d["spec"].pop("sink"), "sink"),
    (
        "pingsource data twice",
        "PingSource",
        None,
        lambda d: d["spec"].update(dataBase64="e30="),
        "should not be valid",
    ),
    (
        "redis field",
        "Redis",
        None,
        lambda d: d["spec"].update(kubernetesconfig=d["spec"].pop("kubernetesConfig")),
        "kubernetesConfig",
    ),
    (
        "redis resources",
        "Redis",
        None,
        lambda d: d["spec"]["kubernetesConfig"]["resources"].update(request={}),
        "request",
    ),
    ("configmap", "ConfigMap", "facteur-env", lambda d: d.update(datas={}), "datas"),
    ("unknown kind", "PingSource", None, lambda d: d.update(kind="SinkBinding"), "no validator"),
    (
        "apiserversource field",
        "ApiServerSource",
        None,
        lambda d: d["spec"].update(serviceAccount=d["spec"].pop("serviceAccountName")),
        "serviceAccount",
    ),
    (
        "apiserversource selector",
        "ApiServerSource",
        None,
        lambda d: d["spec"]["resources"][0].update(labelSelector={}),
        "labelSelector",
    ),
    (
        "apiserversource resources",
        "ApiServerSource",
        None,
        lambda d: d["spec"].pop("resources"),
        "resources",
    ),
]


@pytest.mark.parametrize(
    ("kind", "name", "breaks", "expected"),
    [case[1:] for case in BITES],
    ids=[case[0] for case in BITES],
)
def test_the_validators_bite(
    kind: str, name: str | None, breaks: Callable[[Manifest], Any], expected: str
) -> None:
    document = _base_object(kind, name)
    assert validate(document) == []
    breaks(document)
    problems = validate(document)
    assert any(expected in problem for problem in problems), problems


def test_the_trigger_crd_alone_would_accept_a_misspelt_filter() -> None:
    # Why Knative objects are read more strictly than the API server reads them: the Trigger CRD
    # preserves unknown fields in spec, so the server keeps `filtre` and the Trigger, having no
    # filter, receives every event.
    trigger = _base_object("Trigger", "facteur-command-received")
    trigger["spec"]["filtre"] = trigger["spec"].pop("filter")
    path = specs_path("knative", "eventing-trigger.yaml")
    assert errors(crd_validator(path, "v1"), trigger) == []
    assert errors(crd_validator(path, "v1", close_preserved=True), trigger)


# --- The four functions -------------------------------------------------------------------------


def _services(objects: list[Manifest]) -> dict[str, Manifest]:
    return {
        d["metadata"]["name"]: d
        for d in objects
        if d["apiVersion"] == "serving.knative.dev/v1" and d["kind"] == "Service"
    }


def _functions(objects: list[Manifest]) -> dict[str, Manifest]:
    return {name: s for name, s in _services(objects).items() if name in FUNCTIONS}


def _env(container: Manifest) -> dict[str, Manifest]:
    return {variable["name"]: variable for variable in container.get("env") or []}


def _dockerfile_env(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", (ROOT / "Dockerfile").read_text())
    assert match, name
    return match.group(1)


def test_each_function_runs_its_target_from_the_one_image() -> None:
    services = _functions(kustomize(BASE))
    assert set(services) == set(FUNCTIONS)
    for name, service in services.items():
        container = _container(service)
        assert container["image"] == IMAGE
        target = _env(container)["FUNCTION_TARGET"]["value"]
        assert target == FUNCTIONS[name]
        assert (ROOT / "functions" / target / "main.py").is_file()
        assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
        assert str(container["ports"][0]["containerPort"]) == _dockerfile_env("PORT")


def test_only_interaction_verify_is_public() -> None:
    for name, service in _services(kustomize(BASE)).items():
        labels = service["metadata"].get("labels") or {}
        if name in PUBLIC:
            assert VISIBILITY not in labels
        else:
            assert labels.get(VISIBILITY) == "cluster-local", name


def test_scaling_and_concurrency() -> None:
    for name, service in _services(kustomize(BASE)).items():
        template = service["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations[MIN_SCALE] == "0", name
        assert 1 <= int(annotations[MAX_SCALE]) <= 10, name
        if name in FUNCTIONS:
            env = _env(_container(service))
            target = env["FUNCTION_TARGET"]["value"]
            if bootstrap.FUNCTIONS[target].asgi:
                # Served with --asgi, as bootstrap says: many requests per pod, scaled at 70%.
                assert env["FUNCTION_USE_ASGI"]["value"] == "true", name
                assert "THREADS" not in env, name
                assert template["spec"]["containerConcurrency"] == 100, name
                assert annotations["autoscaling.knative.dev/target-utilization-percentage"] == "70"
            else:
                # gunicorn serves THREADS requests at once; Knative must not send more.
                assert "FUNCTION_USE_ASGI" not in env, name
                threads = env["THREADS"]["value"]
                assert threads == _dockerfile_env("THREADS")
                assert template["spec"]["containerConcurrency"] == int(threads), name


def _worst_case_seconds() -> float:
    """The longest a back-end function spends in one request: an Argo call, then a Discord call."""
    argo = inspect.signature(ArgoClient.__init__).parameters
    attempts = argo["max_attempts"].default
    per_attempt = 2 * ArgoSettings().timeout_seconds  # connect, then read
    argo_worst = attempts * per_attempt + (attempts - 1) * RETRY_AFTER_MAX_SECONDS
    discord = inspect.signature(DiscordClient.__init__).parameters
    discord_worst = (
        discord["max_attempts"].default * 2 * discord["timeout"].default
        + discord["max_wait_seconds"].default
    )
    return argo_worst + discord_worst


def test_timeouts() -> None:
    services = _functions(kustomize(BASE))
    verify = services.pop("interaction-verify")["spec"]["template"]["spec"]["timeoutSeconds"]
    # Longer than the hand-off may take, short because Discord has stopped listening after 3 s.
    field = EventsSettings.model_fields["sink_timeout_seconds"]
    (sink_limit,) = [m.le for m in field.metadata if hasattr(m, "le")]
    assert sink_limit < verify <= 10
    # The back-ends outlast facteur's own bounds (plus Redis's few seconds), so Knative never
    # answers for a request that facteur is still working on.
    for name, service in services.items():
        timeout = service["spec"]["template"]["spec"]["timeoutSeconds"]
        assert _worst_case_seconds() + 10 <= timeout <= KNATIVE_MAX_TIMEOUT, name


def _quantity(value: str | int) -> float:
    units = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(value))
    assert match and match.group(2) in units, value
    return float(match.group(1)) * units[match.group(2)]


def test_every_container_has_requests_and_limits() -> None:
    objects = kustomize(BASE)
    redis = _one(objects, "Redis")
    resources = [redis["spec"]["kubernetesConfig"]["resources"]]
    resources += [_container(s)["resources"] for s in _services(objects).values()]
    for resource in resources:
        for kind in ("cpu", "memory"):
            assert _quantity(resource["requests"][kind]) <= _quantity(resource["limits"][kind])


def test_containers_run_unprivileged() -> None:
    uid, _, gid = _dockerfile_env_user().partition(":")
    for name, service in _services(kustomize(BASE)).items():
        container = _container(service)
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        if name in FUNCTIONS:
            assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))
            # gunicorn's heartbeat file needs a writable temporary directory.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in service["spec"]["template"]["spec"]["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]


def test_services_pass_knatives_admission_rules() -> None:
    # HAND-WRITTEN from Knative's webhook (knative/serving pkg/apis/serving/k8s_validation.go),
    # rules the CRD schema does not express: reserved paths, variables and ports, port names, and
    # read-only mounts for every volume but emptyDir.
    for name, service in _services(kustomize(BASE)).items():
        spec = service["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        (container,) = spec["containers"]
        assert not {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"} & set(_env(container))
        for port in container.get("ports") or []:
            assert port.get("name", "") in {"", "http1", "h2c"}, name
            assert port["containerPort"] not in {8008, 8012, 8013, 8022, 9090, 9091}, name
        mounted = set()
        for mount in container.get("volumeMounts") or []:
            assert mount["mountPath"] not in {"/", "/dev", "/dev/log"}, name
            assert "emptyDir" in volumes[mount["name"]] or mount.get("readOnly") is True, name
            mounted.add(mount["name"])
        assert mounted == set(volumes), name


def _dockerfile_env_user() -> str:
    match = re.search(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


# --- Configuration reaching the functions -------------------------------------------------------


def _config_file(objects: list[Manifest], service: Manifest) -> tuple[str, str]:
    """The ConfigMap key FACTEUR_CONFIG_FILE names in this service, and the file's text."""
    container = _container(service)
    path = _env(container)["FACTEUR_CONFIG_FILE"]["value"]
    directory, _, key = path.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert mount.get("readOnly") is True
    volumes = {v["name"]: v for v in service["spec"]["template"]["spec"]["volumes"]}
    config_map = _one(objects, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
    assert config_map["metadata"]["name"] == "facteur-config"
    return key, config_map["data"][key]


def _secret_template() -> Manifest:
    (secret,) = documents(SECRET_TEMPLATE)
    return secret


def _filled_secret() -> dict[str, str]:
    """The Secret as an operator creates it: every placeholder replaced by a plausible value."""
    return {key: f"{key.lower()}-0123456789abcdef0123456789abcdef" for key in _stringdata()}


def _stringdata() -> dict[str, str]:
    return dict(_secret_template()["stringData"])


def _environment(
    objects: list[Manifest], service: Manifest, secret: dict[str, str], config_path: Path
) -> dict[str, str]:
    """The environment Kubernetes gives the container (env wins over envFrom)."""
    container = _container(service)
    environment: dict[str, str] = {}
    secret_name = _secret_template()["metadata"]["name"]
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            environment.update(_one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            assert source["secretRef"]["name"] == secret_name
            environment.update(secret)
    for variable in container.get("env") or []:
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            assert reference["name"] == secret_name
            environment[variable["name"]] = secret[reference["key"]]
    # The mounted file, from a copy of the ConfigMap's key.
    environment["FACTEUR_CONFIG_FILE"] = str(config_path)
    return environment


def _required(target: str) -> tuple[str, ...]:
    return bootstrap.FUNCTIONS[target].required


def _function_environments(
    tmp_path: Path, secret: dict[str, str], overlay: Path = PRODUCTION
) -> Iterator[tuple[str, dict[str, str]]]:
    objects = kustomize(overlay)
    for name, service in _functions(objects).items():
        key, text = _config_file(objects, service)
        config_path = tmp_path / name / key
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(text)
        yield name, _environment(objects, service, secret, config_path)


# An application's public key, as an operator puts it in the ConfigMap (any 64 hex digits).
FILLED_PUBLIC_KEY = "d79658bb11c7189d229fc33d447817da170989c679227119c44aca090ccd5f28"


def test_each_function_gets_every_setting_it_requires(tmp_path: Path) -> None:
    for name, environment in _function_environments(tmp_path, _filled_secret()):
        filled = environment | {env_var("discord.public_key"): FILLED_PUBLIC_KEY}
        settings = load_settings(_required(FUNCTIONS[name]), environ=filled)
        assert not settings.dev.embedded, name


def test_the_public_key_placeholder_stops_interaction_verify(tmp_path: Path) -> None:
    # The ConfigMap's zeros as shipped: the public endpoint does not start on them.
    environment = dict(_function_environments(tmp_path, _filled_secret()))["interaction-verify"]
    with pytest.raises(ConfigError, match=r"discord\.public_key.*placeholder"):
        load_settings(_required(FUNCTIONS["interaction-verify"]), environ=environment)


def test_the_secret_placeholders_stop_every_function(tmp_path: Path) -> None:
    # A Secret created from the template as it is must not serve: each function stops at start-up.
    for name, environment in _function_environments(tmp_path, _stringdata()):
        with pytest.raises(ConfigError, match="at least 32 characters"):
            load_settings(_required(FUNCTIONS[name]), environ=environment)
    # The Argo token's placeholder stops the Argo client, which the back-ends build at start-up.
    filled = {**_filled_secret(), env_var("argo.token"): _stringdata()[env_var("argo.token")]}
    environment = dict(_function_environments(tmp_path / "argo", filled))["workflow-submit"]
    settings = load_settings(environ=environment)
    with pytest.raises(ConfigError, match=r"argo\.token"):
        bootstrap.argo(settings)


def test_interaction_verify_gets_only_the_secret_it_uses() -> None:
    container = _container(_functions(kustomize(BASE))["interaction-verify"])
    assert all("secretRef" not in source for source in container["envFrom"])
    secrets = {
        name
        for name, variable in _env(container).items()
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    assert secrets == {env_var("events.signing_key")}


def test_the_config_file_loads_and_matches_the_cluster(tmp_path: Path) -> None:
    objects = kustomize(PRODUCTION)
    key, text = _config_file(objects, _functions(objects)["command-route"])
    (tmp_path / key).write_text(text)
    settings = load_settings(environ={"FACTEUR_CONFIG_FILE": str(tmp_path / key)})
    # No secret in the ConfigMap: those come from the Secret.
    raw = yaml.safe_load(text)
    for setting in SECRET_SETTINGS:
        section, _, name = setting.partition(".")
        assert name not in (raw.get(section) or {}), setting
    # Redis: the Service the operator creates for the Redis object.
    redis = _one(objects, "Redis")
    url = urlsplit(settings.redis.url or "")
    assert (url.hostname, url.port) == (
        f"{redis['metadata']['name']}.{redis['metadata']['namespace']}.svc.cluster.local",
        6379,
    )
    # Argo: the WorkflowTemplate, its namespace and its service account.
    template = _one(objects, "WorkflowTemplate", "facteur-dispatch")
    assert settings.argo.workflow_template == template["metadata"]["name"]
    assert settings.argo.namespace == template["metadata"]["namespace"]
    assert settings.argo.service_account == template["spec"]["serviceAccountName"]
    assert _one(objects, "ServiceAccount", settings.argo.service_account)
    # The catalog the image ships (Dockerfile: COPY config).
    assert settings.commands.catalog_file.is_file()


def test_the_exit_handler_reaches_status_callback() -> None:
    objects = kustomize(PRODUCTION)
    callback = _services(objects)["status-callback"]
    template = _one(objects, "WorkflowTemplate", "facteur-dispatch")
    (handler,) = [
        t for t in template["spec"]["templates"] if t["name"] == template["spec"]["onExit"]
    ]
    namespace = callback["metadata"]["namespace"]
    assert handler["http"]["url"] == f"http://status-callback.{namespace}.svc.cluster.local"


# --- Secrets ------------------------------------------------------------------------------------

# What a real token looks like: a long run of token characters (placeholders are short words).
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_\-.+/=]{24,}")


def test_the_secret_template_names_every_secret_setting() -> None:
    secret = _secret_template()
    assert secret["type"] == "Opaque"
    assert set(_stringdata()) == {env_var(setting) for setting in SECRET_SETTINGS}


@pytest.mark.parametrize("path", _manifests(), ids=_label)
def test_secrets_hold_placeholders_only(path: Path) -> None:
    for secret in [d for d in documents(path) if d["kind"] == "Secret"]:
        # stringData only: base64 under `data` could hide a real value from review.
        assert "data" not in secret
        if secret.get("type") == SA_TOKEN:
            assert "stringData" not in secret  # Kubernetes fills it in
            continue
        for key, value in secret["stringData"].items():
            assert "REPLACE" in value, key
            assert not _TOKEN_LIKE.search(value.replace("REPLACE-WITH-", "")), key


SA_TOKEN = "kubernetes.io/service-account-token"


def test_no_overlay_renders_a_secret() -> None:
    # The real Secrets are created out of band; applying an overlay must never overwrite them.
    for overlay in OVERLAYS:
        rendered = kustomize(overlay)
        valued = [d for d in rendered if d["kind"] == "Secret" and d.get("type") != SA_TOKEN]
        assert [object_id(d) for d in valued] == []
        # A service-account token Secret holds no value of ours: Kubernetes fills it in.
        for secret in [d for d in rendered if d["kind"] == "Secret"]:
            assert "data" not in secret and "stringData" not in secret


# --- Redis --------------------------------------------------------------------------------------

REDIS_GROUP = "redis.redis.opstreelabs.in/v1beta2"
# What the operator's image includes last (kubernetes/base/configmap-redis-config.yaml says where
# this comes from), and where the operator mounts the volume.
REDIS_EXTRA_CONFIG_KEY = "redis-additional.conf"
REDIS_DATA_DIR = "/data"


def _redis_objects(objects: list[Manifest]) -> list[Manifest]:
    return [d for d in objects if d["apiVersion"] == REDIS_GROUP]


def _redis_config_lines(objects: list[Manifest], server: Manifest) -> dict[str, str]:
    name = server["spec"]["redisConfig"]["additionalRedisConfig"]
    text = _one(objects, "ConfigMap", name)["data"][REDIS_EXTRA_CONFIG_KEY]
    lines = [line.split(None, 1) for line in text.splitlines() if line.strip()]
    return {words[0]: words[1] for words in lines if not words[0].startswith("#")}


@pytest.mark.parametrize("overlay", [BASE, *OVERLAYS], ids=_label)
def test_redis_keeps_an_append_only_file_on_its_volume(overlay: Path) -> None:
    objects = kustomize(overlay)
    servers = [d for d in _redis_objects(objects) if d["kind"] in {"Redis", "RedisReplication"}]
    assert len(servers) == 1
    for server in servers:
        assert _redis_config_lines(objects, server) == {
            "appendonly": "yes",
            "appendfsync": "everysec",
            "dir": REDIS_DATA_DIR,
        }
        claim = server["spec"]["storage"]["volumeClaimTemplate"]["spec"]
        assert claim["accessModes"] == ["ReadWriteOnce"]
        assert _quantity(claim["resources"]["requests"]["storage"]) >= _quantity("1Gi")


@pytest.mark.parametrize("overlay", [BASE, *OVERLAYS], ids=_label)
def test_redis_takes_its_password_from_the_secret_the_functions_read(overlay: Path) -> None:
    objects = kustomize(overlay)
    secret = {"name": _secret_template()["metadata"]["name"], "key": env_var("redis.password")}
    assert secret["key"] in _stringdata()
    redis_objects = _redis_objects(objects)
    assert redis_objects
    for document in redis_objects:
        # requirepass (and masterauth) on every server, the Sentinels' own requirepass too.
        assert document["spec"]["kubernetesConfig"]["redisSecret"] == secret, object_id(document)
        if document["kind"] == "RedisSentinel":
            # `sentinel auth-pass`: how the Sentinels log in to the servers.
            reference = document["spec"]["redisSentinelConfig"]["redisReplicationPassword"]
            assert reference == {"secretKeyRef": secret}


def test_the_functions_that_keep_sessions_get_the_redis_password(tmp_path: Path) -> None:
    filled = _filled_secret()
    for overlay in OVERLAYS:
        for name, environment in _function_environments(tmp_path / overlay.name, filled, overlay):
            uses_redis = "redis.url" in _required(FUNCTIONS[name])
            password = environment.get(env_var("redis.password"))
            assert password == (filled[env_var("redis.password")] if uses_redis else None), name


def test_production_sentinel_swaps_the_redis_for_a_replication_and_its_sentinels() -> None:
    production, sentinel = kustomize(PRODUCTION), kustomize(SENTINEL)
    (single,) = _redis_objects(production)
    replication, sentinels = _one(sentinel, "RedisReplication"), _one(sentinel, "RedisSentinel")
    assert not [d for d in sentinel if d["kind"] == "Redis"]
    # Everything else is production's, object for object, but facteur-env (redis.url).
    rest = {object_id(d) for d in sentinel} - {object_id(replication), object_id(sentinels)}
    assert rest == {object_id(d) for d in production} - {object_id(single)}
    by_id = {object_id(d): d for d in production}
    changed = [key for key in rest if by_id[key] != _one(sentinel, key[1], key[3])]
    assert changed == [object_id(_one(production, "ConfigMap", "facteur-env"))]
    # A primary and at least one replica, each with the single Redis's image and resources.
    assert replication["spec"]["clusterSize"] >= 2
    ours, theirs = replication["spec"]["kubernetesConfig"], single["spec"]["kubernetesConfig"]
    for field in ("image", "resources"):
        assert ours[field] == theirs[field], field
    # Sentinels that can agree: an odd number, a majority for quorum, watching this replication.
    config = sentinels["spec"]["redisSentinelConfig"]
    size = sentinels["spec"]["clusterSize"]
    assert size >= 3 and size % 2 == 1
    assert size // 2 < int(config["quorum"]) <= size
    assert config["redisReplicationName"] == replication["metadata"]["name"]
    assert config["redisPort"] == "6379"
    assert int(config["downAfterMilliseconds"]) < int(config["failoverTimeout"])
    for resources in (sentinels["spec"]["kubernetesConfig"]["resources"],):
        for kind in ("cpu", "memory"):
            assert _quantity(resources["requests"][kind]) <= _quantity(resources["limits"][kind])


def test_production_sentinel_points_facteur_at_the_sentinels(tmp_path: Path) -> None:
    objects = kustomize(SENTINEL)
    sentinels = _one(objects, "RedisSentinel")
    namespace = sentinels["metadata"]["namespace"]
    for name, environment in _function_environments(tmp_path, _filled_secret(), SENTINEL):
        if "redis.url" not in _required(FUNCTIONS[name]):
            continue
        settings = load_settings(_required(FUNCTIONS[name]), environ=environment)
        address = parse_sentinel_url(settings.redis.url or "")
        # The operator's Service for the Sentinels: <name>-sentinel, port 26379.
        service = f"{sentinels['metadata']['name']}-sentinel.{namespace}.svc.cluster.local"
        assert address.sentinels == ((service, 26379),), name
        assert address.service_name == sentinels["spec"]["redisSentinelConfig"]["masterGroupName"]
        # The password is the Secret's (redis.password), never written in the URL.
        assert address.password is None and settings.redis.password is not None


def test_the_redis_operator_crds_bite() -> None:
    sentinels = copy.deepcopy(_one(kustomize(SENTINEL), "RedisSentinel"))
    assert validate(sentinels) == []
    sentinels["spec"]["redisSentinelConfig"]["quorom"] = "2"
    assert any("quorom" in problem for problem in validate(sentinels))
    replication = copy.deepcopy(_one(kustomize(SENTINEL), "RedisReplication"))
    del replication["spec"]["clusterSize"]
    assert any("clusterSize" in problem for problem in validate(replication))


# --- Eventing -----------------------------------------------------------------------------------


def test_triggers_route_each_event_type_to_its_function() -> None:
    objects = kustomize(BASE)
    broker = _one(objects, "Broker")
    triggers = [d for d in objects if d["kind"] == "Trigger"]
    routes = {}
    for trigger in triggers:
        spec = trigger["spec"]
        assert spec["broker"] == broker["metadata"]["name"]
        assert set(spec["filter"]["attributes"]) == {"type"}
        subscriber = spec["subscriber"]["ref"]
        assert subscriber["apiVersion"] == "serving.knative.dev/v1"
        assert subscriber["kind"] == "Service"
        routes[spec["filter"]["attributes"]["type"]] = subscriber["name"]
    assert routes == {
        COMMAND_RECEIVED: "command-route",
        COMPONENT_CLICKED: "command-route",
        WORKFLOW_REQUESTED: "workflow-submit",
        # The ApiServerSource's nudges (decisions/nudge.py), one exact type per Trigger.
        **dict.fromkeys(NUDGE_TYPES, "status-callback"),
    }
    assert len(triggers) == len(routes)


_ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def _seconds(duration: str) -> float:
    match = _ISO_DURATION.fullmatch(duration)
    assert match and any(match.groups()), duration
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_delivery_retries_then_dead_letters() -> None:
    objects = kustomize(BASE)
    for owner in [_one(objects, "Broker"), *[d for d in objects if d["kind"] == "Trigger"]]:
        delivery = owner["spec"]["delivery"]
        # The one budget (decisions/delivery.py) that users are told about.
        assert delivery["retry"] == RETRIES
        assert delivery["backoffPolicy"] == BACKOFF_POLICY
        assert delivery["backoffDelay"] == backoff_delay()
        # All retries end while the interaction token can still edit the reply, and a claim's
        # lease ends while redeliveries remain, so one that crashed holding it is taken over.
        low, high = budget_seconds()
        assert high < DiscordSettings().interaction_token_ttl_seconds
        assert low - waits(0)[-1] > LEASE_SECONDS
        # A nudge only makes status_callback read Argo, so one Knative gives up on is dropped:
        # the next tick reports the run. Routing it to command_route's /dead-letter would tell
        # users about a command that was never lost.
        if owner["kind"] == "Trigger" and owner["spec"]["filter"]["attributes"]["type"] in (
            NUDGE_TYPES
        ):
            assert "deadLetterSink" not in delivery
            continue
        # What Knative gives up on goes to command_route's dead-letter path.
        sink = delivery["deadLetterSink"]
        assert sink["ref"] == {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "name": "command-route",
        }
        assert sink["uri"] == "/dead-letter"


@pytest.mark.parametrize("overlay", [BASE, *OVERLAYS], ids=_label)
def test_k_sink_is_the_brokers_ingress(overlay: Path) -> None:
    objects = kustomize(overlay)
    broker = _one(objects, "Broker")
    # K_SINK names the ingress of this Broker class; a change to either must change both.
    assert broker["metadata"]["annotations"][BROKER_CLASS] == "MTChannelBasedBroker"
    metadata = broker["metadata"]
    expected = "http://broker-ingress.knative-eventing.svc.cluster.local"
    expected += f"/{metadata['namespace']}/{metadata['name']}"
    assert _one(objects, "ConfigMap", "facteur-env")["data"]["K_SINK"] == expected
    for service in _functions(objects).values():
        assert {"configMapRef": {"name": "facteur-env"}} in _container(service)["envFrom"]


def test_the_pingsource_ticks_status_callback() -> None:
    objects = kustomize(BASE)
    ping = _one(objects, "PingSource")
    spec = ping["spec"]
    assert spec["sink"]["ref"] == {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": "status-callback",
    }
    assert "status-callback" in _services(objects)
    assert spec["schedule"] == "*/2 * * * *"
    assert spec["contentType"] == "application/json"
    data = json.loads(spec["data"])
    assert set(data) == {"token"}
    assert "REPLACE" in data["token"]
    # The tick as Knative's PingSource sends it (a binary-mode CloudEvent) passes status_callback's
    # check when the data carries the right token, and only then.
    headers = {
        "ce-specversion": "1.0",
        "ce-type": callers.PING_EVENT_TYPE,
        "ce-source": "/apis/v1/namespaces/facteur/pingsources/facteur-reconcile",
        "ce-id": "tick-1",
        "Content-Type": spec["contentType"],
    }
    tick = Headers(headers)
    assert callers.is_cloudevent(tick)
    assert callers.tick_token_matches(tick, spec["data"].encode(), data["token"])
    assert not callers.tick_token_matches(tick, spec["data"].encode(), data["token"] + "x")


# --- Nudges: the ApiServerSource -----------------------------------------------------------------

WATCHER = "facteur-watcher"


@pytest.mark.parametrize("directory", [ARGO, *OVERLAYS], ids=_label)
def test_the_apiserversource_watches_facteurs_workflows_into_the_broker(directory: Path) -> None:
    objects = kustomize(directory)
    source = _one(objects, "ApiServerSource")
    workflow_template = _one(objects, "WorkflowTemplate", "facteur-dispatch")
    spec = source["spec"]
    # In the workflow namespace, watching that namespace only (no namespaceSelector: that would
    # need every namespace of the cluster), references only, and facteur's runs only.
    namespace = source["metadata"]["namespace"]
    assert namespace == workflow_template["metadata"]["namespace"] == "agents"
    assert "namespaceSelector" not in spec and "owner" not in spec
    assert spec["mode"] == "Reference"
    assert spec["resources"] == [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "selector": {"matchLabels": {MANAGED_BY: MANAGER}},
        }
    ]
    assert spec["serviceAccountName"] == WATCHER
    assert spec["sink"] == {
        "ref": {
            "apiVersion": "eventing.knative.dev/v1",
            "kind": "Broker",
            "name": "facteur",
            "namespace": "facteur",
        }
    }
    if directory != ARGO:
        broker = _one(objects, "Broker")
        metadata = broker["metadata"]
        assert (metadata["namespace"], metadata["name"]) == ("facteur", "facteur")
    # The adapter reads the API with its account's token: the account must not switch it off.
    account = _one(objects, "ServiceAccount", WATCHER)
    assert account["metadata"]["namespace"] == namespace
    assert account.get("automountServiceAccountToken") is not False


@pytest.mark.parametrize("directory", [ARGO, *OVERLAYS], ids=_label)
def test_the_watcher_may_only_read_workflows(directory: Path) -> None:
    # Least privilege, evaluated as the API server does (test_callback_token's evaluator): get,
    # list and watch on workflows in the workflow namespace, the only verbs Knative's
    # ApiServerSource needs, and nothing else anywhere.
    from tests.deploy.test_callback_token import _rules_for

    objects = kustomize(directory)
    namespace = _one(objects, "ApiServerSource")["metadata"]["namespace"]
    rules = _rules_for(objects, (namespace, WATCHER))
    granted = {
        (scope, group, resource, verb, tuple(rule.get("resourceNames") or ()))
        for rule in rules
        for scope in [rule["scope"]]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        (namespace, "argoproj.io", "workflows", verb, ()) for verb in ("get", "list", "watch")
    }
    assert not any(rule.get("nonResourceURLs") for rule in rules)


def test_a_nudge_as_knative_builds_it_for_a_facteur_workflow_is_read() -> None:
    # knative/eventing pkg/adapter/apiserver/events/events.go: data is the ObjectReference
    # (getRef), the subject a self link (createSelfLink), for the resource the source watches.
    from facteur.decisions.nudge import Nudge, read_nudge

    source = _one(kustomize(PRODUCTION), "ApiServerSource")
    (resource,) = source["spec"]["resources"]
    namespace = source["metadata"]["namespace"]
    ref = {
        "apiVersion": resource["apiVersion"],
        "kind": resource["kind"],
        "name": "plan-1a2b3c",
        "namespace": namespace,
    }
    subject = f"/apis/{resource['apiVersion']}/namespaces/{namespace}/workflows/plan-1a2b3c"
    for event_type in NUDGE_TYPES:
        found = read_nudge(event_type, subject, ref, namespace=namespace)
        assert found == Nudge(namespace, "plan-1a2b3c", deleted=event_type.endswith(".delete"))


# --- Overlays -----------------------------------------------------------------------------------


def _min_scale(objects: list[Manifest], name: str) -> str:
    return _services(objects)[name]["spec"]["template"]["metadata"]["annotations"][MIN_SCALE]


def test_production_keeps_one_interaction_verify_warm() -> None:
    base, production = kustomize(BASE), kustomize(PRODUCTION)
    assert _min_scale(base, "interaction-verify") == "0"
    assert _min_scale(production, "interaction-verify") == "1"
    for name in set(FUNCTIONS) - {"interaction-verify"}:
        assert _min_scale(production, name) == "0"


def test_dev_runs_at_most_one_pod_per_function() -> None:
    for name, service in _functions(kustomize(DEV)).items():
        annotations = service["spec"]["template"]["metadata"]["annotations"]
        assert (annotations[MIN_SCALE], annotations[MAX_SCALE]) == ("0", "1"), name


def test_production_applies_everything() -> None:
    found = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        for d in kustomize(PRODUCTION)
    }
    facteur = {
        ("Namespace", "", "facteur"),
        ("ConfigMap", "facteur", "facteur-config"),
        ("ConfigMap", "facteur", "facteur-env"),
        ("ConfigMap", "facteur", "redis-config"),
        ("Redis", "facteur", "redis"),
        ("Broker", "facteur", "facteur"),
        ("Trigger", "facteur", "facteur-command-received"),
        ("Trigger", "facteur", "facteur-workflow-requested"),
        ("Trigger", "facteur", "facteur-component-clicked"),
        ("Trigger", "facteur", "facteur-workflow-added"),
        ("Trigger", "facteur", "facteur-workflow-updated"),
        ("Trigger", "facteur", "facteur-workflow-deleted"),
        ("PingSource", "facteur", "facteur-reconcile"),
        *{("Service", "facteur", name) for name in FUNCTIONS},
    }
    agents = {
        ("Namespace", "", "agents"),
        ("ServiceAccount", "agents", "facteur-agent"),
        ("Role", "agents", "facteur-agent"),
        ("RoleBinding", "agents", "facteur-agent"),
        ("Secret", "agents", "facteur-agent.service-account-token"),
        ("ServiceAccount", "agents", "facteur-executor"),
        ("Role", "agents", "facteur-executor"),
        ("RoleBinding", "agents", "facteur-executor"),
        ("Secret", "agents", "facteur-executor.service-account-token"),
        ("ServiceAccount", "agents", "facteur-api"),
        ("Role", "agents", "facteur-api"),
        ("RoleBinding", "agents", "facteur-api"),
        ("Secret", "agents", "facteur-api-token"),
        ("WorkflowTemplate", "agents", "facteur-dispatch"),
        ("WorkflowTemplate", "agents", "facteur-dispatch-approval"),
        ("ServiceAccount", "agents", "facteur-watcher"),
        ("Role", "agents", "facteur-watcher"),
        ("RoleBinding", "agents", "facteur-watcher"),
        ("ApiServerSource", "agents", "facteur-workflows"),
    }
    assert found == facteur | agents


@pytest.mark.parametrize("overlay", OVERLAYS, ids=_label)
def test_overlays_keep_the_argo_side_in_the_workflow_namespace(overlay: Path) -> None:
    # The base's namespace transformer must not reach ../argo's objects.
    argo_ids = {(d["kind"], d["metadata"]["name"]) for d in kustomize(KUBERNETES / "argo")}
    for document in kustomize(overlay):
        kind, metadata = document["kind"], document["metadata"]
        if kind == "Namespace":
            assert metadata["name"] in {"facteur", "agents"}
        elif (kind, metadata["name"]) in argo_ids:
            assert metadata["namespace"] == "agents", object_id(document)
        else:
            assert metadata["namespace"] == "facteur", object_id(document)


def test_changing_the_image_in_the_overlay_changes_every_function(tmp_path: Path) -> None:
    # What kubernetes/README.md tells an operator to do, on a copy of the tree.
    copy_root = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy_root)
    path = kustomization_file(copy_root / "overlays" / "production")
    spec = yaml.safe_load(path.read_text())
    (image,) = spec["images"]
    name, _, tag = IMAGE.rpartition(":")
    assert image == {"name": name, "newTag": tag}
    image["newTag"] = "0.2.0"
    path.write_text(yaml.safe_dump(spec))
    services = _services(kustomize(copy_root / "overlays" / "production"))
    for service_name, service in services.items():
        if service_name in FUNCTIONS:
            assert _container(service)["image"] == f"{name}:0.2.0", service_name
        else:
            assert not _container(service)["image"].startswith(name), service_name
