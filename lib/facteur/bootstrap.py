"""The one composition root: for each function, the settings it requires and how it is built.

This is the only module that reads Settings and picks adapters: the real clients, or the local
stand-ins when dev.embedded is on and the real setting is absent. Flows receive ports; adapters
receive plain values. The CLI reads FUNCTIONS too, so `facteur check-config --function X`
checks exactly what function X needs at start-up.

Adapters are imported inside the builders, so a function loads only the clients it wires:
interaction_verify never imports requests, redis or the Argo and Discord clients.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from facteur.config import Settings, env_var, load_catalog, load_settings, secret_values
from facteur.errors import ConfigError
from facteur.health import Check, reachable

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

    from facteur.adapters.discord import DiscordClient
    from facteur.flows.buttons import Buttons
    from facteur.flows.command_route import Router
    from facteur.flows.dead_letters import DeadLetters
    from facteur.flows.interaction_verify import Ingress
    from facteur.flows.ports import Argo, AsyncDeliver, Deliver, Discord, SessionStore
    from facteur.flows.status_callback import Reporter
    from facteur.flows.workflow_submit import Submitter

T = TypeVar("T")

# Opens an authenticated event: its data, or EventRejected.
OpenEvent = Callable[["CloudEvent", Collection[str]], dict[str, Any]]


# -- what each function is built from ---------------------------------------------------------


@dataclass(frozen=True)
class InteractionVerify:
    flow: Ingress
    checks: Mapping[str, Check]
    max_body_bytes: int
    # The same hand-off for the event loop of the ASGI server.
    deliver_async: AsyncDeliver


@dataclass(frozen=True)
class CommandRoute:
    router: Router
    buttons: Buttons
    dead_letters: DeadLetters
    open_event: OpenEvent
    checks: Mapping[str, Check]


@dataclass(frozen=True)
class WorkflowSubmit:
    flow: Submitter
    open_event: OpenEvent
    checks: Mapping[str, Check]


@dataclass(frozen=True)
class StatusCallback:
    flow: Reporter
    checks: Mapping[str, Check]
    token: str
    tick_token: str | None


# -- adapters from settings -------------------------------------------------------------------


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def argo(settings: Settings) -> Argo | None:
    """The Argo client, a dry run on the local loop without a server, or None."""
    a = settings.argo
    if a.server_url:
        from facteur.adapters.argo import ArgoClient

        try:
            return ArgoClient(
                server_url=a.server_url,
                token=_secret(a.token) or None,
                verify=argo_verify(settings),
                timeout=a.timeout_seconds,
            )
        except ValueError as err:
            raise ConfigError(f"argo.token ({env_var('argo.token')}): {err}") from None
    if settings.dev.embedded:
        from facteur.adapters.dry_run_argo import DryRunArgo, Lifecycle

        dev = settings.dev
        lifecycle = Lifecycle(
            dev.dry_run_outcome, dev.dry_run_seconds, dev.dry_run_gate, dev.dry_run_gate_seconds
        )
        return DryRunArgo(lifecycle, dev.dry_run_state_dir)
    return None


def argo_verify(settings: Settings) -> bool | str:
    """requests' `verify` for the Argo Server: argo.ca_file's path, else argo.verify_tls."""
    a = settings.argo
    return str(a.ca_file) if a.ca_file else a.verify_tls


def discord(settings: Settings, *, patient: bool = True) -> Discord:
    """The Discord client, or on the local loop without credentials, the console. An impatient
    one (a live card's edits) tries once and never waits out a 429, so that progress edits
    cannot hold up the outcomes that share their rate limits."""
    d = settings.discord
    if settings.dev.embedded and not d.bot_token:
        from facteur.adapters.local import ConsoleDiscord

        return ConsoleDiscord()
    return discord_client(settings, patient=patient)


def discord_client(settings: Settings, *, patient: bool = True) -> DiscordClient:
    """The real Discord client, whatever dev.embedded says (registering is always for real)."""
    from facteur.adapters.discord import MAX_ATTEMPTS, DiscordClient

    d = settings.discord
    return DiscordClient(
        api_base_url=d.api_base_url,
        application_id=d.application_id,
        bot_token=_secret(d.bot_token) or None,
        max_attempts=MAX_ATTEMPTS if patient else 1,
    )


def store(settings: Settings) -> SessionStore:
    from facteur.adapters.sessions import SessionStore

    r = settings.redis
    return SessionStore.from_url(
        r.url or "",
        r.session_ttl_seconds,
        r.last_dispatch_ttl_seconds,
        password=_secret(r.password) or None,
    )


@overload
def sink(settings: Settings, source: str) -> Deliver: ...


@overload
def sink(settings: Settings, source: str, *, awaited: Literal[True]) -> AsyncDeliver: ...


def sink(settings: Settings, source: str, *, awaited: bool = False) -> Deliver | AsyncDeliver:
    """The hand-off to K_SINK as `source`; `awaited` for an event loop instead of a thread."""
    from facteur.adapters.sink import AsyncSink, Sink

    kind = AsyncSink if awaited else Sink
    return kind(
        settings.k_sink or "",
        _secret(settings.events.signing_key),
        source,
        settings.events.sink_timeout_seconds,
    )


def event_opener(settings: Settings) -> OpenEvent:
    from facteur.adapters.envelope import open_event

    return functools.partial(open_event, _secret(settings.events.signing_key))


def ui_url(settings: Settings) -> str:
    return settings.argo.ui_url or settings.argo.server_url or ""


def checks(
    settings: Settings,
    *,
    redis: SessionStore | None = None,
    sink: bool = False,
    argo: bool = False,
    discord: bool = False,
) -> dict[str, Check]:
    """The readiness checks of one function's own dependencies."""
    found: dict[str, Check] = {}
    if redis is not None:
        found["redis"] = redis.ping
    if sink:
        found["sink"] = reachable(settings.k_sink)
    if argo and settings.argo.server_url:
        from facteur.adapters.argo import trusted_bundle

        # The TLS handshake too, with the client's trust: a refused certificate is not ready.
        tls = trusted_bundle(argo_verify(settings))
        found["argo"] = reachable(settings.argo.server_url, tls=tls)
    if discord and settings.discord.bot_token:
        found["discord"] = reachable(settings.discord.api_base_url)
    return found


# -- the four functions -----------------------------------------------------------------------


def _interaction_verify(s: Settings) -> InteractionVerify:
    from facteur.adapters.signature import Verifier
    from facteur.flows.interaction_verify import Ingress

    flow = Ingress(
        verifier=Verifier(s.discord.public_key or "", s.discord.timestamp_tolerance_seconds),
        catalog=load_catalog(s.commands.catalog_file),
        role_map=s.role_map,
        deliver=sink(s, "/facteur/interaction_verify"),
        guild_id=s.discord.guild_id,
        # Built (and redis imported) on the first autocomplete that needs it, never at start-up:
        # PING and commands keep their cold start. Without redis.url those sources suggest
        # nothing.
        store=functools.partial(store, s) if s.redis.url else None,
    )
    deliver_async = sink(s, "/facteur/interaction_verify", awaited=True)
    return InteractionVerify(flow, checks(s, sink=True), s.discord.max_body_bytes, deliver_async)


def _command_route(s: Settings) -> CommandRoute:
    from facteur.flows.buttons import Buttons
    from facteur.flows.command_route import Router
    from facteur.flows.dead_letters import DeadLetters
    from facteur.logs import Scrubber

    the_argo, the_discord, the_store = argo(s), discord(s), store(s)
    catalog = load_catalog(s.commands.catalog_file)
    router = Router(
        catalog=catalog,
        role_map=s.role_map,
        store=the_store,
        discord=the_discord,
        deliver=sink(s, "/facteur/command_route"),
        token_ttl_seconds=s.discord.interaction_token_ttl_seconds,
        static_parameters=s.argo.parameters,
        default_template=s.argo.workflow_template,
        guild_id=s.discord.guild_id,
        argo=the_argo,
        ui_url=ui_url(s) or None,
        namespace=s.argo.namespace,
    )
    buttons = Buttons(
        role_map=s.role_map,
        store=the_store,
        discord=the_discord,
        argo=the_argo,
        ui_url=ui_url(s),
        guild_id=s.discord.guild_id,
        cancel_strategy=s.argo.cancel_strategy,
        retry_strategy=s.argo.retry_strategy,
        namespace=s.argo.namespace,
        catalog=catalog,
        token_ttl_seconds=s.discord.interaction_token_ttl_seconds,
        scrub=Scrubber(secret_values(s)).scrub,
    )
    dead_letters = DeadLetters(
        store=the_store,
        discord=the_discord,
        token_ttl_seconds=s.discord.interaction_token_ttl_seconds,
        ui_url=ui_url(s),
        argo=the_argo,
        namespace=s.argo.namespace,
    )
    ready = checks(s, redis=the_store, sink=True, argo=True, discord=True)
    return CommandRoute(router, buttons, dead_letters, event_opener(s), ready)


def _workflow_submit(s: Settings) -> WorkflowSubmit:
    from facteur.flows.workflow_submit import Submitter

    the_argo, the_store = argo(s), store(s)
    if the_argo is None:  # required below, so only reachable through a programming error
        raise ConfigError(f"argo.server_url ({env_var('argo.server_url')}): required but not set")
    flow = Submitter(
        argo=the_argo,
        store=the_store,
        discord=discord(s),
        namespace=s.argo.namespace or "",
        ui_url=ui_url(s),
        token_ttl_seconds=s.discord.interaction_token_ttl_seconds,
        service_account=s.argo.service_account,
    )
    ready = checks(s, redis=the_store, argo=True, discord=True)
    return WorkflowSubmit(flow, event_opener(s), ready)


def _status_callback(s: Settings) -> StatusCallback:
    from facteur.flows.status_callback import Reporter

    the_store = store(s)
    flow = Reporter(
        store=the_store,
        discord=discord(s),
        live_discord=discord(s, patient=False),
        ui_url=ui_url(s),
        token_ttl_seconds=s.discord.interaction_token_ttl_seconds,
        argo=argo(s),
        # A dry run has no outcome to confirm; `facteur callback` plays the exit handler.
        confirm=s.argo.server_url is not None,
        tick_batch=s.callback.tick_batch,
        card_interval_seconds=s.card.min_edit_interval_seconds,
        # The runs it may rebuild from Argo when Redis has forgotten them.
        namespace=s.argo.namespace,
        application_id=s.discord.application_id,
    )
    ready = checks(s, redis=the_store, argo=True, discord=True)
    tick = _secret(s.callback.tick_token) or None
    return StatusCallback(flow, ready, _secret(s.callback.token), tick)


@dataclass(frozen=True)
class Function(Generic[T]):
    # The keys whose absence stops the function at start-up.
    required: tuple[str, ...]
    build: Callable[[Settings], T]
    # Served by functions-framework's ASGI mode (`--asgi`, FUNCTION_USE_ASGI=true): the HTTP
    # functions, which face callers that can be slow; the CloudEvent ones are fed by the Broker.
    asgi: bool = False


FUNCTIONS: dict[str, Function[Any]] = {
    "interaction_verify": Function(
        ("discord.public_key", "events.signing_key", "k_sink"), _interaction_verify, asgi=True
    ),
    "command_route": Function(
        ("events.signing_key", "k_sink", "redis.url", "discord.application_id"), _command_route
    ),
    "workflow_submit": Function(
        (
            "events.signing_key",
            "redis.url",
            "discord.application_id",
            "argo.server_url",
            "argo.namespace",
        ),
        _workflow_submit,
    ),
    "status_callback": Function(
        ("callback.token", "redis.url", "discord.application_id"), _status_callback, asgi=True
    ),
}


def build(name: str, settings: Settings) -> Any:
    """Build a function from settings already loaded (no I/O); ConfigError if it cannot be."""
    return FUNCTIONS[name].build(settings)


def boot(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """Load settings and build function `name`, or stop at start-up with one clear line.

    Runs at import time of functions/<name>/main.py, so a bad setting never surfaces as a
    traceback on the first request.
    """
    try:
        settings = load_settings(FUNCTIONS[name].required, environ)
        from facteur import logs, telemetry

        logs.configure(
            name,
            level=settings.logging.level,
            fmt=settings.logging.format,
            secrets=secret_values(settings),
        )
        telemetry.setup(name)
        return build(name, settings)
    except ConfigError as err:
        print(f"facteur {name}: configuration error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(78) from None  # EX_CONFIG


def interaction_verify() -> InteractionVerify:
    return boot("interaction_verify")


def command_route() -> CommandRoute:
    return boot("command_route")


def workflow_submit() -> WorkflowSubmit:
    return boot("workflow_submit")


def status_callback() -> StatusCallback:
    return boot("status_callback")
