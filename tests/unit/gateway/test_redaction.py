"""Logger passwords are not in what consumers read, and the frame as sent can be restored by
whoever holds the password (issue 12, item 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.simulator.station import SimLogger, data_frame
from liandong.hj212.decoding import decode
from liandong.hj212.records import record_event_id, to_record
from liandong.hj212.redaction import redact_password, restore_password

LOGGER = SimLogger("3201150000000000000000A1", "s3cr3t", "gas", {})


def test_records_carry_no_password_and_the_frame_restores() -> None:
    _, frame = data_frame(LOGGER, "2051", datetime(2024, 5, 1, 10, 0), {"a21026": 12.5})
    assert b"PW=s3cr3t;" in frame
    record = to_record(
        decode(frame),
        frame,
        peer="10.0.0.9:4000",
        received_at=datetime(2024, 5, 1, 2, 0, 1, tzinfo=UTC),
        station_tz=ZoneInfo("Asia/Shanghai"),
    )
    raw = bytes(record.raw_frame)
    assert b"s3cr3t" not in raw and b"PW=******;" in raw
    assert len(raw) == len(frame)
    restored = restore_password(raw, "s3cr3t")
    assert restored == frame
    assert decode(restored).packet.mn == LOGGER.mn  # the CRC is the frame's own again
    assert record_event_id(LOGGER.mn, restored) == record.meta.event_id


def test_concatenated_subpackets_and_garbage_are_redacted() -> None:
    _, one = data_frame(LOGGER, "2051", datetime(2024, 5, 1, 10, 0), {"a21026": 1.0})
    _, two = data_frame(LOGGER, "2051", datetime(2024, 5, 1, 10, 1), {"a21026": 2.0})
    assert redact_password(one + two).count(b"PW=******;") == 2
    assert b"s3cr3t" not in redact_password(b"noise;PW=s3cr3t;MN=1")
