"""command_route: resolves, checks and routes a received command (CloudEvent).

Placeholder until routing lands: it authenticates every event and rejects forged ones, then
answers 501 so that a genuine event is neither acted on half-way nor dropped as if handled.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import web
from facteur.config import boot, signing_key
from facteur.envelope import COMMAND_RECEIVED

KEY = boot("command_route", ("events.signing_key",), signing_key)
web.install_error_handlers()


@functions_framework.cloud_event
def command_route(event: CloudEvent) -> None:
    web.open_or_abort(KEY, event, {COMMAND_RECEIVED})
    web.abort(501, "command routing is not implemented yet")
