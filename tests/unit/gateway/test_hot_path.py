"""The gateway's per-frame shortcuts (issue 17 item 4) keep its guarantees: a record carries a
valid W3C trace context without an SDK span, each 9014 follows its own record's broker ack
(in order, never before), the cached partitioner places keys as aiokafka's default does."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

from gateway.adapters.kafka_out import KeyHashCache
from gateway.entrypoints.sessions import GatewayConfig, KnownLogger, Session
from gateway.entrypoints.tcp_server import Gateway
from gateway.simulator.station import SimLogger, data_frame
from liandong import telemetry
from liandong.v1 import records_pb2

LOGGER = SimLogger("3201150000000000000000A1", "s3cr3t", "gas", {})
KNOWN = KnownLogger(LOGGER.mn, LOGGER.password, "outlet-1")
# flags 02: not sampled, random trace id (W3C level 2), as the SDK writes for such a root span
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-02")


class FakePublisher:
    """Records what the gateway enqueues; each record's ack is a future the test resolves."""

    def __init__(self) -> None:
        self.records: list[tuple[records_pb2.MonitoringRecord, list[tuple[str, bytes]]]] = []
        self.acks: list[asyncio.Future[object]] = []

    async def enqueue_record(
        self, record: records_pb2.MonitoringRecord, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[object]:
        self.records.append((record, list(headers or [])))
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    async def enqueue_rejected(self, **kwargs: Any) -> asyncio.Future[object]:
        raise AssertionError(f"unexpected dead letter {kwargs}")


class Writer:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        return None


def _gateway() -> tuple[Gateway, FakePublisher]:
    publisher = FakePublisher()
    gateway = Gateway(
        GatewayConfig(),
        publisher,  # type: ignore[arg-type]
        lambda mn: KNOWN if mn == KNOWN.mn else None,
    )
    return gateway, publisher


@pytest.fixture()
def quiet_tracing(monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
    """The process as ``setup_telemetry`` leaves it with nothing exporting."""
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    monkeypatch.setattr(telemetry, "_unrecorded_roots", provider)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    return provider


async def test_records_carry_a_traceparent_without_an_sdk_span(
    quiet_tracing: TracerProvider,
) -> None:
    gateway, publisher = _gateway()
    frames = [
        data_frame(LOGGER, "2051", datetime(2024, 5, 1, 10, m), {"a21026": 1.0})[1]
        for m in range(3)
    ]
    runs = [asyncio.ensure_future(gateway.on_frame(f, "10.0.0.1:5000")) for f in frames]
    while len(publisher.acks) < 3:
        await asyncio.sleep(0)
    for ack in publisher.acks:
        ack.set_result(None)
    await asyncio.gather(*runs)
    trace_ids = set()
    for _, headers in publisher.records:
        (key, value), *rest = headers
        match = TRACEPARENT.fullmatch(value.decode())
        assert key == "traceparent" and not rest and match, headers
        assert int(match.group(1), 16) and int(match.group(2), 16)  # valid: non-zero ids
        trace_ids.add(match.group(1))
    assert len(trace_ids) == 3  # one trace per frame, as with a span per frame


def test_span_headers_are_what_the_propagator_injects(quiet_tracing: TracerProvider) -> None:
    span = telemetry.unsampled_root_span()
    assert span is not None and not span.is_recording()
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    assert telemetry.span_headers(span) == [(k, v.encode()) for k, v in carrier.items()]
    # the SDK's own sampled-out root span has the same flags (not sampled, random id), not remote
    sdk_span = quiet_tracing.get_tracer("t").start_span("s")
    assert sdk_span.get_span_context().trace_flags == span.get_span_context().trace_flags
    assert sdk_span.get_span_context().is_remote is span.get_span_context().is_remote


def test_no_shortcut_when_spans_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    # a provider that exports (or any provider setup_telemetry did not make quiet): real spans
    monkeypatch.setattr(telemetry, "_unrecorded_roots", None)
    assert telemetry.unsampled_root_span() is None
    monkeypatch.setattr(telemetry, "_unrecorded_roots", TracerProvider())
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider())
    assert telemetry.unsampled_root_span() is None


async def test_each_9014_waits_for_its_own_records_ack(quiet_tracing: TracerProvider) -> None:
    gateway, publisher = _gateway()
    writer = Writer()
    session = Session("10.0.0.1:5000", writer, gateway.config)  # type: ignore[arg-type]
    sent = [
        data_frame(LOGGER, "2051", datetime(2024, 5, 1, 10, m), {"a21026": 1.0}) for m in range(3)
    ]
    chunks = session.frames.feed(b"".join(frame for _, frame in sent))  # one read, three frames
    processing = asyncio.ensure_future(gateway._process(session, chunks))
    while len(publisher.acks) < 3:
        await asyncio.sleep(0)
    # the broker acks the last two first: nothing may be answered yet (first not acked)
    publisher.acks[2].set_result(None)
    publisher.acks[1].set_result(None)
    for _ in range(20):
        await asyncio.sleep(0)
    assert writer.written == []
    publisher.acks[0].set_result(None)
    await processing
    answered = [re.search(rb"QN=(\d+)", w).group(1).decode() for w in writer.written]  # type: ignore[union-attr]
    assert answered == [qn for qn, _ in sent]  # in order, one each


async def test_a_record_the_broker_refuses_gets_no_9014(quiet_tracing: TracerProvider) -> None:
    gateway, publisher = _gateway()
    writer = Writer()
    session = Session("10.0.0.1:5000", writer, gateway.config)  # type: ignore[arg-type]
    sent = [
        data_frame(LOGGER, "2051", datetime(2024, 5, 1, 10, m), {"a21026": 1.0}) for m in range(2)
    ]
    chunks = session.frames.feed(b"".join(frame for _, frame in sent))
    processing = asyncio.ensure_future(gateway._process(session, chunks))
    while len(publisher.acks) < 2:
        await asyncio.sleep(0)
    publisher.acks[0].set_exception(ConnectionError("broker away"))
    publisher.acks[1].set_result(None)
    await processing
    answered = [re.search(rb"QN=(\d+)", w).group(1).decode() for w in writer.written]  # type: ignore[union-attr]
    assert answered == [sent[1][0]]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=20),
    st.integers(min_value=1, max_value=12),
)
def test_cached_partitioner_places_keys_as_the_default(keys: list[bytes], count: int) -> None:
    cached, default = KeyHashCache(), DefaultPartitioner()
    partitions = list(range(count))
    for key in keys + keys:  # the second pass answers from the cache
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)
