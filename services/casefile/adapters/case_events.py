"""CaseEvent messages for casefile.events, built when the change is committed (outbox)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from liandong.events import deterministic_id, new_meta
from liandong.v1 import casefile_pb2

PRODUCER = "casefile"
CLOCK_BREACHED = "CLOCK_BREACHED"

# audit entry kind (domain command name) -> event kind
KINDS: dict[str, str] = {
    "OpenCase": "CASE_OPENED",
    "RecordArrival": "ARRIVAL_RECORDED",
    "RecordInspection": "INSPECTION_RECORDED",
    "AddEvidence": "EVIDENCE_ADDED",
    "RecordSample": "SAMPLE_RECORDED",
    "HandOffCustody": "CUSTODY_HANDED_OFF",
    "RecordLabResult": "LAB_RESULT_RECORDED",
    "ConfirmResult": "RESULT_CONFIRMED",
    "RecordFinding": "FINDING_RECORDED",
    "FileCase": "CASE_FILED",
    "ServeNotice": "NOTICE_SERVED",
    "RequestHearing": "HEARING_REQUESTED",
    "ScheduleHearing": "HEARING_SCHEDULED",
    "RecordHearing": "HEARING_HELD",
    "DecidePenalty": "PENALTY_DECIDED",
    "ServeDecision": "DECISION_SERVED",
    "RecordEnforcement": "ENFORCEMENT_RECORDED",
    "TransferCase": "CASE_TRANSFERRED",
    "CloseCase": "CASE_CLOSED",
    "ExtendClock": "CLOCK_EXTENDED",
    "PauseClock": "CLOCK_PAUSED",
    "ResumeClock": "CLOCK_RESUMED",
    "UpdateTeam": "TEAM_UPDATED",
    "RecordSiteNote": "SITE_NOTE_RECORDED",
    "RecordTaskCancelled": "TASK_CANCELLED",
    "SampleFlagged": "SAMPLE_FLAGGED",
    "ClockBreached": CLOCK_BREACHED,
}


def event_id(case_id: str, sequence: int) -> str:
    """Deterministic: the n-th event of a case always has the same id, so a re-publish after
    a crash is a duplicate consumers drop, never a new event."""
    return deterministic_id("casefile.event", case_id, str(sequence))


def _details(payload: dict[str, Any]) -> dict[str, str]:
    source = payload.get("command", payload)
    out: dict[str, str] = {}
    if isinstance(source, dict):
        for key, value in source.items():
            out[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def build(
    *,
    case_id: str,
    sequence: int,
    entry_kind: str,
    state: str,
    version: int,
    actor: str,
    task_id: str,
    county: str,
    at: datetime,
    payload_json: str,
    audit_seq: int = 0,
    audit_hash: str = "",
) -> casefile_pb2.CaseEvent:
    payload = json.loads(payload_json)
    return casefile_pb2.CaseEvent(
        meta=new_meta(
            key=case_id, event_time=at, producer=PRODUCER, event_id=event_id(case_id, sequence)
        ),
        case_id=case_id,
        kind=KINDS.get(entry_kind, entry_kind),
        state=state,
        version=version,
        actor=actor,
        task_id=task_id,
        county=county,
        details=_details(payload),
        sequence=sequence,
        payload_json=payload_json,
        audit_seq=audit_seq,
        audit_hash=audit_hash,
    )
