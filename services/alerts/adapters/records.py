"""monitoring.records (MonitoringRecord protobuf) to the domain's per-factor Readings."""

from __future__ import annotations

from datetime import datetime

from alerts.domain.readings import Reading, RecordKind
from liandong.events import from_timestamp
from liandong.v1 import records_pb2

_KINDS = {k.value: k for k in RecordKind}
_NUMBERS = ("rtd", "avg", "min", "max", "cou", "zs_avg", "zs_rtd")


def record_kind(cn: str) -> RecordKind | None:
    """Data uploads the judge uses (2011, 2051, 2061, 2031); other CNs carry no readings."""
    return _KINDS.get(cn)


def readings_from_record(record: records_pb2.MonitoringRecord, now: datetime) -> list[Reading]:
    """One Reading per factor. The record's event id is the reference every alert cites;
    a record without received_at (never from the gateway) is taken as received `now`."""
    kind = record_kind(record.cn)
    if kind is None:
        return []
    if not record.HasField("data_time"):
        raise ValueError(f"record {record.meta.event_id} has no DataTime")
    data_time = from_timestamp(record.data_time)
    received = from_timestamp(record.received_at) if record.HasField("received_at") else now
    out: list[Reading] = []
    for f in record.factors:
        numbers = {name: getattr(f, name) if f.HasField(name) else None for name in _NUMBERS}
        out.append(
            Reading(
                outlet_id=record.outlet_id,
                mn=record.mn,
                factor=f.code,
                data_time=data_time,
                kind=kind,
                received_at=received,
                record_ref=record.meta.event_id,
                flag=f.flag or None,
                **numbers,
            )
        )
    return out
