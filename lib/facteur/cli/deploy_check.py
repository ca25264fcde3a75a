"""`facteur check-deploy`: what `kubectl kustomize` renders for a deployment, checked for what
would keep it from working, one line a problem.

The checks read only the rendered objects, never the cluster: placeholders left in, Secrets (and
their keys) that something references but nothing renders and no step of the README creates,
a PingSource whose tick token is a placeholder or differs from the Secret's, a function other
than interaction-verify that is reachable from the internet (or verify that is not), and
interaction-verify allowed to scale to zero.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from facteur.cli.plumbing import EXIT_FAILED, EXIT_USAGE, PROG, CliError, say

Manifest = dict[str, Any]

PUBLIC_FUNCTION = "interaction_verify"
VISIBILITY_LABEL = "networking.knative.dev/visibility"
CLUSTER_LOCAL = "cluster-local"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
TICK_TOKEN_KEY = "FACTEUR_CALLBACK_TICK_TOKEN"  # noqa: S105 (a key name)
# Kubernetes fills these in itself, so a rendered token Secret holds none of them yet.
_SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"  # noqa: S105 (a type)
_SERVICE_ACCOUNT_KEYS = frozenset({"token", "ca.crt", "namespace"})


@dataclass(frozen=True)
class HandMade:
    """A Secret the overlays deliberately do not render (applying must never overwrite it): the
    keys its README command creates, and where that command is."""

    keys: frozenset[str]
    created_by: str


# The README's "Deployment" checklist creates these after the apply; tests/cli/test_check_deploy.py
# holds the keys to the README's commands and the templates in kubernetes/.
HAND_MADE: dict[str, HandMade] = {
    "facteur": HandMade(
        frozenset(
            {
                "FACTEUR_DISCORD_BOT_TOKEN",
                "FACTEUR_ARGO_TOKEN",
                "FACTEUR_CALLBACK_TOKEN",
                "FACTEUR_CALLBACK_TICK_TOKEN",
                "FACTEUR_EVENTS_SIGNING_KEY",
                "FACTEUR_REDIS_PASSWORD",
            }
        ),
        'kubectl -n facteur create secret generic facteur … (README, "Deployment", step 9)',
    ),
    "facteur-callback": HandMade(
        frozenset({"authorization"}),
        'kubectl -n agents create secret generic facteur-callback … (README, "Deployment", step 9)',
    ),
}

# The shipped manifests' placeholder conventions: REPLACE… markers, example.com hosts (the image
# registry, the Argo UI), and the sample Discord IDs 123456789012345678, 223…, 323….
_REPLACE = re.compile(r"REPLACE")
_EXAMPLE_HOST = re.compile(r"(?:^|[/.@])example\.(?:com|org|net)\b")
_SAMPLE_ID = re.compile(r"^[0-9]?23456789012345678$")
_SINGLE_CHARACTER_KEY = re.compile(r"^(.)\1{31,}$")


def _placeholder(value: str) -> str | None:
    """Why this value is a placeholder, or None."""
    if _REPLACE.search(value):
        return "a REPLACE marker"
    if _EXAMPLE_HOST.search(value):
        return "an example.com address"
    if _SAMPLE_ID.match(value):
        return "a sample Discord ID"
    if _SINGLE_CHARACTER_KEY.match(value):
        return "one character repeated (a placeholder key)"
    return None


def _name(document: Manifest) -> str:
    meta = document.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "?")
    return (
        f"{document.get('kind', '?')} {namespace}/{name}"
        if namespace
        else f"{document.get('kind', '?')} {name}"
    )


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")


def _embedded(key: str, value: str) -> Any:
    # A config file in a ConfigMap: its comments say REPLACE too, so read its values only.
    if key.endswith((".yaml", ".yml", ".json")):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def placeholders(objects: list[Manifest]) -> list[str]:
    problems = []
    for document in objects:
        kind = document.get("kind")
        if kind == "PingSource":
            continue  # its token is tick_token's business, in one line
        if kind == "Secret":
            # Name the key only: a Secret's values are never printed.
            for field in ("stringData", "data"):
                for key, value in (document.get(field) or {}).items():
                    text = _decoded(value) if field == "data" else str(value)
                    if text is not None and _placeholder(text):
                        problems.append(f"{_name(document)}: {key} is still a placeholder")
            continue
        for top, node in document.items():
            if top == "data" and kind == "ConfigMap" and isinstance(node, dict):
                node = {key: _embedded(key, str(value)) for key, value in node.items()}
            for path, value in _strings(node, top):
                why = _placeholder(value)
                if why:
                    problems.append(f"{_name(document)}: {path} is {why}: {value!r}")
    return problems


def _decoded(value: Any) -> str | None:
    try:
        return base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _secret_keys(document: Manifest) -> frozenset[str]:
    return frozenset(document.get("data") or {}) | frozenset(document.get("stringData") or {})


def _references(node: Any) -> Iterator[tuple[str, str | None, bool]]:
    """(Secret name, key or None for the whole Secret, optional) for every reference in a spec:
    env valueFrom.secretKeyRef, envFrom secretRef, volumes' secret, the redis-operator's
    redisSecret."""
    if isinstance(node, dict):
        for field, value in node.items():
            if not isinstance(value, dict):
                yield from _references(value)
            elif field in ("secretKeyRef", "redisSecret") and "name" in value:
                yield value["name"], value.get("key"), bool(value.get("optional"))
            elif field == "secretRef" and "name" in value:
                yield value["name"], None, bool(value.get("optional"))
            elif field == "secret" and "secretName" in value:
                yield value["secretName"], None, bool(value.get("optional"))
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def secrets(objects: list[Manifest]) -> tuple[list[str], list[str]]:
    """The problems, and the notes naming each hand-made Secret's command."""
    rendered = {
        ((d.get("metadata") or {}).get("namespace"), (d.get("metadata") or {}).get("name")): d
        for d in objects
        if d.get("kind") == "Secret"
    }
    problems: list[str] = []
    notes: dict[tuple[str | None, str], str] = {}
    for document in objects:
        if document.get("kind") == "Secret":
            continue
        namespace = (document.get("metadata") or {}).get("namespace")
        for name, key, optional in _references(document.get("spec")):
            if optional:
                continue
            secret = rendered.get((namespace, name))
            where = f"{namespace}/{name}" if namespace else name
            if secret is not None:
                if secret.get("type") == _SERVICE_ACCOUNT_TOKEN:
                    known = _SERVICE_ACCOUNT_KEYS
                else:
                    known = _secret_keys(secret)
                if key is not None and key not in known:
                    problems.append(
                        f"{_name(document)}: needs key {key} of Secret {where}, which it lacks"
                    )
            elif name in HAND_MADE:
                made = HAND_MADE[name]
                if key is not None and key not in made.keys:
                    problems.append(
                        f"{_name(document)}: needs key {key} of Secret {where}, which the "
                        f"README's command does not create ({made.created_by})"
                    )
                notes[(namespace, name)] = (
                    f"Secret {where} is not rendered (so applying never overwrites it): "
                    f"create it by hand, {made.created_by}"
                )
            else:
                problems.append(
                    f"{_name(document)}: needs Secret {where}"
                    + (f" (key {key})" if key else "")
                    + ", which is neither rendered nor created by a documented command"
                )
    return list(dict.fromkeys(problems)), list(notes.values())


