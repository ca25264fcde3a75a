"""Cold start is a product feature: interaction_verify loads none of the heavy clients.

A fresh interpreter loads functions/interaction_verify/main.py as functions-framework does and
answers a PING; then nothing that only the back-ends need may be in sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.support import ROOT, base_env

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

_LOAD = """
import json, os, sys
os.environ.update({env})
from tests.helpers.asgi_client import client_for
from tests.helpers.support import sign
app = client_for("interaction_verify")
body = b'{{"type":1}}'
assert app.post("/", data=body, headers=sign(body)).status_code == 200
print(json.dumps(sorted(sys.modules)))
"""


def loaded_by_interaction_verify() -> set[str]:
    code = _LOAD.format(env=json.dumps(base_env()))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(ROOT),
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_interaction_verify_loads_no_back_end_client() -> None:
    modules = loaded_by_interaction_verify()
    heavy = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []
    # ...and does load what its own path needs, so the check above is looking at the right run.
    assert {"nacl.signing", "facteur.flows.interaction_verify", "facteur.adapters.sink"} <= modules
