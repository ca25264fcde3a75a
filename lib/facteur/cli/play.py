"""`facteur send`, `click` and `callback`: play Discord and Argo against functions running
locally. send and click sign their interaction as Discord does; callback uses the bearer token
that Argo's exit handler carries."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from facteur.callers import PING_EVENT_TYPE
from facteur.cli import interactions
from facteur.cli.plumbing import PROG, CliError, post, report, say
from facteur.cli.slash import form_fields, parse_command_line, typed_options, typing_options
from facteur.config import CONFIG_FILE_ENV, REPO_ROOT, Settings, load_catalog, load_settings
from facteur.decisions import ids
from facteur.decisions.catalog import Command
from facteur.decisions.forms import SHORT, form_id
from facteur.decisions.interactions import (
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    MODAL,
    PONG,
)
from facteur.decisions.workflow import workflow_name

# ./scripts/dev's own default: from another terminal, these commands play against it unaided.
LOCAL_CONFIG_FILE = REPO_ROOT / "config" / "local.yaml"


def _settings(required: Iterable[str] = ()) -> Settings:
    env: dict[str, str] = dict(os.environ)
    if not env.get(CONFIG_FILE_ENV) and LOCAL_CONFIG_FILE.is_file():
        env[CONFIG_FILE_ENV] = str(LOCAL_CONFIG_FILE)
    return load_settings(required, env)


def send(args: argparse.Namespace) -> int:
    settings = _settings()
    line = " ".join(args.line).strip()
    if line == "ping":
        if args.autocomplete or args.form:
            raise CliError("ping has no options to complete and no form to submit")
        return _sign_and_post(args, settings, {"type": 1})
    name, raw = parse_command_line(line)
    # An unknown command goes out anyway, so interaction_verify's refusal shows.
    command = load_catalog(settings.commands.catalog_file).get(name)
    caller = _caller(settings, args)
    if args.autocomplete:
        options = typing_options(command, raw, args.autocomplete)
        interaction = interactions.autocomplete(name, options, **caller)
        return _sign_and_post(args, settings, interaction, shown=show_choices)
    if args.form:
        fields = form_fields(command, raw)
        interaction = interactions.modal_submit(form_id(name), fields, **caller)
        status, text = _exchange(args, settings, interaction)
        _note_run(interaction, name, command, _answer(status, text))
        return report(status, text)
    interaction = interactions.application_command(name, typed_options(command, raw), **caller)
    status, text = _exchange(args, settings, interaction)
    answer = _answer(status, text)
    if answer is not None and show_modal(answer):
        return 0
    code = report(status, text)
    if answer is not None:
        tell(interaction, name, command, answer)
    return code


def tell(
    interaction: dict[str, Any], name: str, command: Command | None, answer: dict[str, Any]
) -> None:
    """Under the answer's line, what it means: the interaction's ID, the workflow a run gets
    (`<command>-<interaction id>`), and what the user would see."""
    print(f"interaction  {interaction['id']}")
    run = _note_run(interaction, name, command, answer)
    if run is not None:
        print(f"workflow     {run}   (once submitted; {PROG} callback --last reports on it)")
    elif answer.get("type") == DEFERRED_CHANNEL_MESSAGE:
        print(f"workflow     none: /{name} answers by itself")
    print(f"user sees    {_seen(answer)}")


def _seen(answer: dict[str, Any]) -> str:
    data = answer.get("data") or {}
    only = " (only they see it)" if int(data.get("flags") or 0) & EPHEMERAL else ""
    kind = answer.get("type")
    if kind == DEFERRED_CHANNEL_MESSAGE:
        return f"thinking…{only}, until the reply is edited"
    if kind == CHANNEL_MESSAGE:
        return f"{data.get('content', '')}{only}"
    if kind == PONG:
        return "nothing (a PING is Discord checking the endpoint)"
    return f"an answer of type {kind}"


def _answer(status: int, text: str) -> dict[str, Any] | None:
    """A 200's JSON object, else None (an error's body is shown as it came)."""
    if status != 200:
        return None
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def last_run_file() -> Path:
    """Where send notes the newest run it started, for `callback --last`: per user, as the
    dry run keeps its state, so two people's loops on one machine stay apart."""
    return Path(tempfile.gettempdir()) / f"facteur-cli-{os.getuid()}" / "last-run.json"


