"""OpenTelemetry set-up shared by every service process.

Exporters are chosen by the standard environment variables:
  OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = none (default) | console | otlp
  OTEL_EXPORTER_OTLP_ENDPOINT                  = collector address for otlp
and one of ours:
  LIANDONG_TRACES_FILE = path: also append finished spans as JSON lines (the demo and the
                         end-to-end tests read the trace chain across processes from it).
Tests pass in-memory exporters instead.

Trace context crosses Kafka in record headers (W3C `traceparent`, injected by the aiokafka
instrumentation on send) and gRPC in metadata (the grpc instrumentation).

With nothing exporting, root spans are sampled out; a hot path that opens one per message (the
gateway's frame span) may take `unsampled_root_span()` instead, the same non-recording span
without the SDK's per-span work, and put its context in the message with `span_headers()`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import NonRecordingSpan

_lock = threading.Lock()
_configured: TracerProvider | None = None
_unrecorded_roots: TracerProvider | None = None
"""The global provider when ``setup_telemetry`` gave it ``ParentBased(ALWAYS_OFF)`` (nothing
exports): its root spans are never recorded, so ``unsampled_root_span`` may skip the SDK."""


class JsonLinesSpanExporter(SpanExporter):
    """Appends each finished span as one JSON object per line (safe across processes: O_APPEND)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            parent = span.parent
            lines.append(
                json.dumps(
                    {
                        "service": span.resource.attributes.get("service.name"),
                        "name": span.name,
                        "kind": span.kind.name,
                        "trace_id": f"{ctx.trace_id:032x}",
                        "span_id": f"{ctx.span_id:016x}",
                        "parent_id": f"{parent.span_id:016x}" if parent else None,
                        "start_ns": span.start_time,
                        "end_ns": span.end_time,
                        "attributes": {k: _plain(v) for k, v in (span.attributes or {}).items()},
                    },
                    ensure_ascii=False,
                )
            )
        if lines:
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return list(value) if isinstance(value, tuple | list) else str(value)


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(
    service: str,
    *,
    span_exporters: Iterable[SpanExporter] = (),
    metric_readers: Iterable[MetricReader] = (),
    instrument_kafka: bool = True,
    instrument_grpc: bool = False,
) -> Telemetry:
    """Configures tracing and metrics for one process; the first call wins (OTel is global)."""
    global _configured, _unrecorded_roots
    resource = Resource.create(
        {"service.name": service, "service.namespace": "liandong", "service.version": "0.1.0"}
    )
    span_exporters = list(span_exporters)
    traces = os.environ.get("OTEL_TRACES_EXPORTER", "none").lower()
    path = os.environ.get("LIANDONG_TRACES_FILE")
    # With nothing exporting this process's spans, a recorded span is pure cost (the gateway's
    # span per frame was ~40 us of its ~300 us per frame in bench/e2e_stack.py). Its spans are
    # then sampled out unless the parent (a record's traceparent) was sampled upstream; the
    # trace context still propagates, so a process that exports still sees whole traces from
    # a producer that exports.
    exporting = bool(span_exporters) or traces in {"console", "otlp"} or bool(path)
    sampler = ALWAYS_ON if exporting else ParentBased(ALWAYS_OFF)
    with _lock:
        provider = TracerProvider(resource=resource, sampler=sampler)
        for exporter in span_exporters:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        if traces == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif traces == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if path:
            provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))

        readers = list(metric_readers)
        exported = os.environ.get("OTEL_METRICS_EXPORTER", "none").lower()
        if exported == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(), 60_000))
        elif exported == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)

        if _configured is None:
            trace.set_tracer_provider(provider)
            metrics.set_meter_provider(meter_provider)
            _configured = provider
            _unrecorded_roots = None if exporting else provider
        if instrument_kafka:
            from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

            instrumentor = AIOKafkaInstrumentor()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=provider)
        if instrument_grpc:
            from opentelemetry.instrumentation.grpc import (
                GrpcAioInstrumentorClient,
                GrpcAioInstrumentorServer,
            )

            for grpc_instrumentor in (GrpcAioInstrumentorClient(), GrpcAioInstrumentorServer()):
                if not grpc_instrumentor.is_instrumented_by_opentelemetry:
                    grpc_instrumentor.instrument(tracer_provider=provider)
    return Telemetry(provider, meter_provider)


def headers_to_carrier(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers as a propagation carrier (the last value of a repeated key wins)."""
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if value is not None:
            carrier[key] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return carrier


def context_from_headers(headers: Iterable[tuple[str, bytes]] | None) -> otel_context.Context:
    return propagate.extract(headers_to_carrier(headers))


def trace_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers, for producers not instrumented by OTel."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


class UnsampledRootSpan(NonRecordingSpan):
    """A root span the sampler would not have recorded, made without the SDK (see
    ``unsampled_root_span``)."""


def unsampled_root_span() -> UnsampledRootSpan | None:
    """A new root span, not recorded, when this process records no root spans anyway
    (``setup_telemetry`` with nothing exporting: ``ParentBased(ALWAYS_OFF)``); else None, and
    the caller starts a real span as usual.

    Why: even a sampled-out SDK span costs the sampler, a ``SpanContext`` and the context
    attach/detach around it; for a span per received frame that was ~10 % of the gateway's
    CPU. This is the span the SDK would have returned (a ``NonRecordingSpan`` with fresh ids
    from the provider's id generator, not sampled), so ``span_headers`` still gives each
    record a valid W3C trace context: the same trace id a recorded span would have had, not
    sampled, which consumers join or start their own trace from as before."""
    provider = _unrecorded_roots
    if provider is None or trace.get_tracer_provider() is not provider:
        return None
    ids = provider.id_generator
    # As the SDK sets them for a sampled-out root: not SAMPLED; RANDOM_TRACE_ID (W3C level 2)
    # when the id generator's trace ids are random, as the default generator's are.
    flags = trace.TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0
    return UnsampledRootSpan(
        trace.SpanContext(
            ids.generate_trace_id(),
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(flags),
        )
    )


def span_headers(span: trace.Span) -> list[tuple[str, bytes]]:
    """Kafka headers carrying ``span``'s context: for an ``UnsampledRootSpan`` (never made
    current) its W3C ``traceparent`` written directly (no trace state, no baggage: a fresh
    root has neither); for any other span ``trace_headers()``, which expects ``span`` to be
    the current one (``trace.use_span``)."""
    if isinstance(span, UnsampledRootSpan):
        ctx = span.get_span_context()
        return [
            (
                "traceparent",
                f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}".encode(),
            )
        ]
    return trace_headers()


@contextmanager
def consumed_span(
    tracer: trace.Tracer,
    topic: str,
    headers: Iterable[tuple[str, bytes]] | None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A `{topic} process` CONSUMER span parented on the producer's context from the headers.

    The aiokafka instrumentation's receive span is closed before getone() returns, so a
    consumer has to restore the context itself (opentelemetry-python-contrib #3465).
    """
    ctx = context_from_headers(headers)
    with tracer.start_as_current_span(
        f"{topic} process",
        context=ctx,
        kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic}
        | dict(attributes or {}),
    ) as span:
        yield span
