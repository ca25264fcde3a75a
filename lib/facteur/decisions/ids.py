"""Every identifier pattern facteur checks, in one place. Pure.

User text never becomes one of these: names, labels and URLs are built from values that match a
pattern here, so a pattern is also the line between "safe to place" and "only a parameter value".
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

# Discord's SnowflakeType (^(0|[1-9][0-9]*)$), bounded to the 20 digits a 64-bit ID can have.
# "0" is never a real ID, so it is refused too.
SNOWFLAKE = re.compile(r"[1-9][0-9]{0,19}")
# IDs an operator configures are real ones, and real ones have 17 digits or more.
CONFIGURED_SNOWFLAKE_DIGITS = 17

# RFC 1123: a label (namespaces) and a subdomain (workflow, template and account names).
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
NAMESPACE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Argo refuses workflow names over 63 characters (workflow/validate: maxCharsInObjectName),
# though Kubernetes would store up to 253.
MAX_WORKFLOW_NAME = 63
MAX_SUBDOMAIN = 253
WORKFLOW_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,61}[a-z0-9])?")

# facteur's buttons: custom_id "facteur:<action>:<ref>[:<step>]", where ref is an opaque
# session reference (never the workflow's name) that only facteur's Redis can resolve, and step
# names one node of the run by the digits Argo puts after the workflow's name in its ID.
BUTTON_PREFIX = "facteur"
CANCEL, RETRY = "cancel", "retry"
# STOP is the confirmation Cancel asks for; APPROVE and REJECT answer an approval gate; LOGS
# shows a step's logs (a select menu of that custom_id picks the step).
STOP, APPROVE, REJECT, LOGS = "stop", "approve", "reject", "logs"
BUTTON_ACTIONS = (CANCEL, STOP, RETRY, APPROVE, REJECT, LOGS)
# The role-map rule each button obeys: the confirmation is Cancel's, Reject is Approve's.
ACTION_RULES = {CANCEL: CANCEL, STOP: CANCEL, RETRY: RETRY, APPROVE: APPROVE, REJECT: APPROVE}
ACTION_RULES[LOGS] = LOGS
RULE_ACTIONS = tuple(dict.fromkeys(ACTION_RULES.values()))
# A form's custom_id names the command it stands for, and nothing a user could widen.
FORM_ID = re.compile(rf"{BUTTON_PREFIX}:form:([-_a-z0-9]{{1,32}})")
# Argo's node IDs are "<workflow>-<fnv32a of the node's name>" (Workflow.NodeID).
STEP = re.compile(r"[0-9]{1,10}")

# Role-map keys: a command (the catalog's name pattern), or a button rule on its runs.
ROLE_KEY = re.compile(rf"[-_a-z0-9]{{1,32}}(?::(?:{'|'.join(RULE_ACTIONS)}))?")
CUSTOM_ID = re.compile(
    rf"{BUTTON_PREFIX}:({'|'.join(BUTTON_ACTIONS)}):([A-Za-z0-9_-]{{8,32}})(?::([0-9]{{1,10}}))?"
)
# A button's reference that is also a Kubernetes label value (alphanumeric at both ends), so
# that a click can find its run by the label facteur.dev/ref in Argo. workflow_submit makes
# them from random bytes in hex; older ones (token_urlsafe) only Redis can resolve.
REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{6,30}[A-Za-z0-9]")
# What interaction_verify makes a correlation ID of: uuid4().hex.
CORRELATION_ID = re.compile(r"[0-9a-f]{32}")
# A command's name, as the catalog allows it (catalog.NAME_PATTERN).
COMMAND = re.compile(r"[-_a-z0-9]{1,32}")


def is_snowflake(value: Any, *, min_digits: int = 1) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) >= min_digits and bool(SNOWFLAKE.fullmatch(value))


def is_subdomain(value: Any, limit: int = MAX_SUBDOMAIN) -> TypeGuard[str]:
    # Length first: it also bounds the regex's work on hostile input.
    return isinstance(value, str) and len(value) <= limit and bool(SUBDOMAIN.fullmatch(value))


def is_namespace(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(NAMESPACE.fullmatch(value))


def is_workflow_name(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(WORKFLOW_NAME.fullmatch(value))


def is_ref(value: Any) -> TypeGuard[str]:
    """A button reference that a label selector may carry (REF)."""
    return isinstance(value, str) and bool(REF.fullmatch(value))


def custom_id(action: str, ref: str, step: str | None = None) -> str:
    base = f"{BUTTON_PREFIX}:{action}:{ref}"
    return f"{base}:{step}" if step else base


def step_of(workflow: str, node_id: str) -> str | None:
    """The digits that name a node of `workflow` in a button, or None for a node ID not of
    Argo's "<workflow>-<digits>" form (the entrypoint's, or a foreign one)."""
    prefix = f"{workflow}-"
    if not node_id.startswith(prefix):
        return None
    step = node_id[len(prefix) :]
    return step if STEP.fullmatch(step) else None


def node_id(workflow: str, step: str) -> str:
    """The node ID a button's step names in `workflow` (step_of's inverse)."""
    if not STEP.fullmatch(step):
        raise ValueError("not a step of a facteur button")
    return f"{workflow}-{step}"
