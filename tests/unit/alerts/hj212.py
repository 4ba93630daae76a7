"""HJ 212 minute frames and MonitoringRecords for the alerts adapter and CLI tests, built with
the gateway's codec and record translation (read-only use of the gateway package)."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.domain.periods import CST
from liandong.hj212.decoding import decode
from liandong.hj212.encoding import build_data_segment, build_frame
from liandong.hj212.records import to_record
from liandong.v1 import records_pb2

NOX = "a21002"
O2 = "a19001"
MN = "MN-GAS-0001"


def upload_frame(cn: str, at: datetime, pairs: list[tuple[str, str]], mn: str = MN) -> bytes:
    """An upload of `cn` with DataTime `at` (station time) and the data-area `pairs`."""
    segment = build_data_segment(
        qn=at.strftime("%Y%m%d%H%M%S000"),
        st="31",
        cn=cn,
        pw="123456",
        mn=mn,
        flag=4,
        cp_fields=[("DataTime", at.astimezone(CST).strftime("%Y%m%d%H%M%S")), *pairs],
    )
    return build_frame(segment)


def minute_frame(at: datetime, values: dict[str, float], mn: str = MN, flag: str = "N") -> bytes:
    pairs: list[tuple[str, str]] = []
    for code, value in values.items():
        pairs += [(f"{code}-Avg", f"{value:.2f}"), (f"{code}-Flag", flag)]
    return upload_frame("2051", at, pairs, mn)


def nox_minutes(start: datetime, minutes: range, nox: float, o2: float = 7.5) -> list[bytes]:
    """NOx + (m % 7) * 0.1 and O2 + (m % 3) * 0.1: varying, so no constant-value run forms."""
    return [
        minute_frame(
            start + timedelta(minutes=m), {O2: o2 + (m % 3) * 0.1, NOX: nox + (m % 7) * 0.1}
        )
        for m in minutes
    ]


def record(frame: bytes, received: datetime) -> records_pb2.MonitoringRecord:
    return to_record(
        decode(frame, lenient=True), frame, peer="test", received_at=received, station_tz=CST
    )
