"""Optional OpenTelemetry: a span per request, carried from function to function in the
CloudEvents' `traceparent` extension and into the Argo workflow as an annotation, and metrics.

Off unless the standard OTEL_* variables name an exporter (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_TRACES_EXPORTER other than "none"). While off, this
module imports nothing from OpenTelemetry: cold start is a product feature.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

TRACEPARENT = "traceparent"

_state: dict[str, Any] = {}


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or (exporter and exporter != "none")
    )


def setup(function: str, *, span_exporter: Any = None, metric_reader: Any = None) -> None:
    """Start tracing and metrics for one function, when configured (or given test exporters)."""
    if span_exporter is None and metric_reader is None and not enabled():
        return
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": f"facteur-{function}"})
    provider = TracerProvider(resource=resource)
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    if metric_reader is None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    meters = MeterProvider(resource=resource, metric_readers=[metric_reader])
    _state.update(
        tracer=provider.get_tracer("facteur"),
        meter=meters.get_meter("facteur"),
        provider=provider,
        meters=meters,
        function=function,
        instruments={},
    )
    # Libraries that look for the global providers find ours.
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(meters)


@contextmanager
def span(name: str, parent: str | None = None, **attributes: Any) -> Iterator[None]:
    """A span for one request, continuing the trace of `parent` (a W3C traceparent) if given."""
    tracer = _state.get("tracer")
    if tracer is None:
        yield
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({TRACEPARENT: parent}) if parent else None
    clean = {k: v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, context=context, attributes=clean):
        yield


def traceparent() -> str | None:
    """The current span's W3C traceparent, to hand on; None when tracing is off."""
    if _state.get("tracer") is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get(TRACEPARENT)


def carry(event: Any) -> None:
    """Hand the trace on in CloudEvents' distributed-tracing extension. The MAC does not cover
    it: a forged traceparent can only mislead a trace, never cause an action."""
    parent = traceparent()
    if parent:
        event[TRACEPARENT] = parent


def count(name: str, value: int = 1, /, **attributes: Any) -> None:
    """Add to a counter (a no-op while telemetry is off)."""
    meter = _state.get("meter")
    if meter is None:
        return
    key = ("counter", name)
    instruments = _state["instruments"]
    if key not in instruments:
        instruments[key] = meter.create_counter(name)
    instruments[key].add(value, {"function": _state["function"], **attributes})


def record(name: str, value: float, **attributes: Any) -> None:
    """Record a latency (milliseconds) in a histogram (a no-op while telemetry is off)."""
    meter = _state.get("meter")
    if meter is None:
        return
    key = ("histogram", name)
    instruments = _state["instruments"]
    if key not in instruments:
        instruments[key] = meter.create_histogram(name, unit="ms")
    instruments[key].record(value, {"function": _state["function"], **attributes})


def reset() -> None:
    """Forget the providers (for tests)."""
    _state.clear()
