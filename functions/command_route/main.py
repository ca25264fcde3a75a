"""command_route: resolves, checks and routes a received command (CloudEvent).

Re-applies the role policy (authoritatively) and the catalog's option checks, suppresses
duplicate deliveries, answers built-ins, and requests a workflow from workflow_submit.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import web
from facteur.config import boot, signing_key
from facteur.envelope import COMMAND_RECEIVED
from facteur.router import from_settings

REQUIRED = ("events.signing_key", "k_sink", "redis.url", "discord.application_id")
ROUTER, KEY = boot("command_route", REQUIRED, lambda s: (from_settings(s), signing_key(s)))
web.install_error_handlers()
web.limit_body()


@functions_framework.cloud_event
def command_route(event: CloudEvent) -> None:
    journey = web.journey_or_abort(KEY, event, {COMMAND_RECEIVED})
    outcome = ROUTER.handle(journey)
    web.finish(outcome.status, outcome.result)
