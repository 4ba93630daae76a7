"""Trace context survives the Kafka hop: headers written by a producer parent the consumer span."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from liandong.telemetry import consumed_span, headers_to_carrier, trace_headers


def make_tracer() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_consumer_span_continues_the_producer_trace() -> None:
    tracer, exporter = make_tracer()
    with tracer.start_as_current_span("produce") as producer:
        headers = trace_headers()
    assert [k for k, _ in headers] == ["traceparent"]
    # A different current context on the consumer side must not win over the headers.
    with tracer.start_as_current_span("unrelated"), consumed_span(tracer, "alerts.events", headers):
        pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    consumer = spans["alerts.events process"]
    assert consumer.context.trace_id == producer.get_span_context().trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.get_span_context().span_id
    assert consumer.kind is trace.SpanKind.CONSUMER
    assert consumer.attributes["messaging.destination.name"] == "alerts.events"


def test_without_headers_the_consumer_span_is_a_new_trace() -> None:
    tracer, exporter = make_tracer()
    with consumed_span(tracer, "t", None):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.parent is None


def test_carrier_takes_the_last_repeated_header_and_skips_nulls() -> None:
    carrier = headers_to_carrier([("traceparent", b"a"), ("traceparent", b"b"), ("x", None)])  # type: ignore[list-item]
    assert carrier == {"traceparent": "b"}


def _sampled(monkeypatch: Any, **kwargs: Any) -> tuple[bool, bool]:
    """(a root span is recorded, a child of a sampled remote parent is recorded)."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from liandong import telemetry

    monkeypatch.setattr(telemetry, "_configured", object())  # leave the global provider alone
    monkeypatch.delenv("LIANDONG_TRACES_FILE", raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    tracer = telemetry.setup_telemetry("t", instrument_kafka=False, **kwargs).tracer_provider
    root = tracer.get_tracer("t").start_span("root")
    parent = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    child = tracer.get_tracer("t").start_span(
        "child", context=trace.set_span_in_context(NonRecordingSpan(parent))
    )
    return root.is_recording(), child.is_recording()


def test_nothing_exporting_records_no_root_span_but_follows_a_sampled_parent(
    monkeypatch: Any,
) -> None:
    assert _sampled(monkeypatch) == (False, True)


def test_an_exporter_records_every_span(monkeypatch: Any) -> None:
    assert _sampled(monkeypatch, span_exporters=[InMemorySpanExporter()]) == (True, True)
