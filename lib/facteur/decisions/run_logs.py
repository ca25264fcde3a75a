"""The Logs button: which steps have logs to show, and how they fit a message. Pure.

A step's last lines are shown in the message when they fit Discord's 2,000 characters, and
attached as a file when they do not. Secrets facteur knows are scrubbed first, as in its own logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from facteur.decisions import ids
from facteur.decisions.interactions import ATTACHMENT_LIMIT, CONTENT_LIMIT, Attachment
from facteur.decisions.workflow import NodeState

# A select menu holds at most 25 options (Discord).
MAX_CHOICES = 25
_FENCE = "```"
# A zero-width space between backticks: a step's own ``` cannot close facteur's code block.
_BROKEN_FENCE = "`\u200b`\u200b`"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class LogStep:
    step: str
    name: str
    pod_name: str
    phase: str | None


def steps_with_logs(workflow: str, nodes: Sequence[NodeState]) -> list[LogStep]:
    """The failed steps' pods; when none failed, the ones running now. Steps a button cannot
    name, or without a pod, are left out."""
    pods = [n for n in nodes if n.type == "Pod" and n.pod_name and ids.step_of(workflow, n.id)]
    failed = [n for n in pods if n.phase in ("Failed", "Error")]
    chosen = failed or [n for n in pods if n.phase == "Running"]
    return [
        LogStep(ids.step_of(workflow, n.id) or "", n.display_name, n.pod_name or "", n.phase)
        for n in chosen
    ]


def step_named(workflow: str, nodes: Sequence[NodeState], step: str) -> LogStep | None:
    """Any pod step of the run a select menu or button named, failed or not."""
    for node in nodes:
        if node.type == "Pod" and node.pod_name and ids.step_of(workflow, node.id) == step:
            return LogStep(step, node.display_name, node.pod_name, node.phase)
    return None


@dataclass(frozen=True)
class Shown:
    """A step's log as facteur answers it: the text of the message, and a file when needed."""

    text: str
    file: Attachment | None


def show(step: LogStep, lines: Sequence[str], scrub: Callable[[str], str]) -> Shown:
    """The lines, scrubbed, in a code block when they fit a message, else as `<step>.log`."""
    body = scrub("\n".join(line.rstrip("\n") for line in lines))
    title = f"Last {len(lines)} lines of `{_inline(step.name)}`:"
    if not body.strip():
        # Argo's log API answers a pod that is gone as one with no lines (it lists the run's
        # pods and finds none of that name), so both are said.
        return Shown(
            f"Argo has no log lines of `{_inline(step.name)}`: the step wrote none, or its pod "
            "is gone (Argo reads logs from the pod, or from an archive if one is set up).",
            None,
        )
    inline = f"{title}\n{_FENCE}\n{body.replace(_FENCE, _BROKEN_FENCE)}\n{_FENCE}"
    if len(inline) <= CONTENT_LIMIT:
        return Shown(inline, None)
    data = body.encode()[:ATTACHMENT_LIMIT]
    name = filename(step.name)
    return Shown(
        f"{title} they are attached as `{name}`.",
        Attachment(name, data, description=f"last lines of {step.name}"[:1024]),
    )


def filename(step_name: str) -> str:
    stem = _FILENAME_UNSAFE.sub("-", step_name).strip("-.")[:80] or "step"
    return f"{stem}.log"


def _inline(text: str) -> str:
    # Inside `code`: no backticks, no newlines.
    return " ".join(text.replace("`", "'").split())[:100]
