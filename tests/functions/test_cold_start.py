"""Cold start is a product feature: interaction_verify loads none of the heavy clients.

A fresh interpreter loads functions/interaction_verify/main.py as functions-framework does and
answers a PING; then nothing that only the back-ends need may be in sys.modules. The same holds
after a command, a form and its submit; only an autocomplete that looks in the session store
loads a Redis client, when it comes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers.support import ROOT, asking_catalog, base_env, command

# What only command_route, workflow_submit and status_callback need.
HEAVY = (
    "requests",
    "redis",
    "jsonschema",
    "facteur.adapters.discord",
    "facteur.adapters.argo",
    "facteur.adapters.sessions",
    "facteur.adapters.local",
    "facteur.adapters.dry_run_argo",
    "facteur.flows.command_route",
    "facteur.flows.buttons",
    "facteur.flows.workflow_submit",
    "facteur.flows.status_callback",
    "facteur.cli",
)

# Only an autocomplete that looks in the store (source recent or runs) may load these, and only
# when it comes.
STORE = ("redis", "facteur.adapters.sessions", "facteur.adapters.redis_client")

_LOAD = """
import json, os, sys
os.environ.update({env})
from tests.helpers.asgi_client import client_for
from tests.helpers.support import sign
app = client_for("interaction_verify")
loaded = []
for body in {bodies}:
    body = body.encode()
    response = app.post("/", data=body, headers=sign(body))
    assert response.status_code == 200, response.get_data()
    loaded.append([response.get_json()["type"], sorted(sys.modules)])
print(json.dumps(loaded))
"""


def loaded_after_each(bodies: list[dict[str, Any]], **env: str) -> list[tuple[int, set[str]]]:
    """In a fresh interpreter, interaction_verify as functions-framework loads it answers each
    body in turn (signed, each answered 200): the type of each answer, and the modules loaded
    after it."""
    texts = [json.dumps(body) for body in bodies]
    code = _LOAD.format(env=json.dumps(base_env(**env)), bodies=json.dumps(texts))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(ROOT),
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    steps = json.loads(result.stdout.strip().splitlines()[-1])
    return [(kind, set(modules)) for kind, modules in steps]


def heavy_in(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def test_interaction_verify_loads_no_back_end_client() -> None:
    [(_, modules)] = loaded_after_each([{"type": 1}])
    assert heavy_in(modules) == []
    # ...and does load what its own path needs, so the check above is looking at the right run.
    assert {"nacl.signing", "facteur.flows.interaction_verify", "facteur.adapters.sink"} <= modules


def _asking_catalog(path: Path) -> Path:
    return asking_catalog(path)


def _typing(name: str, option: str) -> dict[str, Any]:
    payload = command(name, [{"name": option, "type": 3, "value": "t", "focused": True}])
    payload["type"] = 4
    return payload


def test_only_an_autocomplete_that_looks_in_the_store_loads_redis(tmp_path: Path) -> None:
    form = command("implement", [])
    submitted = command("implement", interaction_id="900000000000000042")
    rows = [{"type": 1, "components": [{"type": 4, "custom_id": "project", "value": "x"}]}]
    submitted.update(type=5, data={"custom_id": "facteur:form:implement", "components": rows})
    steps = [
        {"type": 1},
        command("plan"),  # handed off (to a sink that is not there: refused, privately)
        form,  # opens the form
        submitted,  # the form's submit
        _typing("review", "deadline"),  # suggestions from the catalog
        _typing("plan", "project"),  # suggestions from the store (a Redis that is not there)
    ]
    catalog = _asking_catalog(tmp_path / "commands.yaml")
    answered = loaded_after_each(steps, FACTEUR_COMMANDS_CATALOG_FILE=str(catalog))
    # Each path was taken: PONG, a message, the form (a modal), a message, suggestions twice.
    assert [kind for kind, _ in answered] == [1, 4, 9, 4, 8, 8]
    *before, (_, after) = answered
    for _, modules in before:
        assert heavy_in(modules) == []
    # The store's client, loaded lazily, now:
    assert {"redis", "facteur.adapters.sessions"} <= after
    # ...and nothing else that only the back-ends need.
    assert heavy_in(after, tuple(h for h in HEAVY if h not in STORE)) == []
