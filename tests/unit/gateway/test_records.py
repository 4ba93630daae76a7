"""decoded packet -> monitoring.records message."""

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from liandong.events import SCHEMA_VERSION, deterministic_id
from liandong.hj212.decoding import decode
from liandong.hj212.packets import DecodeResult, FactorValue
from liandong.hj212.records import record_event_id, to_record
from liandong.hj212.redaction import _redact_by_pattern, redact_password
from liandong.hj212.rejects import FrameError
from liandong.v1 import envelope_pb2, records_pb2
from tests.unit.gateway.reference import frame_with

MN = "010000A8900016F000169DC0"


def test_record_carries_typed_values_times_and_evidence() -> None:
    segment = (
        f"QN=20240501103000123;ST=32;CN=2051;PW=123456;MN={MN};Flag=5;"
        "CP=&&DataTime=20240501103000;011-Min=1.5,011-Avg=2,011-Max=x,011-Flag=D;"
        "w01001-ZsAvg=-.5,w01001-Cou=1e3&&"
    )
    frame = frame_with(segment)
    received = datetime(2024, 5, 1, 2, 31, 7, 250_000, tzinfo=UTC)
    record = to_record(
        decode(frame, lenient=True),
        frame,
        peer="10.0.0.9:4000",
        received_at=received,
        station_tz=ZoneInfo("Asia/Shanghai"),
        outlet_id="out-1",
    )
    # 10:30 in Shanghai (UTC+8) is 02:30 UTC; 2024-05-01T00:00Z is 1714521600.
    assert (record.data_time.seconds, record.data_time.nanos) == (1714521600 + 9000, 0)
    assert record.meta.event_time == record.data_time
    assert (record.received_at.seconds, record.received_at.nanos) == (1714530667, 250_000_000)
    assert record.meta.event_id == record_event_id(MN, frame)
    assert (record.mn, record.qn, record.cn, record.flag) == (MN, "20240501103000123", "2051", 5)
    assert dict(record.fields) == {"DataTime": "20240501103000"}
    assert bytes(record.raw_frame) == redact_password(frame)
    assert (record.peer, record.outlet_id) == ("10.0.0.9:4000", "out-1")
    assert record.crc_variant == "HJ212"
    cod, flow = record.factors
    assert (cod.code, cod.original_code, cod.flag) == ("w01018", "011", "D")
    assert (cod.min, cod.avg, cod.HasField("max")) == (1.5, 2.0, False)  # "x" stays text only
    assert dict(cod.fields)["Max"] == "x"
    assert (flow.zs_avg, flow.HasField("cou")) == (-0.5, False)  # 1e3 is no plain decimal


# --- the hot-path rewrite (issue 17 item 4) gives the same ids, bytes and messages ---------

# Recorded with the uuid.uuid5 implementation before the rewrite: consumers dedupe by these, so
# the same MN and frame must give exactly these ids for good.
RECORDED_IDS = [
    (
        MN,
        b"##0185QN=20240501103000123;ST=32;CN=2051;PW=123456;MN=010000A8900016F000169DC0;"
        b"Flag=5;CP=&&DataTime=20240501103000;011-Min=1.5,011-Avg=2,011-Max=x,011-Flag=D;"
        b"w01001-ZsAvg=-.5,w01001-Cou=1e3&&3C00\r\n",
        "48b8b4c4-d1af-55f5-beeb-2e941460c604",
    ),
    (
        "88888880000001",
        b"##0084ST=32;CN=2011;PW=123456;MN=88888880000001;CP=&&DataTime=20040516021300;"
        b"B01-Rtd=1.0&&2800\r\n",
        "a2155fb6-eeb0-5cc0-a37b-3b8e585a8026",
    ),
    ("A1", b"##0010QN=1;MN=A1\r\n", "d2aad559-3006-57c7-bf65-1d9bab4348b5"),
    (
        "\u6c5f\u82cf01",
        "##0040QN=1;MN=\u6c5f\u82cf01;CP=&&\u6e29\u5ea6=12&&ABCD\r\n".encode(),
        "f61e3f4f-4832-5247-94b0-3e72c108b2d8",
    ),
    ("", b"", "1d70c4d1-f6c9-5dcf-84ed-1eab2ab6b72a"),
]


@pytest.mark.parametrize(("mn", "frame", "expected"), RECORDED_IDS)
def test_event_ids_are_the_recorded_ones(mn: str, frame: bytes, expected: str) -> None:
    assert record_event_id(mn, frame) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), st.binary(max_size=400))
