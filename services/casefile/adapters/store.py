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
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index, LargeBinary, Text, UniqueConstraint, event, or_
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from casefile.adapters import case_events
from casefile.adapters.codec import EncodingMemo, case_from_doc, case_to_doc
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
    # encodings of the list items, kept between writes (write path only)
    memo: EncodingMemo | None = field(default=None, compare=False, repr=False)


@dataclass
class _Cached:
    """The decoded form of a stored case document; valid while the stored text is `doc`."""

    doc: str
    stored: StoredCase


class _BatchBroken(Exception):
    """A job failed after it had written: the whole batch is rolled back and rerun one by one."""


@dataclass
class _Job:
    run: Callable[[Session], Any]
    future: Future[Any] = field(default_factory=Future)
    touched: set[str] = field(default_factory=set)


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


CACHED_CASES = 4096
MAX_BATCH = 256


class CaseStore:
    """Writes go through one writer thread that drains a queue of pending writes and commits
    them together (group commit): one transaction, one read of the chain head, one commit for
    every write that arrived meanwhile; the chain order is the commit order. Each caller gets
    its own result (or error) once the transaction holding its write has committed."""

    def __init__(self, engine: Engine, calendar: WorkCalendar = WEEKENDS_ONLY) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self.calendar = calendar
        self._lock = threading.Lock()
        self._seen: RequestRow | None = None
        # Called (from the writer's thread) with the case ids a commit touched.
        self.on_commit: Callable[[set[str]], None] | None = None
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_start = threading.Lock()
        self._cases: OrderedDict[str, _Cached] = OrderedDict()
        # Last audit entry of each case, valid while nobody else moved the chain head:
        # `_last_head` is the head this process committed; another writer changes it.
        self._case_heads: dict[str, AuditEntry] = {}
        self._last_head: tuple[int, str] | None = None
        self._batch_head: AuditHeadRow | None = None
        self._touched: set[str] = set()  # case ids the running job changed
        self._dirty = False  # whether the running job has written to the session
        self.checked_last = 0  # cases the last check_clocks read (only those with a clock due)

    # ---- group commit ------------------------------------------------------------------------

    def _submit(self, run: Callable[[Session], Any]) -> Future[Any]:
        job = _Job(run)
        if self._writer is None:
            with self._writer_start:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_loop, name="casefile-writer", daemon=True
                    )
                    self._writer.start()
        self._queue.put(job)
        return job.future

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit_batch(batch)
            except _BatchBroken:
                for job in batch:  # alone, a failing write fails only its own caller
                    if not job.future.done():
                        self._commit_batch([job], alone=True)
            except Exception as err:  # the commit itself failed: nothing of the batch is stored
                self._forget()
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(err)

    def _commit_batch(self, batch: list[_Job], alone: bool = False) -> None:
        results: list[tuple[_Job, bool, Any]] = []
        try:
            with self._write() as s:
                head = self._head(s)
                if self._last_head != (head.seq, head.hash):
                    self._case_heads.clear()  # another process wrote: re-read case heads
                self._batch_head = head
                for job in batch:
                    self._touched = job.touched
                    self._dirty = False
                    try:
                        results.append((job, True, job.run(s)))
                    except Exception as err:
                        if self._dirty and not alone:
                            raise _BatchBroken from err
                        if self._dirty:
                            raise
                        results.append((job, False, err))
                s.commit()
                self._last_head = (head.seq, head.hash)
        except _BatchBroken:
            self._forget()
            raise
        except Exception as err:
            self._forget()
            if not alone:
                raise
            batch[0].future.set_exception(err)
            return
        finally:
            self._batch_head = None
        touched: set[str] = set()
        for job, ok, value in results:
            touched |= job.touched
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        self._notify(touched)

    def _forget(self) -> None:
        # a rolled-back batch may have cached entries that were never committed
        self._case_heads.clear()
        self._last_head = None

    def _stored(self, row: CaseFileRow) -> StoredCase:
        """The decoded case, from the cache when the stored text is the one decoded before."""
        hit = self._cases.get(row.case_id)
        if hit is not None and hit.doc == row.doc:
            self._cases.move_to_end(row.case_id)
            return hit.stored
        sc = stored(row)
        sc = StoredCase(
            sc.case, sc.task_id, sc.alert_ids, sc.team, sc.summary, sc.opened_by, EncodingMemo()
        )
        self._remember_case(row.case_id, row.doc, sc)
        return sc

    def _remember_case(self, case_id: str, doc: str, sc: StoredCase) -> None:
        self._cases[case_id] = _Cached(doc, sc)
        self._cases.move_to_end(case_id)
        while len(self._cases) > CACHED_CASES:
            self._cases.popitem(last=False)

    # ---- transactions ------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._lock, Session(self._write_engine, expire_on_commit=False) as session:
            yield session

    def _notify(self, case_ids: set[str]) -> None:
        if self.on_commit is not None and case_ids:
            self.on_commit(case_ids)

    def _head(self, s: Session) -> AuditHeadRow:
        if self._batch_head is not None:
            return self._batch_head
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
        self._dirty = True
        prev = (
            AuditEntry(head.seq, "", 0, "", "{}", "", "", "", "", head.hash) if head.seq else None
        )
        case_prev = self._case_heads.get(case_id)
        if case_prev is None:
            case_row = s.exec(
                select(AuditRow)
                .where(AuditRow.case_id == case_id)
                .order_by(AuditRow.case_seq.desc())  # type: ignore[attr-defined]
                .limit(1)
            ).first()
            case_prev = to_entry(case_row) if case_row else None
        entry = chain_entry(
            prev,
            case_prev=case_prev,
            case_id=case_id,
            kind=kind,
            payload=payload,
            actor=actor,
            at=at,
        )
        s.add(AuditRow(**{f: getattr(entry, f) for f in AuditRow.model_fields}))
        head.seq, head.hash = entry.seq, entry.hash
        self._case_heads[case_id] = entry
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
        legal = clocks(case, now, self.calendar)
        pending = [c.due_at for c in legal if c.state in (ClockState.RUNNING, ClockState.EXTENDED)]
        # A paused clock cannot breach until a ResumeClock write, which recomputes this.
        due = min(pending).astimezone(UTC) if pending else None
        if row.next_due_at is None or due is None or utc(row.next_due_at) != due:
            row.next_due_at = due
        breached = [c for c in legal if c.state is ClockState.BREACHED]
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
        self,
        s: Session,
        row: CaseFileRow,
        sc: StoredCase,
        changes: list[CaseChange],
        now: datetime,
        via: dict[str, str] | None = None,
    ) -> None:
        """`via`: the service that passed the record on for the actor (both are audited)."""
        self._dirty = True
        case = sc.case
        doc = case_to_doc(case, sc.memo)
        row.doc, row.doc_sha256 = doc, _sha256(doc)
        # cached at once, so a later write of this batch on the same case finds it; harmless
        # if the batch rolls back, since a cache entry is used only when its text is stored
        self._remember_case(case.case_id, doc, sc)
        row.state, row.version = case.state.value, case.version
        head = self._head(s)
        for change in changes:
            # case_sha256 binds the stored case document to the chain (checked by verify).
            payload = {**change.payload, "case_sha256": row.doc_sha256}
            if via is not None:
                payload["via"] = via
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

    def submit_open(
        self,
        *,
        principal: Principal,
        request_id: str,
        fingerprint: str,
        command: OpenCase,
        fields: OpenFields,
        now: datetime,
        respond: Respond,
    ) -> Future[bytes]:
        """Opens a case once per task; a second open of the same task returns that case."""
        key = idem.make_key(request_id, principal.subject, "OpenCase")

        def run(s: Session) -> bytes:
            replay = self._idempotency(s, key, fingerprint, now)
            if replay is not None:
                return replay
            try:
                row = s.exec(
                    select(CaseFileRow).where(CaseFileRow.task_id == fields.task_id)
                ).first()
                if row is not None:
                    existing = self._stored(row)
                    decision = authorize(principal, Action.OPEN_CASE, existing.case)
                    if not decision.allowed:
                        raise Denied(decision.reason)
                    result = respond(existing, decision.scope)
                    self._remember(s, key, fingerprint, result, now)
                    return result
                case, changes = apply(None, command, principal.subject, now, calendar=self.calendar)
                decision = authorize(principal, Action.OPEN_CASE, case)
                if not decision.allowed:
                    raise Denied(decision.reason)
            except Denied as denied:
                self._deny(
                    s, principal, "OpenCase", command.case_id, denied.reason, request_id, now
                )
                raise
            self._dirty = True
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
            sc = StoredCase(
                case,
                fields.task_id,
                fields.alert_ids,
                fields.team,
                fields.summary,
                row.opened_by,
                EncodingMemo(),
            )
            self._record(s, row, sc, changes, now)
            result = respond(sc, decision.scope)
            self._remember(s, key, fingerprint, result, now)
            self._touched.add(case.case_id)
            return result

        return self._submit(run)

    def open_case(self, **kwargs: Any) -> bytes:
        return self.submit_open(**kwargs).result()  # type: ignore[no-any-return]

    def submit_command(
        self,
        *,
        principal: Principal,
        request_id: str,
        fingerprint: str,
        case_id: str,
        command: Command,
        now: datetime,
        respond: Respond,
        team: list[dict[str, str]] | None = None,
    ) -> Future[bytes]:
        """`team` (UpdateTeam only): the new team with names, stored beside the case."""
        action = Action.for_command(command)
        key = idem.make_key(request_id, principal.key, action.value)

        def run(s: Session) -> bytes:
            replay = self._idempotency(s, key, fingerprint, now)
            if replay is not None:
                return replay
            row = s.get(CaseFileRow, case_id)
            if row is None:
                raise CaseNotFound(f"no case {case_id}")
            current = self._stored(row)
            decision = authorize(principal, action, current.case)
            if not decision.allowed:
                self._deny(s, principal, action.value, case_id, decision.reason, request_id, now)
                raise Denied(decision.reason)
            case, changes = apply(
                current.case, command, principal.actor, now, calendar=self.calendar
            )
            if team is not None:
                self._set_members(s, row, case, team)
            sc = StoredCase(
                case,
                current.task_id,
                current.alert_ids,
                team if team is not None else current.team,
                current.summary,
                current.opened_by,
                current.memo,
            )
            self._record(s, row, sc, changes, now, via=_via(principal))
            result = respond(sc, decision.scope)
            self._remember(s, key, fingerprint, result, now)
            self._touched.add(case_id)
            return result

        return self._submit(run)

    def _set_members(
        self, s: Session, row: CaseFileRow, case: Case, team: list[dict[str, str]]
    ) -> None:
        row.team_json = json.dumps(team, ensure_ascii=False)
        wanted = set((*case.officers, *case.monitoring_staff))
        have = set(
            s.exec(select(CaseMemberRow.person_id).where(CaseMemberRow.case_id == row.case_id))
        )
        for person in sorted(wanted - have):
            s.add(CaseMemberRow(case_id=row.case_id, person_id=person))
        for person in sorted(have - wanted):
            member = s.get(CaseMemberRow, (row.case_id, person))
            if member is not None:
                s.delete(member)

    def apply_command(self, **kwargs: Any) -> bytes:
        return self.submit_command(**kwargs).result()  # type: ignore[no-any-return]

    def _deny(
        self,
        s: Session,
        principal: Principal,
        method: str,
        case_id: str,
        reason: str,
        request_id: str,
        now: datetime,
    ) -> None:
        payload: dict[str, Any] = {
            "method": method,
            "reason": reason,
            "request_id": request_id,
            "roles": sorted(r.value for r in principal.roles),
        }
        via = _via(principal)
        if via is not None:
            payload["via"] = via
        self._append(s, self._head(s), case_id, "AccessDenied", payload, principal.actor, now)
        # the denial is the job's result in the chain: it commits although the call fails
        self._dirty = False

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
        self._submit(
            lambda s: self._deny(s, principal, method, case_id, reason, request_id, now)
        ).result()

    def check_clocks(self, now: datetime) -> list[tuple[str, LegalClock]]:
        """Announces every clock of an open case that is breached and not yet announced."""

        def run(s: Session) -> list[tuple[str, LegalClock]]:
            out: list[tuple[str, LegalClock]] = []
            due = (
                select(CaseFileRow)
                .where(CaseFileRow.next_due_at <= now.astimezone(UTC))  # type: ignore[operator]
                .where(CaseFileRow.state != State.CLOSED.value)
            )
            self.checked_last = 0
            head = self._head(s)
            for row in s.exec(due).all():
                self.checked_last += 1
                self._dirty = True  # next_due_at moves on
                case = self._stored(row).case
                fresh = self._breaches(s, head, row, case, now)
                s.add(row)
                if fresh:
                    self._touched.add(row.case_id)
                    out.extend((row.case_id, c) for c in fresh)
            return out

        return self._submit(run).result()  # type: ignore[no-any-return]

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


def _via(principal: Principal) -> dict[str, str] | None:
    """The calling service and the roles it claimed for the person, when it acts for someone."""
    person = principal.on_behalf_of
    if person is None:
        return None
    return {
        "service": principal.subject,
        "on_behalf_of": person.subject,
        "person_roles": ",".join(sorted(r.value for r in person.roles)),
    }


def authorize_read(principal: Principal, action: Action, case: Case) -> Decision:
    return authorize(principal, action, case)
