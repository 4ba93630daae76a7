"""What can be asked of a case: one frozen dataclass per command (its class name is the
action `access` authorises). `cases.apply` decides whether a command is allowed and what it
changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from casefile.domain.custody import (
    Position,
)
from casefile.domain.kinds import (
    ClockName,
    Disposition,
    EnforcementKind,
    EvidenceKind,
    PauseReason,
    TransferTarget,
)
from casefile.domain.records import EvidenceContent, Penalty, Signature, StatuteClause

# ---- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenCase:
    case_id: str
    source_ref: str  # alert / inspection task that opened the case
    enterprise_id: str
    outlet_id: str
    county_code: str  # 6-digit administrative division code
    discovered_at: datetime
    officers: tuple[str, ...]
    monitoring_staff: tuple[str, ...]


@dataclass(frozen=True)
class RecordArrival:
    arrived_at: datetime
    officers_present: tuple[str, ...]
    position: Position


@dataclass(frozen=True)
class UpdateTeam:
    """The team changed after the case was opened (a declined or silent member replaced)."""

    officers: tuple[str, ...]
    monitoring_staff: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class RecordSiteNote:
    """What a team member noted on site (or on the way), with when and where."""

    at: datetime
    text: str
    by: str
    position: Position | None = None


@dataclass(frozen=True)
class RecordTaskCancelled:
    """The case's dispatch task was cancelled by its duty manager (the acting person, recorded
    as who cancelled; never a field of the request, so it cannot be claimed for someone else)."""

    task_id: str
    cancelled_at: datetime
    reason: str


@dataclass(frozen=True)
class RecordInspection:
    record_id: str
    record_sha256: str  # hash of the signed 现场检查笔录 document
    signatures: tuple[Signature, ...]
    party_signed_by: str | None = None
    party_refusal_witness: str | None = None  # a refusal to sign is recorded with a witness


@dataclass(frozen=True)
class AddEvidence:
    evidence_id: str
    kind: EvidenceKind
    sha256: str
    captured_at: datetime
    captured_by: str
    description: str
    position: Position | None = None
    media_type: str = ""  # e.g. image/jpeg
    # set by casefile's upload from the content it stored (domain/evidence), never by a client
    content: EvidenceContent | None = None


@dataclass(frozen=True)
class RecordSample:
    sample_id: str
    point: str
    container: str
    preservative: str
    seal_number: str
    parameters: tuple[str, ...]
    collected_by: str
    witnessed_by: str
    collected_at: datetime
    position: Position
    holding_time: timedelta | None = None


@dataclass(frozen=True)
class HandOffCustody:
    sample_id: str
    from_holder: str
    to_holder: str
    to_lab: bool
    at: datetime
    seal_intact: bool
    seal_number_observed: str
    condition_note: str = ""


@dataclass(frozen=True)
class RecordLabResult:
    sample_id: str
    parameter: str
    value: Decimal
    unit: str
    method: str
    lab_id: str
    cma_no: str
    analysed_at: datetime
    report_sha256: str


@dataclass(frozen=True)
class ConfirmResult:
    sample_id: str
    parameter: str


@dataclass(frozen=True)
class RecordFinding:
    finding_id: str
    violation: bool
    facts: str
    statute: StatuteClause | None
    evidence_ids: tuple[str, ...] = ()
    sample_ids: tuple[str, ...] = ()
    violation_ended_at: datetime | None = None  # None: continuing (limitation runs from its end)
    serious_harm: bool = False  # life/health/financial-safety harm: 5-year limitation


@dataclass(frozen=True)
class FileCase:
    filing_no: str


@dataclass(frozen=True)
class ServeNotice:
    notice_no: str
    proposed: tuple[Penalty, ...]
    hearing_rights: bool
    served_at: datetime
    served_to: str


@dataclass(frozen=True)
class RequestHearing:
    requested_at: datetime


@dataclass(frozen=True)
class ScheduleHearing:
    hearing_at: datetime
    notified_at: datetime
    host: str


@dataclass(frozen=True)
class RecordHearing:
    held_at: datetime
    host: str
    record_sha256: str


@dataclass(frozen=True)
class DecidePenalty:
    decision_no: str
    penalties: tuple[Penalty, ...]


@dataclass(frozen=True)
class ServeDecision:
    served_at: datetime
    served_to: str
    method: str


@dataclass(frozen=True)
class RecordEnforcement:
    kind: EnforcementKind
    at: datetime
    amount: Decimal | None = None
    compliant: bool | None = None
    note: str = ""


@dataclass(frozen=True)
class TransferCase:
    to: TransferTarget
    reason: str
    transferred_at: datetime


@dataclass(frozen=True)
class CloseCase:
    disposition: Disposition
    reason: str


@dataclass(frozen=True)
class ExtendClock:
    clock: ClockName
    days: int
    reason: str
    approver: str
    collective_decision_ref: str = ""


@dataclass(frozen=True)
class PauseClock:
    reason: PauseReason
    at: datetime
    clock: ClockName = ClockName.DECISION


@dataclass(frozen=True)
class ResumeClock:
    at: datetime
    clock: ClockName = ClockName.DECISION


Command = (
    OpenCase
    | RecordArrival
    | RecordInspection
    | AddEvidence
    | RecordSample
    | HandOffCustody
    | RecordLabResult
    | ConfirmResult
    | RecordFinding
    | FileCase
    | ServeNotice
    | RequestHearing
    | ScheduleHearing
    | RecordHearing
    | DecidePenalty
    | ServeDecision
    | RecordEnforcement
    | TransferCase
    | CloseCase
    | ExtendClock
    | PauseClock
    | ResumeClock
    | UpdateTeam
    | RecordSiteNote
    | RecordTaskCancelled
)
