"""Translation of decoded HJ 212 packets into the monitoring.records contract."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, tzinfo

from google.protobuf.timestamp_pb2 import Timestamp

from liandong.events import SCHEMA_VERSION, deterministic_id
from liandong.hj212.packets import DecodeResult, FactorValue, Packet
from liandong.hj212.redaction import redact_password
from liandong.v1 import envelope_pb2, records_pb2

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# ASCII digits only: \d (and float()) would also take full-width ４０.１
_PLAIN_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)").fullmatch

_NUMERIC = {
    "Rtd": "rtd",
    "Min": "min",
    "Avg": "avg",
    "Max": "max",
    "Cou": "cou",
    "ZsRtd": "zs_rtd",
    "ZsAvg": "zs_avg",
}


def record_event_id(mn: str, frame: bytes) -> str:
    """Same frame from the same logger -> same id, so a re-sent (un-acked) frame dedupes."""
    return deterministic_id("record", mn, hashlib.sha256(frame).hexdigest())


def _timestamp(moment: datetime) -> Timestamp:
    """``liandong.events.to_timestamp`` in integer arithmetic (exact, and no astimezone/
    FromDatetime on the hot path)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: event times must carry a time zone")
    delta = moment - _EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def _reading(factor: FactorValue) -> records_pb2.FactorReading:
    numbers: dict[str, float] = {}
    for suffix, raw in factor.fields.items():
        attr = _NUMERIC.get(suffix)
        # Same rule as FactorValue.number: a plain decimal, anything else is kept as text only.
        if attr is not None and _PLAIN_NUMBER(raw):
            numbers[attr] = float(raw)
    return records_pb2.FactorReading(
        code=factor.code,
        original_code=factor.original_code,
        fields=factor.fields,
        flag=factor.fields.get("Flag", ""),
        **numbers,
    )


def to_record(
    result: DecodeResult,
    frame: bytes,
    *,
    peer: str,
    received_at: datetime,
    station_tz: tzinfo,
    outlet_id: str = "",
) -> records_pb2.MonitoringRecord:
    packet: Packet = result.packet
    # DataTime is the station's local clock (HJ 212 carries no zone): localise, then UTC.
    local = packet.data_time
    data_time = local.replace(tzinfo=station_tz) if local is not None else received_at
    event_time = _timestamp(data_time)
    return records_pb2.MonitoringRecord(
        meta=envelope_pb2.EventMeta(
            event_id=record_event_id(packet.mn, frame),
            key=packet.mn,
            event_time=event_time,
            processing_time=_timestamp(datetime.now(UTC)),
            producer="gateway",
            schema_version=SCHEMA_VERSION,
        ),
        mn=packet.mn,
        st=packet.st or "",
        cn=packet.cn,
        qn=packet.qn or "",
        flag=packet.flag if packet.flag is not None else -1,
        protocol_version=packet.version.value,
        data_time=event_time,
        fields=packet.fields,
        raw_frame=redact_password(frame),  # the id above is of the frame as sent
        received_at=_timestamp(received_at),
        peer=peer,
        warnings=result.warnings,
        crc_variant=result.crc_variant.name,
        outlet_id=outlet_id,
        factors=[_reading(factor) for factor in packet.factors.values()],
    )
