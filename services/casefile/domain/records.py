"""What a case file holds: the record of each act (arrival, inspection, evidence, findings,
notice, hearing, decision, enforcement, clock extensions and pauses, transfer, closure),
the `Case` itself, the `CaseChange` each accepted command produces, and the value objects
they carry (signatures, statute clauses, penalties, stored evidence content)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from casefile.domain.custody import (
    Position,
    Sample,
)
from casefile.domain.kinds import (
    ClockName,
    Disposition,
    EnforcementKind,
    EvidenceKind,
    PauseReason,
    PenaltyKind,
    State,
    TransferTarget,
)

# ---- value objects (also carried by commands) ---------------------------------------------


@dataclass(frozen=True)
class Signature:
    signer: str
    certificate_no: str  # enforcement credential (执法证) number
    signed_at: datetime


@dataclass(frozen=True)
class StatuteClause:
    law: str  # e.g. "大气污染防治法"
    article: int
    item: str = ""  # e.g. "二"

    def __str__(self) -> str:
        return f"{self.law} Art. {self.article}" + (f"({self.item})" if self.item else "")


@dataclass(frozen=True)
class Penalty:
    kind: PenaltyKind
    amount: Decimal | None = None
    detail: str = ""


# ---- case records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    arrived_at: datetime
    officers_present: tuple[str, ...]
    position: Position


@dataclass(frozen=True)
class SiteNote:
    at: datetime
    text: str
    by: str
    position: Position | None
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class TaskCancellation:
    task_id: str
    cancelled_at: datetime
    reason: str
    cancelled_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class InspectionRecord:
    record_id: str
    record_sha256: str
    signatures: tuple[Signature, ...]
    party_signed_by: str | None
    party_refusal_witness: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class Evidence:
    evidence_id: str
    kind: EvidenceKind
    sha256: str
    captured_at: datetime
    captured_by: str
    description: str
    position: Position | None
    added_at: datetime
    added_by: str
    media_type: str = ""
    content: EvidenceContent | None = None  # None: recorded by hash only, bytes not held


@dataclass(frozen=True)
class EvidenceContent:
    """What casefile's evidence store holds for an item: the bytes' size, the media type read
    from them, a photo's own EXIF time and position beside what the phone reported, the
    disagreements beyond tolerance, and the scaled preview (not evidence)."""

    size_bytes: int
    exif_captured_at: datetime | None = None
    exif_position: Position | None = None
    flags: tuple[str, ...] = ()
    preview_sha256: str = ""


@dataclass(frozen=True)
class Finding:
    finding_id: str
    violation: bool
    facts: str
    statute: StatuteClause | None
    evidence_ids: tuple[str, ...]
    sample_ids: tuple[str, ...]
    violation_ended_at: datetime | None
    serious_harm: bool
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class Notice:
    notice_no: str
    proposed: tuple[Penalty, ...]
    hearing_rights: bool
    served_at: datetime
    served_to: str


@dataclass(frozen=True)
class Hearing:
    requested_at: datetime
    hearing_at: datetime | None = None
    notified_at: datetime | None = None
    host: str | None = None
    held_at: datetime | None = None
    record_sha256: str | None = None


@dataclass(frozen=True)
class PenaltyDecision:
    decision_no: str
    penalties: tuple[Penalty, ...]
    decided_at: datetime
    decided_by: str

    def has(self, kind: PenaltyKind) -> bool:
        return any(p.kind is kind for p in self.penalties)

    @property
    def fine(self) -> Decimal:
        return sum(
            (p.amount or Decimal(0) for p in self.penalties if p.kind is PenaltyKind.FINE),
            Decimal(0),
        )


@dataclass(frozen=True)
class DecisionService:
    served_at: datetime
    served_to: str
    method: str


@dataclass(frozen=True)
class EnforcementRecord:
    kind: EnforcementKind
    at: datetime
    amount: Decimal | None
    compliant: bool | None
    note: str
    recorded_by: str


@dataclass(frozen=True)
class ClockExtension:
    clock: ClockName
    days: int
    reason: str
    approver: str
    collective_decision_ref: str
    at: datetime


@dataclass(frozen=True)
class ClockPause:
    clock: ClockName
    reason: PauseReason
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Transfer:
    to: TransferTarget
    reason: str
    transferred_at: datetime


@dataclass(frozen=True)
class Closure:
    disposition: Disposition
    reason: str
    closed_at: datetime
    closed_by: str


@dataclass(frozen=True)
class Case:
    case_id: str
    source_ref: str
    enterprise_id: str
    outlet_id: str
    county_code: str
    discovered_at: datetime
    opened_at: datetime
    officers: tuple[str, ...]
    monitoring_staff: tuple[str, ...]
    state: State = State.OPENED
    version: int = 1
    arrival: Arrival | None = None
    inspection: InspectionRecord | None = None
    samples: tuple[Sample, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    findings: tuple[Finding, ...] = ()
    filed_at: datetime | None = None
    filing_no: str | None = None
    notice: Notice | None = None
    hearing: Hearing | None = None
    decision: PenaltyDecision | None = None
    decision_service: DecisionService | None = None
    enforcement: tuple[EnforcementRecord, ...] = ()
    extensions: tuple[ClockExtension, ...] = ()
    pauses: tuple[ClockPause, ...] = ()
    transfer: Transfer | None = None
    closure: Closure | None = None
    site_notes: tuple[SiteNote, ...] = ()
    task_cancellations: tuple[TaskCancellation, ...] = ()

    def sample(self, sample_id: str) -> Sample | None:
        return next((s for s in self.samples if s.sample_id == sample_id), None)

    def extension_days(self, clock: ClockName) -> int:
        return sum(e.days for e in self.extensions if e.clock is clock)

    def paused_time(self, clock: ClockName, now: datetime) -> timedelta:
        return sum(
            ((p.ended_at or now) - p.started_at for p in self.pauses if p.clock is clock),
            timedelta(0),
        )

    def open_pause(self, clock: ClockName) -> ClockPause | None:
        return next((p for p in self.pauses if p.clock is clock and p.ended_at is None), None)


@dataclass(frozen=True)
class CaseChange:
    """One recorded change; the adapter appends it to the audit chain and the outbox."""

    case_id: str
    kind: str
    payload: dict[str, Any]
    actor: str
    at: datetime
    from_state: State | None
    to_state: State
    version: int
