"""The case state machine: enforcement lifecycle of domain.md §4.1, as pure functions.

    OPENED --RecordArrival--> ON_SITE --RecordInspection (2 officers sign)--> INSPECTED
    ON_SITE/INSPECTED --RecordSample--> SAMPLED --hand-offs, all samples in lab--> AWAITING_LAB
    --RecordLabResult, ConfirmResult (monitoring staff, every parameter)--> RESULTS_CONFIRMED
    INSPECTED (no samples) | RESULTS_CONFIRMED --RecordFinding--> FINDINGS
    FINDINGS --CloseCase(NO_VIOLATION | NOT_FILED | TRANSFERRED)--> CLOSED
    FINDINGS --FileCase (立案)--> FILED --ServeNotice (事先告知)--> NOTICE_SERVED
    NOTICE_SERVED --RequestHearing--> HEARING_REQUESTED --ScheduleHearing--> HEARING_SCHEDULED
    --RecordHearing--> HEARING_HELD
    NOTICE_SERVED (hearing window over) | HEARING_HELD --DecidePenalty--> DECIDED
    DECIDED --ServeDecision (送达)--> DECISION_SERVED --RecordEnforcement--> ENFORCED
    DECISION_SERVED (免于处罚) | ENFORCED (obligations met) --CloseCase--> CLOSED

Samples may be taken before the inspection record is signed (both happen on site); the
record then moves the case straight to the sampling state the samples are in. ExtendClock,
PauseClock, ResumeClock, AddEvidence, TransferCase, RecordSiteNote (from arrival on),
RecordTaskCancelled (the dispatch task cancelled by its duty manager) and UpdateTeam (until
the inspection record is signed) record facts without changing state.
Times reported from the field (arrival, collection, service) are checked against `now` with
a small allowance for phone clock skew; legal acts done in the system (filing, decision,
closure) take `now` as their time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from casefile.domain import periods
from casefile.domain.canonical import to_jsonable
from casefile.domain.commands import (
    AddEvidence,
    CloseCase,
    Command,
    ConfirmResult,
    DecidePenalty,
    ExtendClock,
    FileCase,
    HandOffCustody,
    OpenCase,
    PauseClock,
    RecordArrival,
    RecordEnforcement,
    RecordFinding,
    RecordHearing,
    RecordInspection,
    RecordLabResult,
    RecordSample,
    RecordSiteNote,
    RecordTaskCancelled,
    RequestHearing,
    ResumeClock,
    ScheduleHearing,
    ServeDecision,
    ServeNotice,
    TransferCase,
    UpdateTeam,
)
from casefile.domain.custody import (
    LabResult,
    Sample,
    attach_result,
    confirm_result,
    hand_off,
    is_sha256_hex,
    new_sample,
)
from casefile.domain.deadlines import decision_due, filing_due, hearing_request_due
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
    EnforcementKind,
    EvidenceKind,
    PauseReason,
    PenaltyKind,
    State,
)
from casefile.domain.records import (
    Arrival,
    Case,
    CaseChange,
    ClockExtension,
    ClockPause,
    Closure,
    DecisionService,
    EnforcementRecord,
    Evidence,
    Finding,
    Hearing,
    InspectionRecord,
    Notice,
    Penalty,
    PenaltyDecision,
    SiteNote,
    TaskCancellation,
    Transfer,
)
from casefile.domain.workdays import WEEKENDS_ONLY, WorkCalendar, local_date

CLOCK_SKEW = timedelta(minutes=5)


# ---- apply ---------------------------------------------------------------------------------

_ANY_OPEN = frozenset(State) - {State.CLOSED}
_DECISION_CLOCK_RUNNING = frozenset(
    {
        State.FILED,
        State.NOTICE_SERVED,
        State.HEARING_REQUESTED,
        State.HEARING_SCHEDULED,
        State.HEARING_HELD,
    }
)
_AFTER_FINDINGS = _DECISION_CLOCK_RUNNING | {
    State.FINDINGS,
    State.DECIDED,
    State.DECISION_SERVED,
    State.ENFORCED,
}
_FILING_CLOCK_RUNNING = frozenset(
    {
        State.OPENED,
        State.ON_SITE,
        State.INSPECTED,
        State.SAMPLED,
        State.AWAITING_LAB,
        State.RESULTS_CONFIRMED,
        State.FINDINGS,
    }
)

# command -> (states it is allowed in, what it requires, said in the error message)
_ALLOWED: dict[type, tuple[frozenset[State], str]] = {
    RecordArrival: (frozenset({State.OPENED}), "an opened case not yet visited (OPENED)"),
    RecordInspection: (frozenset({State.ON_SITE}), "arrival on site recorded (ON_SITE)"),
    RecordSample: (
        frozenset({State.ON_SITE, State.INSPECTED, State.SAMPLED}),
        "officers on site (ON_SITE, INSPECTED or SAMPLED)",
    ),
    HandOffCustody: (
        frozenset({State.ON_SITE, State.INSPECTED, State.SAMPLED, State.AWAITING_LAB}),
        "samples in transit (ON_SITE, SAMPLED or AWAITING_LAB)",
    ),
    AddEvidence: (_ANY_OPEN, "an open case"),
    RecordLabResult: (
        frozenset({State.SAMPLED, State.AWAITING_LAB}),
        "samples taken and not yet all confirmed (SAMPLED or AWAITING_LAB)",
    ),
    ConfirmResult: (
        frozenset({State.SAMPLED, State.AWAITING_LAB}),
        "lab results awaiting confirmation (SAMPLED or AWAITING_LAB)",
    ),
    RecordFinding: (
        frozenset({State.INSPECTED, State.RESULTS_CONFIRMED, State.FINDINGS}),
        "an inspection record signed by two officers and, if samples were taken, every "
        "result confirmed by monitoring staff (INSPECTED, RESULTS_CONFIRMED or FINDINGS)",
    ),
    FileCase: (frozenset({State.FINDINGS}), "recorded findings (FINDINGS)"),
    ServeNotice: (frozenset({State.FILED}), "a filed case (FILED)"),
    RequestHearing: (frozenset({State.NOTICE_SERVED}), "a served pre-penalty notice"),
    ScheduleHearing: (frozenset({State.HEARING_REQUESTED}), "a hearing request"),
    RecordHearing: (frozenset({State.HEARING_SCHEDULED}), "a scheduled hearing"),
    DecidePenalty: (
        frozenset({State.NOTICE_SERVED, State.HEARING_HELD}),
        "a served pre-penalty notice and, if a hearing was requested, the hearing held",
    ),
    ServeDecision: (frozenset({State.DECIDED}), "a penalty decision (DECIDED)"),
    RecordEnforcement: (
        frozenset({State.DECISION_SERVED, State.ENFORCED}),
        "a served penalty decision (DECISION_SERVED or ENFORCED)",
    ),
    TransferCase: (_AFTER_FINDINGS, "findings recorded and the case not closed"),
    CloseCase: (
        frozenset({State.FINDINGS, State.FILED, State.DECISION_SERVED, State.ENFORCED}),
        "findings (FINDINGS), a transferred filed case (FILED), an exemption decision "
        "served (DECISION_SERVED) or enforcement recorded (ENFORCED)",
    ),
    ExtendClock: (_ANY_OPEN, "an open case"),
    UpdateTeam: (
        frozenset({State.OPENED, State.ON_SITE}),
        "the on-site inspection record not yet signed (OPENED or ON_SITE)",
    ),
    RecordSiteNote: (_ANY_OPEN - {State.OPENED}, "arrival on site recorded and the case open"),
    RecordTaskCancelled: (_ANY_OPEN, "an open case"),
    PauseClock: (_DECISION_CLOCK_RUNNING, "the decision clock running (FILED to HEARING_HELD)"),
    ResumeClock: (_DECISION_CLOCK_RUNNING, "the decision clock running (FILED to HEARING_HELD)"),
}


def _name(command: object) -> str:
    return type(command).__name__


def _aware(at: datetime, field: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand(f"{field} must be timezone-aware")


def _reported(at: datetime, field: str, now: datetime, not_before: datetime | None) -> None:
    """A time reported from the field: aware, not in the future, not before its predecessor."""
    _aware(at, field)
    if at > now + CLOCK_SKEW:
        raise InvalidCommand(f"{field} {at.isoformat()} is in the future (now {now.isoformat()})")
    if not_before is not None and at < not_before:
        raise ConflictsWithRecord(f"{field} {at.isoformat()} precedes {not_before.isoformat()}")


def _required(text: str | None, field: str) -> None:
    if text is None or not text.strip():
        raise InvalidCommand(f"{field} is required")


def _sampling_state(samples: tuple[Sample, ...]) -> State:
    if not samples:
        return State.INSPECTED
    if all(s.fully_confirmed for s in samples):
        return State.RESULTS_CONFIRMED
    if all(s.in_lab for s in samples):
        return State.AWAITING_LAB
    return State.SAMPLED


def _replace_sample(case: Case, sample: Sample) -> tuple[Sample, ...]:
    return tuple(sample if s.sample_id == sample.sample_id else s for s in case.samples)


def _validate_penalties(penalties: tuple[Penalty, ...], what: str) -> None:
    if not penalties:
        raise InvalidCommand(f"{what}: at least one penalty (or EXEMPT) is required")
    kinds = [p.kind for p in penalties]
    if len(set(kinds)) != len(kinds):
        raise InvalidCommand(f"{what}: each penalty kind at most once")
    if PenaltyKind.EXEMPT in kinds and len(kinds) > 1:
        raise InvalidCommand(f"{what}: EXEMPT (免于处罚) excludes every other penalty")
    for p in penalties:
        if p.kind is PenaltyKind.FINE:
            if p.amount is None or not p.amount.is_finite() or p.amount <= 0:
                raise InvalidCommand(f"{what}: a FINE needs a positive Decimal amount")
        elif p.amount is not None:
            raise InvalidCommand(f"{what}: only a FINE carries an amount")


_Handler = Callable[[Case, Any, str, datetime, WorkCalendar], Case]


def _check_team(officers: tuple[str, ...], monitoring_staff: tuple[str, ...]) -> None:
    distinct = set(officers)
    if len(distinct) < 2 or len(distinct) != len(officers) or not all(o.strip() for o in officers):
        raise InvalidCommand("a case team needs at least two distinct enforcement officers")
    staff = set(monitoring_staff)
    if not staff or distinct & staff or len(staff) != len(monitoring_staff):
        raise InvalidCommand("monitoring staff are required and distinct from the officers")


def _open(command: OpenCase, actor: str, now: datetime) -> Case:
    for field in ("case_id", "source_ref", "enterprise_id", "outlet_id"):
        _required(getattr(command, field), field)
    if not (len(command.county_code) == 6 and command.county_code.isdigit()):
        raise InvalidCommand("county_code must be a 6-digit administrative division code")
    _reported(command.discovered_at, "discovered_at", now, None)
    _check_team(command.officers, command.monitoring_staff)
    return Case(
        case_id=command.case_id,
        source_ref=command.source_ref,
        enterprise_id=command.enterprise_id,
        outlet_id=command.outlet_id,
        county_code=command.county_code,
        discovered_at=command.discovered_at,
        opened_at=now,
        officers=command.officers,
        monitoring_staff=command.monitoring_staff,
    )


def _arrival(case: Case, c: RecordArrival, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _reported(c.arrived_at, "arrived_at", now, case.discovered_at)
    present = set(c.officers_present)
    strangers = present - set(case.officers)
    if strangers:
        raise ConflictsWithRecord(f"not on the case team: {', '.join(sorted(strangers))}")
    if len(present) < 2:
        raise InvalidCommand("at least two enforcement officers must be present on site")
    arrival = Arrival(c.arrived_at, c.officers_present, c.position)
    return replace(case, arrival=arrival, state=State.ON_SITE)


def _inspection(
    case: Case, c: RecordInspection, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    _required(c.record_id, "record_id")
    if not is_sha256_hex(c.record_sha256):
        raise InvalidCommand("record_sha256 must be 64 lowercase hex digits")
    assert case.arrival is not None  # ON_SITE implies an arrival
    # who signs is checked against the case first: a stranger's signature is a conflict with
    # the record (FAILED_PRECONDITION) whatever else the request gets wrong
    for s in c.signatures:
        if s.signer not in case.officers:
            raise ConflictsWithRecord(
                f"signer {s.signer} is not an enforcement officer on the case"
            )
        if s.signer not in case.arrival.officers_present:
            raise ConflictsWithRecord(f"signer {s.signer} was not recorded as present on site")
    signers = [s.signer for s in c.signatures]
    if len(set(signers)) < 2:
        raise InvalidCommand(
            "the inspection record must be signed by two different enforcement officers; "
            f"signed by: {', '.join(sorted(set(signers))) or 'nobody'}"
        )
    if len(set(signers)) != len(signers):
        raise InvalidCommand("each officer signs the inspection record once")
    for s in c.signatures:
        _required(s.certificate_no, f"certificate_no of {s.signer}")
        _reported(s.signed_at, f"signature time of {s.signer}", now, case.arrival.arrived_at)
    party = (c.party_signed_by or "").strip()
    witness = (c.party_refusal_witness or "").strip()
    if bool(party) == bool(witness):
        raise InvalidCommand(
            "either the inspected party signs, or its refusal is recorded with a witness"
        )
    record = InspectionRecord(
        c.record_id, c.record_sha256, c.signatures, c.party_signed_by, c.party_refusal_witness, now
    )
    return replace(case, inspection=record, state=_sampling_state(case.samples))


def _evidence(case: Case, c: AddEvidence, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.evidence_id, "evidence_id")
    _required(c.captured_by, "captured_by")
    _required(c.description, "description")
    if any(e.evidence_id == c.evidence_id for e in case.evidence):
        raise AlreadyRecorded(f"evidence {c.evidence_id} already exists")
    if not is_sha256_hex(c.sha256):
        raise InvalidCommand("evidence sha256 must be 64 lowercase hex digits")
    _reported(c.captured_at, "captured_at", now, None)
    item = Evidence(
        c.evidence_id,
        c.kind,
        c.sha256,
        c.captured_at,
        c.captured_by,
        c.description,
        c.position,
        now,
        actor,
        c.media_type,
        c.content,
    )
    return replace(case, evidence=(*case.evidence, item))


def _sample(case: Case, c: RecordSample, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    if case.sample(c.sample_id) is not None:
        raise AlreadyRecorded(f"sample {c.sample_id} already exists")
    assert case.arrival is not None
    _reported(c.collected_at, "collected_at", now, case.arrival.arrived_at)
    if c.collected_by not in case.monitoring_staff:
        raise ConflictsWithRecord(f"collector {c.collected_by} is not monitoring staff on the case")
    sample = new_sample(
        sample_id=c.sample_id,
        point=c.point,
        container=c.container,
        preservative=c.preservative,
        seal_number=c.seal_number,
        parameters=c.parameters,
        collected_by=c.collected_by,
        witnessed_by=c.witnessed_by,
        collected_at=c.collected_at,
        position=c.position,
        holding_time=c.holding_time,
    )
    samples = (*case.samples, sample)
    state = State.ON_SITE if case.state is State.ON_SITE else _sampling_state(samples)
    return replace(case, samples=samples, state=state)


def _existing_sample(case: Case, sample_id: str) -> Sample:
    sample = case.sample(sample_id)
    if sample is None:
        raise NotOnRecord(f"no sample {sample_id} in case {case.case_id}")
    return sample


def _handoff(case: Case, c: HandOffCustody, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    sample = _existing_sample(case, c.sample_id)
    _reported(c.at, "hand-off time", now, None)
    moved = hand_off(
        sample,
        from_holder=c.from_holder,
        to_holder=c.to_holder,
        to_lab=c.to_lab,
        at=c.at,
        seal_intact=c.seal_intact,
        seal_number_observed=c.seal_number_observed,
        condition_note=c.condition_note,
    )
    samples = _replace_sample(case, moved)
    state = State.ON_SITE if case.state is State.ON_SITE else _sampling_state(samples)
    return replace(case, samples=samples, state=state)


def _lab_result(
    case: Case, c: RecordLabResult, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    sample = _existing_sample(case, c.sample_id)
    _reported(c.analysed_at, "analysed_at", now, None)
    result = LabResult(
        c.parameter,
        c.value,
        c.unit,
        c.method,
        c.lab_id,
        c.cma_no,
        c.analysed_at,
        c.report_sha256,
    )
    _required(c.unit, "unit")
    return replace(case, samples=_replace_sample(case, attach_result(sample, result)))


def _confirm(case: Case, c: ConfirmResult, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    sample = _existing_sample(case, c.sample_id)
    if actor not in case.monitoring_staff:
        raise ConflictsWithRecord(f"{actor} is not monitoring staff on the case; cannot confirm")
    samples = _replace_sample(case, confirm_result(sample, c.parameter, actor, now))
    return replace(case, samples=samples, state=_sampling_state(samples))


def _finding(case: Case, c: RecordFinding, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.finding_id, "finding_id")
    _required(c.facts, "facts")
    if any(f.finding_id == c.finding_id for f in case.findings):
        raise AlreadyRecorded(f"finding {c.finding_id} already exists")
    known = {e.evidence_id: e for e in case.evidence}
    missing = [e for e in c.evidence_ids if e not in known]
    missing += [s for s in c.sample_ids if case.sample(s) is None]
    if missing:
        raise NotOnRecord(f"finding cites unknown evidence or samples: {', '.join(missing)}")
    if c.violation_ended_at is not None:
        _reported(c.violation_ended_at, "violation_ended_at", now, None)
    if c.violation:
        if c.statute is None or not c.statute.law.strip() or c.statute.article <= 0:
            raise InvalidCommand("a violation finding must cite the statute clause violated")
        if not c.evidence_ids and not c.sample_ids:
            raise InvalidCommand("a violation finding must cite its evidence or samples")
        for sid in c.sample_ids:
            s = _existing_sample(case, sid)
            if s.compromised:
                flags = ", ".join(f.flag.value for f in s.flags)
                raise ConflictsWithRecord(
                    f"sample {sid} is compromised ({flags}); it cannot ground a violation finding"
                )
        # MEE 2016 reply (domain.md §1.7): online data prove facts together with other evidence.
        only_online = not c.sample_ids and all(
            known[e].kind is EvidenceKind.ONLINE_MONITORING_DATA for e in c.evidence_ids
        )
        if only_online:
            raise ConflictsWithRecord(
                "online monitoring data must form an evidence chain with other evidence "
                "(inspection photos, lab results, records); cite at least one"
            )
    finding = Finding(
        c.finding_id,
        c.violation,
        c.facts,
        c.statute,
        c.evidence_ids,
        c.sample_ids,
        c.violation_ended_at,
        c.serious_harm,
        now,
        actor,
    )
    return replace(case, findings=(*case.findings, finding), state=State.FINDINGS)


def _limitation_end(ended: datetime, years: int) -> datetime:
    try:
        return ended.replace(year=ended.year + years)
    except ValueError:  # 29 February
        return ended.replace(year=ended.year + years, day=28)


def _file(case: Case, c: FileCase, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.filing_no, "filing_no")
    violations = [f for f in case.findings if f.violation]
    if not violations:
        raise IllegalTransition(
            case.state.value, "file the case", "a violation finding (else close: NO_VIOLATION)"
        )
    # 行政处罚法 Art. 36 [M]: no penalty once the limitation ran out before discovery.
    live = [
        f
        for f in violations
        if f.violation_ended_at is None
        or case.discovered_at <= _limitation_end(f.violation_ended_at, 5 if f.serious_harm else 2)
    ]
    if not live:
        raise IllegalTransition(
            case.state.value,
            "file the case",
            "a violation discovered within the limitation period (2 years, 5 with serious harm)",
        )
    return replace(case, filed_at=now, filing_no=c.filing_no, state=State.FILED)


def _notice(case: Case, c: ServeNotice, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.notice_no, "notice_no")
    _required(c.served_to, "served_to")
    _validate_penalties(c.proposed, "notice")
    _reported(c.served_at, "served_at", now, case.filed_at)
    notice = Notice(c.notice_no, c.proposed, c.hearing_rights, c.served_at, c.served_to)
    return replace(case, notice=notice, state=State.NOTICE_SERVED)


def _request_hearing(
    case: Case, c: RequestHearing, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    assert case.notice is not None
    _reported(c.requested_at, "requested_at", now, case.notice.served_at)
    if not case.notice.hearing_rights:
        raise IllegalTransition(
            case.state.value, "request a hearing", "a proposed penalty that carries hearing rights"
        )
    due = hearing_request_due(case.notice, cal)
    if c.requested_at >= due:
        raise IllegalTransition(
            case.state.value,
            "request a hearing",
            f"a request before the window closed at {due.isoformat()} (5 working days)",
        )
    pause = ClockPause(ClockName.DECISION, PauseReason.HEARING, c.requested_at)
    return replace(
        case,
        hearing=Hearing(requested_at=c.requested_at),
        pauses=(*case.pauses, pause),
        state=State.HEARING_REQUESTED,
    )


def _schedule_hearing(
    case: Case, c: ScheduleHearing, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    assert case.hearing is not None
    _required(c.host, "host")
    if c.host in case.officers:
        raise ConflictsWithRecord("the hearing host must not be an investigator of this case")
    _reported(c.notified_at, "notified_at", now, case.hearing.requested_at)
    _aware(c.hearing_at, "hearing_at")
    earliest = cal.add_working_days(local_date(c.notified_at), periods.HEARING_NOTICE.days)
    if local_date(c.hearing_at) < earliest:
        raise InvalidCommand(
            f"the party must be notified 7 working days before the hearing; "
            f"notified {local_date(c.notified_at)}, earliest hearing day {earliest}"
        )
    hearing = replace(case.hearing, hearing_at=c.hearing_at, notified_at=c.notified_at, host=c.host)
    return replace(case, hearing=hearing, state=State.HEARING_SCHEDULED)


def _end_pause(case: Case, clock: ClockName, at: datetime) -> tuple[ClockPause, ...]:
    return tuple(
        replace(p, ended_at=at) if p.clock is clock and p.ended_at is None else p
        for p in case.pauses
    )


def _hold_hearing(
    case: Case, c: RecordHearing, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    assert case.hearing is not None and case.hearing.hearing_at is not None
    if c.host in case.officers:
        raise ConflictsWithRecord("the hearing host must not be an investigator of this case")
    if not is_sha256_hex(c.record_sha256):
        raise InvalidCommand("record_sha256 must be 64 lowercase hex digits")
    _reported(c.held_at, "held_at", now, case.hearing.notified_at)
    hearing = replace(case.hearing, held_at=c.held_at, host=c.host, record_sha256=c.record_sha256)
    return replace(
        case,
        hearing=hearing,
        pauses=_end_pause(case, ClockName.DECISION, c.held_at),
        state=State.HEARING_HELD,
    )


def _decide(case: Case, c: DecidePenalty, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    assert case.notice is not None
    _required(c.decision_no, "decision_no")
    _validate_penalties(c.penalties, "decision")
    if case.state is State.NOTICE_SERVED and case.notice.hearing_rights:
        due = hearing_request_due(case.notice, cal)
        if now < due:
            raise IllegalTransition(
                case.state.value,
                "decide the penalty",
                f"the party's hearing-request window to close at {due.isoformat()}",
            )
    decision = PenaltyDecision(c.decision_no, c.penalties, now, actor)
    return replace(
        case,
        decision=decision,
        pauses=_end_pause(case, ClockName.DECISION, now),
        state=State.DECIDED,
    )


def _serve_decision(
    case: Case, c: ServeDecision, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    assert case.decision is not None
    _required(c.served_to, "served_to")
    _required(c.method, "method")
    _reported(c.served_at, "served_at", now, case.decision.decided_at)
    service = DecisionService(c.served_at, c.served_to, c.method)
    return replace(case, decision_service=service, state=State.DECISION_SERVED)


def _enforce(
    case: Case, c: RecordEnforcement, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    assert case.decision is not None and case.decision_service is not None
    _reported(c.at, "at", now, case.decision_service.served_at)
    if c.kind is EnforcementKind.FINE_PAID:
        if not case.decision.has(PenaltyKind.FINE):
            raise InvalidCommand("the decision imposes no fine")
        if c.amount is None or c.amount <= 0:
            raise InvalidCommand("FINE_PAID needs a positive Decimal amount")
    elif c.amount is not None:
        raise InvalidCommand("only FINE_PAID carries an amount")
    if c.kind is EnforcementKind.REINSPECTED and c.compliant is None:
        raise InvalidCommand("a re-inspection records whether the unit was compliant")
    record = EnforcementRecord(c.kind, c.at, c.amount, c.compliant, c.note, actor)
    return replace(case, enforcement=(*case.enforcement, record), state=State.ENFORCED)


def _transfer(case: Case, c: TransferCase, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    if case.transfer is not None:
        raise IllegalTransition(case.state.value, "transfer again", "a case not yet transferred")
    _required(c.reason, "reason")
    _reported(c.transferred_at, "transferred_at", now, None)
    return replace(case, transfer=Transfer(c.to, c.reason, c.transferred_at))


_PAID = EnforcementKind.FINE_PAID


def outstanding_obligations(case: Case) -> list[str]:
    """What still has to be enforced before the case may close as PENALTY_ENFORCED."""
    decision = case.decision
    if decision is None:
        return ["a penalty decision"]
    out: list[str] = []
    kinds = {r.kind for r in case.enforcement}
    if decision.has(PenaltyKind.FINE):
        paid = sum(
            (r.amount or Decimal(0) for r in case.enforcement if r.kind is _PAID),
            Decimal(0),
        )
        if paid < decision.fine and EnforcementKind.COURT_ENFORCEMENT_APPLIED not in kinds:
            out.append(f"fine of {decision.fine} paid (paid {paid}) or court enforcement applied")
    corrective = {
        PenaltyKind.ORDER_TO_CORRECT,
        PenaltyKind.RESTRICT_PRODUCTION,
        PenaltyKind.SUSPEND_PRODUCTION,
        PenaltyKind.SUSPEND_BUSINESS,
    }
    if any(decision.has(k) for k in corrective):
        verified = EnforcementKind.RECTIFICATION_VERIFIED in kinds or any(
            r.kind is EnforcementKind.REINSPECTED and r.compliant for r in case.enforcement
        )
        if not verified:
            out.append("rectification verified (compliant re-inspection)")
    return out


def _close(case: Case, c: CloseCase, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.reason, "reason")
    state = case.state.value
    d = c.disposition
    attempted = f"close as {d.value}"
    violations = any(f.violation for f in case.findings)
    if d is Disposition.NO_VIOLATION:
        if case.state is not State.FINDINGS or violations:
            raise IllegalTransition(state, attempted, "findings with no violation (FINDINGS)")
    elif d is Disposition.NOT_FILED:
        if case.state is not State.FINDINGS or not violations:
            raise IllegalTransition(state, attempted, "a violation finding not filed (FINDINGS)")
    elif d is Disposition.TRANSFERRED:
        if case.state not in (State.FINDINGS, State.FILED) or case.transfer is None:
            raise IllegalTransition(
                state, attempted, "a recorded transfer, before notice (FINDINGS or FILED)"
            )
    elif d is Disposition.EXEMPTED:
        exempt = case.decision is not None and case.decision.has(PenaltyKind.EXEMPT)
        if case.state is not State.DECISION_SERVED or not exempt:
            raise IllegalTransition(
                state, attempted, "a served 免于处罚 decision (DECISION_SERVED)"
            )
    elif d is Disposition.PENALTY_ENFORCED:
        if case.state is not State.ENFORCED:
            raise IllegalTransition(state, attempted, "enforcement recorded (ENFORCED)")
        missing = outstanding_obligations(case)
        if missing:
            raise IllegalTransition(state, attempted, "; ".join(missing))
    closure = Closure(d, c.reason, now, actor)
    return replace(
        case, closure=closure, pauses=_end_pause(case, ClockName.DECISION, now), state=State.CLOSED
    )


def _extend(case: Case, c: ExtendClock, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.reason, "reason")
    _required(c.approver, "approver")
    if c.approver != actor:
        raise InvalidCommand("an extension is recorded by its approver in person")
    if c.days <= 0:
        raise InvalidCommand("extension days must be positive")
    state = case.state.value
    attempted = f"extend the {c.clock.value} clock"
    due: datetime | None
    if c.clock is ClockName.FILING:
        if case.state not in _FILING_CLOCK_RUNNING:
            raise IllegalTransition(state, attempted, "a case not yet filed")
        if case.extension_days(ClockName.FILING):
            raise IllegalTransition(state, attempted, "no earlier extension (once, +15 days)")
        if c.days > periods.FILING_EXTENSION_DAYS:
            raise InvalidCommand("the filing clock extends by at most 15 days")
        due = filing_due(case, cal)
    elif c.clock is ClockName.DECISION:
        if case.state not in _DECISION_CLOCK_RUNNING:
            raise IllegalTransition(state, attempted, "a filed case not yet decided")
        first = not any(e.clock is ClockName.DECISION for e in case.extensions)
        collective = bool(c.collective_decision_ref.strip())
        if first and c.days > periods.DECISION_FIRST_EXTENSION_DAYS and not collective:
            raise InvalidCommand(
                "approval extends the decision clock by at most 30 days; more needs a "
                "collective decision (collective_decision_ref)"
            )
        if not first and not collective:
            raise InvalidCommand(
                "a further decision-clock extension needs a collective decision "
                "(collective_decision_ref)"
            )
        due = decision_due(case, now, cal)
    else:
        raise InvalidCommand(f"the {c.clock.value} clock cannot be extended")
    if due is not None and now >= due:
        raise IllegalTransition(
            state, attempted, f"a clock not yet breached (it was due {due.isoformat()})"
        )
    ext = ClockExtension(c.clock, c.days, c.reason, c.approver, c.collective_decision_ref, now)
    return replace(case, extensions=(*case.extensions, ext))


def _pause(case: Case, c: PauseClock, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    if c.clock is not ClockName.DECISION:
        raise InvalidCommand("only the decision clock excludes time")
    if case.open_pause(c.clock) is not None:
        raise IllegalTransition(case.state.value, "pause the decision clock", "a running clock")
    _reported(c.at, "at", now, case.filed_at)
    return replace(case, pauses=(*case.pauses, ClockPause(c.clock, c.reason, c.at)))


def _resume(case: Case, c: ResumeClock, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    pause = case.open_pause(c.clock)
    if pause is None:
        raise IllegalTransition(case.state.value, "resume the decision clock", "a paused clock")
    if pause.reason is PauseReason.HEARING:
        raise IllegalTransition(
            case.state.value, "resume the decision clock", "the hearing held (RecordHearing)"
        )
    _reported(c.at, "at", now, pause.started_at)
    return replace(case, pauses=_end_pause(case, c.clock, c.at))


def _update_team(case: Case, c: UpdateTeam, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.reason, "reason")
    _check_team(c.officers, c.monitoring_staff)
    # what is already on record stays attributable to a team member
    if case.arrival is not None:
        gone = set(case.arrival.officers_present) - set(c.officers)
        if gone:
            names = ", ".join(sorted(gone))
            raise ConflictsWithRecord(
                f"officers recorded present on site cannot leave the team: {names}"
            )
    collectors = {s.collected_by for s in case.samples} - set(c.monitoring_staff)
    if collectors:
        raise ConflictsWithRecord(
            f"staff who collected samples cannot leave the team: {', '.join(sorted(collectors))}"
        )
    return replace(case, officers=c.officers, monitoring_staff=c.monitoring_staff)


def _site_note(case: Case, c: RecordSiteNote, actor: str, now: datetime, cal: WorkCalendar) -> Case:
    _required(c.text, "text")
    _required(c.by, "by")
    if c.by not in case.officers and c.by not in case.monitoring_staff:
        raise ConflictsWithRecord(f"not on the case team: {c.by}")
    # a note taken on the way may precede the arrival, never the discovery
    _reported(c.at, "at", now, case.discovered_at)
    note = SiteNote(c.at, c.text, c.by, c.position, now, actor)
    return replace(case, site_notes=(*case.site_notes, note))


def _task_cancelled(
    case: Case, c: RecordTaskCancelled, actor: str, now: datetime, cal: WorkCalendar
) -> Case:
    """The duty manager (`actor`, acted for by dispatch) cancelled the case's task: a fact
    for the file, no change of state (closing the case stays a legal act of its own)."""
    _required(c.reason, "reason")
    if c.task_id != case.source_ref:
        raise ConflictsWithRecord(f"task {c.task_id!r} is not this case's task ({case.source_ref})")
    if any(t.task_id == c.task_id for t in case.task_cancellations):
        raise IllegalTransition(
            case.state.value, "record the task's cancellation again", "a task not yet cancelled"
        )
    _reported(c.cancelled_at, "cancelled_at", now, case.discovered_at)
    done = TaskCancellation(c.task_id, c.cancelled_at, c.reason, actor, now)
    return replace(case, task_cancellations=(*case.task_cancellations, done))


_HANDLERS: dict[type, _Handler] = {
    RecordTaskCancelled: _task_cancelled,
    UpdateTeam: _update_team,
    RecordSiteNote: _site_note,
    RecordArrival: _arrival,
    RecordInspection: _inspection,
    AddEvidence: _evidence,
    RecordSample: _sample,
    HandOffCustody: _handoff,
    RecordLabResult: _lab_result,
    ConfirmResult: _confirm,
    RecordFinding: _finding,
    FileCase: _file,
    ServeNotice: _notice,
    RequestHearing: _request_hearing,
    ScheduleHearing: _schedule_hearing,
    RecordHearing: _hold_hearing,
    DecidePenalty: _decide,
    ServeDecision: _serve_decision,
    RecordEnforcement: _enforce,
    TransferCase: _transfer,
    CloseCase: _close,
    ExtendClock: _extend,
    PauseClock: _pause,
    ResumeClock: _resume,
}


def _flag_changes(before: Case, after: Case, actor: str, now: datetime) -> list[CaseChange]:
    changes: list[CaseChange] = []
    old = {s.sample_id: len(s.flags) for s in before.samples}
    for s in after.samples:
        for flag in s.flags[old.get(s.sample_id, 0) :]:
            payload = {"sample_id": s.sample_id, "flag": to_jsonable(flag)}
            changes.append(
                CaseChange(
                    after.case_id,
                    "SampleFlagged",
                    payload,
                    actor,
                    now,
                    after.state,
                    after.state,
                    after.version,
                )
            )
    return changes


def apply(
    case: Case | None,
    command: Command,
    actor: str,
    now: datetime,
    *,
    calendar: WorkCalendar = WEEKENDS_ONLY,
) -> tuple[Case, list[CaseChange]]:
    """Apply one command. Raises IllegalTransition or InvalidCommand; never partial.

    `calendar` must carry the official holiday list in production (see `workdays`)."""
    _aware(now, "now")
    if not actor.strip():
        raise InvalidCommand("actor is required")
    if isinstance(command, OpenCase):
        if case is not None:
            raise IllegalTransition(case.state.value, "open the case again", "a new case id")
        opened = _open(command, actor, now)
        change = CaseChange(
            opened.case_id,
            "OpenCase",
            {"command": to_jsonable(command), "from_state": None, "to_state": opened.state.value},
            actor,
            now,
            None,
            opened.state,
            opened.version,
        )
        return opened, [change]
    name = _name(command)
    if case is None:
        raise IllegalTransition("absent", name, "an opened case (OpenCase)")
    rule = _ALLOWED.get(type(command))
    handler = _HANDLERS.get(type(command))
    if rule is None or handler is None:
        raise InvalidCommand(f"unknown command {name}")
    states, requirement = rule
    if case.state not in states:
        raise IllegalTransition(case.state.value, name, requirement)
    updated = handler(case, command, actor, now, calendar)
    updated = replace(updated, version=case.version + 1)
    payload = {
        "command": to_jsonable(command),
        "from_state": case.state.value,
        "to_state": updated.state.value,
    }
    if isinstance(command, UpdateTeam):  # the chain shows who left and who joined
        payload["previous_team"] = {
            "officers": list(case.officers),
            "monitoring_staff": list(case.monitoring_staff),
        }
    main = CaseChange(
        case.case_id, name, payload, actor, now, case.state, updated.state, updated.version
    )
    return updated, [main, *_flag_changes(case, updated, actor, now)]
