from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from casefile.domain.requests import (
    IdempotencyRecord,
    Outcome,
    check,
    fingerprint,
    make_key,
)

NOW = datetime(2026, 3, 2, tzinfo=UTC)
KEY = make_key("req-1", "o1", "RecordSample")
PAYLOAD = {"sample_id": "S1", "amount": Decimal("1.0")}


def record(payload: dict = PAYLOAD, at: datetime = NOW) -> IdempotencyRecord:
    return IdempotencyRecord(KEY, fingerprint(payload), b"first-result", at)


def test_first_request_is_fresh() -> None:
    assert check(None, KEY, fingerprint(PAYLOAD), NOW).outcome is Outcome.FRESH


def test_same_key_same_payload_replays_first_result() -> None:
    again = {"amount": Decimal("1.0"), "sample_id": "S1"}  # key order does not matter
    result = check(record(), KEY, fingerprint(again), NOW + timedelta(seconds=3))
    assert (result.outcome, result.result) == (Outcome.REPLAY, b"first-result")


def test_same_key_different_payload_conflicts() -> None:
    other = {"sample_id": "S1", "amount": Decimal("1.00")}  # scale is part of the value
    result = check(record(), KEY, fingerprint(other), NOW)
    assert result.outcome is Outcome.CONFLICT
    assert "req-1" in result.reason and "different payload" in result.reason


def test_key_is_scoped_by_principal_and_method() -> None:
    assert check(record(), make_key("req-1", "o2", "RecordSample"), "f", NOW).outcome is (
        Outcome.FRESH
    )
    assert check(record(), make_key("req-1", "o1", "AddEvidence"), "f", NOW).outcome is (
        Outcome.FRESH
    )


def test_expired_record_is_forgotten() -> None:
    old = record(at=NOW - timedelta(days=8))
    assert check(old, KEY, fingerprint(PAYLOAD), NOW).outcome is Outcome.FRESH


def test_fingerprint_is_stable_sha256() -> None:
    # sha256 of b'{"a":1}'
    assert fingerprint({"a": 1}) == (
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862"
    )
    # bytes are hashed as given: sha256 of b'{"a":1}' again
    assert fingerprint(b'{"a":1}') == fingerprint({"a": 1})
    with pytest.raises(ValueError):
        make_key(" ", "o1", "m")
