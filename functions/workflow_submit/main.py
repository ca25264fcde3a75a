"""workflow_submit: submits a requested workflow to the Argo Server (CloudEvent).

Creates the workflow from its WorkflowTemplate (once per interaction), records the session in
Redis, and edits the deferred Discord reply to name and link the run.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import telemetry, web
from facteur.adapters.envelope import WORKFLOW_REQUESTED
from facteur.config import boot, signing_key
from facteur.decisions.journey import Journey
from facteur.flows.workflow_submit import from_settings
from facteur.health import checks_for

REQUIRED = (
    "events.signing_key",
    "redis.url",
    "discord.application_id",
    "argo.server_url",
    "argo.namespace",
)
SUBMITTER, KEY, CHECKS = boot(
    "workflow_submit",
    REQUIRED,
    lambda s: (
        from_settings(s),
        signing_key(s),
        checks_for(s, redis=True, argo=True, discord=True),
    ),
)
web.install_error_handlers()
web.add_health(CHECKS)
web.limit_body()


@functions_framework.cloud_event
def workflow_submit(event: CloudEvent) -> None:
    data = web.open_or_abort(KEY, event, {WORKFLOW_REQUESTED})
    with telemetry.span("workflow_submit", event.get(telemetry.TRACEPARENT)):
        outcome = SUBMITTER.handle(web.parsed(Journey.from_event, data))
    web.finish(outcome.status, outcome.result)
