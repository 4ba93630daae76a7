"""The casefile tables (sqlmodel); the schema itself comes from Alembic (`migrations`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _tz() -> Any:
    return DateTime(timezone=True)


class CaseFileRow(SQLModel, table=True):
    __tablename__ = "case_files"

    case_id: str = Field(primary_key=True)
    task_id: str = Field(unique=True, index=True)
    state: str = Field(index=True)
    county: str = Field(index=True)
    enterprise_id: str = Field(index=True)
    outlet_id: str = Field(index=True)
    alert_ids_json: str = Field(sa_type=Text)
    team_json: str = Field(sa_type=Text)
    summary: str = Field(sa_type=Text)
    opened_by: str
    discovered_at: datetime = Field(sa_type=_tz())
    opened_at: datetime = Field(sa_type=_tz())
    version: int
    event_seq: int  # last per-case event sequence
    doc: str = Field(sa_type=Text)  # canonical JSON of the domain Case
    doc_sha256: str
    # earliest due instant of a clock that can still breach (running, not yet announced);
    # NULL when none can. The breach checker reads only rows whose instant has passed.
    next_due_at: datetime | None = Field(default=None, sa_type=_tz(), index=True)


class CaseMemberRow(SQLModel, table=True):
    """The team, for listing a person's own cases."""

    __tablename__ = "case_members"

    case_id: str = Field(primary_key=True)
    person_id: str = Field(primary_key=True, index=True)


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("case_id", "case_seq", name="uq_audit_case_seq"),)

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    case_id: str
    case_seq: int
    kind: str
    payload_json: str = Field(sa_type=Text)
    actor: str
    at: str
    prev_hash: str
    case_prev_hash: str
    hash: str


class AuditHeadRow(SQLModel, table=True):
    """The single head of the global chain; locking it serialises writers."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    hash: str


class RequestRow(SQLModel, table=True):
    """Answered writes: (request id, principal, method) -> fingerprint and first response."""

    __tablename__ = "request_results"

    request_id: str = Field(primary_key=True)
    principal: str = Field(primary_key=True)
    method: str = Field(primary_key=True)
    fingerprint: str
    result: bytes = Field(sa_type=LargeBinary)
    at: datetime = Field(sa_type=_tz())


class EventRow(SQLModel, table=True):
    """Outbox and change feed: every committed change as its serialised CaseEvent."""

    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("case_id", "sequence", name="uq_event_case_sequence"),
        Index("ix_case_events_unpublished", "published_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    case_id: str
    sequence: int
    version: int
    kind: str
    at: datetime = Field(sa_type=_tz())
    event_bytes: bytes = Field(sa_type=LargeBinary)
    published_at: datetime | None = Field(default=None, sa_type=_tz())
    # W3C trace context of the request that made the change, sent as Kafka record headers
    traceparent: str | None = Field(default=None)
    tracestate: str | None = Field(default=None)


class BreachRow(SQLModel, table=True):
    """Clock breaches already announced: each clock of a case breaches once."""

    __tablename__ = "clock_breaches"

    case_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    due_at: datetime = Field(sa_type=_tz())
    recorded_at: datetime = Field(sa_type=_tz())
