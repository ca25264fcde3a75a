"""Best-effort effects on the session store: done if Redis answers, logged if it does not.

Releasing a claim or recording a detail must never turn a handled command into a failure: the
claim expires by itself, and what the user was told already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from facteur.errors import SessionStoreError


def quietly(
    log: logging.Logger, what: str, effect: Callable[..., object], *args: Any, **kwargs: Any
) -> bool:
    """Run `effect(*args, **kwargs)`; False (and one error line naming `what`) when Redis
    failed."""
    try:
        effect(*args, **kwargs)
    except SessionStoreError as err:
        log.error("%s: %s", what, err)
        return False
    return True
