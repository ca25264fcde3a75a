"""Validation against the real external contracts in the specs folder (never copied here)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.helpers.support import SPECS_DIR

DISCORD_URI = "urn:discord-openapi"


def specs_path(*parts: str):
    path = SPECS_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"external specs not found at {path}; set FACTEUR_SPECS_DIR to validate")
    return path


@functools.cache
def _discord() -> tuple[dict[str, Any], Registry]:
    spec = json.loads(specs_path("discord", "openapi.json").read_text())
    resource = Resource(contents=spec, specification=DRAFT202012)
    return spec, Registry().with_resource(DISCORD_URI, resource)


def discord_schema(name: str) -> dict[str, Any]:
    spec, _ = _discord()
    return spec["components"]["schemas"][name]


def assert_discord(instance: Any, schema_name: str) -> None:
    """Validate against a named schema of Discord's OpenAPI spec, rejecting unknown keys too.

    Discord's schemas allow extra properties, so a misspelt field would pass plain validation;
    the strict walk below catches it.
    """
    spec, registry = _discord()
    validator = Draft202012Validator(
        {"$ref": f"{DISCORD_URI}#/components/schemas/{schema_name}"}, registry=registry
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    unknown = list(_unknown_keys(spec, spec["components"]["schemas"][schema_name], instance, "$"))
    assert not unknown, f"keys not in Discord's {schema_name}: {unknown}"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def _branches(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(spec, schema)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            found = []
            for branch in schema[key]:
                found.extend(_branches(spec, branch))
            return found
    return [schema]


def _unknown_keys(spec: dict[str, Any], schema: dict[str, Any], instance: Any, where: str):
    branches = [b for b in _branches(spec, schema) if "properties" in b or "items" in b]
    if isinstance(instance, dict):
        objects = [b for b in branches if "properties" in b]
        if not objects:
            return
        # Pick the branch that knows the most of the instance's keys.
        best = max(objects, key=lambda b: len(set(instance) & set(b["properties"])))
        for key, value in instance.items():
            if key not in best["properties"]:
                yield f"{where}.{key}"
            else:
                yield from _unknown_keys(spec, best["properties"][key], value, f"{where}.{key}")
    elif isinstance(instance, list):
        arrays = [b for b in branches if "items" in b]
        if arrays:
            for index, item in enumerate(instance):
                yield from _unknown_keys(spec, arrays[0]["items"], item, f"{where}[{index}]")


def callback_schema_for(response: dict[str, Any]) -> str:
    """The Discord schema that an interaction response of this type must satisfy."""
    return {
        1: "PongInteractionCallbackRequest",
        4: "CreateMessageInteractionCallbackRequest",
        5: "CreateMessageInteractionCallbackRequest",
        6: "UpdateMessageInteractionCallbackRequest",
        7: "UpdateMessageInteractionCallbackRequest",
        8: "ApplicationCommandAutocompleteCallbackRequest",
        9: "ModalInteractionCallbackRequest",
    }[response["type"]]


def assert_interaction_response(response: dict[str, Any]) -> None:
    """Validate an answer to Discord against the callback endpoint's request schema."""
    assert_discord(response, callback_schema_for(response))
    spec, _ = _discord()
    path = spec["paths"]["/interactions/{interaction_id}/{interaction_token}/callback"]
    body = path["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = {branch["$ref"].rsplit("/", 1)[-1] for branch in body["anyOf"]}
    assert callback_schema_for(response) in refs


# --- Requests facteur sends to Discord's REST API --------------------------------------------


@functools.cache
def _discord_path_patterns() -> list[tuple[str, re.Pattern[str], int]]:
    spec, _ = _discord()
    patterns = []
    for template in spec["paths"]:
        parts = re.split(r"(\{[^}]+\})", template)
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
            for part in parts
        )
        literal = sum(len(part) for part in parts if not part.startswith("{"))
        patterns.append((template, re.compile(regex), literal))
    return patterns


def match_discord_path(path: str) -> tuple[str, dict[str, str]]:
    """The spec's path template for a concrete API path (after the base URL) and its parameters.

    Segments arrive percent-encoded; parameters come back decoded. Where templates overlap
    (`messages/@original` and `messages/{message_id}`), the most literal one wins, as in Discord.
    """
    found = [
        (literal, template, match)
        for template, pattern, literal in _discord_path_patterns()
        if (match := pattern.fullmatch(path))
    ]
    assert found, f"no path in Discord's API matches {path!r}"
    _, template, match = max(found, key=lambda item: item[0])
    return template, {name: unquote(value) for name, value in match.groupdict().items()}


