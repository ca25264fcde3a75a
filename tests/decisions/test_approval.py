"""Approval gates, read from a run's nodes, and how an answer is carried out. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from facteur.decisions import approval
from facteur.decisions.catalog import Approval
from facteur.decisions.workflow import NodeState

RUN = "plan-1000000000000000001"
STARTED = "2026-12-02T10:00:00Z"


def _gate(
    node_id: str = f"{RUN}-1234567890",
    *,
    phase: str = "Running",
    supplied: tuple[str, ...] = ("approve",),
    enum: tuple[str, ...] = ("YES", "NO"),
    seconds: float | None = 600,
) -> NodeState:
    return NodeState(
        node_id,
        "approve",
        "Suspend",
        phase,
        started_at=STARTED,
        supplied=supplied,
        choices=(("approve", enum),),
        suspend_seconds=seconds,
    )


def test_a_running_suspend_node_is_a_gate_with_its_deadline_and_parameter() -> None:
    [gate] = approval.gates(RUN, [_gate()], Approval())
    assert (gate.step, gate.name, gate.parameter, gate.allowed) == (
        "1234567890",
        "approve",
        "approve",
        ("YES", "NO"),
    )
    started = datetime(2026, 12, 2, 10, tzinfo=UTC).timestamp()
    assert gate.deadline == started + 600


@pytest.mark.parametrize(
    "node",
    [
        _gate(phase="Succeeded"),  # answered already
        _gate(node_id=RUN),  # the entrypoint: no step a button can name
        _gate(node_id="another-run-12"),
        NodeState(f"{RUN}-1", "build", "Pod", "Running"),
    ],
)
def test_other_nodes_are_no_gates(node: NodeState) -> None:
    assert approval.gates(RUN, [node], Approval()) == []


def test_a_gate_without_the_parameter_has_none_and_no_deadline_without_a_duration() -> None:
    [gate] = approval.gates(RUN, [_gate(supplied=(), seconds=None)], Approval())
    assert (gate.parameter, gate.deadline, gate.allowed) == (None, None, ())


def test_the_catalog_names_the_parameter() -> None:
    custom = Approval(parameter="go", yes="ship", no="hold")
    node = _gate(supplied=("go",))
    [gate] = approval.gates(RUN, [node], custom)
    assert gate.parameter == "go"
    assert approval.answer(gate, custom, approve=True, user_id="7").outputs == {"go": "ship"}


@pytest.mark.parametrize(
    ("requester", "clicker", "self_approve", "refused"),
    [("1", "1", False, True), ("1", "2", False, False), ("1", "1", True, False)],
)
def test_the_two_person_rule(
    requester: str, clicker: str, self_approve: bool, refused: bool
) -> None:
    problem = approval.self_approval_problem(requester, clicker, self_approve=self_approve)
    assert (problem is not None) is refused


def test_approve_and_reject_with_the_parameter_set_it_and_resume() -> None:
    [gate] = approval.gates(RUN, [_gate()], Approval())
    yes = approval.answer(gate, Approval(), approve=True, user_id="42")
    no = approval.answer(gate, Approval(), approve=False, user_id="42")
    assert (yes.outputs, yes.resume, yes.message) == (
        {"approve": "YES"},
        True,
        "Approved by Discord user 42 via facteur",
    )
    assert (no.outputs, no.resume, no.message) == (
        {"approve": "NO"},
        True,
        "Rejected by Discord user 42 via facteur",
    )


def test_without_the_parameter_approve_resumes_and_reject_stops() -> None:
    [gate] = approval.gates(RUN, [_gate(supplied=())], Approval())
    assert approval.answer(gate, Approval(), approve=True, user_id="4").resume is True
    rejected = approval.answer(gate, Approval(), approve=False, user_id="4")
    assert (rejected.outputs, rejected.resume) == (None, False)


def test_a_gate_that_declares_answered_by_gets_who_answered_there_too() -> None:
    [gate] = approval.gates(RUN, [_gate(supplied=("approve", "answered_by"))], Approval())
    assert gate.keeps_answerer
    no = approval.answer(gate, Approval(), approve=False, user_id="42")
    assert no.outputs == {"answered_by": "42", "approve": "NO"}
    [bare] = approval.gates(RUN, [_gate(supplied=("answered_by",))], Approval())
    rejected = approval.answer(bare, Approval(), approve=False, user_id="42")
    assert (rejected.outputs, rejected.resume) == ({"answered_by": "42"}, False)


def test_catalog_values_the_nodes_enum_does_not_allow_are_named() -> None:
    [gate] = approval.gates(RUN, [_gate(enum=("approve", "deny"))], Approval())
    assert approval.value_problem(gate, Approval()) == (
        "the step's `approve` allows approve, deny, not YES, NO"
    )
    assert approval.value_problem(gate, Approval(yes="approve", no="deny")) is None


def test_a_gate_set_already_is_only_resumed_and_refuses_the_other_answer() -> None:
    node = NodeState(
        f"{RUN}-77", "approve", "Suspend", "Running", supplied=(), outputs=(("approve", "NO"),)
    )
    [gate] = approval.gates(RUN, [node], Approval())
    assert (gate.parameter, gate.answered) == ("approve", "NO")
    again = approval.answer(gate, Approval(), approve=False, user_id="4")
    assert (again.outputs, again.resume) == (None, True)
    assert approval.answered_otherwise(gate, Approval(), approve=True)
    assert not approval.answered_otherwise(gate, Approval(), approve=False)
