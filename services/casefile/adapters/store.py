"""Case persistence with sqlmodel (SQLite WAL by default, PostgreSQL by URL).

One write = one transaction holding the new case document, its hash-chained audit entries,
its outbox events (case_events, published later by the relay), any clock breach it caused and
the idempotency record of the request. Writers are serialised: a process lock plus the audit
head row (SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite), because the global
audit chain has exactly one head. The schema comes from Alembic (`migrations`), never from
create_all in production paths.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, Text, UniqueConstraint, event, or_
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from casefile.adapters import case_events
from casefile.adapters.codec import case_from_doc, case_to_doc
from casefile.domain import requests as idem
from casefile.domain.access import Action, Decision, Principal, Scope, authorize
from casefile.domain.audit import AuditEntry, chain_entry
from casefile.domain.cases import Case, CaseChange, Command, OpenCase, State, apply
from casefile.domain.clocks import ClockState, LegalClock, clocks
from casefile.domain.workdays import WEEKENDS_ONLY, WorkCalendar


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


class BreachRow(SQLModel, table=True):
    """Clock breaches already announced: each clock of a case breaches once."""

    __tablename__ = "clock_breaches"

    case_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    due_at: datetime = Field(sa_type=_tz())
    recorded_at: datetime = Field(sa_type=_tz())


# ---- errors the gRPC layer maps to status codes --------------------------------------------


class CaseNotFound(Exception):
    pass


class RequestConflict(Exception):
    """Request id reused with a different payload (the domain answers INVALID_ARGUMENT)."""


class Denied(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StoredCase:
    case: Case
    task_id: str
    alert_ids: list[str]
    team: list[dict[str, str]]
    summary: str
    opened_by: str


@dataclass(frozen=True)
class OpenFields:
    """What OpenCase carries beyond the domain command."""

    task_id: str
    alert_ids: list[str] = field(default_factory=list)
    team: list[dict[str, str]] = field(default_factory=list)
    summary: str = ""
    opened_by: str = ""


Respond = Callable[[StoredCase, Scope], bytes]


WRITE_OPTION = "casefile_write"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the writer; NORMAL sync is durable in WAL mode.
            dbapi_conn.isolation_level = None  # transactions are begun below, not by pysqlite
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A writer takes the lock up front (IMMEDIATE): no read-then-upgrade deadlock
            # (SQLITE_BUSY); readers begin deferred and run beside it under WAL.
            immediate = conn.get_execution_options().get(WRITE_OPTION)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        row.seq,
        row.case_id,
        row.case_seq,
        row.kind,
        row.payload_json,
        row.actor,
        row.at,
        row.prev_hash,
        row.case_prev_hash,
        row.hash,
    )


def stored(row: CaseFileRow) -> StoredCase:
    return StoredCase(
        case_from_doc(row.doc),
        row.task_id,
        json.loads(row.alert_ids_json),
        json.loads(row.team_json),
        row.summary,
        row.opened_by,
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CaseStore:
    def __init__(self, engine: Engine, calendar: WorkCalendar = WEEKENDS_ONLY) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self.calendar = calendar
        self._lock = threading.Lock()
        self._seen: RequestRow | None = None
        # Called (from the writer's thread) with the case ids a commit touched.
        self.on_commit: Callable[[set[str]], None] | None = None

    # ---- transactions ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._lock, Session(self._write_engine, expire_on_commit=False) as session:
            yield session

    def _notify(self, case_ids: set[str]) -> None:
        if self.on_commit is not None and case_ids:
            self.on_commit(case_ids)

    def _head(self, s: Session) -> AuditHeadRow:
        head = s.exec(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).first()
        if head is None:
            head = AuditHeadRow(id=1, seq=0, hash="0" * 64)
            s.add(head)
        return head

    def _append(
        self,
        s: Session,
        head: AuditHeadRow,
        case_id: str,
        kind: str,
        payload: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> AuditEntry:
        # chain_entry needs only the predecessor's seq and hash: the head row has both
        prev = (
            AuditEntry(head.seq, "", 0, "", "{}", "", "", "", "", head.hash) if head.seq else None
        )
        case_row = s.exec(
            select(AuditRow)
            .where(AuditRow.case_id == case_id)
            .order_by(AuditRow.case_seq.desc())  # type: ignore[attr-defined]
            .limit(1)
        ).first()
        entry = chain_entry(
            prev,
            case_prev=to_entry(case_row) if case_row else None,
            case_id=case_id,
            kind=kind,
            payload=payload,
            actor=actor,
            at=at,
        )
        s.add(AuditRow(**{f: getattr(entry, f) for f in AuditRow.model_fields}))
        s.flush()  # the next append reads this row as its predecessor
        head.seq, head.hash = entry.seq, entry.hash
        return entry

    def _event(self, s: Session, row: CaseFileRow, entry: AuditEntry, at: datetime) -> None:
        row.event_seq += 1
        message = case_events.build(
            case_id=row.case_id,
            sequence=row.event_seq,
            entry_kind=entry.kind,
            state=row.state,
            version=row.version,
            actor=entry.actor,
            task_id=row.task_id,
            county=row.county,
            at=at,
            payload_json=entry.payload_json,
        )
        s.add(
            EventRow(
                event_id=message.meta.event_id,
                case_id=row.case_id,
                sequence=row.event_seq,
                version=row.version,
                kind=message.kind,
                at=at,
                event_bytes=message.SerializeToString(),
            )
        )

    def _breaches(
        self, s: Session, head: AuditHeadRow, row: CaseFileRow, case: Case, now: datetime
    ) -> list[LegalClock]:
        breached = [c for c in clocks(case, now, self.calendar) if c.state is ClockState.BREACHED]
        if not breached:
            return []
        known = set(s.exec(select(BreachRow.name).where(BreachRow.case_id == case.case_id)).all())
        fresh = [c for c in breached if c.name not in known]
        for c in fresh:
            s.add(BreachRow(case_id=case.case_id, name=c.name, due_at=c.due_at, recorded_at=now))
            payload = {
                "clock": c.name,
                "holder": c.holder.value,
                "basis": c.basis,
                "due_at": c.due_at,
                "met_at": c.met_at,
            }
            entry = self._append(s, head, case.case_id, "ClockBreached", payload, "casefile", now)
            self._event(s, row, entry, now)
        return fresh

    def _record(
        self, s: Session, row: CaseFileRow, case: Case, changes: list[CaseChange], now: datetime
    ) -> None:
        doc = case_to_doc(case)
        row.doc, row.doc_sha256 = doc, _sha256(doc)
        row.state, row.version = case.state.value, case.version
        head = self._head(s)
        for change in changes:
            # case_sha256 binds the stored case document to the chain (checked by verify).
            payload = {**change.payload, "case_sha256": row.doc_sha256}
            entry = self._append(
                s, head, change.case_id, change.kind, payload, change.actor, change.at
            )
            self._event(s, row, entry, change.at)
        self._breaches(s, head, row, case, now)
        s.add(row)

    def _idempotency(
        self, s: Session, key: idem.IdempotencyKey, fingerprint: str, now: datetime
    ) -> bytes | None:
        row = s.get(RequestRow, (key.request_id, key.principal, key.method))
        self._seen = row
        previous = (
            idem.IdempotencyRecord(
                idem.IdempotencyKey(row.request_id, row.principal, row.method),
                row.fingerprint,
                row.result,
                utc(row.at),
            )
            if row
            else None
        )
        check = idem.check(previous, key, fingerprint, now)
        if check.outcome is idem.Outcome.REPLAY:
            return check.result
        if check.outcome is idem.Outcome.CONFLICT:
            raise RequestConflict(check.reason)
        return None

    def _remember(
        self, s: Session, key: idem.IdempotencyKey, fingerprint: str, result: bytes, now: datetime
    ) -> None:
        seen = self._seen  # the row read by _idempotency in this transaction (writers are serial)
        if seen is not None:  # expired record of a reused id: replaced
            seen.fingerprint, seen.result, seen.at = fingerprint, result, now
            s.add(seen)
            return
        s.add(
            RequestRow(
                request_id=key.request_id,
                principal=key.principal,
                method=key.method,
                fingerprint=fingerprint,
                result=result,
                at=now,
            )
        )

    # ---- writes ------------------------------------------------------------------------------

    def open_case(
        self,
        *,
        principal: Principal,
        request_id: str,
        fingerprint: str,
        command: OpenCase,
        fields: OpenFields,
        now: datetime,
        respond: Respond,
    ) -> bytes:
        """Opens a case once per task; a second open of the same task returns that case."""
        key = idem.make_key(request_id, principal.subject, "OpenCase")
        try:
            with self._write() as s:
                replay = self._idempotency(s, key, fingerprint, now)
                if replay is not None:
                    return replay
                row = s.exec(
                    select(CaseFileRow).where(CaseFileRow.task_id == fields.task_id)
                ).first()
                if row is not None:
                    existing = stored(row)
                    decision = authorize(principal, Action.OPEN_CASE, existing.case)
                    if not decision.allowed:
                        raise Denied(decision.reason)
                    result = respond(existing, decision.scope)
                    self._remember(s, key, fingerprint, result, now)
                    s.commit()
                    return result
                case, changes = apply(None, command, principal.subject, now, calendar=self.calendar)
                decision = authorize(principal, Action.OPEN_CASE, case)
                if not decision.allowed:
                    raise Denied(decision.reason)
                row = CaseFileRow(
                    case_id=case.case_id,
                    task_id=fields.task_id,
                    state=case.state.value,
                    county=case.county_code,
                    enterprise_id=case.enterprise_id,
                    outlet_id=case.outlet_id,
                    alert_ids_json=json.dumps(fields.alert_ids, ensure_ascii=False),
                    team_json=json.dumps(fields.team, ensure_ascii=False),
                    summary=fields.summary,
                    opened_by=fields.opened_by or principal.subject,
                    discovered_at=case.discovered_at,
                    opened_at=case.opened_at,
                    version=case.version,
                    event_seq=0,
                    doc="",
                    doc_sha256="",
                )
                s.add(row)
                for person in dict.fromkeys((*case.officers, *case.monitoring_staff)):
                    s.add(CaseMemberRow(case_id=case.case_id, person_id=person))
                self._record(s, row, case, changes, now)
                result = respond(
                    StoredCase(
                        case,
                        fields.task_id,
                        fields.alert_ids,
                        fields.team,
                        fields.summary,
                        row.opened_by,
                    ),
                    decision.scope,
                )
                self._remember(s, key, fingerprint, result, now)
                s.commit()
        except Denied as denied:
            self.record_denial(
                principal, "OpenCase", command.case_id, denied.reason, request_id, now
            )
            raise
        self._notify({command.case_id})
        return result

    def apply_command(
        self,
        *,
        principal: Principal,
        request_id: str,
        fingerprint: str,
        case_id: str,
        command: Command,
        now: datetime,
        respond: Respond,
    ) -> bytes:
        action = Action.for_command(command)
        key = idem.make_key(request_id, principal.subject, action.value)
        try:
            with self._write() as s:
                replay = self._idempotency(s, key, fingerprint, now)
                if replay is not None:
                    return replay
                row = s.get(CaseFileRow, case_id)
                if row is None:
                    raise CaseNotFound(f"no case {case_id}")
                current = stored(row)
                decision = authorize(principal, action, current.case)
                if not decision.allowed:
                    raise Denied(decision.reason)
                case, changes = apply(
                    current.case, command, principal.subject, now, calendar=self.calendar
                )
                self._record(s, row, case, changes, now)
                result = respond(
                    StoredCase(
                        case,
                        current.task_id,
                        current.alert_ids,
                        current.team,
                        current.summary,
                        current.opened_by,
                    ),
                    decision.scope,
                )
                self._remember(s, key, fingerprint, result, now)
                s.commit()
        except Denied as denied:
            self.record_denial(principal, action.value, case_id, denied.reason, request_id, now)
            raise
        self._notify({case_id})
        return result

    def record_denial(
        self,
        principal: Principal,
        method: str,
        case_id: str,
        reason: str,
        request_id: str,
        now: datetime,
    ) -> None:
        """A refused attempt becomes an audit entry of the case it aimed at."""
        payload = {
            "method": method,
            "reason": reason,
            "request_id": request_id,
            "roles": sorted(r.value for r in principal.roles),
        }
        with self._write() as s:
            head = self._head(s)
            self._append(s, head, case_id, "AccessDenied", payload, principal.subject, now)
            s.commit()

    def check_clocks(self, now: datetime) -> list[tuple[str, LegalClock]]:
        """Announces every clock of an open case that is breached and not yet announced."""
        out: list[tuple[str, LegalClock]] = []
        touched: set[str] = set()
        with self._write() as s:
            rows = s.exec(select(CaseFileRow).where(CaseFileRow.state != State.CLOSED.value)).all()
            head = self._head(s)
            for row in rows:
                case = case_from_doc(row.doc)
                fresh = self._breaches(s, head, row, case, now)
                if fresh:
                    s.add(row)
                    touched.add(row.case_id)
                    out.extend((row.case_id, c) for c in fresh)
            s.commit()
        self._notify(touched)
        return out

    # ---- reads -------------------------------------------------------------------------------

    def get(self, case_id: str) -> StoredCase | None:
        with Session(self.engine) as s:
            row = s.get(CaseFileRow, case_id)
            return stored(row) if row else None

    def list_cases(
        self,
        *,
        scope: Scope,
        principal: Principal,
        state: str = "",
        county: str = "",
        enterprise_id: str = "",
        outlet_id: str = "",
        limit: int = 50,
        after: str = "",
    ) -> list[StoredCase]:
        with Session(self.engine) as s:
            query = select(CaseFileRow)
            if scope is Scope.OWN_CASES:
                query = query.join(
                    CaseMemberRow,
                    CaseMemberRow.case_id == CaseFileRow.case_id,  # type: ignore[arg-type]
                ).where(CaseMemberRow.person_id == principal.subject)
            elif scope is Scope.JURISDICTION:
                codes = [c for c in principal.jurisdictions if c]
                if not codes:
                    return []
                prefixes: list[Any] = [CaseFileRow.county.startswith(c) for c in codes]  # type: ignore[attr-defined]
                query = query.where(or_(*prefixes))
            elif scope is not Scope.FULL:
                return []
            if state:
                query = query.where(CaseFileRow.state == state)
            if county:
                query = query.where(CaseFileRow.county.startswith(county))  # type: ignore[attr-defined]
            if enterprise_id:
                query = query.where(CaseFileRow.enterprise_id == enterprise_id)
            if outlet_id:
                query = query.where(CaseFileRow.outlet_id == outlet_id)
            if after:
                query = query.where(CaseFileRow.case_id > after)
            query = query.order_by(CaseFileRow.case_id).limit(limit)  # type: ignore[arg-type]
            return [stored(r) for r in s.exec(query).all()]

    def events_after(
        self, case_id: str, after_sequence: int = 0, after_version: int = 0, limit: int = 500
    ) -> list[tuple[int, bytes]]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(EventRow.sequence, EventRow.event_bytes)
                .where(EventRow.case_id == case_id)
                .where(EventRow.sequence > after_sequence)
                .where(EventRow.version > after_version)
                .order_by(EventRow.sequence)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            return [(int(seq), bytes(data)) for seq, data in rows]

    def unpublished(self, limit: int = 500) -> list[tuple[int, str, bytes]]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(EventRow.id, EventRow.case_id, EventRow.event_bytes)
                .where(EventRow.published_at.is_(None))  # type: ignore[union-attr]
                .order_by(EventRow.id)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            return [(int(i or 0), str(c), bytes(b)) for i, c, b in rows]

    def mark_published(self, ids: list[int], now: datetime) -> None:
        if not ids:
            return
        with self._write() as s:
            for row in s.exec(select(EventRow).where(EventRow.id.in_(ids))).all():  # type: ignore[union-attr]
                row.published_at = now
                s.add(row)
            s.commit()

    def audit_entries(self, case_id: str | None = None) -> list[AuditEntry]:
        with Session(self.engine) as s:
            query = select(AuditRow)
            if case_id is not None:
                query = query.where(AuditRow.case_id == case_id)
            query = query.order_by(AuditRow.seq)  # type: ignore[arg-type]
            return [to_entry(r) for r in s.exec(query).all()]


def authorize_read(principal: Principal, action: Action, case: Case) -> Decision:
    return authorize(principal, action, case)
