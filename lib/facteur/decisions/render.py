"""What facteur says in Discord: texts and message bodies within Discord's limits. Pure.

Every body sets allowed_mentions to ping nobody; the Discord client enforces it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from facteur.decisions import delivery
from facteur.decisions.approval import MAX_GATES, Gate
from facteur.decisions.ids import APPROVE, CANCEL, LOGS, REJECT, RETRY, STOP, custom_id
from facteur.decisions.interactions import NO_MENTIONS, Attachment, clip, safe_name

if TYPE_CHECKING:
    from facteur.decisions.catalog import Command
    from facteur.decisions.limits import Refused
    from facteur.decisions.run_logs import LogStep, Shown

GREEN, RED, ORANGE, BLUE, GREY = 0x2ECC71, 0xE74C3C, 0xE67E22, 0x3498DB, 0x95A5A6
# One palette for a run's phase, in every message that shows one.
PHASE_COLOURS = {
    "Pending": GREY,
    "Submitted": BLUE,
    "Running": BLUE,
    "Succeeded": GREEN,
    "Failed": RED,
    "Error": ORANGE,
    "Deleted": GREY,
}
SUMMARY_LIMIT = 300
_VALUE_LIMIT = 80

_PRIMARY, _SECONDARY, _SUCCESS, _DANGER, _LINK = 1, 2, 3, 4, 5
_LABELS = {
    CANCEL: ("Cancel", _DANGER),
    RETRY: ("Retry", _PRIMARY),
    LOGS: ("Logs", _SECONDARY),
    STOP: ("Stop the run", _DANGER),
}


def _button(
    action: str, ref: str, label: str, style: int, step: str | None = None
) -> dict[str, Any]:
    return {
        "type": 2,
        "style": style,
        "label": clip(label, 80),
        "custom_id": custom_id(action, ref, step),
    }


def buttons(
    *, url: str, ref: str | None, actions: Sequence[str], gates: Sequence[Gate] = ()
) -> list[dict[str, Any]]:
    """Action rows: Open in Argo and the actions that apply to the run now, then Approve and
    Reject for each approval gate that waits (at most approval.MAX_GATES)."""
    row: list[dict[str, Any]] = [{"type": 2, "style": _LINK, "label": "Open in Argo", "url": url}]
    if not ref:
        return [{"type": 1, "components": row}]
    row += [_button(action, ref, *_LABELS[action]) for action in actions]
    return [{"type": 1, "components": row}, *gate_rows(ref, gates)]


def gate_rows(ref: str, gates: Sequence[Gate]) -> list[dict[str, Any]]:
    """A row of Approve and Reject for each gate, at most approval.MAX_GATES."""
    rows = []
    for gate in gates[:MAX_GATES]:
        name = clip(gate.name, 60)
        approve = _button(APPROVE, ref, f"Approve {name}", _SUCCESS, gate.step)
        reject = _button(REJECT, ref, f"Reject {name}", _DANGER, gate.step)
        rows.append({"type": 1, "components": [approve, reject]})
    return rows


# -- sentences ---------------------------------------------------------------------------------
# Every sentence a user reads is here, so that wording, tone and limits are reviewed in one file.

STORE_UNAVAILABLE = "facteur's session store is unavailable."
NOTHING_CHANGED = "nothing changed."
NO_RECENT_RUNS = "You have no recent facteur runs."
NOT_A_WORKFLOW_NAME = "That is not a workflow name."
NOT_OUR_BUTTON = "This button is not facteur's."
UNSUPPORTED_INTERACTION = "This action is not supported."
RUN_ALREADY_FINISHED = "This run has already finished."
ONLY_FAILED_RUNS_RETRY = "Only a failed run can be retried."
ALREADY_RETRIED = "This attempt has already been retried."
ALREADY_STOPPING = "This run is already being stopped."
NAMED_RUN_TITLE = "facteur run:"
NOT_RECORDED = "facteur could not record this run, so its outcome may not be reported here."
DELETED_BEFORE_OUTCOME = "The workflow was deleted before it reported an outcome."
# Reasons a command was not started, completing "`/x` was not started: <reason>".
NO_TEMPLATE_CONFIGURED = "no WorkflowTemplate is configured for it"
NO_TEMPLATE_NAMED = "no WorkflowTemplate was named for it"
BUILTIN_UNAVAILABLE = "this built-in is not available"
# facteur's own TLS settings (ArgoTLSError), not Argo's refusal; the log names the exact fix.
ARGO_NOT_TRUSTED = (
    "facteur cannot reach the Argo server securely; "
    "an operator must fix its TLS settings (argo.ca_file)"
)


def nothing_changed(problem: str) -> str:
    """A refused click: what went wrong, and that the run was left as it was."""
    return f"{problem}; {NOTHING_CHANGED}"


def store_unavailable_for_click() -> str:
    return nothing_changed(STORE_UNAVAILABLE.removesuffix("."))


def run_unknown() -> str:
    return nothing_changed("facteur no longer knows this run")


def no_argo_configured() -> str:
    return nothing_changed("facteur has no Argo server configured")


def click_not_accepted(action: str) -> str:
    return nothing_changed(f"facteur couldn't take your {safe_name(action)} right now")


# What a refused click could not do, completing "You can't … `/plan` runs".
_CLICK_VERBS = {STOP: "cancel", LOGS: "read the logs of", REJECT: "reject"}


def click_denied(action: str, command: str, reason: str) -> str:
    verb = _CLICK_VERBS.get(action, safe_name(action))
    return f"You can't {verb} `/{safe_name(command)}` runs: {reason}."


def argo_refused_action(action: str, reason: str) -> str:
    return f"Argo refused to {safe_name(action)} the run: {clip(reason, 500)}"


def argo_refused(reason: str) -> str:
    return f"Argo refused it: {reason}"


def unknown_run(workflow: str) -> str:
    return f"facteur knows no run named `{workflow}`."


def unknown_command(name: str) -> str:
    return f"Unknown command `/{safe_name(name)}`."


def not_a_slash_command(name: str) -> str:
    return f"`{safe_name(name)}` is not one of facteur's slash commands, so it does nothing."


def unknown_subcommand(name: str, subcommand: str) -> str:
    return f"`/{safe_name(name)}` has no subcommand `{safe_name(subcommand)}`."


def denied(name: str, reason: str) -> str:
    return f"You can't run `/{safe_name(name)}`: {reason}."


def wrong_channel(name: str, channels: Sequence[str]) -> str:
    """A command used outside its channels: where it may be used (channel mentions link, and
    ping nobody)."""
    shown = ", ".join(f"<#{channel}>" for channel in channels[:10])
    more = f" and {len(channels) - 10} more" if len(channels) > 10 else ""
    return f"`/{safe_name(name)}` can only be used in {shown}{more}."


def invalid_options(name: str, problems: Sequence[str]) -> str:
    listed = "\n".join(f"• {problem}" for problem in problems)
    return f"`/{safe_name(name)}` was not sent:\n{listed}"


def not_accepted(name: str) -> str:
    return (
        f"facteur couldn't accept `/{safe_name(name)}` right now, so nothing was started. "
        "Please try again in a moment."
    )


def limited(name: str, refused: Refused) -> str:
    """A command over its cooldown or quota: the limit, and when it may run again (a Discord
    timestamp, shown in the reader's zone and kept current)."""
    rate = refused.limit.rate
    runs = "run" if rate.count == 1 else "runs"
    who = "for each person" if refused.limit.scope == "user" else "on this server"
    return (
        f"`/{safe_name(name)}` is limited to {rate.count} {runs} per "
        f"{window_text(rate.seconds)} {who}; you can run it again {_when(refused.retry_at)}."
    )


def window_text(seconds: int) -> str:
    """600 -> "10 minutes", 3600 -> "hour", 90 -> "90 seconds": the largest whole unit."""
    unit, size = next(
        (unit, size)
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
        if seconds % size == 0
    )
    amount = seconds // size
    return unit if amount == 1 else f"{amount} {unit}s"


def not_started(name: str, reason: str) -> str:
    return f"`/{safe_name(name)}` was not started: {clip(reason, 500)}"


ARGO_DOWN = "the Argo server is unavailable"
FACTEUR_DOWN = "facteur could not handle it"


def still_trying(name: str, reason: str) -> str:
    """Said once, after the first failed attempt, while Knative redelivers."""
    return (
        f"`/{safe_name(name)}` is not started yet: {reason}. "
        f"facteur keeps trying for {delivery.budget_text()}."
    )


def gave_up(name: str, reason: str) -> str:
    """Said once, by the dead-letter path, when the delivery budget is spent."""
    return (
        f"`/{safe_name(name)}` was not started: {reason}, and facteur stopped trying after "
        f"{delivery.budget_text()}. Please try again later."
    )


def click_gave_up(action: str) -> str:
    return nothing_changed(f"facteur could not carry out the {action} in time")


def workflow_url(ui_url: str, namespace: str, name: str) -> str:
    return f"{ui_url.rstrip('/')}/workflows/{quote(namespace, safe='')}/{quote(name, safe='')}"


def text(content: str) -> dict[str, Any]:
    """A plain message body for a webhook edit, a follow-up or a channel post."""
    return {"content": clip(content), "allowed_mentions": NO_MENTIONS}


def phase_colour(phase: str | None) -> int:
    return PHASE_COLOURS.get(phase or "", GREY)


def request_summary(options: Sequence[Any]) -> str | None:
    """What was asked, short: `objective: ship it · project: facteur`, each value cut to 80
    characters and the whole to 300; None without options. Newlines and backticks would break
    the line it is shown in, so they become spaces and quotes."""
    parts = []
    for option in options:
        if not isinstance(option, dict) or not isinstance(option.get("name"), str):
            continue
        value = option.get("value")
        if value is None or isinstance(value, dict | list):
            continue
        text = " ".join(str(value).replace("`", "'").split())
        parts.append(f"{safe_name(option['name'])}: {clip(text, _VALUE_LIMIT)}")
    return clip(" · ".join(parts), SUMMARY_LIMIT) if parts else None


def _request_fields(user_id: str | None, summary: str | None) -> list[dict[str, Any]]:
    """Who asked (a mention, which allowed_mentions keeps from pinging) and what they asked."""
    fields = []
    if user_id:
        fields.append({"name": "Requested by", "value": f"<@{user_id}>", "inline": True})
    if summary:
        fields.append({"name": "Request", "value": clip(summary, 1024), "inline": False})
    return fields


def _when(seconds: float) -> str:
    """A Discord timestamp, shown in each reader's own zone and kept current ("5 minutes ago")."""
    return f"<t:{int(seconds)}:R>"


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def _footer(correlation_id: str) -> dict[str, str]:
    return {"text": clip(f"correlation {correlation_id}", 2048)}


def submitted(
    *,
    command: str,
    workflow: str,
    namespace: str,
    correlation_id: str,
    ui_url: str,
    last_correlation_id: str | None = None,
    ref: str | None = None,
    note: str | None = None,
    user_id: str | None = None,
    summary: str | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    lines = [f"Started `/{safe_name(command)}` as workflow `{workflow}`."]
    if last_correlation_id:
        lines.append(f"Last request correlation: `{last_correlation_id}`")
    if note:
        lines.append(note)
    url = workflow_url(ui_url, namespace, workflow)
    fields = [{"name": "Namespace", "value": clip(namespace, 1024), "inline": True}]
    if started_at is not None:
        fields.append({"name": "Started", "value": _when(started_at), "inline": True})
    fields += _request_fields(user_id, summary)
    embed: dict[str, Any] = {
        "title": clip(f"/{safe_name(command)}", 256),
        "url": url,
        "color": PHASE_COLOURS["Running"],
        "fields": fields,
        "footer": _footer(correlation_id),
    }
    if started_at is not None:
        embed["timestamp"] = _iso(started_at)
    return {
        "content": clip("\n".join(lines)),
        "embeds": [embed],
        "components": buttons(url=url, ref=ref, actions=[CANCEL]),
        "allowed_mentions": NO_MENTIONS,
    }


def live(
    *,
    command: str,
    workflow: str,
    namespace: str,
    correlation_id: str,
    ui_url: str,
    phase: str,
    ref: str | None = None,
    user_id: str | None = None,
    summary: str | None = None,
    started_at: float | None = None,
    progress: str | None = None,
    estimated_duration: float | None = None,
    message: str | None = None,
    running: Sequence[str] = (),
    gates: Sequence[Gate] = (),
    gates_in_thread: bool = False,
    waiting_for: str | None = None,
) -> dict[str, Any]:
    """A run's message while it goes: its phase, progress and time, as Argo shows them, and
    the approval gates that wait (with their buttons, unless those are in the run's thread)."""
    url = workflow_url(ui_url, namespace, workflow)
    fields: list[dict[str, Any]] = [{"name": "Phase", "value": clip(phase, 1024), "inline": True}]
    if progress:
        fields.append({"name": "Progress", "value": f"{progress} steps", "inline": True})
    if started_at is not None:
        fields.append({"name": "Started", "value": _when(started_at), "inline": True})
        if estimated_duration:
            eta = _when(started_at + estimated_duration)
            fields.append({"name": "Expected to end", "value": eta, "inline": True})
    if running:
        shown = ", ".join(f"`{clip(name, 60)}`" for name in running[:5])
        more = f" and {len(running) - 5} more" if len(running) > 5 else ""
        fields.append({"name": "Running now", "value": clip(shown + more, 1024), "inline": False})
    if gates:
        where = " (answer in the run's thread)" if gates_in_thread else ""
        fields.append(
            {"name": "Waiting for approval", "value": clip(_gate_lines(gates) + where, 1024)}
        )
    if phase == "Pending" and waiting_for:
        behind = f"`{clip(waiting_for, 100)}`"
        fields.append({"name": "Queued behind", "value": behind, "inline": False})
    if message and phase == "Pending":
        # Argo names what the run waits for: a mutex, a semaphore, a parallelism limit.
        fields.append({"name": "Queued", "value": clip(message, 1024), "inline": False})
    fields += _request_fields(user_id, summary)
    embed: dict[str, Any] = {
        "title": clip(f"/{safe_name(command)}", 256),
        "url": url,
        "color": phase_colour(phase),
        "fields": fields,
        "footer": _footer(correlation_id),
    }
    if started_at is not None:
        embed["timestamp"] = _iso(started_at)
    run = f"`/{safe_name(command)}`"
    if gates:
        content = f"{run} is waiting for approval as workflow `{workflow}`: {_gate_names(gates)}."
    elif phase == "Pending":
        behind = f", behind `{waiting_for}`" if waiting_for else ""
        content = f"{run} is queued as workflow `{workflow}`{behind}."
    else:
        content = f"{run} is running as workflow `{workflow}`."
    # Logs once a step may have written some; Pending runs have no pod yet.
    actions = [CANCEL] if phase == "Pending" else [CANCEL, LOGS]
    return {
        "content": clip(content),
        "embeds": [embed],
        "components": buttons(
            url=url, ref=ref, actions=actions, gates=() if gates_in_thread else gates
        ),
        "allowed_mentions": NO_MENTIONS,
    }


def _gate_names(gates: Sequence[Gate]) -> str:
    return ", ".join(f"`{clip(gate.name, 60)}`" for gate in gates[:MAX_GATES])


def _gate_lines(gates: Sequence[Gate]) -> str:
    lines = []
    for gate in gates[:MAX_GATES]:
        line = f"`{clip(gate.name, 60)}`"
        if gate.deadline is not None:
            line += f", goes on by itself {_when(gate.deadline)}"
        lines.append(line)
    if len(gates) > MAX_GATES:
        lines.append(f"and {len(gates) - MAX_GATES} more in Argo")
    return "\n".join(lines)


def gate_waiting(*, command: str, workflow: str, ref: str, gates: Sequence[Gate]) -> dict[str, Any]:
    """For the run's thread: which steps wait for approval, with their buttons."""
    content = f"`/{safe_name(command)}` run `{workflow}`: waiting for approval.\n"
    return {
        "content": clip(content + _gate_lines(gates)),
        "components": gate_rows(ref, gates),
        "allowed_mentions": NO_MENTIONS,
    }


def gate_answered(
    *,
    command: str,
    workflow: str,
    namespace: str,
    ui_url: str,
    gate: str,
    approved: bool,
    user_id: str,
    ref: str | None,
    stopped: bool = False,
    on_card: bool = True,
) -> dict[str, Any]:
    """The message a gate was answered on: who answered, and what facteur did."""
    verb = "approved" if approved else "rejected"
    did = "; the run is stopping" if stopped else ""
    content = (
        f"`/{safe_name(command)}` run `{workflow}`: `{clip(gate, 60)}` {verb} by <@{user_id}>{did}."
    )
    url = workflow_url(ui_url, namespace, workflow)
    components = buttons(url=url, ref=ref, actions=[] if stopped else [CANCEL, LOGS])
    return {
        "content": clip(content),
        "components": components if on_card else [],
        "allowed_mentions": NO_MENTIONS,
    }


def status_report(
    *,
    command: str,
    workflow: str | None,
    namespace: str | None,
    correlation_id: str,
    phase: str | None,
    received_at: float,
    ui_url: str | None,
    duration: float | None = None,
    title: str = NAMED_RUN_TITLE,
    summary: str | None = None,
) -> dict[str, Any]:
    fields = [
        {"name": "Command", "value": f"/{safe_name(command)}", "inline": True},
        {"name": "Phase", "value": clip(phase or "unknown", 1024), "inline": True},
        {"name": "Requested", "value": _when(received_at), "inline": True},
    ]
    if duration is not None:
        fields.append({"name": "Ran for", "value": duration_text(duration), "inline": True})
    elif phase in ("Pending", "Running", "Submitted"):
        # Still going: Discord keeps "5 minutes ago" current, where a figure would go stale.
        fields.append({"name": "Running since", "value": _when(received_at), "inline": True})
    embed: dict[str, Any] = {
        "title": clip(workflow or "not started", 256),
        "color": phase_colour(phase),
        "fields": fields,
        "footer": _footer(correlation_id),
        "timestamp": _iso(received_at),
    }
    if summary:
        fields.append({"name": "Request", "value": clip(summary, 1024), "inline": False})
    if workflow and namespace and ui_url:
        embed["url"] = workflow_url(ui_url, namespace, workflow)
    return {"content": title, "embeds": [embed], "allowed_mentions": NO_MENTIONS}


RECENT_RUNS_TITLE = "Your recent facteur runs, newest first:"
# /status lists at most this many runs: one embed field each, well inside Discord's 25 fields
# and 6,000 characters an embed may hold.
MAX_LISTED_RUNS = 10
_LIST_BUDGET = 5000


@dataclass(frozen=True)
class RunLine:
    """One run in /status's list: what was asked, and its phase now."""

    command: str
    workflow: str | None
    namespace: str | None
    phase: str | None
    received_at: float
    summary: str | None = None


def status_list(runs: Sequence[RunLine], ui_url: str | None) -> dict[str, Any]:
    """The caller's recent runs in the order given (newest first), one embed field each: the
    command and workflow, the phase, when it was asked, a link to Argo and what was asked."""
    fields: list[dict[str, Any]] = []
    budget = _LIST_BUDGET
    for run in runs[:MAX_LISTED_RUNS]:
        name = clip(f"/{safe_name(run.command)} · {run.workflow or 'not started'}", 256)
        parts = [f"**{clip(run.phase or 'unknown', 100)}**", f"requested {_when(run.received_at)}"]
        if run.workflow and run.namespace and ui_url:
            parts.append(f"[Open in Argo]({workflow_url(ui_url, run.namespace, run.workflow)})")
        value = " · ".join(parts)
        if run.summary:
            value += "\n" + clip(run.summary, 200)
        value = clip(value, 1024)
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        fields.append({"name": name, "value": value, "inline": False})
    embed: dict[str, Any] = {
        "title": "Recent runs",
        "color": phase_colour(runs[0].phase if runs else None),
        "fields": fields,
    }
    return {"content": RECENT_RUNS_TITLE, "embeds": [embed], "allowed_mentions": NO_MENTIONS}


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


# Discord caps an embed at 25 fields and 6000 characters in all; leave room for the rest.
_MAX_FAILURE_FIELDS = 10
_FAILURE_BUDGET = 3500


def final_status(
    *,
    command: str,
    workflow: str,
    namespace: str,
    status: str,
    correlation_id: str,
    duration: float | None,
    failures: Sequence[tuple[str, str]],
    message: str | None,
    ui_url: str,
    ref: str | None = None,
    user_id: str | None = None,
    summary: str | None = None,
    started_at: float | None = None,
    ended_at: float | None = None,
) -> dict[str, Any]:
    """The outcome of a run: a colour-coded embed with its failed nodes, linked to Argo."""
    fields: list[dict[str, Any]] = [
        {"name": "Duration", "value": duration_text(duration), "inline": True},
    ]
    if started_at is not None:
        fields.append({"name": "Started", "value": _when(started_at), "inline": True})
    if ended_at is not None:
        fields.append({"name": "Ended", "value": _when(ended_at), "inline": True})
    fields += _request_fields(user_id, summary)
    budget = _FAILURE_BUDGET
    shown = 0
    for node, text in failures:
        name, value = clip(f"Failed: {node}", 256), clip(text or "(no message)", 1024)
        if shown == _MAX_FAILURE_FIELDS or len(name) + len(value) > budget:
            break
        fields.append({"name": name, "value": value, "inline": False})
        budget -= len(name) + len(value)
        shown += 1
    if shown < len(failures):
        more = len(failures) - shown
        fields.append({"name": "More failures", "value": f"{more} more in Argo", "inline": False})
    embed: dict[str, Any] = {
        "title": clip(f"/{safe_name(command)} {status.lower()}", 256),
        "url": workflow_url(ui_url, namespace, workflow),
        "color": phase_colour(status),
        "fields": fields,
        "footer": _footer(correlation_id),
    }
    if ended_at is not None:
        embed["timestamp"] = _iso(ended_at)
    if message:
        embed["description"] = clip(message, 1024)
    content = f"`/{safe_name(command)}` finished: **{status}**"
    # A deleted workflow cannot be retried or read; a failed one can.
    actions = [RETRY, LOGS] if status in ("Failed", "Error") else []
    return {
        "content": content,
        "embeds": [embed],
        "components": buttons(url=embed["url"], ref=ref, actions=actions),
        "allowed_mentions": NO_MENTIONS,
    }


def failed_steps(failures: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The failed steps, for the run's thread: one line each, within Discord's limit."""
    lines = [
        f"**{clip(node, 100)}**: {clip(text or '(no message)', 300)}" for node, text in failures
    ]
    return {"content": clip("Failed steps:\n" + "\n".join(lines)), "allowed_mentions": NO_MENTIONS}


def acted(
    *,
    command: str,
    workflow: str,
    namespace: str,
    ui_url: str,
    action: str,
    user_id: str,
    ref: str | None,
    attempt: int,
) -> dict[str, Any]:
    """The run's message after a button click: who did what, and the buttons that still apply."""
    run = f"`/{safe_name(command)}` run `{workflow}`"
    if action == CANCEL:
        # The mention shows who acted; allowed_mentions keeps it from pinging them.
        content, actions = f"{run}: cancelled by <@{user_id}>.", []
    else:
        content, actions = f"{run}: retried by <@{user_id}> (attempt {attempt}).", [CANCEL]
    url = workflow_url(ui_url, namespace, workflow)
    return {
        "content": clip(content),
        "components": buttons(url=url, ref=ref, actions=actions),
        "allowed_mentions": NO_MENTIONS,
    }


def whisper(content: str, components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ephemeral follow-up: only the person who clicked sees it."""
    body: dict[str, Any] = {"content": clip(content), "flags": 64, "allowed_mentions": NO_MENTIONS}
    if components:
        body["components"] = components
    return body


def confirm_stop(*, command: str, workflow: str, ref: str) -> dict[str, Any]:
    """Cancel's question: only its button acts, and only the one who clicked Cancel sees it."""
    question = f"Stop `/{safe_name(command)}` run `{workflow}`? Its running steps finish first."
    row = {"type": 1, "components": [_button(STOP, ref, *_LABELS[STOP])]}
    return whisper(question, [row])


def stop_confirmed(workflow: str) -> dict[str, Any]:
    """The question, answered: what the person who confirmed sees in its place."""
    return {
        "content": f"Stopping `{workflow}`.",
        "components": [],
        "allowed_mentions": NO_MENTIONS,
    }


def logs_picker(*, ref: str, steps: Sequence[LogStep]) -> dict[str, Any]:
    """Several steps have logs: a select menu picks one (at most 25, Discord's limit)."""
    options = [
        {
            "label": clip(step.name, 100),
            "value": step.step,
            "description": clip(f"{step.phase or 'unknown'}, pod {step.pod_name}", 100),
        }
        for step in steps[:25]
    ]
    menu = {
        "type": 3,
        "custom_id": custom_id(LOGS, ref),
        "options": options,
        "placeholder": "Which step's logs?",
        "min_values": 1,
        "max_values": 1,
    }
    more = f" (the first 25 of {len(steps)})" if len(steps) > 25 else ""
    return whisper(f"Several steps have logs{more}. Pick one:", [{"type": 1, "components": [menu]}])


def logs_shown(shown: Shown) -> tuple[dict[str, Any], tuple[Attachment, ...]]:
    """The step's lines as an ephemeral follow-up, with the file they did not fit in."""
    body = whisper(shown.text)
    if shown.file is None:
        return body, ()
    body["attachments"] = [{"id": 0, "filename": shown.file.filename}]
    return body, (shown.file,)


NO_LOGS_YET = "No step of this run has logs to show yet."
GATE_GONE = "This step is no longer waiting for approval; nothing changed."


def gate_already_answered(gate: str) -> str:
    return f"`{clip(gate, 60)}` has already been answered; nothing changed."


def logs_gone(step: str) -> str:
    return f"The logs of `{clip(step, 60)}` are gone: Argo no longer has its pod."


def approval_refused(reason: str) -> str:
    return nothing_changed(f"You can't answer this approval: {reason}")


def help_text(commands: Sequence[Command]) -> dict[str, Any]:
    """The commands a caller may run, with their options (`!` marks a required one)."""
    if not commands:
        return text("There are no facteur commands you may run here.")
    lines = ["Commands you may run here:"]
    for command in commands:
        options = " ".join(
            f"`{option.name}{'!' if option.required else ''}`" for option in command.options
        )
        lines.append(f"`/{command.name}` {options} — {command.description}".replace("  ", " "))
    lines.append("`!` marks a required option.")
    return text("\n".join(lines))
