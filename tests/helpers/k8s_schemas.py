"""Kubernetes manifests against real schemas, and kustomize rendering, shared by the tests.

- CRD schemas (Argo's, Knative's) come from the specs folder, never copied here, and are read the
  way the API server applies them, with objects closed (`structural`).
- Core kinds go through kubernetes-validate, which bundles Kubernetes' own schemas (strict mode
  refuses unknown fields); `core_definition_errors` checks a fragment (an ObjectMeta, a
  ResourceRequirements) against the same schemas.
- `kustomize` renders a kustomization with `kubectl kustomize` when kubectl is on PATH, and
  otherwise with `render_kustomization`, a small Python emulation of the kustomize features the
  manifests here use. The tests compare the two wherever kubectl is present.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft4Validator, Draft202012Validator
from referencing import Registry, Resource

# The CRDs are large; the C loader, where PyYAML has it, reads them ~10x faster.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Manifest = dict[str, Any]


def documents(path: Path) -> list[Manifest]:
    """The non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def object_id(document: Manifest) -> tuple[str, str, str, str]:
    """What kustomize and the API server tell objects apart by."""
    metadata = document.get("metadata") or {}
    group = document["apiVersion"].rpartition("/")[0]
    return (group, document["kind"], metadata.get("namespace") or "", metadata.get("name") or "")


# --- CRD schemas --------------------------------------------------------------------------------