def discord_operation(method: str, template: str) -> dict[str, Any]:
    spec, _ = _discord()
    operation = spec["paths"][template].get(method.lower())
    assert isinstance(operation, dict), f"Discord's API has no {method.upper()} {template}"
    return operation


def discord_parameters(method: str, template: str) -> list[dict[str, Any]]:
    """Path-level and operation-level parameters of an operation."""
    spec, _ = _discord()
    shared = spec["paths"][template].get("parameters", [])
    return [*shared, *discord_operation(method, template).get("parameters", [])]


def discord_request_schemas(method: str, template: str) -> list[str]:
    """Names of the component schemas a JSON request body may follow (any one of them)."""
    body = discord_operation(method, template).get("requestBody")
    assert body is not None, f"{method.upper()} {template} takes no body"
    schema = body["content"]["application/json"]["schema"]
    branches = schema.get("anyOf") or schema.get("oneOf") or [schema]
    names = [b["$ref"].rsplit("/", 1)[-1] for b in branches if "$ref" in b]
    assert len(names) == len(branches), f"{method.upper()} {template} has an inline body schema"
    return names


def assert_discord_value(instance: Any, schema: dict[str, Any], what: str) -> None:
    """Validate a parameter value against its (possibly $ref'd) schema from the spec."""
    _, registry = _discord()
    if "$ref" in schema and schema["$ref"].startswith("#/"):
        schema = {"$ref": DISCORD_URI + schema["$ref"]}
    errors = [
        e.message for e in Draft202012Validator(schema, registry=registry).iter_errors(instance)
    ]
    assert not errors, f"{what}: {errors}"


def assert_discord_body(method: str, template: str, body: Any) -> None:
    """The body must satisfy one of the operation's request schemas, unknown keys included."""
    schema = discord_operation(method, template)["requestBody"]["content"]["application/json"]
    schema = schema["schema"]
    if "$ref" in schema.get("items", {}):
        # A bulk body (e.g. the command overwrite): an inline array of $ref'd items.
        _, registry = _discord()
        ref = schema["items"]["$ref"]
        whole = {**schema, "items": {"$ref": DISCORD_URI + ref}}
        errors = [
            e.message for e in Draft202012Validator(whole, registry=registry).iter_errors(body)
        ]
        assert not errors, f"{method} {template} body: {errors}"
        for item in body:
            assert_discord(item, ref.rsplit("/", 1)[-1])
        return
    failures = []
    for name in discord_request_schemas(method, template):
        try:
            assert_discord(body, name)
        except AssertionError as err:
            failures.append(f"{name}: {err}")
        else:
            return
    raise AssertionError(f"{method.upper()} {template} body fits no request schema: {failures}")


def discord_allows_anonymous(method: str, template: str) -> bool:
    """Whether the operation may be called without an Authorization header (webhook tokens)."""
    spec, _ = _discord()
    security = discord_operation(method, template).get("security", spec.get("security", []))
    return not security or {} in security


def assert_discord_request(
    method: str,
    path: str,
    query: dict[str, list[str]],
    headers: Mapping[str, str],
    body: Any,
) -> tuple[str, dict[str, str]]:
    """Check one request against the spec; return its path template and decoded parameters.

    `path` is what follows the API base URL, still percent-encoded; `body` is the decoded JSON
    (None when the request had none).
    """
    template, params = match_discord_path(path)
    parameters = discord_parameters(method, template)
    for parameter in parameters:
        if parameter["in"] == "path":
            value = params.get(parameter["name"])
            assert_discord_value(value, parameter["schema"], f"path parameter {parameter['name']}")
    known_query = {p["name"] for p in parameters if p["in"] == "query"}
    unknown_query = set(query) - known_query
    assert not unknown_query, f"{method} {template}: unknown query parameters {unknown_query}"
    if not discord_allows_anonymous(method, template):
        auth = headers.get("Authorization", "")
        assert auth.startswith("Bot ") and len(auth) > 4, f"{method} {template} needs Bot auth"
    operation = discord_operation(method, template)
    if body is not None:
        assert "requestBody" in operation, f"{method} {template} takes no body"
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        assert content_type == "application/json", f"Content-Type is {content_type!r}"
        assert_discord_body(method, template, body)
    else:
        assert not operation.get("requestBody", {}).get("required"), "body required"
    return template, params
