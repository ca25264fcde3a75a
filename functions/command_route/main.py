"""command_route: resolves, checks and routes a received command or button click (CloudEvent).

Re-applies the role policy (authoritatively) and the catalog's option checks, suppresses
duplicate deliveries, answers built-ins, requests workflows from workflow_submit, and carries
out Cancel and Retry clicks.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import telemetry, web
from facteur.adapters.envelope import COMMAND_RECEIVED, COMPONENT_CLICKED
from facteur.config import boot, signing_key
from facteur.decisions.interactions import click_from_event
from facteur.decisions.journey import Journey
from facteur.flows import buttons as actions
from facteur.flows import command_route as router
from facteur.health import checks_for

REQUIRED = ("events.signing_key", "k_sink", "redis.url", "discord.application_id")
ROUTER, BUTTONS, KEY, CHECKS = boot(
    "command_route",
    REQUIRED,
    lambda s: (
        router.from_settings(s),
        actions.from_settings(s),
        signing_key(s),
        checks_for(s, redis=True, sink=True, argo=True, discord=True),
    ),
)
web.install_error_handlers()
web.add_health(CHECKS)
web.limit_body()


@functions_framework.cloud_event
def command_route(event: CloudEvent) -> None:
    data = web.open_or_abort(KEY, event, {COMMAND_RECEIVED, COMPONENT_CLICKED})
    with telemetry.span("command_route", event.get(telemetry.TRACEPARENT)):
        if event["type"] == COMPONENT_CLICKED:
            outcome = BUTTONS.click(web.parsed(click_from_event, data))
        else:
            outcome = ROUTER.handle(web.parsed(Journey.from_event, data))
    web.finish(outcome.status, outcome.result)
