"""A forgotten session, rebuilt from the workflow itself. Pure.

workflow_submit writes on every workflow what it takes to report the run and to act on its
buttons (decisions/workflow.py: run_labels, run_annotations), never the interaction token. When
Redis has lost a session (flushed, or a new empty instance), status_callback and command_route
read the workflow back from Argo and rebuild the session here. Whatever does not hold together
is refused with NotRecoverable: another tool's workflow, a value that is not the ID it claims
to be, a label that disagrees with its annotation, a name facteur would not have given.

Without the token, the outcome goes to the run's channel (ReplyTo with no token). The message's
ID is not on the workflow: the Argo Server API offers no call that changes a workflow's metadata
after its creation, and facteur posts in the channel instead of editing that message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from facteur.decisions import ids
from facteur.decisions.callback import FINAL_STATUSES
from facteur.decisions.journey import DispatchResult
from facteur.decisions.workflow import (
    LABEL_PREFIX,
    MANAGED_BY,
    MANAGER,
    REF_LABEL,
    WorkflowState,
    label_value,
    workflow_name,
)
from facteur.errors import NotRecoverable

# How run_annotations writes received_at: Unix seconds with at most millisecond digits.
_SECONDS = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,6})?")
# A received_at later than this past the clock is not one facteur wrote.
CLOCK_SKEW_SECONDS = 300.0
# The IDs a label repeats (label_value of the annotation): both must agree.
_LABELLED = ("command", "user-id", "interaction-id", "correlation-id")


def recover_session(
    state: WorkflowState,
    *,
    now: float,
    application_id: str | None = None,
    unreported: bool = False,
) -> DispatchResult:
    """The session workflow_submit recorded for this run, as far as the workflow tells it.

    Status and finish follow Argo's phase: a run that has ended reads as reported (so that its
    Retry button works), unless `unreported` (a callback about to report it: pending until it
    has). `application_id`, when given, refuses another application's run. The attempt is 1,
    or 2 for a resubmitted run (Argo names it `<name>-xxxxx`): the count itself is not kept.
    """
    labels, notes = state.labels, state.annotations
    if labels.get(MANAGED_BY) != MANAGER:
        raise NotRecoverable("the workflow does not carry facteur's managed-by label")
    if not ids.is_namespace(state.namespace) or not ids.is_workflow_name(state.name):
        raise NotRecoverable("the workflow's namespace or name is malformed")
    command = _matching(notes, "command", ids.COMMAND)
    correlation_id = _matching(notes, "correlation-id", ids.CORRELATION_ID)
    user_id = _matching(notes, "user-id", ids.SNOWFLAKE)
    interaction_id = _matching(notes, "interaction-id", ids.SNOWFLAKE)
    given_ids = (command, user_id, interaction_id, correlation_id)
    for key, value in zip(_LABELLED, given_ids, strict=True):
        if labels.get(LABEL_PREFIX + key) != label_value(value):
            raise NotRecoverable(f"label {LABEL_PREFIX}{key} disagrees with its annotation")
    app = _snowflake(notes, "application-id")
    if application_id is not None and app is not None and app != application_id:
        raise NotRecoverable("the workflow belongs to another Discord application")
    ref = labels.get(REF_LABEL)
    if ref is not None and not ids.is_ref(ref):
        raise NotRecoverable(f"label {REF_LABEL} is not a button reference")
    given = workflow_name(command, interaction_id)
    if state.name == given:
        attempt = 1
    elif state.name.startswith(given + "-"):
        attempt = 2  # resubmitted: at least the second attempt
    else:
        raise NotRecoverable("the workflow's name is not the one facteur gave its interaction")
    ended = state.phase in FINAL_STATUSES and not unreported
    return DispatchResult(
        correlation_id=correlation_id,
        interaction_id=interaction_id,
        command=command,
        user_id=user_id,
        guild_id=_snowflake(notes, "guild-id"),
        channel_id=_snowflake(notes, "channel-id"),
        application_id=app,
        workflow_name=state.name,
        namespace=state.namespace,
        received_at=_received_at(notes, state.created_at, now),
        status=(state.phase or "") if ended else "Submitted",
        finished_at=(_instant(state.finished_at) or now) if ended else None,
        ref=ref,
        attempt=attempt,
    )


def recover_by_ref(
    states: Iterable[WorkflowState], ref: str, *, now: float, application_id: str | None = None
) -> DispatchResult:
    """The session behind a button: the newest run carrying its reference (a resubmitted run
    copies its original's labels, so both carry it)."""
    carrying = [state for state in states if state.labels.get(REF_LABEL) == ref]
    if not carrying:
        raise NotRecoverable("no workflow carries this button reference")
    newest = max(carrying, key=lambda s: (_instant(s.created_at) or 0.0, len(s.name), s.name))
    return recover_session(newest, now=now, application_id=application_id)


def _matching(notes: Mapping[str, str], key: str, pattern: re.Pattern[str]) -> str:
    value = notes.get(LABEL_PREFIX + key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise NotRecoverable(f"annotation {LABEL_PREFIX}{key} is missing or malformed")
    return value


def _snowflake(notes: Mapping[str, str], key: str) -> str | None:
    """An optional ID: absent is fine, malformed is not."""
    value = notes.get(LABEL_PREFIX + key)
    if value is None:
        return None
    if not ids.is_snowflake(value):
        raise NotRecoverable(f"annotation {LABEL_PREFIX}{key} is missing or malformed")
    return value


def _received_at(notes: Mapping[str, str], created_at: str | None, now: float) -> float:
    """Unix seconds the interaction arrived: the annotation, else when Argo created the run."""
    raw = notes.get(f"{LABEL_PREFIX}received-at")
    if raw is None:
        found = _instant(created_at)
        if found is None:
            raise NotRecoverable("the workflow says neither when it was asked for nor created")
        return found
    if not _SECONDS.fullmatch(raw):
        raise NotRecoverable(f"annotation {LABEL_PREFIX}received-at is malformed")
    seconds = float(raw)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > now + CLOCK_SKEW_SECONDS:
        raise NotRecoverable(f"annotation {LABEL_PREFIX}received-at is out of range")
    return seconds


def _instant(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time as Argo writes them, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