def _ping_token(document: Manifest) -> str | None:
    try:
        data = json.loads(document.get("spec", {}).get("data", ""))
    except (TypeError, ValueError):
        return None
    token = data.get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


def tick_token(objects: list[Manifest], saved: str | None) -> list[str]:
    """The PingSource's token against the placeholder, the rendered Secret's, and the saved one.
    A wrong one is answered 401 and reconciliation silently never runs."""
    wanted: list[tuple[str, str]] = []
    if saved is not None:
        wanted.append(("the saved tick token (--tick-token-file)", saved))
    for document in objects:
        if document.get("kind") != "Secret":
            continue
        string = (document.get("stringData") or {}).get(TICK_TOKEN_KEY)
        encoded = (document.get("data") or {}).get(TICK_TOKEN_KEY)
        value = string if string is not None else _decoded(encoded) if encoded else None
        if value is not None:
            wanted.append((f"{_name(document)}'s {TICK_TOKEN_KEY}", str(value)))
    problems = []
    for document in objects:
        if document.get("kind") != "PingSource":
            continue
        token = _ping_token(document)
        if token is None:
            problems.append(f'{_name(document)}: spec.data holds no {{"token": …}}')
        elif _placeholder(token):
            problems.append(
                f"{_name(document)}: its tick token is still the placeholder: patch the saved "
                f'token into spec.data (README, "Deployment", step 6)'
            )
        else:
            problems += [
                f"{_name(document)}: its tick token differs from {source}: every tick would be "
                "refused (401) and reconciliation would never run"
                for source, value in wanted
                if value.strip() != token
            ]
    return problems


