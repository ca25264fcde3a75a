"""decisions/recovery.py: a session rebuilt from what workflow_submit writes on the workflow,
and nothing rebuilt from a workflow that is not facteur's or says something malformed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from facteur.decisions.ids import CUSTOM_ID, is_ref
from facteur.decisions.recovery import recover_by_ref, recover_session
from facteur.decisions.workflow import (
    LABEL_PREFIX,
    REF_LABEL,
    UNFINISHED_SELECTOR,
    WorkflowState,
    facteur_metadata,
    ref_selector,
    run_annotations,
    run_labels,
)
from facteur.errors import NotRecoverable

NOW = 1_800_000_000.0
RECEIVED = 1_799_999_000.25
IDS = {
    "command": "plan",
    "user_id": "800000000000000100",
    "interaction_id": "900000000000000001",
    "correlation_id": "0123456789abcdef0123456789abcdef",
}
REF = "0a1b2c3d4e5f607182"
APP = "800000000000000300"
NAME = "plan-900000000000000001"


def _state(
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **fields: Any,
) -> WorkflowState:
    """A workflow as workflow_submit creates it and Argo answers it back."""
    written_labels = run_labels(**IDS, ref=REF)
    written = run_annotations(
        **IDS,
        guild_id="800000000000000001",
        channel_id="800000000000000200",
        application_id=APP,
        received_at=RECEIVED,
    )
    values: dict[str, Any] = {
        "name": NAME,
        "namespace": "agents",
        "phase": "Running",
        "started_at": "2027-01-15T08:00:00Z",
        "finished_at": None,
        "message": None,
        "labels": written_labels if labels is None else labels,
        "annotations": written if annotations is None else annotations,
        "created_at": "2027-01-15T07:59:59Z",
    }
    return WorkflowState(**(values | fields))


def test_what_is_written_rebuilds_the_session_workflow_submit_recorded() -> None:
    session = recover_session(_state(), now=NOW, application_id=APP)
    assert session.model_dump() == {
        "correlation_id": IDS["correlation_id"],
        "interaction_id": IDS["interaction_id"],
        "command": "plan",
        "user_id": IDS["user_id"],
        "guild_id": "800000000000000001",
        "channel_id": "800000000000000200",
        "application_id": APP,
        "workflow_name": NAME,
        "namespace": "agents",
        "received_at": RECEIVED,
        "status": "Submitted",
        "message_id": None,  # not on the workflow: the outcome goes to the channel
        "finished_at": None,
        "ref": REF,
        "attempt": 1,
        "summary": None,  # user text: in Redis only, never on the workflow
        "thread_id": None,
    }


def test_nothing_secret_and_no_user_text_is_written() -> None:
    labels = run_labels(**IDS, ref=REF)
    notes = run_annotations(**IDS, guild_id=None, channel_id=None, received_at=RECEIVED)
    assert set(labels) == {
        "app.kubernetes.io/managed-by",
        *(LABEL_PREFIX + k for k in ("command", "user-id", "interaction-id", "correlation-id")),
        REF_LABEL,
    }
    assert notes[f"{LABEL_PREFIX}received-at"] == "1799999000.250"
    assert not any("token" in key for key in (*labels, *notes))


@pytest.mark.parametrize(
    ("phase", "ended"), [("Succeeded", True), ("Failed", True), ("Running", False)]
)
def test_a_run_that_ended_reads_as_reported_unless_its_report_is_due(
    phase: str, ended: bool
) -> None:
    state = _state(phase=phase, finished_at="2027-01-15T08:10:00Z" if ended else None)
    session = recover_session(state, now=NOW)
    assert (session.status, session.finished_at is not None) == (
        (phase, True) if ended else ("Submitted", False)
    )
    if ended:  # when Argo says it finished
        assert session.finished_at == datetime(2027, 1, 15, 8, 10, tzinfo=UTC).timestamp()
    due = recover_session(state, now=NOW, unreported=True)
    assert (due.status, due.finished_at) == ("Submitted", None)


def test_an_older_workflow_without_the_new_annotations_still_reports() -> None:
    # Before received-at, application-id and the ref label were written.
    labels = run_labels(**IDS)
    notes = run_annotations(**IDS, guild_id=None, channel_id="800000000000000200")
    session = recover_session(_state(labels=labels, annotations=notes), now=NOW, application_id=APP)
    assert (session.ref, session.application_id, session.guild_id) == (None, None, None)
    # The interaction's arrival is then the workflow's creation.
    assert session.received_at == datetime(2027, 1, 15, 7, 59, 59, tzinfo=UTC).timestamp()


def test_a_resubmitted_run_is_at_least_the_second_attempt() -> None:
    assert recover_session(_state(name=f"{NAME}-x7k2p"), now=NOW).attempt == 2


def _without(key: str) -> dict[str, str]:
    found = dict(_state().annotations)
    del found[LABEL_PREFIX + key]
    return found


def _with(**changes: str) -> dict[str, str]:
    return {
        **_state().annotations,
        **{LABEL_PREFIX + k.replace("_", "-"): v for k, v in changes.items()},
    }


def _labels(**changes: str | None) -> dict[str, str]:
    found = dict(_state().labels)
    for key, value in changes.items():
        full = key if "/" in key else LABEL_PREFIX + key.replace("_", "-")
        if value is None:
            found.pop(full, None)
        else:
            found[full] = value
    return found


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (_state(labels={}), "managed-by"),
        (_state(labels=_labels(**{"app.kubernetes.io/managed-by": "helm"})), "managed-by"),
        (_state(annotations=_without("command")), "command is missing or malformed"),
        (_state(annotations=_with(command="plan now")), "command is missing or malformed"),
        (_state(annotations=_with(user_id="ada")), "user-id is missing or malformed"),
        (_state(annotations=_without("interaction-id")), "interaction-id is missing"),
        (_state(annotations=_with(correlation_id="X" * 32)), "correlation-id is missing"),
        (_state(annotations=_with(channel_id="#general")), "channel-id is missing or malformed"),
        (_state(annotations=_with(guild_id="0")), "guild-id is missing or malformed"),
        (_state(annotations=_with(application_id="1e18")), "application-id is missing"),
        (_state(annotations=_with(received_at="soon")), "received-at is malformed"),
        (_state(annotations=_with(received_at="1e9")), "received-at is malformed"),
        (_state(annotations=_with(received_at="9999999999")), "received-at is out of range"),
        (
            _state(annotations=_without("received-at"), created_at=None),
            "neither when it was asked for nor created",
        ),
        (_state(labels=_labels(user_id="800000000000000999")), "user-id disagrees"),
        (_state(labels=_labels(correlation_id=None)), "correlation-id disagrees"),
        (_state(labels=_labels(ref="-leaked-")), "not a button reference"),
        (_state(name="plan-900000000000000002"), "not the one facteur gave"),
        (_state(name="deploy-900000000000000001"), "not the one facteur gave"),
        (_state(namespace="Agents"), "namespace or name is malformed"),
    ],
    ids=lambda item: item if isinstance(item, str) else "",
)
def test_anything_malformed_is_refused(state: WorkflowState, reason: str) -> None:
    with pytest.raises(NotRecoverable, match=reason):
        recover_session(state, now=NOW)


def test_another_applications_run_is_refused() -> None:
    with pytest.raises(NotRecoverable, match="another Discord application"):
        recover_session(_state(), now=NOW, application_id="800000000000000301")
    # Without an application to compare, or an annotation to compare with, it is not refused.
    assert recover_session(_state(), now=NOW).application_id == APP


def test_a_click_finds_the_newest_run_carrying_its_reference() -> None:
    original = _state(phase="Failed", finished_at="2027-01-15T08:10:00Z")
    again = _state(name=f"{NAME}-x7k2p", created_at="2027-01-15T08:20:00Z")
    session = recover_by_ref([again, original], REF, now=NOW)
    assert (session.workflow_name, session.attempt, session.status) == (again.name, 2, "Submitted")
    # A state that does not carry the reference is never taken for it.
    with pytest.raises(NotRecoverable, match="no workflow carries"):
        recover_by_ref([_state(labels=_labels(ref=None))], REF, now=NOW)


def test_references_are_label_values_and_selectors_carry_only_those() -> None:
    assert is_ref(REF) and CUSTOM_ID.fullmatch(f"facteur:cancel:{REF}")
    assert ref_selector(REF) == f"app.kubernetes.io/managed-by=facteur,{REF_LABEL}={REF}"
    for unsafe in ["-abcdefgh", "abcdefg_", "abc", "a,b=c,dddd", "x" * 33]:
        assert not is_ref(unsafe)
        with pytest.raises(ValueError):
            ref_selector(unsafe)
    # An older reference (token_urlsafe) that is not a label value is not written as one.
    assert REF_LABEL not in run_labels(**IDS, ref="-older_ref1")
    assert UNFINISHED_SELECTOR == (
        "app.kubernetes.io/managed-by=facteur,workflows.argoproj.io/completed!=true"
    )


def test_only_facteurs_own_labels_are_kept() -> None:
    found = facteur_metadata(
        {
            "app.kubernetes.io/managed-by": "facteur",
            "facteur.dev/ref": REF,
            "workflows.argoproj.io/phase": "Running",
            "facteur.dev/odd": 7,
        }
    )
    assert found == {"app.kubernetes.io/managed-by": "facteur", "facteur.dev/ref": REF}
    assert facteur_metadata(None) == {} and facteur_metadata(["x"]) == {}
    assert replace(_state(), labels=found).labels == found
