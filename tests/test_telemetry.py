"""OpenTelemetry: one trace across the chain when configured, nothing imported when not."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from facteur import telemetry
from facteur.adapters.envelope import CloudEvent, open_event
from facteur.adapters.signature import Verifier
from facteur.adapters.sink import Sink
from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED, Journey
from facteur.flows.interaction_verify import Ingress
from tests.helpers.chain import Chain, captured
from tests.helpers.support import (
    EVENT_KEY,
    GUILD,
    PUBLIC_KEY_HEX,
    ROLE_MAP,
    ROOT,
    base_env,
    command,
    sign,
)


def test_off_unless_an_exporter_is_configured() -> None:
    assert not telemetry.enabled({})
    assert not telemetry.enabled({"OTEL_TRACES_EXPORTER": "none"})
    assert telemetry.enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert telemetry.enabled({"OTEL_TRACES_EXPORTER": "otlp"})


_LOAD = """
import json, os, sys
os.environ.update({env})
{block}
from tests.helpers.asgi_client import client_for
for name in {names}:
    client_for(name)
from tests.helpers.support import sign
app = client_for("interaction_verify")
body = b'{{"type":1}}'
assert app.post("/", data=body, headers=sign(body)).status_code == 200
print(json.dumps(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))
"""

# Refuses OpenTelemetry as if it were not installed, and remembers who asked.
_BLOCK = """
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            raise ImportError("blocked")
sys.meta_path.insert(0, Block())
"""


def _loaded(names: list[str], block: bool) -> list[str]:
    code = _LOAD.format(env=json.dumps(base_env()), block=_BLOCK if block else "", names=names)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_with_tracing_off_interaction_verify_imports_no_opentelemetry() -> None:
    assert _loaded(["interaction_verify"], block=False) == []


def test_with_tracing_off_every_function_works_without_opentelemetry() -> None:
    # redis-py 8 itself imports the OpenTelemetry SDK when it is installed, so the functions
    # that use Redis load it regardless; what facteur controls is that it needs none of it.
    names = ["interaction_verify", "command_route", "workflow_submit", "status_callback"]
    assert _loaded(names, block=True) == []


@pytest.fixture
def exporters() -> Iterator[tuple]:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry.setup("test", span_exporter=spans, metric_reader=metrics)
    yield spans, metrics
    telemetry.reset()


def test_one_plan_is_one_trace_across_the_three_functions(exporters, chain: Chain) -> None:
    spans, metrics = exporters
    handed: list[CloudEvent] = []
    ingress = Ingress(
        verifier=Verifier(PUBLIC_KEY_HEX),
        catalog=load_catalog(DEFAULT_CATALOG_FILE),
        role_map=ROLE_MAP,
        deliver=Sink("", EVENT_KEY, "/facteur/interaction_verify", 2.0, post=captured(handed)),
        guild_id=GUILD,
    )
    body = json.dumps(command("plan", interaction_id="1200000000000000001")).encode()
    headers = sign(body)
    assert ingress.handle(headers, body).body["type"] == 5
    [received] = handed
    # command_route and workflow_submit continue the trace from the event, as their mains do.
    with telemetry.span("command_route", received.get(telemetry.TRACEPARENT)):
        data = open_event(EVENT_KEY, received, {COMMAND_RECEIVED})
        chain.route(Journey.from_event(data))
    [requested] = chain.sent
    with telemetry.span("workflow_submit", requested.get(telemetry.TRACEPARENT)):
        chain.submit(requested)

    finished = spans.get_finished_spans()
    names = {span.name for span in finished}
    assert {"interaction_verify", "command_route", "workflow_submit"} <= names
    assert len({span.context.trace_id for span in finished}) == 1
    [created] = chain.created()
    annotation = created["workflow"]["metadata"]["annotations"]["facteur.dev/traceparent"]
    assert f"{finished[0].context.trace_id:032x}" in annotation
    assert open_event(EVENT_KEY, requested, {WORKFLOW_REQUESTED})  # the MAC still holds

    counted = {
        metric.name
        for resource in metrics.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {
        "facteur_commands_total",
        "facteur_command_events_processed_total",
        "facteur_workflows_submitted_total",
        "facteur_hop_duration_ms",
    } <= counted
