"""Event envelope helpers: ids, times and the EventMeta every Kafka event carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from liandong.v1 import envelope_pb2

SCHEMA_VERSION = 1
# Namespace for deterministic ids: the same inputs always give the same event id.
LIANDONG_NS = uuid.UUID("6f1f7c36-3c55-5d0a-9d8e-6c69616e646f")


def deterministic_id(*parts: str) -> str:
    return str(uuid.uuid5(LIANDONG_NS, "\x1f".join(parts)))


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    if moment.tzinfo is None:
        raise ValueError("naive datetime: event times must carry a time zone")
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def new_meta(
    *,
    key: str,
    event_time: datetime,
    producer: str,
    event_id: str | None = None,
    causation_id: str = "",
) -> envelope_pb2.EventMeta:
    return envelope_pb2.EventMeta(
        event_id=event_id or str(uuid.uuid4()),
        key=key,
        event_time=to_timestamp(event_time),
        processing_time=to_timestamp(utcnow()),
        producer=producer,
        causation_id=causation_id,
        schema_version=SCHEMA_VERSION,
    )
