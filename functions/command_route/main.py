"""command_route: resolves, checks and routes a received command or button click (CloudEvent).

Re-applies the role policy (authoritatively) and the catalog's option checks, suppresses
duplicate deliveries, answers built-ins, requests workflows from workflow_submit, and carries
out Cancel and Retry clicks. On its /dead-letter path, it tells users once about the events
Knative gave up delivering (Triggers' deadLetterSink).
"""

import functions_framework
from cloudevents.http import CloudEvent

from facteur import bootstrap, telemetry, web
from facteur.decisions.interactions import click_from_event
from facteur.decisions.journey import (
    COMMAND_RECEIVED,
    COMPONENT_CLICKED,
    WORKFLOW_REQUESTED,
    Journey,
)
from facteur.flows.outcome import Outcome

FUNCTION = bootstrap.command_route()
web.prepare(FUNCTION.checks)


@functions_framework.cloud_event
def command_route(event: CloudEvent) -> None:
    if web.dead_letter():
        outcome = _dead_letter(event)
        web.finish(outcome.status, outcome.result)
        return
    data = web.open_or_abort(FUNCTION.open_event, event, {COMMAND_RECEIVED, COMPONENT_CLICKED})
    with telemetry.span("command_route", event.get(telemetry.TRACEPARENT)):
        if event["type"] == COMPONENT_CLICKED:
            outcome = FUNCTION.buttons.click(web.parsed(click_from_event, data))
        else:
            outcome = FUNCTION.router.handle(web.parsed(Journey.from_event, data))
    web.finish(outcome.status, outcome.result)


def _dead_letter(event: CloudEvent) -> Outcome:
    kinds = {COMMAND_RECEIVED, COMPONENT_CLICKED, WORKFLOW_REQUESTED}
    data = web.open_or_abort(FUNCTION.open_event, event, kinds)
    if event["type"] == COMPONENT_CLICKED:
        return FUNCTION.dead_letters.click(web.parsed(click_from_event, data))
    # Knative names why it gave up in the event's knativeerror* extensions, when it does.
    error = event.get("knativeerrorcode")
    journey = web.parsed(Journey.from_event, data)
    return FUNCTION.dead_letters.command(journey, event["type"], str(error) if error else None)
