"""Stand-ins for the local loop (dev.embedded): a dry-run Argo and a console Discord.

They let a newcomer watch a command travel with no cluster and no accounts. They are used only
when dev.embedded is on AND the real setting is absent, and every line they print says so, so
that a forgotten setting in production fails at start-up instead of silently dry-running.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from facteur.adapters.argo import create_request
from facteur.decisions import ids
from facteur.decisions.journey import Delivered, ReplyTo
from facteur.decisions.workflow import NodeState, Submitted, WorkflowRequest, WorkflowState

log = logging.getLogger("facteur.standins")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# Discord's epoch: a snowflake's top bits are milliseconds since then.
DISCORD_EPOCH_MS = 1_420_070_400_000
_SNOWFLAKE_IN_NAME = re.compile(r"-([1-9][0-9]{15,19})(?:-|$)")
STEPS = 5


@dataclass(frozen=True)
class Lifecycle:
    """What the dry run shows of a run, by its age (from the interaction ID in its name):
    Pending, then Running through its steps, then `outcome`."""

    outcome: str = "Succeeded"
    seconds: float = 20.0

    def state(self, namespace: str, name: str, now: float) -> WorkflowState:
        match = _SNOWFLAKE_IN_NAME.search(name)
        if match is None:
            return WorkflowState(name, namespace, "Running", None, None, "dry run")
        born = ((int(match[1]) >> 22) + DISCORD_EPOCH_MS) / 1000
        age, pending = max(0.0, now - born), self.seconds * 0.15
        started = _iso(born + pending)
        if age < pending:
            message = "dry run: waiting for a dry-run lock"
            return WorkflowState(name, namespace, "Pending", None, None, message)
        if age < self.seconds:
            done = min(STEPS - 1, int((age - pending) / (self.seconds - pending) * STEPS))
            return WorkflowState(
                name,
                namespace,
                "Running",
                started,
                None,
                "dry run",
                progress=f"{done}/{STEPS}",
                estimated_duration=self.seconds - pending,
            )
        ended = _iso(born + self.seconds)
        return WorkflowState(
            name, namespace, self.outcome, started, ended, "dry run", progress=f"{STEPS}/{STEPS}"
        )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class DryRunArgo:
    """Logs the exact request it would send to the Argo Server and creates nothing; shows each
    run going through a Lifecycle, so that the local loop's messages change as a real run's do."""

    def __init__(self, lifecycle: Lifecycle | None = None) -> None:
        self.lifecycle = lifecycle or Lifecycle()

    def submit(self, request: WorkflowRequest) -> Submitted:
        body = create_request(request)
        namespace, name = request.namespace, request.name
        _say(
            f"[argo DRY RUN: no argo.server_url] would POST /api/v1/workflows/{namespace} "
            f"creating workflow {name}:\n{json.dumps(body, indent=2)}"
        )
        return Submitted(name=name, namespace=namespace, uid=None, created=True)

    def get_workflow(self, namespace: str, name: str) -> WorkflowState | None:
        # `facteur callback` plays the exit handler at any point before the lifecycle ends.
        return self.lifecycle.state(namespace, name, time.time())

    def get_nodes(self, namespace: str, name: str) -> list[NodeState]:
        # The lifecycle's steps: those done Succeeded, the next one Running.
        state = self.lifecycle.state(namespace, name, time.time())
        done = int((state.progress or "0/0").split("/")[0])
        phases = ["Succeeded"] * done + (["Running"] if state.phase == "Running" else [])
        return [
            NodeState(f"{name}-{n}", f"step-{n + 1}", "Pod", phase)
            for n, phase in enumerate(phases)
        ]

    def find_by_ref(self, namespace: str, ref: str) -> list[WorkflowState]:
        # A dry run keeps no workflow, so nothing carries a reference: Redis alone resolves it.
        return []

    def list_unfinished(self, namespace: str, limit: int = 500) -> list[WorkflowState]:
        return []

    def stop(self, namespace: str, name: str, message: str | None = None) -> None:
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/stop", "stopping", name)

    def terminate(self, namespace: str, name: str) -> None:
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/terminate", "terminating", name)

    def retry(self, namespace: str, name: str) -> None:
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/retry", "retrying", name)

    def resubmit(self, namespace: str, name: str) -> Submitted:
        # Argo names the new run itself; a dry run makes up a name of the same shape.
        again = f"{name[: ids.MAX_WORKFLOW_NAME - 6]}-{secrets.token_hex(2)}"
        self._would(f"PUT /api/v1/workflows/{namespace}/{name}/resubmit", "resubmitting", name)
        return Submitted(name=again, namespace=namespace, uid=None, created=True)

    @staticmethod
    def _would(request: str, doing: str, name: str) -> None:
        _say(f"[argo DRY RUN: no argo.server_url] would {request} ({doing} workflow {name})")


CONSOLE_MESSAGE_ID = "1100000000000000001"
CONSOLE_THREAD_ID = "1100000000000000002"


class ConsoleDiscord:
    """Prints every message facteur would send to Discord."""

    def reply(self, to: ReplyTo, message: dict[str, Any], *, now: float | None = None) -> Delivered:
        self._print(message, to.mention_user_id)
        # An ID of Discord's shape, so that a thread can be started from the message.
        return Delivered(via="interaction", message_id=CONSOLE_MESSAGE_ID)

    def start_thread(self, channel_id: str, message_id: str, name: str) -> str:
        _say(f"[discord CONSOLE] started the thread {name!r} from the run's message")
        return CONSOLE_THREAD_ID

    def post_to_thread(self, thread_id: str, message: dict[str, Any]) -> None:
        _say("[discord CONSOLE] in the run's thread:")
        self._print(message, None)

    def archive_thread(self, thread_id: str) -> None:
        _say("[discord CONSOLE] archived the run's thread")

    def edit_original(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        self._print(message, None)
        return {}

    def follow_up(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        self._print(message, None)
        return {}

    @staticmethod
    def _print(message: dict[str, Any], mention_user_id: str | None) -> None:
        content = message.get("content", "")
        lines = [f"[discord CONSOLE: no bot token] to user {mention_user_id}: {content}"]
        for embed in message.get("embeds") or []:
            lines.append(f"  [{embed.get('title', '')}] {embed.get('url', '')}")
            if embed.get("description"):
                lines.append(f"  {embed['description']}")
            lines.extend(f"  {f['name']}: {f['value']}" for f in embed.get("fields", []))
        lines.extend(_button_lines(message.get("components") or []))
        _say("\n".join(lines))


def _button_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line a button: a link's URL, or the `facteur click` command that clicks it."""
    lines = []
    for row in rows:
        for button in row.get("components") or []:
            label = button.get("label", "")
            if "url" in button:
                lines.append(f"  [{label}] {button['url']}")
            elif found := ids.CUSTOM_ID.fullmatch(button.get("custom_id") or ""):
                # A ref may start with "-", which would read as an option: then the whole id.
                target = found[0] if found[2].startswith("-") else f"{found[1]} {found[2]}"
                lines.append(f"  [{label}] facteur click {target}")
            elif "custom_id" in button:
                lines.append(f"  [{label}] custom_id {button['custom_id']}")
    return lines
