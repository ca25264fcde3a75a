"""workflow_submit: submits a requested workflow to the Argo Server (CloudEvent).

Creates the workflow from its WorkflowTemplate (once per interaction), records the session in
Redis, and edits the deferred Discord reply to name and link the run.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import bootstrap, telemetry, web
from facteur.decisions.journey import WORKFLOW_REQUESTED, Journey

FUNCTION = bootstrap.workflow_submit()
web.prepare(FUNCTION.checks)


@functions_framework.cloud_event
def workflow_submit(event: CloudEvent) -> None:
    data = web.open_or_abort(FUNCTION.open_event, event, {WORKFLOW_REQUESTED})
    with telemetry.span("workflow_submit", event.get(telemetry.TRACEPARENT)):
        outcome = FUNCTION.flow.handle(web.parsed(Journey.from_event, data))
    web.finish(outcome.status, outcome.result)