def _note_run(
    interaction: dict[str, Any], name: str, command: Command | None, answer: dict[str, Any] | None
) -> str | None:
    """The workflow a deferred command starts, noted in last_run_file; None when the answer
    starts nothing (a refusal, a form, a built-in such as /status)."""
    if answer is None or answer.get("type") != DEFERRED_CHANNEL_MESSAGE:
        return None
    if command is None or command.builtin:
        return None
    run = workflow_name(name, str(interaction["id"]))
    path = last_run_file()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"workflow": run, "interaction_id": interaction["id"]}))
        os.replace(partial, path)  # whole or not at all: callback may read it at any time
    except OSError as err:
        say(f"{PROG} send: could not note the run for callback --last in {path}: {err}")
    return run


def newest_run() -> str:
    """The workflow of the newest run send started (last_run_file), for `callback --last`."""
    path = last_run_file()
    try:
        run = json.loads(path.read_text()).get("workflow")
    except FileNotFoundError:
        raise CliError(
            f"no run to report on: {PROG} send has started none here yet (it notes the newest "
            f"in {path}); give the workflow's NAME instead"
        ) from None
    except (OSError, ValueError, AttributeError) as err:
        raise CliError(f"cannot read the newest run from {path}: {err}") from None
    if not isinstance(run, str) or not ids.is_workflow_name(run):
        raise CliError(f"{path} names no workflow; give the workflow's NAME instead")
    return run


def show_choices(answer: dict[str, Any]) -> bool:
    """An autocomplete's answer (type 8): a line per choice, its name (and its value, when that
    differs). False for any other answer, which is shown as it came."""
    if answer.get("type") != AUTOCOMPLETE_RESULT:
        return False
    choices = answer.get("data", {}).get("choices") or []
    for choice in choices:
        name, value = choice.get("name"), choice.get("value")
        print(name if name == value else f"{name}\t({value})")
    if not choices:
        say("no suggestions")
    return True


def show_modal(answer: dict[str, Any]) -> bool:
    """A form (type 9): its title, a line per field (label, option, required, style, limit,
    what is filled in), and how to submit it. False for any other answer."""
    if answer.get("type") != MODAL:
        return False
    data = answer.get("data", {})
    custom = str(data.get("custom_id", ""))
    print(f"form {data.get('title')} ({custom}):")
    fields = [row["components"][0] for row in data.get("components", [])]
    for field in fields:
        need = "required" if field.get("required") else "optional"
        style = "short" if field.get("style") == SHORT else "paragraph"
        filled = f": {json.dumps(field['value'])}" if field.get("value") else ""
        print(
            f"  {field.get('label')} [{field.get('custom_id')}] {need}, {style}, "
            f"at most {field.get('max_length')}{filled}"
        )
    match = ids.FORM_ID.fullmatch(custom)
    if match:
        shown = " ".join(f"{field.get('custom_id')}:…" for field in fields)
        print(f'submit it: {PROG} send --form "/{match[1]} {shown}"')
    return True


def click(args: argparse.Namespace) -> int:
    custom, picked = component(args.action, args.ref, args.step)
    settings = _settings()
    return _sign_and_post(
        args,
        settings,
        interactions.button_click(custom, **_caller(settings, args), picked=picked),
    )


# Buttons that name a step in their custom_id; Logs picks one in a select menu instead.
_STEP_BUTTONS = (ids.APPROVE, ids.REJECT)
# What people call Cancel's confirmation.
_ALIASES = {"confirm": ids.STOP}


