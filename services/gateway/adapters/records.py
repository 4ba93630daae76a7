"""Translation of decoded HJ 212 packets into the monitoring.records contract."""

from __future__ import annotations

import hashlib
from datetime import datetime, tzinfo

from gateway.domain.codec import DecodeResult, Packet
from liandong.events import deterministic_id, new_meta, to_timestamp
from liandong.v1 import records_pb2

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
    record = records_pb2.MonitoringRecord(
        meta=new_meta(
            key=packet.mn,
            event_time=data_time,
            producer="gateway",
            event_id=record_event_id(packet.mn, frame),
        ),
        mn=packet.mn,
        st=packet.st or "",
        cn=packet.cn,
        qn=packet.qn or "",
        flag=packet.flag if packet.flag is not None else -1,
        protocol_version=packet.version.value,
        data_time=to_timestamp(data_time),
        fields=dict(packet.fields),
        raw_frame=frame,
        received_at=to_timestamp(received_at),
        peer=peer,
        warnings=list(result.warnings),
        crc_variant=result.crc_variant.name,
        outlet_id=outlet_id,
    )
    for factor in packet.factors.values():
        reading = records_pb2.FactorReading(
            code=factor.code,
            original_code=factor.original_code,
            fields=dict(factor.fields),
            flag=factor.fields.get("Flag", ""),
        )
        for suffix, attr in _NUMERIC.items():
            value = factor.number(suffix)
            if value is not None:
                setattr(reading, attr, value)
        record.factors.append(reading)
    return record
