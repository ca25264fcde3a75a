"""workflow_submit: submits a requested workflow to the Argo Server (CloudEvent).

Placeholder until submission lands: it authenticates every event and rejects forged ones, then
answers 501 so that a genuine event is neither acted on half-way nor dropped as if handled.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import web
from facteur.config import boot, signing_key
from facteur.envelope import WORKFLOW_REQUESTED

KEY = boot("workflow_submit", ("events.signing_key",), signing_key)
web.install_error_handlers()


@functions_framework.cloud_event
def workflow_submit(event: CloudEvent) -> None:
    web.open_or_abort(KEY, event, {WORKFLOW_REQUESTED})
    web.abort(501, "workflow submission is not implemented yet")
