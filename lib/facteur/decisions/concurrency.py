"""One run at a time: the Argo mutex a command's run holds, named from its options. Pure.

A catalog entry's `concurrency.key` is a template over the command's options, such as
"{project}". The mutex is named after the command and that key, and the key's text is user text:
it is cut to a slug of [a-z0-9-] and followed by a hash of the whole text, so no user character
reaches Argo raw, and two keys that share a slug ("a/b" and "a-b") still get two locks.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

PREFIX = "facteur"
# A DNS label's length: Argo keys a mutex as "<namespace>/Mutex/<name>", and facteur keeps the
# name to what any Kubernetes name may hold.
MAX_NAME = 63
_HASH_CHARS = 10
_UNSAFE = re.compile(r"[^a-z0-9]+")
_FORMATTER = string.Formatter()


def key_problem(template: str, option_names: Sequence[str]) -> str | None:
    """What is wrong with a concurrency key template, or None: only plain `{option}` fields of
    the command's own options, and at least one of them or some literal text."""
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as err:
        return f"is not a key template ({err})"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if spec or conversion:
            return f"field {{{field}}} may not have a format or a conversion"
        if field not in option_names:
            known = ", ".join(option_names) or "none"
            return f"{{{field}}} is not an option of the command (its options: {known})"
    if not _slug(template) and not any(field for _, field, _, _ in parts):
        return "holds nothing to name a lock by"
    return None


def key_text(template: str, values: Mapping[str, Any]) -> str:
    """The key with the supplied option values in place (an absent option: empty)."""
    out = []
    for literal, field, _, _ in _FORMATTER.parse(template):
        out.append(literal)
        if field is not None:
            value = values.get(field)
            out.append("" if value is None else str(value))
    return "".join(out)


def mutex_name(command: str, template: str, values: Mapping[str, Any]) -> str:
    """The mutex for one command and key: facteur-<command>-<slug>-<hash>, at most 63 of
    [a-z0-9-]. Deterministic, so every run of the same key queues on the same lock."""
    text = key_text(template, values)
    digest = hashlib.sha256(f"{command}\0{text}".encode()).hexdigest()[:_HASH_CHARS]
    stem = f"{PREFIX}-{_slug(command)}"
    room = MAX_NAME - len(stem) - len(digest) - 2
    slug = _slug(text)[: max(0, room)].strip("-")
    return "-".join(part for part in (stem, slug, digest) if part)


def _slug(text: str) -> str:
    return _UNSAFE.sub("-", text.lower()).strip("-")
