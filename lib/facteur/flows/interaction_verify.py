"""interaction_verify's flow: authenticate, answer PING, refuse early, defer and hand off;
open forms, and suggest what to type.

Everything here is bounded: Discord drops an interaction whose first answer takes longer than
3 seconds. `read` is CPU only and never waits. A step that must wait comes back from it: a
HandOff, bounded by the sink's timeout, or an autocomplete's Lookup in the session store,
bounded by `suggest_budget_seconds`; either is then run blocking (`hand_off`, for a thread) or
awaited (`hand_off_async`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from facteur import logs, telemetry
from facteur.decisions import autocomplete as ac
from facteur.decisions import forms, render, strict_json
from facteur.decisions import interactions as ix
from facteur.decisions.admission import admit, admit_caller
from facteur.decisions.catalog import Autocomplete, Catalog, Option
from facteur.decisions.journey import COMMAND_RECEIVED, COMPONENT_CLICKED, Journey
from facteur.errors import FacteurError, SignatureError, SinkError
from facteur.flows.outcome import Answer
from facteur.flows.ports import AsyncDeliver, Deliver, Headers, SessionStore, Verifier

log = logging.getLogger("facteur.interaction_verify")

# An autocomplete cannot be deferred: its answer must reach Discord within the same 3 seconds
# as any interaction's. The store gets this long, well inside them, then the answer is no
# suggestions (the user can still type their value).
SUGGEST_BUDGET_SECONDS = 0.5
# Lookups in the store at once: a store that hangs holds at most this many threads.
SUGGEST_THREADS = 4


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
    # When the request came in (perf_counter), for its `handled` line once handed off.
    started: float = 0.0


@dataclass(frozen=True)
class Lookup:
    """An autocomplete whose suggestions are in the session store (source recent or runs)."""

    typing: ac.Typing
    option: Option
    source: Autocomplete
    context: dict[str, str]
    started: float = 0.0


@dataclass(kw_only=True)
class Ingress:
    verifier: Verifier
    catalog: Catalog
    role_map: Mapping[str, list[str]]
    deliver: Deliver
    guild_id: str | None = None
    clock: Callable[[], float] = time.time
    # Builds the session store on its first use. Only autocomplete's `recent` and `runs`
    # sources need it, so that PING, commands and forms never load a Redis client. None: those
    # sources suggest nothing.
    store: Callable[[], SessionStore] | None = None
    suggest_budget_seconds: float = SUGGEST_BUDGET_SECONDS
    _built: SessionStore | None = field(default=None, init=False, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    # Two locks: the event loop takes the pool's, and must never wait behind a store's build.
    _pool_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _store_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def handle(self, headers: Headers, body: bytes) -> Answer:
        step = self.read(headers, body)
        return step if isinstance(step, Answer) else self.hand_off(step)

    def read(self, headers: Headers, body: bytes) -> Answer | HandOff | Lookup:
        """Everything short of the hand-off: CPU only, no I/O, so an event loop may run it.
        An answer given here ends with its `handled` line; a step's comes after its hand-off."""
        started = time.perf_counter()
        step = self._read(headers, body)
        if isinstance(step, Answer):
            logs.finished(_outcome(step), started, status=step.status)
            return step
        return replace(step, started=started)

    def _read(self, headers: Headers, body: bytes) -> Answer | HandOff | Lookup:
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
        try:
            if kind == ix.APPLICATION_COMMAND:
                call = ix.read_invocation(payload)
                return self._form(call) or self._command(call)
            if kind == ix.AUTOCOMPLETE:
                return self._typing(payload)
            if kind == ix.MESSAGE_COMPONENT:
                return self._click(ix.read_click(payload))
            if kind == ix.MODAL_SUBMIT:
                return self._submitted(forms.read_submission(payload, self.catalog))
        except ix.InvalidInteraction as err:
            return Answer(400, {"error": str(err)})
        return Answer(400, {"error": "unknown interaction type"})

    def hand_off(self, step: HandOff | Lookup) -> Answer:
        """Hand the event to K_SINK (blocking I/O) and answer as it went; for a Lookup, the
        suggestions found within the budget."""
        if isinstance(step, Lookup):
            return self.suggest(step)
        with _handing_off(step):
            try:
                self.deliver(step.event_type, step.event_id, step.data)
            except SinkError as err:
                return _refused(step, err)
            return _accepted(step)

    async def hand_off_async(self, step: HandOff | Lookup, deliver: AsyncDeliver) -> Answer:
        """hand_off on an event loop, through a Deliver that awaits instead of blocking."""
        if isinstance(step, Lookup):
            return await self.suggest_async(step)
        with _handing_off(step):
            try:
                await deliver(step.event_type, step.event_id, step.data)
            except SinkError as err:
                return _refused(step, err)
            return _accepted(step)

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

    def _form(self, call: ix.Invocation) -> Answer | None:
        """The form of a `form: true` command sent without a required option: a modal, which
        must be the interaction's first answer, so it is answered here and nothing is handed
        off. Its submit comes back as a MODAL_SUBMIT (`_submitted`)."""
        command = self.catalog.get(call.command)
        if command is None or not forms.wants_form(command, call.options):
            return None
        admission = admit_caller(self.catalog, self.role_map, call, self.guild_id)
        if admission.refusal is not None:
            return None  # refused on the command path, which says why and audits it
        with logs.bound(interaction_id=call.interaction_id, command=command.name):
            log.info("opened the form of /%s for %s", command.name, call.user_id)
        return Answer(200, forms.modal(command, call.options))

    def _submitted(self, call: ix.Invocation | None) -> Answer | HandOff:
        """A form's submit goes exactly where its command would have gone: the same checks (the
        role map again: the caller may have lost a role since the form opened), the same event,
        the same hand-off."""
        if call is None:
            logs.audit("command.refused", check="not_our_form")
            return Answer(200, ix.message(render.UNSUPPORTED_INTERACTION))
        return self._command(call)

    def _typing(self, payload: dict[str, Any]) -> Answer | Lookup:
        """Suggestions for the option being typed, for a caller who may run the command here;
        a static list is ranked at once, the store's sources come back as a Lookup. Discord
        takes nothing but suggestions in answer: a shape it never sends gets none."""
        try:
            typing = ac.read_typing(payload)
        except ix.InvalidInteraction as err:
            log.warning("answered no suggestions to a malformed autocomplete: %s", err)
            return Answer(200, ix.no_choices())
        call = typing.call
        admission = admit_caller(self.catalog, self.role_map, call, self.guild_id)
        command = admission.command
        option = command.option(typing.option) if command is not None else None
        if admission.refusal is not None or option is None or option.autocomplete is None:
            return Answer(200, ix.no_choices())
        source = option.autocomplete
        if source.source == "values":
            return Answer(
                200, ac.answer(ac.rank(source.values, typing.typed, source.shown, option))
            )
        context = {"interaction_id": call.interaction_id, "command": call.command}
        return Lookup(typing, option, source, context | {"option": option.name})

    def suggest(self, step: Lookup) -> Answer:
        """A Lookup, blocking: run in a worker, waited for no longer than the budget."""
        future = self._look_up(step)
        try:
            values = future.result(timeout=self.suggest_budget_seconds)
        except TimeoutError:
            values = _late(step, future)
        return _suggested(step, values)

    async def suggest_async(self, step: Lookup) -> Answer:
        """suggest on an event loop: the worker is awaited, so the loop never blocks."""
        future = self._look_up(step)
        try:
            waited = asyncio.wrap_future(future)
            values = await asyncio.wait_for(waited, self.suggest_budget_seconds)
        except TimeoutError:
            values = _late(step, future)
        return _suggested(step, values)

    def _look_up(self, step: Lookup) -> Future[list[str]]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SUGGEST_THREADS, "facteur-suggest")
            pool = self._pool
        deadline = time.monotonic() + self.suggest_budget_seconds
        return pool.submit(self._suggestions, step, deadline)

    def _suggestions(self, step: Lookup, deadline: float) -> list[str]:
        """In a worker: the store's candidates, ranked. Any failure of the store, from building
        its client on, is no suggestions (never an error to Discord)."""
        if time.monotonic() >= deadline:
            return []  # queued behind a slow store: nobody waits for this answer any more
        started = time.perf_counter()
        typing, source = step.typing, step.source
        try:
            store = self._session_store()
            if store is None:
                return []
            candidates = _candidates(store, typing, source.source)
        except Exception as err:
            # A FacteurError's reason is safe to log; of anything else, its class alone.
            reason = str(err) if isinstance(err, FacteurError) else type(err).__name__
            with logs.bound(**step.context):
                log.warning("autocomplete found no suggestions: %s", reason)
            return []
        ranked = ac.rank(candidates, typing.typed, source.shown, step.option)
        telemetry.record(
            "facteur_autocomplete_duration_ms",
            (time.perf_counter() - started) * 1000,
            source=source.source,
        )
        return ranked

    def _session_store(self) -> SessionStore | None:
        with self._store_lock:
            if self._built is None and self.store is not None:
                self._built = self.store()
            return self._built

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


