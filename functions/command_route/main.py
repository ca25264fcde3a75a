"""command_route: resolves, checks and routes a received command or button click (CloudEvent).

Re-applies the role policy (authoritatively) and the catalog's option checks, suppresses
duplicate deliveries, answers built-ins, requests workflows from workflow_submit, and carries
out Cancel and Retry clicks.
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import bootstrap, telemetry, web
from facteur.decisions.interactions import click_from_event
from facteur.decisions.journey import COMMAND_RECEIVED, COMPONENT_CLICKED, Journey

FUNCTION = bootstrap.command_route()
web.prepare(FUNCTION.checks)


@functions_framework.cloud_event
def command_route(event: CloudEvent) -> None:
    data = web.open_or_abort(FUNCTION.open_event, event, {COMMAND_RECEIVED, COMPONENT_CLICKED})
    with telemetry.span("command_route", event.get(telemetry.TRACEPARENT)):
        if event["type"] == COMPONENT_CLICKED:
            outcome = FUNCTION.buttons.click(web.parsed(click_from_event, data))
        else:
            outcome = FUNCTION.router.handle(web.parsed(Journey.from_event, data))
    web.finish(outcome.status, outcome.result)
