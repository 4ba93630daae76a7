from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from casefile.domain.cases import apply
from casefile.domain.commands import (
    AddEvidence,
    CloseCase,
    ConfirmResult,
    DecidePenalty,
    ExtendClock,
    FileCase,
    RecordFinding,
    RecordHearing,
    RecordInspection,
    RecordSample,
    RequestHearing,
    ScheduleHearing,
    ServeDecision,
    ServeNotice,
    TransferCase,
)
from casefile.domain.errors import (
    AlreadyRecorded,
    ConflictsWithRecord,
    IllegalTransition,
    InvalidCommand,
    NotOnRecord,
)
from casefile.domain.kinds import (
    ClockName,
    Disposition,
    EvidenceKind,
    PenaltyKind,
    State,
    TransferTarget,
)
from casefile.domain.records import Case, Penalty, Signature
from tests.unit.casefile.scenario import (
    ARRIVE,
    CLAUSE,
    CLOSE,
    CONFIRM,
    CORRECT,
    DECIDE,
    FILE,
    FIND,
    FINE,
    INSPECT,
    MAIN_PATH,
    NOTICE,
    OPEN,
    PAID,
    PHOTO,
    RESULT,
    SAMPLE,
    SERVE,
    SIGNATURES,
    SITE,
    TO_LAB,
    H,
    run,
    upto,
    utc,
)

EXPECTED_STATES = [
    State.OPENED,
    State.ON_SITE,
    State.ON_SITE,  # evidence: no state change
    State.ON_SITE,  # sample taken before the record is signed
    State.SAMPLED,  # record signed by both officers, a sample outstanding
    State.AWAITING_LAB,  # every sample in lab custody
    State.AWAITING_LAB,  # result recorded, not yet confirmed
    State.RESULTS_CONFIRMED,
    State.FINDINGS,
    State.FILED,
    State.NOTICE_SERVED,
    State.DECIDED,
    State.DECISION_SERVED,
    State.ENFORCED,
    State.ENFORCED,
    State.CLOSED,
]


def test_main_path_walks_every_state_in_order() -> None:
    case = None
    seen = []
    for (command, actor, now), expected in zip(MAIN_PATH, EXPECTED_STATES, strict=True):
        case, changes = apply(case, command, actor, now)
        seen.append(case.state)
        assert changes[0].kind == type(command).__name__
        assert changes[0].to_state is expected
        assert changes[0].payload["to_state"] == expected.value
    assert seen == EXPECTED_STATES
    assert case is not None and case.version == len(MAIN_PATH)
    assert case.closure is not None and case.closure.disposition is Disposition.PENALTY_ENFORCED


def test_inspection_first_then_sample_then_lab() -> None:
    case = run(MAIN_PATH[:3])
    case, _ = apply(case, INSPECT, "o2", utc(2026, 3, 2, 4, 1))
    assert case.state is State.INSPECTED
    case, _ = apply(case, SAMPLE, "m1", utc(2026, 3, 2, 4, 2))
    assert case.state is State.SAMPLED
    case, _ = apply(case, TO_LAB, "m1", utc(2026, 3, 2, 8, 1))
    assert case.state is State.AWAITING_LAB


def test_inspection_without_samples_goes_straight_to_findings() -> None:
    case = run(MAIN_PATH[:3])
    case, _ = apply(case, INSPECT, "o2", utc(2026, 3, 2, 4, 1))
    finding = RecordFinding("F1", True, "bypass pipe found", CLAUSE, ("E1",))
    case, _ = apply(case, finding, "o1", utc(2026, 3, 2, 5))
    assert case.state is State.FINDINGS


def test_closure_without_violation_from_findings() -> None:
    case = run(MAIN_PATH[:3])
    case, _ = apply(case, INSPECT, "o2", utc(2026, 3, 2, 4, 1))
    clean = RecordFinding("F1", False, "maintenance mark confirmed", None, ("E1",))
    case, _ = apply(case, clean, "o1", utc(2026, 3, 2, 5))
    case, changes = apply(case, CloseCase(Disposition.NO_VIOLATION, "ok"), "mgr", utc(2026, 3, 3))
    assert case.state is State.CLOSED
    assert changes[0].from_state is State.FINDINGS