def component(action: str, ref: str | None, step: str | None = None) -> tuple[str, str | None]:
    """What to click, from `cancel REF`, `approve REF STEP`, `logs REF [STEP]` or a whole
    custom_id: the component's custom_id, and the step picked in a select menu (logs STEP)."""
    actions = " or ".join(ids.BUTTON_ACTIONS)
    action = _ALIASES.get(action, action)
    if ":" in action:
        if ref is not None:
            raise CliError(f"{action!r} is a whole custom_id: give no REF after it")
        if not ids.CUSTOM_ID.fullmatch(action):
            raise CliError(
                f"{action!r} is not the custom_id of a facteur button "
                f"({ids.custom_id('ACTION', 'REF')}, ACTION {actions})"
            )
        return action, None
    if action not in ids.BUTTON_ACTIONS:
        raise CliError(f"expected {actions} (or a whole custom_id), not {action!r}")
    if ref is None:
        raise CliError(f"which run? give the REF after {action}, as the button's line shows it")
    if step is not None and not ids.STEP.fullmatch(step):
        raise CliError(f"{step!r} is not a step of a facteur button (digits, as its line shows)")
    if action in _STEP_BUTTONS and step is None:
        raise CliError(f"which step? give the STEP after the REF, as the {action} line shows it")
    if step is not None and action not in (*_STEP_BUTTONS, ids.LOGS):
        raise CliError(f"{action} names no step: give none after the REF")
    custom = ids.custom_id(action, ref, step if action in _STEP_BUTTONS else None)
    if not ids.CUSTOM_ID.fullmatch(custom):
        raise CliError(f"{ref!r} is not the ref of a facteur button")
    return custom, step if action == ids.LOGS else None


def _caller(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Who acts, and where: the flags, else the settings, else the local loop's IDs."""
    return {
        "application_id": settings.discord.application_id or interactions.LOCAL_APP,
        "guild_id": settings.discord.guild_id or interactions.LOCAL_GUILD,
        "user_id": args.user,
        "roles": args.as_role or [interactions.LOCAL_MEMBER_ROLE],
    }


def _sign_and_post(
    args: argparse.Namespace,
    settings: Settings,
    interaction: dict[str, Any],
    *,
    shown: Callable[[dict[str, Any]], bool] | None = None,
) -> int:
    """Sign and send as Discord does, and print the answer: as `shown` prints it when it
    knows it (a form, the choices), else as one line, `STATUS BODY`."""
    status, text = _exchange(args, settings, interaction)
    answer = _answer(status, text)
    if shown is not None and answer is not None and shown(answer):
        return 0
    return report(status, text)


def _exchange(
    args: argparse.Namespace, settings: Settings, interaction: dict[str, Any]
) -> tuple[int, str]:
    """Sign and post as Discord does: the answer's status and body. A 401 says, in one line on
    stderr, which key signed and which one these settings trust."""
    key = interactions.signing_key(args.key_seed_hex)
    body = json.dumps(interaction).encode()
    status, text = post(args.url, body, interactions.signed_headers(key, body))
    if status == 401:
        public = key.verify_key.encode().hex()
        hint = _key_hint(args.key_seed_hex, public, settings.discord.public_key)
        say(f"{PROG} {args.command}: {hint}")
    return status, text


def _key_hint(seed: bytes, public: str, trusted: str | None) -> str:
    if seed == interactions.DEV_KEY_SEED:
        signer = "the published development key"
    elif seed.hex() == os.environ.get("FACTEUR_DEV_KEY_SEED", "").lower():
        signer = "$FACTEUR_DEV_KEY_SEED"
    else:
        signer = "--key-seed-hex"
    trusts = (
        f"these settings trust {trusted}, an interaction_verify with them answers 401"
        if trusted and trusted != public
        else "the target trusts another key (its discord.public_key)"
    )
    return (
        f"the signature was refused: signed with public key {public} ({signer}), but {trusts}; "
        "export the FACTEUR_DEV_KEY_SEED that ./scripts/dev printed, or pass --key-seed-hex"
    )


def callback(args: argparse.Namespace) -> int:
    if args.last == (args.name is not None):
        raise CliError("which run? give the workflow's NAME, or --last for the newest one")
    settings = _settings(("callback.token",))
    token = settings.callback.token.get_secret_value() if settings.callback.token else ""
    name = args.name
    if args.last:
        name = newest_run()
        say(f"{PROG} callback: reporting on {name}, the newest run {PROG} send started")
    # The body as kubernetes/argo's exit handler renders it: every value a JSON string.
    body: dict[str, Any] = {
        "name": name,
        "namespace": args.namespace or settings.argo.namespace or "agents",
        "uid": str(uuid.uuid4()),
        "status": args.status,
    }
    if args.duration is not None:
        body["duration"] = args.duration
    if args.failure:
        phase = "Error" if args.status == "Error" else "Failed"
        failures = [{"displayName": n, "message": m, "phase": phase} for n, m in args.failure]
        body["failures"] = json.dumps(failures)  # {{workflow.failures}} is a JSON string
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {token}",
    }
    return report(*post(args.url, json.dumps(body).encode(), headers))


