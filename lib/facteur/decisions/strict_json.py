"""Strict JSON for everything facteur reads from outside: RFC 8259 and bounded depth. Pure.

Python's json accepts `NaN`, `Infinity` and `1e999` (as inf), which no other hop can carry:
facteur would then emit a CloudEvent that is not JSON. And a body nested a few hundred levels
deep parses, then overflows the stack wherever it is walked recursively later.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Discord's interactions nest about 8 levels (data.options[].options[].value, resolved maps).
MAX_DEPTH = 32


class NotStrictJson(ValueError):
    """The text is not standard JSON, or nests deeper than MAX_DEPTH.

    Its message completes "body is …", so a caller can name what it read.
    """


def _no_constant(name: str) -> Any:
    raise NotStrictJson(f"not standard JSON ({name})")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotStrictJson(f"not standard JSON ({text} is out of range)")
    return value


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse standard JSON only; raise NotStrictJson for anything else."""
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except NotStrictJson:
        raise
    except (ValueError, RecursionError):
        raise NotStrictJson("not JSON") from None
    if depth_exceeds(value, max_depth):
        raise NotStrictJson(f"nested deeper than {max_depth} levels")
    return value


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than `limit`; iterative, so it cannot overflow itself."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def dumps(value: Any) -> str:
    """Compact standard JSON; refuses NaN and infinities instead of writing them."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