def test_not_filed_needs_a_violation_and_transfer_needs_a_transfer() -> None:
    case = upto(RecordFinding)
    case2, _ = apply(case, CloseCase(Disposition.NOT_FILED, "首违不罚"), "mgr", utc(2026, 3, 4, 4))
    assert case2.state is State.CLOSED
    with pytest.raises(IllegalTransition, match="requires a recorded transfer"):
        apply(case, CloseCase(Disposition.TRANSFERRED, "x"), "mgr", utc(2026, 3, 4, 4))
    moved = TransferCase(TransferTarget.JUDICIAL, "suspected 刑法338", utc(2026, 3, 4, 4))
    case3, _ = apply(case, moved, "mgr", utc(2026, 3, 4, 4))
    assert case3.state is State.FINDINGS
    case3, _ = apply(case3, CloseCase(Disposition.TRANSFERRED, "x"), "mgr", utc(2026, 3, 4, 5))
    assert case3.state is State.CLOSED


def test_hearing_path() -> None:
    case = upto(ServeNotice)
    case, _ = apply(case, RequestHearing(utc(2026, 3, 9, 2)), "o1", utc(2026, 3, 9, 2))
    assert case.state is State.HEARING_REQUESTED
    # notified Tue 10 March; 7 working days later is Thu 19 March
    schedule = ScheduleHearing(utc(2026, 3, 19, 2), utc(2026, 3, 10, 2), "host-1")
    case, _ = apply(case, schedule, "mgr", utc(2026, 3, 10, 3))
    assert case.state is State.HEARING_SCHEDULED
    case, _ = apply(
        case, RecordHearing(utc(2026, 3, 19, 2), "host-1", H), "mgr", utc(2026, 3, 19, 5)
    )
    assert case.state is State.HEARING_HELD
    case, _ = apply(case, DECIDE, "mgr", utc(2026, 3, 20, 2))
    assert case.state is State.DECIDED
    assert case.pauses[0].started_at == utc(2026, 3, 9, 2)
    assert case.pauses[0].ended_at == utc(2026, 3, 19, 2)


def test_hearing_notice_shorter_than_seven_working_days_is_invalid() -> None:
    case = upto(ServeNotice)
    case, _ = apply(case, RequestHearing(utc(2026, 3, 9, 2)), "o1", utc(2026, 3, 9, 2))
    early = ScheduleHearing(utc(2026, 3, 18, 2), utc(2026, 3, 10, 2), "host-1")
    with pytest.raises(InvalidCommand, match="earliest hearing day 2026-03-19"):
        apply(case, early, "mgr", utc(2026, 3, 10, 3))
    investigator = ScheduleHearing(utc(2026, 3, 19, 2), utc(2026, 3, 10, 2), "o1")
    with pytest.raises(InvalidCommand, match="must not be an investigator"):
        apply(case, investigator, "mgr", utc(2026, 3, 10, 3))


def test_hearing_request_after_window_is_illegal() -> None:
    case = upto(ServeNotice)
    # window: Fri 6 March + 5 working days = Fri 13 March, ends 16:00Z
    with pytest.raises(IllegalTransition, match="window closed at 2026-03-13T16:00:00"):
        apply(case, RequestHearing(utc(2026, 3, 13, 16)), "o1", utc(2026, 3, 13, 17))
    ok, _ = apply(case, RequestHearing(utc(2026, 3, 13, 15, 59)), "o1", utc(2026, 3, 13, 17))
    assert ok.state is State.HEARING_REQUESTED


def test_decision_waits_for_the_hearing_window() -> None:
    case = upto(ServeNotice)
    with pytest.raises(IllegalTransition) as err:
        apply(case, DECIDE, "mgr", utc(2026, 3, 13, 15))
    assert str(err.value) == (
        "case is NOTICE_SERVED; cannot decide the penalty; requires the party's "
        "hearing-request window to close at 2026-03-13T16:00:00+00:00"
    )
    decided, _ = apply(case, DECIDE, "mgr", utc(2026, 3, 13, 16))
    assert decided.state is State.DECIDED


def test_without_hearing_rights_decision_may_follow_the_notice() -> None:
    case = upto(FileCase)
    notice = replace(NOTICE, hearing_rights=False)
    case, _ = apply(case, notice, "o1", utc(2026, 3, 6, 3))
    with pytest.raises(IllegalTransition, match="carries hearing rights"):
        apply(case, RequestHearing(utc(2026, 3, 7)), "o1", utc(2026, 3, 7))
    case, _ = apply(case, DECIDE, "mgr", utc(2026, 3, 6, 4))
    assert case.state is State.DECIDED