def test_event_id_is_the_uuid5_definition(mn: str, frame: bytes) -> None:
    assume(not any("\ud800" <= c <= "\udfff" for c in mn))  # no UTF-8 for lone surrogates
    expected = deterministic_id("record", mn, hashlib.sha256(frame).hexdigest())
    assert record_event_id(mn, frame) == expected


def _reference_to_record(
    result: DecodeResult,
    frame: bytes,
    *,
    peer: str,
    received_at: datetime,
    station_tz: ZoneInfo,
    outlet_id: str = "",
) -> records_pb2.MonitoringRecord:
    """``to_record`` as it was before it built the message in place (constructor arguments)."""
    packet = result.packet
    local = packet.data_time
    data_time = local.replace(tzinfo=station_tz) if local is not None else received_at

    def stamp(moment: datetime) -> Timestamp:
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return Timestamp(
            seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
        )

    def reading(factor: FactorValue) -> records_pb2.FactorReading:
        numbers = {
            attr: float(raw)
            for suffix, raw in factor.fields.items()
            if (attr := NUMERIC.get(suffix)) is not None and factor.number(suffix) is not None
        }
        return records_pb2.FactorReading(
            code=factor.code,
            original_code=factor.original_code,
            fields=factor.fields,
            flag=factor.fields.get("Flag", ""),
            **numbers,
        )

    return records_pb2.MonitoringRecord(
        meta=envelope_pb2.EventMeta(
            event_id=deterministic_id("record", packet.mn, hashlib.sha256(frame).hexdigest()),
            key=packet.mn,
            event_time=stamp(data_time),
            processing_time=stamp(datetime.now(UTC)),
            producer="gateway",
            schema_version=SCHEMA_VERSION,
        ),
        mn=packet.mn,
        st=packet.st or "",
        cn=packet.cn,
        qn=packet.qn or "",
        flag=packet.flag if packet.flag is not None else -1,
        protocol_version=packet.version.value,
        data_time=stamp(data_time),
        fields=packet.fields,
        raw_frame=_redact_by_pattern(frame),
        received_at=stamp(received_at),
        peer=peer,
        warnings=result.warnings,
        crc_variant=result.crc_variant.name,
        outlet_id=outlet_id,
        factors=[reading(factor) for factor in packet.factors.values()],
    )


NUMERIC = {
    "Rtd": "rtd",
    "Min": "min",
    "Avg": "avg",
    "Max": "max",
    "Cou": "cou",
    "ZsRtd": "zs_rtd",
    "ZsAvg": "zs_avg",
}
VALUES = st.one_of(
    st.sampled_from(["1.5", "-.5", "1e3", "x", "", "+2.", "\uff14\uff10.1", "007", "N", "D"]),
    st.text(alphabet="0123456789.-+eE", max_size=8),
)
SUFFIXES = st.sampled_from([*NUMERIC, "Flag", "EFlag", "SampleTime", "Info", "Vendor"])


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a21026", "a21002", "a34013", "w01018", "011", "B01", "a00000"]),
        st.dictionaries(SUFFIXES, VALUES, min_size=1, max_size=6),
        max_size=6,
    ),
    st.sampled_from(["2011", "2051", "2061", "1013"]),
    st.booleans(),
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_record_equals_the_constructor_built_one(
    factors: dict[str, dict[str, str]], cn: str, with_time: bool, received: datetime
) -> None:
    items = ["DataTime=20240501103000"] if with_time else []
    items += [
        ";".join(f"{code}-{s}={v}" for s, v in values.items()) for code, values in factors.items()
    ]
    segment = (
        f"QN=20240501103000123;ST=32;CN={cn};PW=123456;MN={MN};Flag=5;CP=&&{';'.join(items)}&&"
    )
    frame = frame_with(segment)
    try:
        result = decode(frame, lenient=True)
    except FrameError:
        return
    tz = ZoneInfo("Asia/Shanghai")
    ours = to_record(result, frame, peer="p:1", received_at=received, station_tz=tz, outlet_id="o")
    theirs = _reference_to_record(
        result, frame, peer="p:1", received_at=received, station_tz=tz, outlet_id="o"
    )
    theirs.meta.processing_time.CopyFrom(ours.meta.processing_time)  # the clock at the call
    assert ours == theirs


REDACTION_INPUTS = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.sampled_from([b"PW=", b";", b"##", b"0123", b"12", b"&", b"\r\n", b"x", b"*", b"PW"]),
        max_size=25,
    ).map(b"".join),
)


@settings(max_examples=1000, deadline=None)
@given(REDACTION_INPUTS)
@example(b"##0123PW=abc;PW=d&&;PW=;PWPW=x;;PW=PW=y\r\nPW=z")
def test_redaction_is_the_pattern_s(frame: bytes) -> None:
    assert redact_password(frame) == _redact_by_pattern(frame)
