"""interaction_verify's flow: authenticate, answer PING, refuse early, defer and hand off.

Everything here is synchronous and bounded: Discord drops an interaction whose first answer
takes longer than 3 seconds.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from facteur import logs, telemetry
from facteur.decisions import interactions as ix
from facteur.decisions import render
from facteur.decisions.admission import admit
from facteur.decisions.catalog import Catalog
from facteur.decisions.journey import COMMAND_RECEIVED, COMPONENT_CLICKED, Journey
from facteur.errors import SignatureError, SinkError
from facteur.flows.outcome import Answer
from facteur.flows.ports import Deliver, Headers, Verifier

log = logging.getLogger("facteur.interaction_verify")


@dataclass(kw_only=True)
class Ingress:
    verifier: Verifier
    catalog: Catalog
    role_map: Mapping[str, list[str]]
    deliver: Deliver
    guild_id: str | None = None
    clock: Callable[[], float] = time.time

    def handle(self, headers: Headers, body: bytes) -> Answer:
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
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return Answer(400, {"error": "body is not JSON"})
        if not isinstance(payload, dict):
            return Answer(400, {"error": "body is not a JSON object"})
        kind = payload.get("type")
        if kind == ix.PING:
            return Answer(200, ix.pong())
        if kind == ix.APPLICATION_COMMAND:
            try:
                return Answer(200, self._command(ix.read_invocation(payload)))
            except ix.InvalidInteraction as err:
                return Answer(400, {"error": str(err)})
        if kind == ix.AUTOCOMPLETE:
            return Answer(200, ix.no_choices())
        if kind == ix.MESSAGE_COMPONENT:
            try:
                return Answer(200, self._click(ix.read_click(payload)))
            except ix.InvalidInteraction as err:
                return Answer(400, {"error": str(err)})
        if kind == ix.MODAL_SUBMIT:
            return Answer(200, ix.message(render.UNSUPPORTED_INTERACTION))
        return Answer(400, {"error": "unknown interaction type"})

    def _command(self, call: ix.Invocation) -> dict[str, Any]:
        name = ix.safe_name(call.command)
        telemetry.count("facteur_commands_total", result="received")
        with (
            logs.bound(interaction_id=call.interaction_id, command=name, user_id=call.user_id),
            telemetry.span("interaction_verify", command=name, interaction_id=call.interaction_id),
        ):
            return self._admit(call)

    def _admit(self, call: ix.Invocation) -> dict[str, Any]:
        admission = admit(self.catalog, self.role_map, call, self.guild_id)
        if admission.refusal is not None or admission.command is None:
            logs.audit("command.refused", check=admission.check, by=call.user_id)
            return ix.message(admission.refusal or render.unknown_command(call.command))
        try:
            self.deliver(COMMAND_RECEIVED, call.interaction_id, self._journey(call).to_event())
        except SinkError as err:
            log.error("hand-off of /%s failed: %s", ix.safe_name(call.command), err)
            return ix.message(render.not_accepted(call.command))
        return ix.deferred(ephemeral=admission.command.ephemeral)

    def _click(self, click: ix.Click | None) -> dict[str, Any]:
        # Whether the clicker may act depends on the run, which only command_route can look up.
        if click is None:
            return ix.message(render.NOT_OUR_BUTTON)
        data = asdict(click) | {"received_at": self.clock()}
        try:
            self.deliver(COMPONENT_CLICKED, click.interaction_id, data)
        except SinkError as err:
            log.error("hand-off of a %s click failed: %s", click.action, err)
            return ix.message(render.click_not_accepted(click.action))
        return ix.deferred_update()

    def _journey(self, call: ix.Invocation) -> Journey:
        return Journey(call, correlation_id=uuid.uuid4().hex, received_at=self.clock())
