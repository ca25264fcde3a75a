"""Approval gates: a run's Suspend nodes that wait for a person, and how an answer is given. Pure.

A gate is a Running node of type Suspend. Approve sets the node's supplied output parameter
(catalog `approval.parameter`, `approve` by default) to the value that means yes, when the node
declares it, and resumes only that node; Reject sets the value that means no and resumes, so the
template can branch, or stops the run when the node has no such parameter.

Who answered is written into the node's message before it is resumed. Argo replaces that message
on resume with "Resumed by: <caller>" whenever it knows the caller, which it does for facteur's
own token (server/auth/gatekeeper.go: client mode takes the token's claims; workflow/util/util.go
ResumeWorkflow), so a node that declares a supplied output parameter `answered_by` gets the
Discord user's ID there too: outputs survive the resume, and the template can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from facteur.decisions import ids
from facteur.decisions.catalog import Approval
from facteur.decisions.workflow import NodeState

# The supplied output parameter that keeps who answered, when a gate declares it.
ANSWERED_BY = "answered_by"
# How many gates one card offers buttons for: two rows of Approve/Reject each fit under the run's
# own row, within Discord's five action rows.
MAX_GATES = 3


@dataclass(frozen=True)
class Gate:
    node_id: str
    # What a button names the node by (ids.step_of).
    step: str
    name: str
    # When Argo resumes it by itself (node start + the suspend template's duration).
    deadline: float | None
    # The supplied output parameter facteur sets, when the node declares one.
    parameter: str | None
    # The values that parameter allows (its input's enum); empty when any value goes.
    allowed: tuple[str, ...] = ()
    # The node declares ANSWERED_BY: who answered is set there as well.
    keeps_answerer: bool = False
    # The parameter's value when it was set already (an answer whose resume did not happen, as
    # when facteur stopped between the two): only the resume is left to do.
    answered: str | None = None


@dataclass(frozen=True)
class Answer:
    """What facteur does to a gate: the node's message and outputs, then resume or stop."""

    message: str
    outputs: dict[str, str] | None
    # False: the run is stopped instead of the node resumed (Reject without a parameter).
    resume: bool


def gates(workflow: str, nodes: Sequence[NodeState], approval: Approval) -> list[Gate]:
    """The gates waiting now, in Argo's order: Running Suspend nodes a button can name."""
    found = []
    for node in nodes:
        if node.type != "Suspend" or node.phase != "Running":
            continue
        step = ids.step_of(workflow, node.id)
        if step is None:
            continue
        answered = dict(node.outputs).get(approval.parameter)
        declared = approval.parameter in node.supplied or answered is not None
        parameter = approval.parameter if declared else None
        allowed = dict(node.choices).get(approval.parameter, ()) if parameter else ()
        found.append(
            Gate(
                node_id=node.id,
                step=step,
                name=node.display_name,
                deadline=_deadline(node),
                parameter=parameter,
                allowed=tuple(allowed),
                keeps_answerer=ANSWERED_BY in node.supplied and approval.parameter != ANSWERED_BY,
                answered=answered,
            )
        )
    return found


def find(gates_now: Sequence[Gate], step: str | None) -> Gate | None:
    return next((gate for gate in gates_now if gate.step == step), None)


def self_approval_problem(requester: str, clicker: str, *, self_approve: bool) -> str | None:
    """The two-person rule: the requester may not answer their own run's gate, unless the
    command's catalog entry says self_approve."""
    if clicker == requester and not self_approve:
        return "you asked for this run, and another person must approve it"
    return None


def answer(gate: Gate, approval: Approval, *, approve: bool, user_id: str) -> Answer:
    """How to carry out an Approve or Reject on this gate."""
    verb = "Approved" if approve else "Rejected"
    message = f"{verb} by Discord user {user_id} via facteur"
    if gate.answered is not None:
        # Set before, and not resumed: Argo refuses a second set, and the value stands.
        return Answer(message, None, resume=True)
    outputs = {ANSWERED_BY: user_id} if gate.keeps_answerer else {}
    if gate.parameter is None:
        # Nothing for the template to branch on: a rejection can only stop the run.
        return Answer(message, outputs or None, resume=approve)
    outputs[gate.parameter] = approval.yes if approve else approval.no
    return Answer(message, outputs, resume=True)


def answered_otherwise(gate: Gate, approval: Approval, *, approve: bool) -> bool:
    """The parameter was set already, to the other answer than this click's."""
    if gate.answered is None:
        return False
    return gate.answered != (approval.yes if approve else approval.no)


def value_problem(gate: Gate, approval: Approval) -> str | None:
    """A catalog whose yes/no the node's enum does not allow: Argo would take it, the template
    would not know it. Named before anything is set."""
    if gate.parameter is None or not gate.allowed:
        return None
    missing = [v for v in (approval.yes, approval.no) if v not in gate.allowed]
    if not missing:
        return None
    allowed = ", ".join(gate.allowed)
    return f"the step's `{gate.parameter}` allows {allowed}, not {', '.join(missing)}"


def _deadline(node: NodeState) -> float | None:
    if node.suspend_seconds is None or not node.started_at:
        return None
    try:
        started = datetime.fromisoformat(node.started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return started + node.suspend_seconds