def test_exemption_closes_after_service() -> None:
    case = upto(ServeNotice)
    exempt = DecidePenalty("决-2", (Penalty(PenaltyKind.EXEMPT),))
    case, _ = apply(case, exempt, "mgr", utc(2026, 3, 14))
    case, _ = apply(case, SERVE, "o1", utc(2026, 3, 16, 3))
    case, _ = apply(case, CloseCase(Disposition.EXEMPTED, "免于处罚"), "mgr", utc(2026, 3, 17))
    assert case.state is State.CLOSED


# ---- dual sign-off and other invalid input --------------------------------------------------


def _on_site() -> Case:
    return run(MAIN_PATH[:3])


@pytest.mark.parametrize(
    ("signatures", "message"),
    [
        ((), "signed by two different enforcement officers; signed by: nobody"),
        (SIGNATURES[:1], "signed by two different enforcement officers; signed by: o1"),
        ((SIGNATURES[0], SIGNATURES[0]), "signed by: o1"),
        (
            (SIGNATURES[0], Signature("m1", "CERT-9", utc(2026, 3, 2, 4))),
            "signer m1 is not an enforcement officer on the case",
        ),
        (
            (SIGNATURES[0], Signature("o2", " ", utc(2026, 3, 2, 4))),
            "certificate_no of o2 is required",
        ),
        (
            (SIGNATURES[0], Signature("o2", "CERT-2", utc(2026, 3, 2, 2))),
            "precedes",
        ),
    ],
)
def test_inspection_record_needs_both_officers(
    signatures: tuple[Signature, ...], message: str
) -> None:
    record = RecordInspection("R1", H, signatures, party_signed_by="rep-1")
    with pytest.raises(InvalidCommand, match=message):
        apply(_on_site(), record, "o1", utc(2026, 3, 2, 4, 1))


def test_signer_must_have_been_present() -> None:
    case = run(MAIN_PATH[:1])
    three = replace(OPEN, officers=("o1", "o2", "o3"))
    case, _ = apply(None, three, "dispatch", utc(2026, 3, 2, 2))
    case, _ = apply(case, ARRIVE, "o1", utc(2026, 3, 2, 3, 1))
    sig = (SIGNATURES[0], Signature("o3", "CERT-3", utc(2026, 3, 2, 4)))
    with pytest.raises(InvalidCommand, match="o3 was not recorded as present"):
        apply(case, RecordInspection("R1", H, sig, party_signed_by="rep"), "o1", utc(2026, 3, 2, 5))


