"""What the dispatch core asks the outside world to do or record.

Adapters turn these into phone pushes, `dispatch.events` records and casefile gRPC calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatch.domain.assignment import TeamAssignment
from dispatch.domain.decision import Decision
from dispatch.domain.presence import CheckIn
from dispatch.domain.roster import Role
from dispatch.domain.routes import Priority
from dispatch.domain.tasks import TaskEvent


@dataclass(frozen=True, slots=True)
class Notify:
    task_id: str
    person_id: str
    kind: str  # "offer", "team_confirmed", "cancelled", "escalation"


@dataclass(frozen=True, slots=True)
class Remind:
    task_id: str
    person_id: str
    slot_id: str
    count: int  # 1 for the first reminder


@dataclass(frozen=True, slots=True)
class Reassign:
    task_id: str
    slot_id: str
    role: Role
    certificate: str | None
    exclude: frozenset[str]
    reason: str
    vacated_by: str | None = None  # who held the slot until now (declined or silent)


@dataclass(frozen=True, slots=True)
class Escalate:
    task_id: str
    manager_id: str | None  # None: no duty manager anywhere up the hierarchy
    reason: str


@dataclass(frozen=True, slots=True)
class SlaAtRisk:
    task_id: str
    clock: str
    due_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class SlaBreach:
    task_id: str
    clock: str
    due_at: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecorded:
    event_id: str
    alert_id: str
    decision: Decision


@dataclass(frozen=True, slots=True)
class TeamProposed:
    """The assignment result with its reasons, for the audit trail and the manager view."""

    task_id: str
    assignment: TeamAssignment


@dataclass(frozen=True, slots=True)
class OpenCaseRequest:
    task_id: str
    enterprise_id: str
    outlet_id: str
    alert_ids: tuple[str, ...]
    priority: Priority


@dataclass(frozen=True, slots=True)
class AlertAttached:
    task_id: str
    alert_id: str
    priority: Priority  # the task's priority after attaching


@dataclass(frozen=True, slots=True)
class CheckedIn:
    """A team member's own geofenced check-in was recorded (once per person per task)."""

    task_id: str
    check_in: CheckIn
    to_case: bool  # the case's arrival was asked for before: the check-in is a site note now


@dataclass(frozen=True, slots=True)
class ArrivalDue:
    """Enough enforcement officers have checked in for the case's arrival (RecordArrival),
    asked for when the check-in of `by` completed it. The site notes that waited for the
    arrival go right after it: the check-ins so far (`held`) and the team's status notes up
    to lifecycle step `held_through_seq`."""

    task_id: str
    at: datetime
    officers_present: tuple[str, ...]
    position: tuple[float, float]
    by: str
    held: tuple[CheckIn, ...]
    held_through_seq: int


Effect = (
    Notify
    | Remind
    | Reassign
    | Escalate
    | SlaAtRisk
    | SlaBreach
    | DecisionRecorded
    | TeamProposed
    | OpenCaseRequest
    | AlertAttached
    | CheckedIn
    | ArrivalDue
    | TaskEvent
)