def _knative_services(objects: list[Manifest]) -> Iterator[tuple[Manifest, str]]:
    """Each Knative Service with the function it runs (FUNCTION_TARGET, else its name)."""
    for document in objects:
        if document.get("kind") != "Service" or not str(document.get("apiVersion", "")).startswith(
            "serving.knative.dev/"
        ):
            continue
        target = (document.get("metadata") or {}).get("name", "?").replace("-", "_")
        containers = (((document.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
            "containers"
        ) or []
        for container in containers:
            for env in container.get("env") or []:
                if env.get("name") == "FUNCTION_TARGET" and "value" in env:
                    target = str(env["value"])
        yield document, target


def exposure(objects: list[Manifest], *, cold_verify: bool) -> list[str]:
    problems = []
    for document, function in _knative_services(objects):
        labels = (document.get("metadata") or {}).get("labels") or {}
        local = labels.get(VISIBILITY_LABEL) == CLUSTER_LOCAL
        if function == PUBLIC_FUNCTION:
            if local:
                problems.append(
                    f"{_name(document)}: {VISIBILITY_LABEL}={CLUSTER_LOCAL}, but Discord must "
                    "reach interaction_verify from the internet"
                )
            annotations = ((document.get("spec") or {}).get("template") or {}).get(
                "metadata", {}
            ).get("annotations") or {}
            if not cold_verify and str(annotations.get(MIN_SCALE, "0")).strip() in ("0", ""):
                problems.append(
                    f"{_name(document)}: {MIN_SCALE} is 0: a cold start can exceed Discord's "
                    '3 s, keep one pod warm (min-scale "1"), or pass --dev'
                )
        elif not local:
            problems.append(
                f"{_name(document)}: {function} is public: label it "
                f"{VISIBILITY_LABEL}={CLUSTER_LOCAL} (only interaction_verify faces the internet)"
            )
    return problems


def check(
    objects: list[Manifest], *, saved_tick_token: str | None = None, cold_verify: bool = False
) -> tuple[list[str], list[str]]:
    """Every problem with the rendered objects, one line each, and the notes."""
    secret_problems, notes = secrets(objects)
    problems = (
        placeholders(objects)
        + secret_problems
        + tick_token(objects, saved_tick_token)
        + exposure(objects, cold_verify=cold_verify)
    )
    return problems, notes


def render(directory: Path) -> str:
    """`kubectl kustomize DIR`, else `kustomize build DIR`: the objects as the apply sends them."""
    if not directory.is_dir():
        raise CliError(f"{directory} is not a directory (a kustomization)")
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    if kubectl:
        command = [kubectl, "kustomize", str(directory)]
    elif kustomize:
        command = [kustomize, "build", str(directory)]
    else:
        raise CliError(
            "neither kubectl nor kustomize is on PATH: render elsewhere and pass the YAML with "
            "--rendered FILE (or - for stdin)"
        )
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CliError(f"{' '.join(command[1:])} failed: {err}", EXIT_FAILED) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CliError(f"{Path(command[0]).name} could not render {directory}: {last}", EXIT_FAILED)
    return done.stdout


def _load(text: str, source: str) -> list[Manifest]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CliError(f"{source} is not YAML{at}") from None
    objects = [d for d in documents if isinstance(d, dict)]
    # `kubectl get -o yaml` style: a List holding the objects.
    flat: list[Manifest] = []
    for document in objects:
        items = document.get("items") if document.get("kind", "").endswith("List") else None
        flat += [i for i in items if isinstance(i, dict)] if isinstance(items, list) else [document]
    if not flat:
        raise CliError(f"{source} holds no Kubernetes object")
    return flat


def check_deploy(args: argparse.Namespace) -> int:
    if args.rendered is not None:
        source = "stdin" if args.rendered == "-" else args.rendered
        try:
            text = sys.stdin.read() if args.rendered == "-" else Path(args.rendered).read_text()
        except OSError as err:
            raise CliError(f"cannot read {args.rendered}: {err.strerror}") from None
    else:
        source = args.directory
        text = render(Path(args.directory))
    saved = None
    if args.tick_token_file is not None:
        try:
            saved = Path(args.tick_token_file).read_text().strip()
        except OSError as err:
            raise CliError(f"cannot read {args.tick_token_file}: {err.strerror}") from None
        if not saved:
            raise CliError(f"{args.tick_token_file} is empty", EXIT_USAGE)
    objects = _load(text, source)
    problems, notes = check(objects, saved_tick_token=saved, cold_verify=args.dev)
    for line in problems:
        print(line)
    for note in notes:
        say(f"{PROG} check-deploy: note: {note}")
    if problems:
        say(f"{PROG} check-deploy: {source}: {len(problems)} problem(s)")
        return EXIT_FAILED
    print(f"ok: {source}: {len(objects)} objects, nothing found that would stop the deployment")
    return 0
