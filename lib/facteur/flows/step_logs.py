"""command_route's Logs: a step's last lines from Argo's log API, privately to the one who
clicked, scrubbed of facteur's secrets; a select menu when several steps have some."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from facteur import logs
from facteur.decisions import render, run_logs
from facteur.decisions.catalog import Command
from facteur.decisions.interactions import Click
from facteur.decisions.journey import DispatchResult
from facteur.errors import ArgoError
from facteur.flows.click_replies import ClickReplies
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Argo


@dataclass(kw_only=True)
class StepLogs:
    replies: ClickReplies
    # facteur's secrets out of what a step printed (logs.Scrubber).
    scrub: Callable[[str], str]

    def show(self, click: Click, session: DispatchResult, entry: Command, argo: Argo) -> Outcome:
        """A Logs click that passed the role policy: the step it picked, or the one step with
        logs, or the menu to pick one. Read-only, so it needs no claim of its own."""
        name, namespace = session.workflow_name or "", session.namespace or ""
        try:
            nodes = argo.get_nodes(namespace, name)
        except ArgoError as err:
            return self.replies.whisper(click, render.argo_refused_action("read", err.reason))
        if click.step is not None:
            step = run_logs.step_named(name, nodes, click.step)
            if step is None:
                return self.replies.whisper(click, render.NO_LOGS_YET)
        else:
            steps = run_logs.steps_with_logs(name, nodes)
            if not steps:
                return self.replies.whisper(click, render.NO_LOGS_YET)
            if len(steps) > 1:
                picker = render.logs_picker(ref=session.ref or click.ref, steps=steps)
                return self.replies.whisper_message(click, picker)
            step = steps[0]
        try:
            lines = argo.logs(namespace, name, step.pod_name, tail_lines=entry.log_lines)
        except ArgoError as err:
            if err.status == 404:
                return self.replies.whisper(click, render.logs_gone(step.name))
            return self.replies.whisper(click, render.argo_refused_action("read", err.reason))
        logs.audit("workflow.logs", workflow=name, step=step.name, by=click.user_id)
        message, files = render.logs_shown(run_logs.show(step, lines, self.scrub))
        return self.replies.whisper_message(click, message, files)
