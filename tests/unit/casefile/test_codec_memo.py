"""The memoised encodings of a case (stored document and gRPC reply) against the plain ones,
over random histories of case versions, and the planned message mappings against values
worked out by hand."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casefile.adapters import codec
from casefile.adapters.codec import (
    LIST_FIELDS,
    EncodingMemo,
    case_to_doc,
    fill_message,
    from_message,
    list_field_chunks,
)
from casefile.domain.canonical import canonical_json
from casefile.domain.commands import AddEvidence
from casefile.domain.custody import Position
from casefile.domain.errors import InvalidCommand
from casefile.domain.kinds import (
    ClockName,
    Disposition,
    EnforcementKind,
    EvidenceKind,
    PauseReason,
    State,
)
from casefile.domain.records import Case, ClockPause, Closure, EnforcementRecord, Evidence, SiteNote
from liandong.v1 import casefile_pb2
from tests.unit.casefile.scenario import MAIN_PATH, H, run

MARKER = codec._MARKER  # the splice marker: data holding it must still encode exactly

texts = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        [
            MARKER,
            f'"{MARKER}"',
            f"[{MARKER}]",
            f'x"{MARKER}",',
            '"',
            "\\",
            '\\"',
            "排口 监测 ✓",
            "\x00\x07\n\t\x1f",
            "\u2028\u00e9",
            "",
        ]
    ),
)
times = st.datetimes(
    min_value=datetime(2, 1, 1),
    max_value=datetime(9998, 12, 31),
    timezones=st.sampled_from(
        [
            UTC,
            timezone(timedelta(0), "GMT"),  # offset zero but not the UTC object
            timezone(timedelta(hours=8)),
            timezone(-timedelta(hours=5, minutes=30)),
        ]
    ),
)
positions = st.none() | st.builds(
    Position,
    st.floats(-90, 90, allow_nan=False),
    st.floats(-180, 180, allow_nan=False),
)
decimals = st.sampled_from(["1.5", "1.50", "150000", "-0", "1E+3", "0.000"]).map(Decimal)

ITEMS: dict[str, st.SearchStrategy[Any]] = {
    "evidence": st.builds(
        Evidence,
        evidence_id=texts,
        kind=st.sampled_from(EvidenceKind),
        sha256=st.just(H),
        captured_at=times,
        captured_by=texts,
        description=texts,
        position=positions,
        added_at=times,
        added_by=texts,
        media_type=texts,
    ),
    "enforcement": st.builds(
        EnforcementRecord,
        kind=st.sampled_from(EnforcementKind),
        at=times,
        amount=st.none() | decimals,
        compliant=st.none() | st.booleans(),
        note=texts,
        recorded_by=texts,
    ),
    "pauses": st.builds(
        ClockPause,
        clock=st.sampled_from(ClockName),
        reason=st.sampled_from(PauseReason),
        started_at=times,
        ended_at=st.none() | times,
    ),
    "site_notes": st.builds(
        SiteNote,
        at=times,
        text=texts,
        by=texts,
        position=positions,
        recorded_at=times,
        recorded_by=texts,
    ),
}
LISTS = sorted(ITEMS)
SCALARS = ["case_id", "source_ref", "enterprise_id", "county_code", "filing_no"]
index = st.integers(0, 1000)

operations = st.one_of(
    st.tuples(st.just("append"), st.sampled_from(LISTS), st.data()),
    st.tuples(st.just("append_again"), st.sampled_from(LISTS), index),
    st.tuples(st.just("replace"), st.sampled_from(LISTS), index, st.data()),
    st.tuples(st.just("remove"), st.sampled_from(LISTS), index),
    st.tuples(st.just("scalar"), st.sampled_from(SCALARS), texts),
    st.tuples(st.just("closure"), texts, times),
    st.tuples(st.just("state"), st.sampled_from(State)),
    st.tuples(st.just("back"), index),  # an older version again (lists shrink)
)


def _step(case: Case, op: tuple[Any, ...], history: list[Case], seen: dict[str, list[Any]]) -> Case:
    kind = op[0]
    if kind == "back":
        return history[op[1] % len(history)]
    if kind == "scalar":
        return dataclasses.replace(case, **{op[1]: op[2]})
    if kind == "closure":
        closure = Closure(Disposition.NOT_FILED, op[1], op[2], "o1")
        return dataclasses.replace(case, closure=closure)
    if kind == "state":
        return dataclasses.replace(case, state=op[1])
    name = op[1]
    items: tuple[Any, ...] = getattr(case, name)
    if kind == "append":
        item = op[2].draw(ITEMS[name])
        seen[name].append(item)
        items = (*items, item)
    elif kind == "append_again" and seen[name]:  # an item object of this or an older version
        items = (*items, seen[name][op[2] % len(seen[name])])
    elif kind == "replace" and items:
        at = op[2] % len(items)
        item = op[3].draw(ITEMS[name])
        seen[name].append(item)
        items = (*items[:at], item, *items[at + 1 :])
    elif kind == "remove" and items:
        at = op[2] % len(items)
        items = items[:at] + items[at + 1 :]
    return dataclasses.replace(case, **{name: items})


def _assert_encodings(case: Case, memo: EncodingMemo) -> None:
    assert case_to_doc(case, memo) == canonical_json(case)
    scalar_part = fill_message(casefile_pb2.Case(), case, LIST_FIELDS).SerializeToString()
    reply = scalar_part + list_field_chunks(casefile_pb2.Case, case, memo)
    assert casefile_pb2.Case.FromString(reply) == fill_message(casefile_pb2.Case(), case)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, max_size=14))
def test_memoised_encodings_equal_the_plain_ones_at_every_version(ops: list[Any]) -> None:
    case = run(MAIN_PATH)  # every record filled in: decision, notice, samples, findings ...
    memo = EncodingMemo()
    history = [case]
    seen: dict[str, list[Any]] = {name: [] for name in LISTS}
    _assert_encodings(case, memo)
    for op in ops:
        case = dataclasses.replace(_step(case, op, history, seen), version=case.version + 1)
        history.append(case)
        _assert_encodings(case, memo)


def _evidence(n: int, description: str = "outlet photo") -> Evidence:
    at = datetime(2026, 3, 2, 3, n, tzinfo=UTC)
    return Evidence(f"E{n}", EvidenceKind.PHOTO, H, at, "o1", description, None, at, "o1")


def test_marker_text_in_a_scalar_falls_back_to_the_plain_encoder() -> None:
    case = dataclasses.replace(run(MAIN_PATH), filing_no=MARKER, evidence=(_evidence(1),))
    memo = EncodingMemo()
    doc = case_to_doc(case, memo)
    assert doc == canonical_json(case)
    assert f'"filing_no":"{MARKER}"' in doc
    assert '"evidence":[{"added_at":"2026-03-02T03:01:00.000000Z"' in doc


def test_a_write_encodes_only_its_new_items(monkeypatch: pytest.MonkeyPatch) -> None:
    base = dataclasses.replace(run(MAIN_PATH), evidence=tuple(_evidence(n) for n in range(30)))
    memo = EncodingMemo()
    case_to_doc(base, memo)
    list_field_chunks(casefile_pb2.Case, base, memo)
    json_items: list[Any] = []
    wire_items: list[Any] = []
    item_json, fill = codec._item_json, codec.fill_message

    def counting_json(item: Any) -> str:
        json_items.append(item)
        return item_json(item)

    def counting_fill(msg: Any, obj: Any, skip: frozenset[str] = frozenset()) -> Any:
        if isinstance(obj, Evidence):
            wire_items.append(obj)
        return fill(msg, obj, skip)

    monkeypatch.setattr(codec, "_item_json", counting_json)
    monkeypatch.setattr(codec, "fill_message", counting_fill)
    new = _evidence(30, "new one")
    case = dataclasses.replace(base, evidence=(*base.evidence, new), version=base.version + 1)
    doc = case_to_doc(case, memo)
    chunks = list_field_chunks(casefile_pb2.Case, case, memo)
    assert json_items == [new]
    assert wire_items == [new]
    assert doc == canonical_json(case)
    parsed = casefile_pb2.Case.FromString(chunks)
    assert [e.evidence_id for e in parsed.evidence] == [f"E{n}" for n in range(31)]
    assert parsed.evidence[30].description == "new one"


def test_equal_but_distinct_items_are_encoded_afresh() -> None:
    # Decimal("1.5") == Decimal("1.50"), yet canonical JSON keeps the scale
    at = datetime(2026, 3, 20, tzinfo=UTC)
    paid = EnforcementRecord(EnforcementKind.FINE_PAID, at, Decimal("1.5"), None, "", "o1")
    case = dataclasses.replace(run(MAIN_PATH), enforcement=(paid,))
    memo = EncodingMemo()
    assert '"amount":"1.5"' in case_to_doc(case, memo)
    rescaled = dataclasses.replace(paid, amount=Decimal("1.50"))
    assert rescaled == paid
    case = dataclasses.replace(case, enforcement=(rescaled,))
    assert '"amount":"1.50"' in case_to_doc(case, memo)
    chunks = list_field_chunks(casefile_pb2.Case, case, memo)
    assert [r.amount for r in casefile_pb2.Case.FromString(chunks).enforcement] == ["1.50"]


def test_unencodable_values_raise_the_plain_encoders_error() -> None:
    at = datetime(2026, 3, 20, tzinfo=UTC)
    bad = EnforcementRecord(EnforcementKind.FINE_PAID, at, Decimal("NaN"), None, "", "o1")
    case = dataclasses.replace(run(MAIN_PATH), enforcement=(bad,))
    with pytest.raises(ValueError, match="non-finite Decimal"):
        case_to_doc(case, EncodingMemo())
    naive = dataclasses.replace(run(MAIN_PATH), filed_at=datetime(2026, 3, 5, 2))
    with pytest.raises(ValueError, match="naive datetime"):
        case_to_doc(naive, EncodingMemo())


def test_early_years_keep_the_plain_encoders_text() -> None:
    # strftime's %Y does not pad years below 1000; the splice must not either
    early = datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    case = dataclasses.replace(run(MAIN_PATH), filed_at=early)
    assert case_to_doc(case, EncodingMemo()) == canonical_json(case)


# ---- planned message mappings, against values worked out by hand ---------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "seconds", "nanos"),
    [
        # 20514 days from 1970-01-01 to 2026-03-02, plus two hours
        (datetime(2026, 3, 2, 2, tzinfo=UTC), 20514 * 86400 + 7200, 0),
        (datetime(2026, 3, 2, 10, tzinfo=timezone(timedelta(hours=8))), 20514 * 86400 + 7200, 0),
        (datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), -1, 500_000_000),
        (datetime(1970, 1, 1, 0, 0, 1, 7, tzinfo=timezone(timedelta(0), "GMT")), 1, 7000),
    ],
)
def test_timestamps_filled_from_datetimes(moment: datetime, seconds: int, nanos: int) -> None:
    evidence = dataclasses.replace(_evidence(0), captured_at=moment)
    msg = fill_message(casefile_pb2.Evidence(), evidence)
    assert isinstance(msg, casefile_pb2.Evidence)
    assert (msg.captured_at.seconds, msg.captured_at.nanos) == (seconds, nanos)
    assert not msg.HasField("position")


@st.composite
def evidence_requests(draw: st.DrawFn) -> casefile_pb2.AddEvidenceRequest:
    request = casefile_pb2.AddEvidenceRequest(
        evidence_id=draw(texts),
        kind=draw(st.sampled_from(EvidenceKind)).value,
        sha256=H,
        captured_by=draw(texts),
        description=draw(texts),
        media_type=draw(texts),
    )
    request.captured_at.seconds = draw(st.integers(-62135596800, 253402300799))
    request.captured_at.nanos = draw(st.integers(0, 999_999_999))
    if draw(st.booleans()):
        # 0,0 is what an empty position decodes to, refused since issue 12 (edge values)
        lat, lon = draw(
            st.tuples(st.floats(-90, 90), st.floats(-180, 180)).filter(lambda p: p != (0, 0))
        )
        request.position.lat, request.position.lon = lat, lon
    return request


@settings(max_examples=150, deadline=None)
@given(evidence_requests())
def test_add_evidence_request_to_command(request: casefile_pb2.AddEvidenceRequest) -> None:
    ts = request.captured_at
    expected = AddEvidence(
        request.evidence_id,
        EvidenceKind[request.kind],
        H,
        EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000),
        request.captured_by,
        request.description,
        Position(request.position.lat, request.position.lon)
        if request.HasField("position")
        else None,
        request.media_type,
    )
    command = from_message(AddEvidence, request)
    assert command == expected
    assert command.captured_at.tzinfo is UTC
    # and back: the command fills the request it came from, less the sub-microsecond nanos
    again = fill_message(casefile_pb2.AddEvidenceRequest(), command)
    expected_request = casefile_pb2.AddEvidenceRequest()
    expected_request.CopyFrom(request)
    expected_request.captured_at.nanos = ts.nanos // 1000 * 1000
    expected_request.ClearField("request_id")  # not in the command (and never set here)
    assert again == expected_request


def test_add_evidence_request_errors() -> None:
    request = casefile_pb2.AddEvidenceRequest(evidence_id="E1", kind="SELFIE", sha256=H)
    request.captured_at.seconds = 1
    with pytest.raises(InvalidCommand, match="kind must be one of PHOTO, VIDEO"):
        from_message(AddEvidence, request)
    request.kind = ""
    with pytest.raises(InvalidCommand, match=r"^kind is required$"):
        from_message(AddEvidence, request)
    request.kind = "VIDEO"
    request.ClearField("captured_at")
    with pytest.raises(InvalidCommand, match=r"^captured_at is required$"):
        from_message(AddEvidence, request)
    request.captured_at.nanos = -1  # out of range: protobuf's own check refuses it
    with pytest.raises(ValueError, match="Nanos -1"):
        from_message(AddEvidence, request)
