"""decoded packet -> monitoring.records message."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from liandong.hj212.decoding import decode
from liandong.hj212.records import record_event_id, to_record
from liandong.hj212.redaction import redact_password
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