def structural(schema: Any, *, close_preserved: bool = False) -> Any:
    """A CRD schema as the API server applies it, in plain JSON Schema.

    `x-kubernetes-*` keywords are dropped (no JSON Schema meaning). An object schema that lists its
    properties is closed with `additionalProperties: false`: the API server's strict field
    validation (kubectl's default since Kubernetes 1.27) rejects unknown fields rather than pruning
    them, unless the schema says `x-kubernetes-preserve-unknown-fields`.

    With `close_preserved`, objects that list properties are closed even where the CRD preserves
    unknown fields. The API server keeps such fields and the controller ignores them, so a misspelt
    field there is silently lost; Knative's Trigger preserves its whole `spec`, and a misspelt
    `filter` would let every event through. This stricter reading accepts only declared fields.
    """
    if isinstance(schema, list):
        return [structural(item, close_preserved=close_preserved) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            result[key] = {
                name: structural(sub, close_preserved=close_preserved)
                for name, sub in value.items()
            }
        else:
            result[key] = structural(value, close_preserved=close_preserved)
    preserved = bool(schema.get("x-kubernetes-preserve-unknown-fields")) and not close_preserved
    if "properties" in schema and not preserved and "additionalProperties" not in schema:
        result["additionalProperties"] = False
    return result


@functools.cache
def crd_schema(path: Path, version: str) -> dict[str, Any]:
    """The openAPIV3Schema of a CRD's served storage version."""
    crd = yaml.load(path.read_text(), Loader=LOADER)  # noqa: S506 (a safe loader)
    versions = [
        v for v in crd["spec"]["versions"] if v["name"] == version and v["served"] and v["storage"]
    ]
    assert len(versions) == 1, f"expected {version} to be the served storage version of {path}"
    return versions[0]["schema"]["openAPIV3Schema"]


# Every object carries these whether or not its CRD declares them (the API server handles them).
_TYPE_META = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


@functools.cache
def crd_validator(path: Path, version: str, *, close_preserved: bool = False) -> Draft4Validator:
    """A validator for a CRD's objects, closed as described in `structural`."""
    schema = copy.deepcopy(crd_schema(path, version))
    for name, sub in _TYPE_META.items():
        schema.setdefault("properties", {}).setdefault(name, sub)
    return Draft4Validator(structural(schema, close_preserved=close_preserved))


def errors(validator: Draft4Validator | Draft202012Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


# --- Kubernetes' own schemas (kubernetes-validate) ----------------------------------------------


def core_errors(document: Manifest) -> list[str]:
    """A built-in kind against Kubernetes' schema, strict (unknown fields refused)."""
    try:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{list(err.absolute_path)}: {err.message}"]
    return []


_DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"


@functools.cache
def _definition_validator(name: str) -> Draft202012Validator:
    folder = f"v{kubernetes_validate.latest_version()}-local-strict"
    source = importlib.resources.files("kubernetes_validate").joinpath(
        "kubernetes-json-schema", folder, "_definitions.json"
    )
    definitions = yaml.load(source.read_text(), Loader=LOADER)  # noqa: S506 (a safe loader)
    assert definitions["$id"] == _DEFINITIONS_URI
    registry = Registry().with_resource(_DEFINITIONS_URI, Resource.from_contents(definitions))
    return Draft202012Validator({"$ref": f"{_DEFINITIONS_URI}#/$defs/{name}"}, registry=registry)


def core_definition_errors(instance: Any, definition: str) -> list[str]:
    """A fragment against one of Kubernetes' definitions, e.g. `io.k8s.api.core.v1.Container`."""
    return errors(_definition_validator(definition), instance)


OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


# --- Rendering kustomizations -------------------------------------------------------------------

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class UnsupportedKustomization(Exception):
    """The Python emulation does not cover this; extend it deliberately or use kubectl."""


def kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no kustomization in {directory}")


def kubectl() -> str | None:
    return shutil.which("kubectl")


@functools.cache
def _kubectl_kustomize(directory: Path) -> tuple[Manifest, ...]:
    binary = kubectl()
    assert binary is not None
    rendered = subprocess.run(
        [binary, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    return tuple(doc for doc in yaml.safe_load_all(rendered.stdout) if doc)


def kubectl_kustomize(directory: Path) -> list[Manifest]:
    """`kubectl kustomize <directory>`, parsed (kubectl must be on PATH)."""
    return copy.deepcopy(list(_kubectl_kustomize(directory.resolve())))


def kustomize(directory: Path) -> list[Manifest]:
    """The rendered objects: kubectl's when it is on PATH, else the Python emulation's."""
    if kubectl() is not None:
        return kubectl_kustomize(directory)
    return render_kustomization(directory)


# The fields render_kustomization emulates; any other field in a kustomization makes it refuse.
_EMULATED_FIELDS = frozenset({"apiVersion", "kind", "namespace", "resources", "patches", "images"})
_CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "ClusterWorkflowTemplate",
    }
)


def render_kustomization(directory: Path) -> list[Manifest]:
    """Render a kustomization in Python, for the features facteur's manifests use.

    Emulated, in kustomize's order: `resources` (files under the kustomization's root, and other
    kustomization directories), `patches` (strategic-merge patches, including `$patch: delete`, and
    JSON 6902 patches, on objects chosen by group, version, kind, name and namespace), `namespace`
    (Namespace objects are renamed, cluster-scoped kinds left alone, RoleBinding subjects follow
    the ServiceAccounts that moved) and `images` (newName, newTag, digest on every `containers` or
    `initContainers` image). A strategic-merge patch is applied as a JSON merge patch, which is
    what kustomize does for kinds it has no schema for (custom resources); on built-in kinds it
    refuses lists, whose merge keys it does not emulate. Anything else raises
    UnsupportedKustomization, so a new feature cannot silently render differently from kustomize.
    """
    directory = directory.resolve()
    spec = yaml.safe_load(kustomization_file(directory).read_text()) or {}
    unknown = sorted(set(spec) - _EMULATED_FIELDS)
    if unknown:
        raise UnsupportedKustomization(f"{directory}: fields not emulated: {unknown}")
    objects: list[Manifest] = []
    for entry in spec.get("resources") or []:
        target = (directory / entry).resolve()
        if target.is_dir():
            objects.extend(render_kustomization(target))
        elif target.is_file() and target.is_relative_to(directory):
            objects.extend(documents(target))
        else:
            # kustomize refuses files outside the root (its load restrictor) and we fetch nothing.
            raise UnsupportedKustomization(f"{directory}: resource {entry!r} is not emulated")
    _check_unique(objects, directory)
    for entry in spec.get("patches") or []:
        objects = _apply_patch(objects, entry, directory)
    if spec.get("namespace"):
        _set_namespace(objects, spec["namespace"])
    for entry in spec.get("images") or []:
        _set_image(objects, entry)
    _check_unique(objects, directory)
    return objects


def _check_unique(objects: list[Manifest], directory: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for document in objects:
        key = object_id(document)
        if key in seen:
            raise ValueError(f"{directory}: {key} twice (kustomize refuses an ID conflict)")
        seen.add(key)


def _patch_text(entry: Manifest, directory: Path) -> str:
    unknown = sorted(set(entry) - {"path", "patch", "target"})
    if unknown:
        raise UnsupportedKustomization(f"patch fields not emulated: {unknown}")
    if "path" in entry:
        path = (directory / entry["path"]).resolve()
        if not path.is_relative_to(directory):
            raise UnsupportedKustomization(f"patch {entry['path']!r} is outside the root")
        return path.read_text()
    return entry["patch"]


def _selector_from(patch: Manifest) -> dict[str, str]:
    group, _, version = patch["apiVersion"].rpartition("/")
    metadata = patch.get("metadata") or {}
    selector = {"group": group, "version": version, "kind": patch["kind"], "name": metadata["name"]}
    if metadata.get("namespace"):
        selector["namespace"] = metadata["namespace"]
    return selector


_REGEX_SYNTAX = re.compile(r"[*+?()\[\]{}|^$\\]")


def _selects(selector: dict[str, str], document: Manifest) -> bool:
    unknown = sorted(set(selector) - {"group", "version", "kind", "name", "namespace"})
    if unknown:
        raise UnsupportedKustomization(f"target fields not emulated: {unknown}")
    group, _, version = document["apiVersion"].rpartition("/")
    metadata = document.get("metadata") or {}
    actual = {
        "group": group,
        "version": version,
        "kind": document["kind"],
        "name": metadata.get("name", ""),
        "namespace": metadata.get("namespace", ""),
    }
    for key, wanted in selector.items():
        # kustomize reads these as anchored regular expressions; only plain names are emulated
        # (a "." matches itself, as it does there).
        if _REGEX_SYNTAX.search(str(wanted)):
            raise UnsupportedKustomization(f"target {key}={wanted!r}: patterns are not emulated")
        if actual[key] != wanted:
            return False
    return True


def _apply_patch(objects: list[Manifest], entry: Manifest, directory: Path) -> list[Manifest]:
    body = yaml.safe_load(_patch_text(entry, directory))
    if isinstance(body, list):
        if "target" not in entry:
            raise ValueError("a JSON 6902 patch needs a target")
        selector = entry["target"]
    elif isinstance(body, dict):
        selector = entry.get("target") or _selector_from(body)
    else:
        raise UnsupportedKustomization(f"patch is neither a mapping nor a list: {body!r}")
    matched = [i for i, document in enumerate(objects) if _selects(selector, document)]
    if not matched:
        raise ValueError(f"{directory}: patch target {selector} matches nothing")
    result = list(objects)
    for index in matched:
        if isinstance(body, list):
            result[index] = _json_patch(result[index], body)
        elif body.get("$patch") == "delete":
            result[index] = {}
        else:
            result[index] = _merge_patch(result[index], body, builtin=_is_builtin(result[index]))
    return [document for document in result if document]


def _is_builtin(document: Manifest) -> bool:
    group = document["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


def _merge_patch(target: Any, patch: Any, *, builtin: bool) -> Any:
    """RFC 7386: mappings merge, null deletes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        if builtin and isinstance(patch, list):
            raise UnsupportedKustomization("strategic merge of lists in built-in kinds")
        return copy.deepcopy(patch)
    if any(key.startswith("$") for key in patch):
        raise UnsupportedKustomization(f"patch directives not emulated: {sorted(patch)}")
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value, builtin=builtin)
    return merged


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _json_patch(document: Manifest, operations: list[Manifest]) -> Manifest:
    """RFC 6902 add, remove, replace and test."""
    result = copy.deepcopy(document)
    for operation in operations:
        op, parts = operation["op"], _pointer(operation["path"])
        if op not in {"add", "remove", "replace", "test"}:
            raise UnsupportedKustomization(f"JSON patch op {op!r} is not emulated")
        parent: Any = result
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op == "add":
                parent.insert(index, copy.deepcopy(operation["value"]))
            elif op == "remove":
                del parent[index]
            elif op == "replace":
                parent[index] = copy.deepcopy(operation["value"])
            elif parent[index] != operation["value"]:
                raise ValueError(f"JSON patch test failed at {operation['path']}")
        else:
            if op != "add" and last not in parent:
                raise ValueError(f"JSON patch {op}: {operation['path']} does not exist")
            if op in {"add", "replace"}:
                parent[last] = copy.deepcopy(operation["value"])
            elif op == "remove":
                del parent[last]
            elif parent[last] != operation["value"]:
                raise ValueError(f"JSON patch test failed at {operation['path']}")
    return result


def _set_namespace(objects: list[Manifest], namespace: str) -> None:
    moved: dict[tuple[str | None, str], str] = {}
    for document in objects:
        metadata = document.setdefault("metadata", {})
        if document["kind"] == "Namespace":
            metadata["name"] = namespace  # kustomize renames Namespace objects
        elif document["kind"] not in _CLUSTER_SCOPED:
            if document["kind"] == "ServiceAccount":
                moved[(metadata.get("namespace"), metadata["name"])] = namespace
            metadata["namespace"] = namespace
    # Subjects follow the ServiceAccounts that moved (kustomize's name references).
    for document in objects:
        if document["kind"] in {"RoleBinding", "ClusterRoleBinding"}:
            for subject in document.get("subjects") or []:
                key = (subject.get("namespace"), subject.get("name", ""))
                if subject.get("kind") == "ServiceAccount" and key in moved:
                    subject["namespace"] = moved[key]


def _split_image(reference: str) -> tuple[str, str | None, str | None]:
    name, _, digest = reference.partition("@")
    tag = None
    if name.rfind(":") > name.rfind("/"):
        name, _, tag = name.rpartition(":")
    return name, tag, digest or None


def _containers(node: Any) -> Iterator[Manifest]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"containers", "initContainers"} and isinstance(value, list):
                yield from (item for item in value if isinstance(item, dict))
            yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _set_image(objects: list[Manifest], entry: Manifest) -> None:
    unknown = sorted(set(entry) - {"name", "newName", "newTag", "digest"})
    if unknown:
        raise UnsupportedKustomization(f"image fields not emulated: {unknown}")
    for container in _containers(objects):
        if "image" not in container:
            continue
        name, tag, digest = _split_image(container["image"])
        if name != entry["name"]:
            continue
        image = entry.get("newName", name)
        if entry.get("digest"):
            image += "@" + entry["digest"]
        elif entry.get("newTag"):
            image += ":" + str(entry["newTag"])
        elif digest:
            image += "@" + digest
        elif tag:
            image += ":" + tag
        container["image"] = image
