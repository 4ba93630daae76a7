"""Proto <-> domain translation and stored documents."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casefile.adapters.codec import case_from_doc, case_to_doc, fill_message, from_message
from casefile.domain.canonical import format_instant, parse_instant
from casefile.domain.commands import CloseCase, PauseClock, RecordEnforcement, RecordSample
from casefile.domain.errors import InvalidCommand
from casefile.domain.kinds import ClockName, Disposition, EnforcementKind, PauseReason
from liandong.v1 import casefile_pb2
from tests.unit.casefile.scenario import MAIN_PATH, run


def test_case_document_round_trip_keeps_decimals_and_times() -> None:
    case = run(MAIN_PATH)
    back = case_from_doc(case_to_doc(case))
    assert back == case
    assert back.decision is not None and str(back.decision.fine) == "150000"


@given(st.datetimes(timezones=st.just(UTC)))
def test_every_instant_reads_back_as_written(at: datetime) -> None:
    # a phone's capture time of year 415 was written as "415-04-14T..." (glibc's %Y), and the
    # case could no longer be read: GetCase failed for everyone
    text = format_instant(at)
    assert text[4] == "-" and parse_instant(text) == at


def test_a_case_with_an_early_capture_time_reads_back() -> None:
    case = run(MAIN_PATH)
    early = replace(case.evidence[0], captured_at=datetime(415, 4, 14, 6, 56, tzinfo=UTC))
    case = replace(case, evidence=(early, *case.evidence[1:]))
    assert case_from_doc(case_to_doc(case)) == case


def test_request_to_command() -> None:
    request = casefile_pb2.RecordEnforcementRequest(kind="FINE_PAID", amount="1.50")
    request.at.FromDatetime(datetime(2026, 3, 20, 1, tzinfo=UTC))
    command = from_message(RecordEnforcement, request)
    assert command == RecordEnforcement(
        EnforcementKind.FINE_PAID, datetime(2026, 3, 20, 1, tzinfo=UTC), Decimal("1.50")
    )
    reinspected = casefile_pb2.RecordEnforcementRequest(kind="REINSPECTED", compliant=False)
    reinspected.at.FromDatetime(datetime(2026, 3, 25, tzinfo=UTC))
    assert from_message(RecordEnforcement, reinspected).compliant is False


def test_defaults_and_optional_duration() -> None:
    pause = casefile_pb2.PauseClockRequest(reason="APPRAISAL")
    pause.at.FromDatetime(datetime(2026, 4, 1, tzinfo=UTC))
    assert from_message(PauseClock, pause).clock is ClockName.DECISION
    assert from_message(PauseClock, pause).reason is PauseReason.APPRAISAL
    sample = casefile_pb2.RecordSampleRequest(sample_id="S", parameters=["X"])
    sample.collected_at.FromDatetime(datetime(2026, 4, 1, tzinfo=UTC))
    sample.position.lat = 31.0
    assert from_message(RecordSample, sample).holding_time is None
    sample.holding_time.FromTimedelta(timedelta(hours=6))
    assert from_message(RecordSample, sample).holding_time == timedelta(hours=6)


@pytest.mark.parametrize(
    ("message", "cls", "error"),
    [
        (casefile_pb2.CloseCaseRequest(disposition="NOPE"), CloseCase, "disposition must be"),
        (casefile_pb2.CloseCaseRequest(), CloseCase, "disposition is required"),
        (
            casefile_pb2.RecordEnforcementRequest(
                kind="FINE_PAID", amount="12,5", at={"seconds": 1774000000}
            ),
            RecordEnforcement,
            "amount must be decimal text",
        ),
        (casefile_pb2.RecordEnforcementRequest(kind="FINE_PAID"), RecordEnforcement, "at is"),
    ],
)
def test_bad_input_is_invalid_command(message: object, cls: type, error: str) -> None:
    with pytest.raises(InvalidCommand, match=error):
        from_message(cls, message)  # type: ignore[arg-type]


def test_case_message_carries_records() -> None:
    case = run(MAIN_PATH)
    msg = fill_message(casefile_pb2.Case(), case)
    assert isinstance(msg, casefile_pb2.Case)
    assert msg.state == "CLOSED" and msg.closure.disposition == Disposition.PENALTY_ENFORCED.value
    assert msg.samples[0].holding_time.ToTimedelta() == timedelta(days=5)
    assert msg.enforcement[1].HasField("compliant") and msg.enforcement[1].compliant
    assert not msg.enforcement[0].HasField("compliant")


def test_memoised_document_is_byte_identical_at_every_step() -> None:
    # The memo path splices cached item encodings; the reference is the plain canonical
    # encoder over the whole case, at every version of the main path.
    from casefile.adapters.codec import EncodingMemo
    from casefile.domain.canonical import canonical_json
    from casefile.domain.cases import apply

    memo = EncodingMemo()
    case = None
    for command, actor, now in MAIN_PATH:
        case, _ = apply(case, command, actor, now)
        assert case_to_doc(case, memo) == canonical_json(case)
    assert case is not None
    # the memo now holds exactly the list items of the final case
    items = [*case.samples, *case.evidence, *case.findings, *case.enforcement]
    kept = sum(len(field.by_id) for field in memo.json.values())
    assert kept == len(items) + len(case.extensions) + len(case.pauses) + len(case.site_notes)


def test_reply_spliced_from_cached_chunks_parses_to_the_full_message() -> None:
    from casefile.adapters.codec import LIST_FIELDS, EncodingMemo, list_field_chunks

    case = run(MAIN_PATH)
    full = fill_message(casefile_pb2.Case(), case)
    memo = EncodingMemo()
    list_field_chunks(casefile_pb2.Case, run(MAIN_PATH[:5]), memo)  # warm with an older version
    spliced = fill_message(casefile_pb2.Case(), case, LIST_FIELDS).SerializeToString()
    parsed = casefile_pb2.Case.FromString(
        spliced + list_field_chunks(casefile_pb2.Case, case, memo)
    )
    assert parsed == full
    assert [e.evidence_id for e in parsed.evidence] == ["E1"]
    assert [s.sample_id for s in parsed.samples] == ["S1"]
    assert [str(p.amount) for p in parsed.enforcement] == ["150000", ""]
