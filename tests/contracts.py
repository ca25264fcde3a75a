"""Validation against the real external contracts in the specs folder (never copied here)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .support import SPECS_DIR

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
    }[response["type"]]


def assert_interaction_response(response: dict[str, Any]) -> None:
    """Validate an answer to Discord against the callback endpoint's request schema."""
    assert_discord(response, callback_schema_for(response))
    spec, _ = _discord()
    path = spec["paths"]["/interactions/{interaction_id}/{interaction_token}/callback"]
    body = path["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = {branch["$ref"].rsplit("/", 1)[-1] for branch in body["anyOf"]}
    assert callback_schema_for(response) in refs
