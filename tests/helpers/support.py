"""Helpers shared by the tests: keys, signing, settings and environment."""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from facteur.decisions.journey import DispatchResult

ROOT = Path(__file__).resolve().parents[2]
# One setting says where the external contracts live; a clone elsewhere has none.
SPECS_DIR = Path(os.environ.get("FACTEUR_SPECS_DIR", ROOT.parent / "shared" / "specs")).resolve()

SIGNING = SigningKey(bytes(range(32)))
PUBLIC_KEY_HEX = SIGNING.verify_key.encode().hex()
EVENT_KEY = "test-event-signing-key-0123456789abcdef"
CALLBACK_TOKEN = "test-callback-token-0123456789abcdef"

GUILD = "800000000000000001"
ROLE_PLANNER = "800000000000000010"
ROLE_OTHER = "800000000000000020"
USER = "800000000000000100"
CHANNEL = "800000000000000200"
APP = "800000000000000300"
# Who clicks a run's button: someone other than the user who started it.
CLICKER = "800000000000000777"
ROLE_MAP = {
    "plan": [ROLE_PLANNER],
    "implement": [ROLE_PLANNER],
    "review": [ROLE_PLANNER],
    "status": [GUILD],
    "help": [GUILD],
}


def sign(body: bytes, timestamp: int | str | None = None, key: SigningKey = SIGNING) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(ts.encode() + body).signature.hex()
    return {
        "X-Signature-Ed25519": signature,
        "X-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


def command(
    name: str = "plan",
    options: list[dict[str, Any]] | None = None,
    *,
    roles: list[str] | None = None,
    interaction_id: str = "900000000000000001",
    dm: bool = False,
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction as Discord sends it."""
    if options is None:
        options = [{"name": "objective", "type": 3, "value": "ship it"}]
    body: dict[str, Any] = {
        "id": interaction_id,
        "application_id": APP,
        "type": 2,
        "token": "interaction-token-SECRET-abc",
        "version": 1,
        "channel_id": CHANNEL,
        "data": {"id": "700000000000000001", "name": name, "type": 1, "options": options},
    }
    user = {"id": USER, "username": "ada", "discriminator": "0"}
    if dm:
        body["user"] = user
    else:
        body["guild_id"] = GUILD
        body["member"] = {"user": user, "roles": [ROLE_PLANNER] if roles is None else roles}
    return body


def fresh_snowflake() -> str:
    """An interaction ID no other test uses."""
    return str(10**18 + uuid.uuid4().int % 10**17)


def button_click(
    custom: str, *, roles: list[str] | None = None, dm: bool = False, user_id: str = CLICKER
) -> dict[str, Any]:
    """A MESSAGE_COMPONENT interaction as Discord sends it for a click on a button."""
    payload = command(interaction_id=fresh_snowflake(), roles=roles, dm=dm)
    payload.update(type=3, token="click-token-SECRET")
    payload["message"] = {"id": "900000000000000999", "content": "…"}
    payload["data"] = {"custom_id": custom, "component_type": 2}
    (payload["user"] if dm else payload["member"]["user"]).update(id=user_id, username="grace")
    return payload


def run_record(
    *, command: str = "plan", namespace: str = "agents", **fields: Any
) -> DispatchResult:
    """A run as workflow_submit records it; `fields` override any of its values."""
    interaction = fresh_snowflake()
    defaults: dict[str, Any] = {
        "correlation_id": uuid.uuid4().hex,
        "interaction_id": interaction,
        "command": command,
        "user_id": USER,
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "application_id": APP,
        "workflow_name": f"{command}-{interaction}",
        "namespace": namespace,
        "status": "Submitted",
        "ref": secrets.token_urlsafe(9),
    }
    return DispatchResult(**(defaults | fields))


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def base_env(**extra: str) -> dict[str, str]:
    """The environment a function needs, as an operator would set it."""
    env = {
        "FACTEUR_DISCORD_PUBLIC_KEY": PUBLIC_KEY_HEX,
        "FACTEUR_EVENTS_SIGNING_KEY": EVENT_KEY,
        "FACTEUR_CALLBACK_TOKEN": CALLBACK_TOKEN,
        "FACTEUR_ROLE_MAP": json.dumps(ROLE_MAP),
        "FACTEUR_DISCORD_GUILD_ID": GUILD,
        "FACTEUR_DISCORD_APPLICATION_ID": APP,
        # Unreachable on purpose; tests that need Redis or Argo pass their own.
        "FACTEUR_REDIS_URL": "redis://127.0.0.1:9/0",
        "FACTEUR_ARGO_SERVER_URL": "http://127.0.0.1:9",
        "FACTEUR_ARGO_NAMESPACE": "agents",
        "FACTEUR_ARGO_WORKFLOW_TEMPLATE": "facteur-dispatch",
        "K_SINK": "http://127.0.0.1:9/",
    }
    env.update(extra)
    return env


def ping_event(token: str | None) -> tuple[bytes, dict[str, str]]:
    """A reconciliation tick as the PingSource sends it: body and headers (structured mode)."""
    event = {
        "specversion": "1.0",
        "type": "dev.knative.sources.ping",
        "source": "/apis/v1/namespaces/facteur/pingsources/facteur-reconcile",
        "id": str(uuid.uuid4()),
        "datacontenttype": "application/json",
        "data": {} if token is None else {"token": token},
    }
    return json.dumps(event).encode(), {"Content-Type": "application/cloudevents+json"}


def nudge_event(
    workflow: str, verb: str = "update", namespace: str = "agents", /, **data: Any
) -> tuple[bytes, dict[str, str]]:
    """An event as Knative's ApiServerSource sends it in Reference mode, binary, via the Broker."""
    from facteur.decisions import nudge

    event_id = f"nudge-{verb}-{workflow}-{uuid.uuid4().hex[:8]}"
    return nudge.event(
        workflow, namespace, verb=f"dev.knative.apiserver.ref.{verb}", event_id=event_id, **data
    )


def asking_catalog(path: Path, deadlines: list[str] | None = None) -> Path:
    """The shipped catalog (its /implement a form, `project` suggesting recent values, /status
    suggesting runs), with review's deadline suggesting from the catalog and /implement's notes
    labelled, written to `path`."""
    import yaml

    from facteur.config import DEFAULT_CATALOG_FILE

    data = yaml.safe_load(DEFAULT_CATALOG_FILE.read_text())
    commands = {entry["name"]: entry for entry in data["commands"]}
    commands["implement"]["options"][3]["label"] = "Anything the agent should know?"
    values = deadlines or ["today"]
    commands["review"]["options"][3]["autocomplete"] = {"source": "values", "values": values}
    path.write_text(yaml.safe_dump(data))
    return path