def _candidates(store: SessionStore, typing: ac.Typing, source: str) -> list[str]:
    """A source's candidates from the store (blocking I/O): `recent`, the values this guild
    used for the option; `runs`, the caller's own runs here."""
    call = typing.call
    if source == "recent":
        if call.guild_id is None:
            return []
        return store.recent_values(call.guild_id, call.command, typing.option, ac.RECENT_SCAN)
    return ac.run_names(store.recent_for_user(call.user_id, ac.RUNS_SCAN), call.guild_id)


def _late(step: Lookup, future: Future[list[str]]) -> list[str]:
    # Not started yet: it never will be. Running: it ends on the store's own timeouts.
    future.cancel()
    with logs.bound(**step.context):
        log.warning("autocomplete answered no suggestions: the store took too long")
    return []


def _refused(step: HandOff, err: SinkError) -> Answer:
    log.error("hand-off of %s failed: %s", step.what, err)
    logs.finished("not-handed-off", step.started, status=200)
    return Answer(200, step.refused)


def _accepted(step: HandOff) -> Answer:
    logs.finished("handed-off", step.started, status=200)
    return Answer(200, step.accepted)


def _suggested(step: Lookup, values: list[str]) -> Answer:
    with logs.bound(**step.context):
        logs.finished("suggested", step.started, status=200, suggestions=len(values))
    return Answer(200, ac.answer(values))


# The outcome of an answer given without a hand-off, by its status, then by its kind.
_ANSWERED = {
    ix.PONG: "pong",
    ix.CHANNEL_MESSAGE: "answered",
    ix.AUTOCOMPLETE_RESULT: "suggested",
    ix.MODAL: "form",
}


def _outcome(answer: Answer) -> str:
    if answer.status == 401:
        return "unauthorized"
    if answer.status >= 400:
        return "invalid"
    kind = answer.body.get("type")
    return _ANSWERED.get(kind, "answered") if isinstance(kind, int) else "answered"