def test_party_signs_or_refusal_is_witnessed() -> None:
    neither = RecordInspection("R1", H, SIGNATURES)
    with pytest.raises(InvalidCommand, match="refusal is recorded with a witness"):
        apply(_on_site(), neither, "o1", utc(2026, 3, 2, 4, 1))
    refused = RecordInspection("R1", H, SIGNATURES, party_refusal_witness="village cadre")
    case, _ = apply(_on_site(), refused, "o1", utc(2026, 3, 2, 4, 1))
    assert case.state is State.INSPECTED


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (replace(OPEN, officers=("o1",)), "at least two distinct enforcement officers"),
        (replace(OPEN, county_code="3205"), "6-digit"),
        (replace(OPEN, monitoring_staff=()), "monitoring staff are required"),
        (replace(OPEN, discovered_at=OPEN.discovered_at.replace(tzinfo=None)), "timezone-aware"),
    ],
)
def test_open_case_invalid(command: object, message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        apply(None, command, "dispatch", utc(2026, 3, 2, 2))  # type: ignore[arg-type]


def test_arrival_needs_two_team_officers() -> None:
    case = run(MAIN_PATH[:1])
    with pytest.raises(InvalidCommand, match="at least two enforcement officers"):
        apply(case, replace(ARRIVE, officers_present=("o1",)), "o1", utc(2026, 3, 2, 3, 1))
    with pytest.raises(ConflictsWithRecord, match="not on the case team: x9"):
        apply(case, replace(ARRIVE, officers_present=("o1", "x9")), "o1", utc(2026, 3, 2, 3, 1))
    with pytest.raises(InvalidCommand, match="in the future"):
        apply(case, ARRIVE, "o1", utc(2026, 3, 2, 2, 50))


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (replace(SAMPLE, seal_number=""), "a seal number is required"),
        (replace(SAMPLE, witnessed_by="m1"), "witness must not be the collector"),
        (replace(SAMPLE, collected_by="o1", witnessed_by="rep"), "not monitoring staff"),
        (replace(SAMPLE, parameters=("Hg",)), "no holding time known for Hg"),
        (replace(SAMPLE, position=replace(SITE, lat=91.0)), "out of range"),
    ],
)
def test_sample_invalid(command: RecordSample, message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        apply(_on_site(), command, "m1", utc(2026, 3, 2, 3, 31))


@pytest.mark.parametrize(
    ("command", "refusal", "message"),
    [
        # wrong whatever the case holds: INVALID_ARGUMENT (422)
        (replace(SAMPLE, seal_number=""), InvalidCommand, "a seal number is required"),
        # at odds with the case's records: FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS (409,
        # 404, 409 at the phone API), which no request schema can rule out
        (replace(SAMPLE, collected_by="o1"), ConflictsWithRecord, "not monitoring staff"),
    ],
)
def test_refusals_say_whether_the_request_or_the_record_is_at_fault(
    command: RecordSample, refusal: type[Exception], message: str
) -> None:
    with pytest.raises(refusal, match=message) as raised:
        apply(_on_site(), command, "m1", utc(2026, 3, 2, 3, 31))
    assert refusal is not InvalidCommand or type(raised.value) is InvalidCommand


def test_a_record_the_case_lacks_or_holds_already() -> None:
    sampled = upto(RecordSample)
    with pytest.raises(AlreadyRecorded, match="sample S1 already exists"):
        apply(sampled, SAMPLE, "m1", utc(2026, 3, 2, 5))
    cites_nothing = replace(FIND, finding_id="F9", evidence_ids=("nope",), sample_ids=())
    with pytest.raises(NotOnRecord, match="unknown evidence or samples: nope"):
        apply(upto(ConfirmResult), cites_nothing, "o1", utc(2026, 3, 3))


def test_evidence_hash_and_duplicates() -> None:
    case = _on_site()
    with pytest.raises(InvalidCommand, match="64 lowercase hex"):
        apply(case, replace(PHOTO, evidence_id="E2", sha256="XYZ"), "o1", utc(2026, 3, 2, 4))
    with pytest.raises(AlreadyRecorded, match="evidence E1 already exists"):
        apply(case, PHOTO, "o1", utc(2026, 3, 2, 4))


def test_violation_finding_rules() -> None:
    case = upto(ConfirmResult)
    with pytest.raises(InvalidCommand, match="must cite the statute clause"):
        apply(case, replace(FIND, statute=None), "o1", utc(2026, 3, 4, 3))
    with pytest.raises(InvalidCommand, match="unknown evidence or samples: E9"):
        apply(case, replace(FIND, evidence_ids=("E9",)), "o1", utc(2026, 3, 4, 3))
    with pytest.raises(InvalidCommand, match="must cite its evidence or samples"):
        apply(case, replace(FIND, evidence_ids=(), sample_ids=()), "o1", utc(2026, 3, 4, 3))
    online = AddEvidence(
        "E2", EvidenceKind.ONLINE_MONITORING_DATA, H, utc(2026, 3, 4), "o1", "hourly COD"
    )
    case, _ = apply(case, online, "o1", utc(2026, 3, 4, 3))
    with pytest.raises(InvalidCommand, match="evidence chain with other evidence"):
        apply(case, replace(FIND, evidence_ids=("E2",), sample_ids=()), "o1", utc(2026, 3, 4, 3))
    both, _ = apply(case, replace(FIND, evidence_ids=("E1", "E2")), "o1", utc(2026, 3, 4, 3))
    assert both.state is State.FINDINGS


def test_compromised_sample_cannot_ground_a_violation() -> None:
    case = run(MAIN_PATH[:5])
    broken = replace(TO_LAB, seal_intact=False, condition_note="seal torn")
    case, changes = apply(case, broken, "m1", utc(2026, 3, 2, 8, 1))
    assert [c.kind for c in changes] == ["HandOffCustody", "SampleFlagged"]
    assert changes[1].payload["flag"]["flag"] == "SEAL_BROKEN"
    case = run([(RESULT, "m1", utc(2026, 3, 3, 2, 1)), (CONFIRM, "m1", utc(2026, 3, 4, 2))], case)
    with pytest.raises(InvalidCommand, match=r"sample S1 is compromised \(SEAL_BROKEN\)"):
        apply(case, FIND, "o1", utc(2026, 3, 4, 3))


def test_penalty_validation() -> None:
    case = upto(FileCase)
    bad = [
        ((), "at least one penalty"),
        ((Penalty(PenaltyKind.FINE),), "positive Decimal amount"),
        ((Penalty(PenaltyKind.FINE, Decimal("-1")),), "positive Decimal amount"),
        ((Penalty(PenaltyKind.EXEMPT), CORRECT), "EXEMPT"),
        ((FINE, FINE), "at most once"),
        ((Penalty(PenaltyKind.ORDER_TO_CORRECT, Decimal(1)),), "only a FINE"),
    ]
    for proposed, message in bad:
        with pytest.raises(InvalidCommand, match=message):
            apply(case, replace(NOTICE, proposed=proposed), "o1", utc(2026, 3, 6, 3))


def test_closing_needs_obligations_met() -> None:
    case = upto(ServeDecision)
    part = replace(PAID, amount=Decimal("100000"))
    case, _ = apply(case, part, "o1", utc(2026, 3, 20, 1))
    with pytest.raises(IllegalTransition) as err:
        apply(case, CLOSE, "mgr", utc(2026, 3, 21))
    assert "fine of 150000 paid (paid 100000)" in str(err.value)
    assert "rectification verified" in str(err.value)


def test_limitation_period_bars_filing() -> None:
    case = upto(ConfirmResult)
    old = replace(FIND, violation_ended_at=utc(2024, 3, 1))  # > 2 years before discovery
    barred, _ = apply(case, old, "o1", utc(2026, 3, 4, 3))
    with pytest.raises(IllegalTransition, match="within the limitation period"):
        apply(barred, FILE, "mgr", utc(2026, 3, 5))
    serious = replace(old, serious_harm=True)  # 5 years
    ok, _ = apply(case, serious, "o1", utc(2026, 3, 4, 3))
    filed, _ = apply(ok, FILE, "mgr", utc(2026, 3, 5))
    assert filed.state is State.FILED


def test_extension_rules() -> None:
    case = run(MAIN_PATH[:2])
    ext = ExtendClock(ClockName.FILING, 15, "complex case", "mgr")
    with pytest.raises(InvalidCommand, match="recorded by its approver"):
        apply(case, ext, "o1", utc(2026, 3, 3))
    with pytest.raises(InvalidCommand, match="at most 15 days"):
        apply(case, replace(ext, days=16), "mgr", utc(2026, 3, 3))
    case, _ = apply(case, ext, "mgr", utc(2026, 3, 3))
    with pytest.raises(IllegalTransition, match="no earlier extension"):
        apply(case, ext, "mgr", utc(2026, 3, 4))
    with pytest.raises(IllegalTransition, match="a filed case not yet decided"):
        apply(case, replace(ext, clock=ClockName.DECISION), "mgr", utc(2026, 3, 4))
    with pytest.raises(InvalidCommand, match="cannot be extended"):
        apply(case, replace(ext, clock=ClockName.PAYMENT), "mgr", utc(2026, 3, 4))
    late = run(MAIN_PATH[:2])
    with pytest.raises(IllegalTransition, match="not yet breached"):
        apply(late, ext, "mgr", utc(2026, 3, 17, 16))


def test_decision_extensions_need_collective_decision_after_the_first() -> None:
    case = upto(FileCase)
    first = ExtendClock(ClockName.DECISION, 30, "appraisal pending", "mgr")
    with pytest.raises(InvalidCommand, match="at most 30 days"):
        apply(case, replace(first, days=31), "mgr", utc(2026, 4, 1))
    case, _ = apply(case, first, "mgr", utc(2026, 4, 1))
    with pytest.raises(InvalidCommand, match="collective decision"):
        apply(case, first, "mgr", utc(2026, 4, 2))
    case, _ = apply(
        case, replace(first, collective_decision_ref="集体讨论-7"), "mgr", utc(2026, 4, 2)
    )
    assert case.extension_days(ClockName.DECISION) == 60


# ---- illegal transitions, each with its message ---------------------------------------------

R = "requires"
ILLEGAL = [
    # (steps already applied, command, expected message)
    (
        1,
        INSPECT,
        f"case is OPENED; cannot RecordInspection; {R} arrival on site recorded (ON_SITE)",
    ),
    (
        1,
        SAMPLE,
        f"case is OPENED; cannot RecordSample; {R} officers on site "
        "(ON_SITE, INSPECTED or SAMPLED)",
    ),
    (
        1,
        FIND,
        f"case is OPENED; cannot RecordFinding; {R} an inspection record signed by two officers",
    ),
    (1, FILE, f"case is OPENED; cannot FileCase; {R} recorded findings (FINDINGS)"),
    (
        2,
        ARRIVE,
        f"case is ON_SITE; cannot RecordArrival; {R} an opened case not yet visited (OPENED)",
    ),
    (
        2,
        RESULT,
        f"case is ON_SITE; cannot RecordLabResult; {R} samples taken and not yet all confirmed",
    ),
    (
        5,
        FIND,
        f"case is SAMPLED; cannot RecordFinding; {R} an inspection record signed by two "
        "officers and, if samples were taken, "
        "every result confirmed by monitoring staff",
    ),
    (6, FIND, f"case is AWAITING_LAB; cannot RecordFinding; {R} an inspection record"),
    (8, RESULT, f"case is RESULTS_CONFIRMED; cannot RecordLabResult; {R} samples taken"),
    (9, NOTICE, f"case is FINDINGS; cannot ServeNotice; {R} a filed case (FILED)"),
    (9, DECIDE, f"case is FINDINGS; cannot DecidePenalty; {R} a served pre-penalty notice"),
    (10, DECIDE, f"case is FILED; cannot DecidePenalty; {R} a served pre-penalty notice"),
    (10, FILE, f"case is FILED; cannot FileCase; {R} recorded findings (FINDINGS)"),
    (
        10,
        CLOSE,
        f"case is FILED; cannot close as PENALTY_ENFORCED; {R} enforcement recorded (ENFORCED)",
    ),
    (11, SERVE, f"case is NOTICE_SERVED; cannot ServeDecision; {R} a penalty decision (DECIDED)"),
    (12, PAID, f"case is DECIDED; cannot RecordEnforcement; {R} a served penalty decision"),
    (12, CLOSE, f"case is DECIDED; cannot CloseCase; {R} findings (FINDINGS)"),
    (
        13,
        CloseCase(Disposition.NO_VIOLATION, "x"),
        f"case is DECISION_SERVED; cannot close as NO_VIOLATION; {R} findings with no "
        "violation (FINDINGS)",
    ),
    (
        13,
        CloseCase(Disposition.EXEMPTED, "x"),
        f"case is DECISION_SERVED; cannot close as EXEMPTED; {R} a served 免于处罚 decision",
    ),
    (16, PHOTO, f"case is CLOSED; cannot AddEvidence; {R} an open case"),
    (16, CLOSE, f"case is CLOSED; cannot CloseCase; {R} findings"),
    (1, OPEN, f"case is OPENED; cannot open the case again; {R} a new case id"),
]


@pytest.mark.parametrize(("steps", "command", "message"), ILLEGAL)
def test_illegal_transitions_say_state_attempt_and_requirement(
    steps: int, command: object, message: str
) -> None:
    case = run(MAIN_PATH[:steps])
    with pytest.raises(IllegalTransition) as err:
        apply(case, command, "mgr", utc(2026, 4, 1))  # type: ignore[arg-type]
    assert str(err.value).startswith(message)
    assert err.value.state == case.state.value


def test_command_on_absent_case() -> None:
    with pytest.raises(IllegalTransition, match="case is absent; cannot RecordArrival"):
        apply(None, ARRIVE, "o1", utc(2026, 3, 2))


def test_apply_is_pure() -> None:
    case = run(MAIN_PATH[:2])
    before = case
    with pytest.raises(InvalidCommand):
        apply(case, RecordInspection("R1", H, SIGNATURES[:1], "rep"), "o1", utc(2026, 3, 2, 5))
    assert case == before and case.inspection is None
    after, _ = apply(case, PHOTO, "o1", utc(2026, 3, 2, 4))
    assert case.evidence == () and len(after.evidence) == 1


def test_evidence_records_actor_and_time() -> None:
    case = run(MAIN_PATH[:3])
    assert case.evidence[0].added_by == "o1"
    assert case.evidence[0].added_at == utc(2026, 3, 2, 3, 11)
