"""Who may do what to a case. Pure; the gRPC layer maps a denial to PERMISSION_DENIED and
writes the denied attempt to the audit chain.

* ENFORCEMENT_OFFICER: only cases whose team lists them; field acts, evidence, findings,
  service of documents and enforcement records. Not filing, deciding, extending or closing:
  those are approvals of the agency's head (2023 办法 Art. 18, collective decision).
* MONITORING_STAFF: only cases whose team lists them, and there only samples and results
  (reads are scoped to SAMPLES_AND_RESULTS).
* MANAGER: cases whose county code starts with one of their jurisdiction codes (e.g. "3205"
  covers "320583"); approvals, filing, notice, hearing, decision, closure. Never the field
  record itself (they were not on site).
* ADMIN (platform operator): opens cases and may read, list, stream, verify and export any
  case, but performs no legal act, so an operator account cannot write evidence into a case.
* SERVICE (a trusted service, the dispatch intake): what ADMIN may do, plus changing the team
  of a case before its inspection record is signed (a declined member replaced).
* Acting for a person: a SERVICE principal may carry `on_behalf_of`, the person who did a field
  record on the phone (authenticated by dispatch's phone API). Only the field records in
  `FIELD_RECORDS`, reading the case and evidence downloads (`ACTED_FOR`) are accepted that
  way, and only if
  that person, with the roles the service names for them, would be allowed the action
  themselves (on the case team, right role).
* Task cancelled: `RecordTaskCancelled` only from a SERVICE acting for a MANAGER (dispatch
  passing on the duty manager's cancellation) whose jurisdiction covers the case. Nobody may
  send it in their own name: only dispatch knows that the task was cancelled, and by whom.
A principal with several roles gets the union.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from casefile.domain.records import Case
from liandong.tokens.claims import Principal, Role


class Action(StrEnum):
    OPEN_CASE = "OpenCase"
    RECORD_ARRIVAL = "RecordArrival"
    RECORD_INSPECTION = "RecordInspection"
    ADD_EVIDENCE = "AddEvidence"
    RECORD_SAMPLE = "RecordSample"
    HAND_OFF_CUSTODY = "HandOffCustody"
    RECORD_LAB_RESULT = "RecordLabResult"
    CONFIRM_RESULT = "ConfirmResult"
    RECORD_FINDING = "RecordFinding"
    FILE_CASE = "FileCase"
    SERVE_NOTICE = "ServeNotice"
    REQUEST_HEARING = "RequestHearing"
    SCHEDULE_HEARING = "ScheduleHearing"
    RECORD_HEARING = "RecordHearing"
    DECIDE_PENALTY = "DecidePenalty"
    SERVE_DECISION = "ServeDecision"
    RECORD_ENFORCEMENT = "RecordEnforcement"
    TRANSFER_CASE = "TransferCase"
    CLOSE_CASE = "CloseCase"
    EXTEND_CLOCK = "ExtendClock"
    PAUSE_CLOCK = "PauseClock"
    RESUME_CLOCK = "ResumeClock"
    UPDATE_TEAM = "UpdateTeam"
    RECORD_SITE_NOTE = "RecordSiteNote"
    RECORD_TASK_CANCELLED = "RecordTaskCancelled"
    READ = "Read"
    LIST = "List"
    STREAM = "Stream"
    VERIFY = "Verify"
    EXPORT = "Export"
    DOWNLOAD_EVIDENCE = "DownloadEvidence"

    @classmethod
    def for_command(cls, command: object) -> Action:
        """The action a command needs (its class name is the action's value)."""
        return cls(type(command).__name__)


class Scope(StrEnum):
    NONE = "NONE"
    FULL = "FULL"
    SAMPLES_AND_RESULTS = "SAMPLES_AND_RESULTS"
    OWN_CASES = "OWN_CASES"  # LIST: results filtered to the principal's cases
    JURISDICTION = "JURISDICTION"  # LIST: results filtered to the jurisdiction


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    scope: Scope = Scope.NONE


_READS = frozenset(
    {Action.READ, Action.STREAM, Action.VERIFY, Action.EXPORT, Action.DOWNLOAD_EVIDENCE}
)

_OFFICER = frozenset(
    {
        Action.RECORD_ARRIVAL,
        Action.RECORD_INSPECTION,
        Action.ADD_EVIDENCE,
        Action.HAND_OFF_CUSTODY,
        Action.RECORD_FINDING,
        Action.SERVE_NOTICE,
        Action.REQUEST_HEARING,
        Action.SERVE_DECISION,
        Action.RECORD_ENFORCEMENT,
        Action.RECORD_SITE_NOTE,
    }
    | _READS
)
_MONITORING = frozenset(
    {
        Action.RECORD_SAMPLE,
        Action.RECORD_SITE_NOTE,
        Action.HAND_OFF_CUSTODY,
        Action.RECORD_LAB_RESULT,
        Action.CONFIRM_RESULT,
        Action.READ,
        Action.VERIFY,
    }
)
_MANAGER = frozenset(
    {
        Action.OPEN_CASE,
        Action.ADD_EVIDENCE,
        Action.FILE_CASE,
        Action.SERVE_NOTICE,
        Action.REQUEST_HEARING,
        Action.SCHEDULE_HEARING,
        Action.RECORD_HEARING,
        Action.DECIDE_PENALTY,
        Action.SERVE_DECISION,
        Action.RECORD_ENFORCEMENT,
        Action.TRANSFER_CASE,
        Action.CLOSE_CASE,
        Action.EXTEND_CLOCK,
        Action.PAUSE_CLOCK,
        Action.RESUME_CLOCK,
        Action.UPDATE_TEAM,
    }
    | _READS
)
_ADMIN = frozenset({Action.OPEN_CASE} | _READS)
_SERVICE = _ADMIN | {Action.UPDATE_TEAM}
# records of what a person did on site that a trusted service may pass on in their name
# (dispatch's phone API: arrival and notes, the inspection record, evidence, samples and their
# custody, lab results and their confirmation)
FIELD_RECORDS = frozenset(
    {
        Action.RECORD_ARRIVAL,
        Action.RECORD_SITE_NOTE,
        Action.ADD_EVIDENCE,
        Action.RECORD_INSPECTION,
        Action.RECORD_SAMPLE,
        Action.HAND_OFF_CUSTODY,
        Action.RECORD_LAB_RESULT,
        Action.CONFIRM_RESULT,
    }
)
# what a service may do for a person: their field records, reading the case as they would
# (monitoring staff see samples and results only) and fetching the evidence they may see
ACTED_FOR = FIELD_RECORDS | {Action.READ, Action.DOWNLOAD_EVIDENCE}
# what a trusted service may read for a manager it acts for (a console): never a write
MANAGER_READS = frozenset({Action.READ, Action.LIST, Action.VERIFY, Action.EXPORT})


def in_jurisdiction(principal: Principal, county_code: str) -> bool:
    return any(code and county_code.startswith(code) for code in principal.jurisdictions)


def _by_role(role: Role, principal: Principal, action: Action, case: Case | None) -> Decision:
    who = principal.subject
    if case is None:
        if action is Action.LIST:
            scope = {
                Role.ADMIN: Scope.FULL,
                Role.SERVICE: Scope.FULL,
                Role.MANAGER: Scope.JURISDICTION,
            }.get(role, Scope.OWN_CASES)
            return Decision(True, f"{role.value} lists within {scope.value}", scope)
        return Decision(False, f"{action.value} needs a case")
    if role is Role.ADMIN:
        if action in _ADMIN:
            return Decision(True, "platform operator: read-only access and intake", Scope.FULL)
        return Decision(False, "platform operators perform no legal acts on a case")
    if role is Role.SERVICE:
        if action in _SERVICE:
            return Decision(True, f"trusted service {who}: intake, team and reads", Scope.FULL)
        return Decision(False, f"service {who} performs no legal act in its own name")
    if role is Role.MANAGER:
        if not in_jurisdiction(principal, case.county_code):
            return Decision(False, f"county {case.county_code} is outside {who}'s jurisdiction")
        if action in _MANAGER:
            return Decision(True, f"manager of county {case.county_code}", Scope.FULL)
        return Decision(False, f"{action.value} is done by the case team on site")
    if role is Role.ENFORCEMENT_OFFICER:
        if who not in case.officers:
            return Decision(False, f"{who} is not an enforcement officer on case {case.case_id}")
        if action in _OFFICER:
            return Decision(True, f"officer on case {case.case_id}", Scope.FULL)
        return Decision(False, f"{action.value} needs a manager's approval or monitoring staff")
    if who not in case.monitoring_staff:
        return Decision(False, f"{who} is not monitoring staff on case {case.case_id}")
    if action in _MONITORING:
        return Decision(True, f"monitoring staff on case {case.case_id}", Scope.SAMPLES_AND_RESULTS)
    return Decision(False, f"monitoring staff handle samples and results only, not {action.value}")


_PRECEDENCE = (
    Role.ADMIN,
    Role.SERVICE,
    Role.MANAGER,
    Role.ENFORCEMENT_OFFICER,
    Role.MONITORING_STAFF,
)


def authorize(principal: Principal, action: Action, case: Case | None) -> Decision:
    """Allowed if any of the principal's roles allows; the widest scope wins.

    For OPEN_CASE pass the case the command would create (its county and team)."""
    if principal.on_behalf_of is not None:
        return _on_behalf(principal, principal.on_behalf_of, action, case)
    denials: list[str] = []
    best: Decision | None = None
    rank = [Scope.FULL, Scope.JURISDICTION, Scope.SAMPLES_AND_RESULTS, Scope.OWN_CASES]
    for role in _PRECEDENCE:
        if role not in principal.roles:
            continue
        decision = _by_role(role, principal, action, case)
        if decision.allowed:
            if best is None or rank.index(decision.scope) < rank.index(best.scope):
                best = decision
        else:
            denials.append(decision.reason)
    if best is not None:
        return best
    if not principal.roles:
        return Decision(False, f"{principal.subject} has no role")
    return Decision(False, "; ".join(denials))


def _on_behalf(
    service: Principal, person: Principal, action: Action, case: Case | None
) -> Decision:
    """A service passing on a person's field record: both must be entitled."""
    via = f"{service.subject} on behalf of {person.subject}"
    if Role.SERVICE not in service.roles:
        return Decision(False, f"{via}: only a trusted service may act for someone")
    if action is Action.RECORD_TASK_CANCELLED:
        return _task_cancelled_for(via, person, case)
    if action in MANAGER_READS and person.roles == frozenset({Role.MANAGER}):
        # a console showing a manager's cases: the manager's jurisdiction applies, reads only
        if person.on_behalf_of is not None or not person.subject.strip():
            return Decision(False, f"{via}: the person acted for must be named once")
        decision = authorize(person, action, case)
        scope = decision.scope if decision.allowed else Scope.NONE
        return Decision(decision.allowed, f"{via}: {decision.reason}", scope)
    if action not in ACTED_FOR:
        return Decision(False, f"{via}: {action.value} is not a field record passed on for them")
    if person.on_behalf_of is not None or not person.subject.strip():
        return Decision(False, f"{via}: the person acted for must be named once")
    if case is not None and person.subject not in (*case.officers, *case.monitoring_staff):
        return Decision(False, f"{via}: {person.subject} is not on the team of {case.case_id}")
    decision = authorize(person, action, case)
    reason = f"{via}: {decision.reason}"
    return Decision(decision.allowed, reason, decision.scope if decision.allowed else Scope.NONE)


def _task_cancelled_for(via: str, person: Principal, case: Case | None) -> Decision:
    """A duty manager's cancellation of the case's task, passed on by the service."""
    if person.on_behalf_of is not None or not person.subject.strip():
        return Decision(False, f"{via}: the person acted for must be named once")
    if person.roles != frozenset({Role.MANAGER}):
        return Decision(False, f"{via}: a task is cancelled by its duty manager")
    if case is None:
        return Decision(False, f"{via}: RecordTaskCancelled needs a case")
    if not in_jurisdiction(person, case.county_code):
        return Decision(
            False, f"{via}: county {case.county_code} is outside {person.subject}'s jurisdiction"
        )
    return Decision(True, f"{via}: duty manager of county {case.county_code}", Scope.FULL)