def dead_letter(args: argparse.Namespace) -> int:
    """Play Knative giving up on a command: its event, sealed as facteur seals it, sent to
    command_route's dead-letter path."""
    from facteur.adapters.envelope import encode, seal
    from facteur.decisions.interactions import read_invocation
    from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED, Journey

    settings = _settings(("events.signing_key",))
    name, raw = parse_command_line(" ".join(args.line).strip())
    catalog = load_catalog(settings.commands.catalog_file)
    interaction = interactions.application_command(
        name, typed_options(catalog.get(name), raw), **_caller(settings, args)
    )
    journey = Journey(
        read_invocation(interaction), correlation_id=uuid.uuid4().hex, received_at=time.time()
    )
    key = settings.events.signing_key
    event = seal(
        key.get_secret_value() if key else "",
        event_type=WORKFLOW_REQUESTED if args.stage == "submit" else COMMAND_RECEIVED,
        source="/facteur/cli",
        event_id=journey.call.interaction_id,
        data=journey.to_event(),
    )
    headers, body = encode(event)
    return report(*post(args.url, body, headers))


def tick(args: argparse.Namespace) -> int:
    """Play the PingSource: one reconciliation tick, with callback.tick_token in its data."""
    settings = _settings(("callback.tick_token",))
    token = settings.callback.tick_token
    event = {
        "specversion": "1.0",
        "type": PING_EVENT_TYPE,
        "source": "/facteur/cli",
        "id": uuid.uuid4().hex,
        "datacontenttype": "application/json",
        "data": {"token": token.get_secret_value() if token else ""},
    }
    headers = {"Content-Type": "application/cloudevents+json"}
    return report(*post(args.url, json.dumps(event).encode(), headers))


def nudge(args: argparse.Namespace) -> int:
    """Play the ApiServerSource: a nudge ("look at run X") per workflow named, or, with
    --pending, per run the session store holds as pending (what ./scripts/dev does)."""
    from facteur import bootstrap
    from facteur.decisions import nudge as nudges

    settings = _settings()
    namespace = settings.argo.namespace or "agents"
    names = list(args.names)
    if args.pending:
        store = bootstrap.store(settings)
        for correlation_id in store.pending(args.limit):
            session = store.get(correlation_id)
            if session is not None and session.workflow_name:
                names.append(session.workflow_name)
    verb = nudges.DELETE if args.deleted else nudges.UPDATE
    worst = 0
    for name in names:
        body, headers = nudges.event(name, namespace, verb=verb, event_id=uuid.uuid4().hex)
        worst = max(worst, report(*post(args.url, body, headers)))
    return worst
