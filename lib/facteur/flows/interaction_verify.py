"""interaction_verify's flow: authenticate, answer PING, refuse early, defer and hand off.

Everything here is bounded: Discord drops an interaction whose first answer takes longer than
3 seconds. `read` is CPU only and never waits; the hand-off is the one wait, bounded by the
sink's timeout, and comes blocking (`hand_off`, for a thread) or awaited (`hand_off_async`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from facteur import logs, telemetry
from facteur.decisions import interactions as ix
from facteur.decisions import render, strict_json
from facteur.decisions.admission import admit
from facteur.decisions.catalog import Catalog
from facteur.decisions.journey import COMMAND_RECEIVED, COMPONENT_CLICKED, Journey
from facteur.errors import SignatureError, SinkError
from facteur.flows.outcome import Answer
from facteur.flows.ports import AsyncDeliver, Deliver, Headers, Verifier

log = logging.getLogger("facteur.interaction_verify")


@dataclass(frozen=True)
class HandOff:
    """A verified interaction that goes on to command_route: its event, and what to answer."""

    event_type: str
    event_id: str
    data: dict[str, Any]
    # The answer once the sink took the event, and the answer when it did not.
    accepted: dict[str, Any]
    refused: dict[str, Any]
    # What the log line names ("/plan", "a cancel click"), and the fields every line carries.
    what: str
    context: dict[str, str]


@dataclass(kw_only=True)
class Ingress:
    verifier: Verifier
    catalog: Catalog
    role_map: Mapping[str, list[str]]
    deliver: Deliver
    guild_id: str | None = None
    clock: Callable[[], float] = time.time

    def handle(self, headers: Headers, body: bytes) -> Answer:
        step = self.read(headers, body)
        return step if isinstance(step, Answer) else self.hand_off(step)

    def read(self, headers: Headers, body: bytes) -> Answer | HandOff:
        """Everything short of the hand-off: CPU only, no I/O, so an event loop may run it."""
        try:
            self.verifier.verify(
                headers.get(ix.SIGNATURE_HEADER),
                headers.get(ix.TIMESTAMP_HEADER),
                body,
                self.clock(),
            )
        except SignatureError as err:
            log.warning("rejected unsigned interaction: %s", err)
            return Answer(401, {"error": "invalid request signature"})
        try:
            payload = strict_json.loads(body)
        except strict_json.NotStrictJson as err:
            return Answer(400, {"error": f"body is {err}"})
        if not isinstance(payload, dict):
            return Answer(400, {"error": "body is not a JSON object"})
        kind = payload.get("type")
        if kind == ix.PING:
            return Answer(200, ix.pong())
        if kind == ix.APPLICATION_COMMAND:
            try:
                return self._command(ix.read_invocation(payload))
            except ix.InvalidInteraction as err:
                return Answer(400, {"error": str(err)})
        if kind == ix.AUTOCOMPLETE:
            return Answer(200, ix.no_choices())
        if kind == ix.MESSAGE_COMPONENT:
            try:
                return self._click(ix.read_click(payload))
            except ix.InvalidInteraction as err:
                return Answer(400, {"error": str(err)})
        if kind == ix.MODAL_SUBMIT:
            return Answer(200, ix.message(render.UNSUPPORTED_INTERACTION))
        return Answer(400, {"error": "unknown interaction type"})

    def hand_off(self, step: HandOff) -> Answer:
        """Hand the event to K_SINK (blocking I/O) and answer as it went."""
        with _handing_off(step):
            try:
                self.deliver(step.event_type, step.event_id, step.data)
            except SinkError as err:
                return _refused(step, err)
        return Answer(200, step.accepted)

    async def hand_off_async(self, step: HandOff, deliver: AsyncDeliver) -> Answer:
        """hand_off on an event loop, through a Deliver that awaits instead of blocking."""
        with _handing_off(step):
            try:
                await deliver(step.event_type, step.event_id, step.data)
            except SinkError as err:
                return _refused(step, err)
        return Answer(200, step.accepted)

    def _command(self, call: ix.Invocation) -> Answer | HandOff:
        name = ix.safe_name(call.command)
        telemetry.count("facteur_commands_total", result="received")
        context = {"interaction_id": call.interaction_id, "command": name}
        admission = admit(self.catalog, self.role_map, call, self.guild_id)
        if admission.refusal is not None or admission.command is None:
            with (
                logs.bound(**context, user_id=call.user_id),
                telemetry.span("interaction_verify", **context),
            ):
                logs.audit("command.refused", check=admission.check, by=call.user_id)
            return Answer(200, ix.message(admission.refusal or render.unknown_command(name)))
        return HandOff(
            COMMAND_RECEIVED,
            call.interaction_id,
            self._journey(call).to_event(),
            accepted=ix.deferred(ephemeral=admission.command.ephemeral),
            refused=ix.message(render.not_accepted(call.command)),
            what=f"/{name}",
            context=context | {"user_id": call.user_id},
        )

    def _click(self, click: ix.Click | None) -> Answer | HandOff:
        # Whether the clicker may act depends on the run, which only command_route can look up.
        if click is None:
            return Answer(200, ix.message(render.NOT_OUR_BUTTON))
        return HandOff(
            COMPONENT_CLICKED,
            click.interaction_id,
            asdict(click) | {"received_at": self.clock()},
            accepted=ix.deferred_update(),
            refused=ix.message(render.click_not_accepted(click.action)),
            what=f"a {click.action} click",
            context={"interaction_id": click.interaction_id, "user_id": click.user_id},
        )

    def _journey(self, call: ix.Invocation) -> Journey:
        return Journey(call, correlation_id=uuid.uuid4().hex, received_at=self.clock())


@contextmanager
def _handing_off(step: HandOff) -> Iterator[None]:
    with logs.bound(**step.context), telemetry.span("interaction_verify", **step.context):
        yield


def _refused(step: HandOff, err: SinkError) -> Answer:
    log.error("hand-off of %s failed: %s", step.what, err)
    return Answer(200, step.refused)
