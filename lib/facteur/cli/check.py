"""`facteur check-config`: the effective settings with every secret redacted, and warnings
about a role map that does not match the catalog."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, SecretStr

from facteur.cli.plumbing import PROG, say
from facteur.config import Settings, load_catalog, load_settings, redact_url

if TYPE_CHECKING:
    from facteur.decisions.catalog import Catalog

REDACTED = "***"
NOT_SET = "(not set)"


def _holds_secret(annotation: Any) -> bool:
    # Walks Optional[...] and Annotated[...] so StrongSecret | None counts too.
    return annotation is SecretStr or any(_holds_secret(arg) for arg in get_args(annotation))


def secret_keys() -> list[str]:
    """Every dotted key whose value is a secret, found from the model so none can be missed."""
    keys = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            keys += [
                f"{name}.{sub}"
                for sub, f in section.model_fields.items()
                if _holds_secret(f.annotation)
            ]
        elif _holds_secret(section):
            keys.append(name)
    return keys


def _without_url_passwords(value: Any) -> Any:
    # Every string, not only the URL settings: an argo parameter can be a URL with a token too.
    if isinstance(value, str):
        return redact_url(value, REDACTED)
    if isinstance(value, dict):
        return {key: _without_url_passwords(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_url_passwords(item) for item in value]
    return value


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, every secret replaced by *** or (not set), and the
    password in any URL by ***, however short."""
    data: dict[str, Any] = _without_url_passwords(settings.model_dump(mode="json"))
    for key in secret_keys():
        section, _, name = key.rpartition(".")
        holder = data[section] if section else data
        holder[name] = NOT_SET if holder[name] is None else REDACTED
    return data


def role_map_warnings(role_map: Mapping[str, Sequence[str]], catalog: Catalog) -> list[str]:
    """Role-map keys that govern nothing, and catalog commands nobody may run."""
    commands = [command.name for command in catalog.commands]
    warnings = [
        f"role_map key {key!r} names no command in the catalog, so it has no effect"
        for key in role_map
        # `plan:cancel` governs a button on /plan runs: the part before the colon is the command.
        if key.partition(":")[0] not in commands
    ]
    for name in commands:
        if name in role_map:
            continue
        refined = sorted(key for key in role_map if key.startswith(f"{name}:"))
        only = f" (only {', '.join(refined)} has a rule)" if refined else ""
        warnings.append(f"/{name} is in the catalog but not in role_map: denied to everyone{only}")
    return warnings


def check_config(args: argparse.Namespace) -> int:
    from facteur import bootstrap

    function: str | None = args.function
    settings = load_settings(bootstrap.FUNCTIONS[function].required if function else ())
    catalog = load_catalog(settings.commands.catalog_file)
    if function:
        # Building (no I/O) surfaces the same start-up errors the function would stop on.
        bootstrap.build(function, settings)
    for warning in role_map_warnings(settings.role_map, catalog):
        say(f"{PROG} check-config: warning: {warning}")
    data = redacted(settings)
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    return 0
