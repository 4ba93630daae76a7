"""Case persistence (SQLite WAL by default, PostgreSQL by URL); tables in `tables`.

One write = the new case document, its hash-chained audit entries, its outbox events
(case_events, published later by the relay), any clock breach it caused and the idempotency
record of the request, all in one transaction. Writes are grouped (group commit): the writes
that arrive while a transaction runs share the next one (`run_batch`), which is buffered and
sent once per table (`write_tx`). Writers are serialised: a process lock plus, across
processes (replicas), a transaction-level advisory lock and the audit head row (SELECT ... FOR
UPDATE) on PostgreSQL, BEGIN IMMEDIATE on SQLite, because the global audit chain has exactly
one head; the chain order is the commit order. The schema comes from
Alembic (`migrations`), never from create_all in production paths.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from opentelemetry import propagate
from sqlalchemy import case as sql_case
from sqlalchemy import event, exists, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, create_engine, select

from casefile.adapters.codec import EncodingMemo, case_from_doc, case_to_doc
from casefile.adapters.tables import (
    AuditHeadRow,
    AuditRow,
    BreachRow,
    CaseFileRow,
    CaseMemberRow,
    EventRow,
    RequestRow,
    SQLModel,
)
from casefile.adapters.write_tx import (
    EVENTS,
    CaseState,
    RequestKey,
    StoredCase,
    WriteCache,
    WriteTx,
    record_sha256,
    row_record_sha256,
    sha256_text,
    stored_from_row,
    utc,
)
from casefile.domain import requests as idem
from casefile.domain.access import Action, Scope, authorize
from casefile.domain.audit import AuditEntry, VerifyReport, verify_case_chain
from casefile.domain.cases import apply
from casefile.domain.clocks import ClockState, LegalClock, clocks
from casefile.domain.commands import Command, OpenCase
from casefile.domain.kinds import State
from casefile.domain.records import Case, CaseChange
from casefile.domain.workdays import WEEKENDS_ONLY, WorkCalendar
from liandong.tokens.claims import Principal

__all__ = [
    "AuditHeadRow",
    "AuditRow",
    "BreachRow",
    "CaseFileRow",
    "CaseMemberRow",
    "CaseNotFound",
    "CaseStore",
    "Denied",
    "EventRow",
    "OpenFields",
    "RequestConflict",
    "RequestRow",
    "SQLModel",
    "StoredCase",
    "WriteJob",
    "make_engine",
    "to_entry",
]

# ---- errors the gRPC layer maps to status codes --------------------------------------------


class CaseNotFound(Exception):
    pass


class RequestConflict(Exception):
    """Request id reused with a different payload (answered ALREADY_EXISTS)."""


class Denied(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _BatchBroken(Exception):
    """A job failed after it had written: the whole batch is rolled back and rerun one by one."""


def trace_carrier() -> dict[str, str]:
    """The current W3C trace context (traceparent, tracestate), empty outside a span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@dataclass
class WriteJob:
    """One write of a batch. `request_key` and `case_id` let the batch read its rows up front."""

    run: Callable[[WriteTx], Any]
    request_key: RequestKey | None = None
    case_id: str | None = None
    touched: set[str] = field(default_factory=set)
    # the caller's trace context, taken where the job is made (the request's span): the
    # batch runs on another thread, and its events carry it to casefile.events
    trace: dict[str, str] = field(default_factory=trace_carrier)


@dataclass(frozen=True)
class OpenFields:
    """What OpenCase carries beyond the domain command."""

    task_id: str
    alert_ids: list[str] = field(default_factory=list)
    team: list[dict[str, str]] = field(default_factory=list)
    summary: str = ""
    opened_by: str = ""


# encodes the reply of a write from the case, the caller's view of it and its legal clocks
Respond = Callable[[StoredCase, Scope, list[LegalClock]], bytes]
Outcome = tuple[bool, Any]  # (succeeded, result or exception)

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


class CaseStore:
    """Writes run in batches (`run_batch`): one transaction, one read of the chain head and
    one commit for every write of the batch; each write gets its own result or error once the
    transaction holding it has committed. The sync helpers (`open_case`, `apply_command`, ...)
    run a batch of one; the gRPC server groups concurrent calls (`group_commit`)."""

    def __init__(self, engine: Engine, calendar: WorkCalendar = WEEKENDS_ONLY) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._lock_head = engine.dialect.name != "sqlite"  # SQLite locks with BEGIN IMMEDIATE
        self.calendar = calendar
        self._lock = threading.Lock()
        self._cache = WriteCache()
        self._touched: set[str] = set()  # case ids the running job changed
        # Called (from the writing thread) with the case ids a commit touched.
        self.on_commit: Callable[[set[str]], None] | None = None
        self.checked_last = 0  # cases the last check_clocks read (only those with a clock due)

    # ---- group commit ------------------------------------------------------------------------

    def run_batch(self, jobs: list[WriteJob]) -> list[Outcome]:
        """Runs `jobs` in one transaction; a job that fails before writing fails alone, one
        that fails after writing makes the batch roll back and rerun one job at a time."""
        with self._lock:
            try:
                outcomes = self._attempt(jobs, alone=False)
            except _BatchBroken:
                outcomes = [self._attempt([job], alone=True)[0] for job in jobs]
        touched: set[str] = set()
        for job, (ok, _) in zip(jobs, outcomes, strict=True):
            if ok:
                touched |= job.touched
        if self.on_commit is not None and touched:
            self.on_commit(touched)
        return outcomes

    def _attempt(self, jobs: list[WriteJob], *, alone: bool) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            with self._write_engine.connect() as conn, conn.begin():
                tx = WriteTx(conn, self._cache, lock_head=self._lock_head)
                tx.prefetch(
                    [j.request_key for j in jobs if j.request_key],
                    [j.case_id for j in jobs if j.case_id],
                )
                for job in jobs:
                    self._touched = job.touched
                    tx.dirty = False
                    tx.trace = job.trace
                    try:
                        outcomes.append((True, job.run(tx)))
                    except Exception as err:
                        if tx.dirty and not alone:
                            raise _BatchBroken from err
                        if tx.dirty:
                            raise
                        outcomes.append((False, err))
                tx.flush()
            tx.keep()
        except _BatchBroken:
            self._cache.forget()
            raise
        except Exception as err:  # the commit failed: nothing of the batch is stored
            self._cache.forget()
            return [(False, err) for _ in jobs]
        return outcomes

    def write(self, job: WriteJob) -> Any:
        """Runs one write in a batch of its own; returns its result or raises its error."""
        ok, value = self.run_batch([job])[0]
        if not ok:
            raise value
        return value

    # ---- the parts of a write ----------------------------------------------------------------

    def _idempotency(
        self, tx: WriteTx, key: RequestKey, fingerprint: str, now: datetime
    ) -> bytes | None:
        check = idem.check(tx.request(key), idem.IdempotencyKey(*key), fingerprint, now)
        if check.outcome is idem.Outcome.REPLAY:
            return check.result
        if check.outcome is idem.Outcome.CONFLICT:
            raise RequestConflict(check.reason)
        return None

    def _record(
        self,
        tx: WriteTx,
        cs: CaseState,
        sc: StoredCase,
        changes: list[CaseChange],
        now: datetime,
        via: dict[str, str] | None = None,
    ) -> list[LegalClock]:
        """The new case version with its audit entries and events; returns its legal clocks.
        `via`: the service that passed the record on for the actor (both are audited)."""
        tx.dirty = True
        case = sc.case
        cs.doc = case_to_doc(case, sc.memo)
        cs.doc_sha256 = sha256_text(cs.doc)
        cs.stored = sc
        cs.state, cs.version, cs.changed = case.state.value, case.version, True
        for change in changes:
            # case_sha256 binds the stored case document to the chain (checked by verify).
            payload = {
                **change.payload,
                "case_sha256": cs.doc_sha256,
                "record_sha256": record_sha256(
                    sc.task_id, sc.alert_ids, sc.team, sc.summary, sc.opened_by
                ),
            }
            if via is not None:
                payload["via"] = via
            entry = tx.append(change.case_id, change.kind, payload, change.actor, change.at)
            tx.add_event(cs, entry, change.at)
        legal, _ = self._breaches(tx, cs, case, now)
        return legal

    def _breaches(
        self, tx: WriteTx, cs: CaseState, case: Case, now: datetime
    ) -> tuple[list[LegalClock], list[LegalClock]]:
        """The case's clocks and those newly breached (each announced once, audited)."""
        legal = clocks(case, now, self.calendar)
        pending = [c.due_at for c in legal if c.state in (ClockState.RUNNING, ClockState.EXTENDED)]
        # A paused clock cannot breach until a ResumeClock write, which recomputes this.
        due = min(pending).astimezone(UTC) if pending else None
        if (utc(cs.next_due_at) if cs.next_due_at is not None else None) != due:
            cs.next_due_at, cs.changed = due, True
        breached = [c for c in legal if c.state is ClockState.BREACHED]
        if not breached:
            return legal, []
        known = tx.known_breaches(case.case_id)
        fresh = [c for c in breached if c.name not in known]
        for c in fresh:
            tx.add_breach(case.case_id, c.name, c.due_at, now)
            payload = {
                "clock": c.name,
                "holder": c.holder.value,
                "basis": c.basis,
                "due_at": c.due_at,
                "met_at": c.met_at,
            }
            entry = tx.append(case.case_id, "ClockBreached", payload, "casefile", now)
            tx.add_event(cs, entry, now)
        return legal, fresh

    # ---- writes ------------------------------------------------------------------------------

    def open_job(
        self,
        *,
        principal: Principal,
        request_id: str,
        fingerprint: str,
        command: OpenCase,
        fields: OpenFields,
        now: datetime,
        respond: Respond,
    ) -> WriteJob:
        """Opens a case once per task; a second open of the same task returns that case."""
        key = idem.make_key(request_id, principal.subject, "OpenCase")
        request_key = (key.request_id, key.principal, key.method)

        def run(tx: WriteTx) -> bytes:
            replay = self._idempotency(tx, request_key, fingerprint, now)
            if replay is not None:
                return replay
            try:
                existing = tx.case_for_task(fields.task_id)
                if existing is not None:
                    decision = authorize(principal, Action.OPEN_CASE, existing.stored.case)
                    if not decision.allowed:
                        raise Denied(decision.reason)
                    sc = existing.stored
                    result = respond(sc, decision.scope, clocks(sc.case, now, self.calendar))
                    tx.remember_request(request_key, fingerprint, result, now)
                    return result
                case, changes = apply(None, command, principal.subject, now, calendar=self.calendar)
                decision = authorize(principal, Action.OPEN_CASE, case)
                if not decision.allowed:
                    raise Denied(decision.reason)
            except Denied as denied:
                self._deny(
                    tx, principal, "OpenCase", command.case_id, denied.reason, request_id, now
                )
                raise
            team_json = json.dumps(fields.team, ensure_ascii=False)
            sc = StoredCase(
                case,
                fields.task_id,
                fields.alert_ids,
                fields.team,
                fields.summary,
                fields.opened_by or principal.subject,
                EncodingMemo(),
            )
            cs = CaseState(
                case_id=case.case_id,
                task_id=fields.task_id,
                county=case.county_code,
                state=case.state.value,
                version=case.version,
                event_seq=0,
                doc="",
                doc_sha256="",
                next_due_at=None,
                team_json=team_json,
                stored=sc,
            )
            tx.add_case(
                cs,
                dict.fromkeys((*case.officers, *case.monitoring_staff)),
                {
                    "enterprise_id": case.enterprise_id,
                    "outlet_id": case.outlet_id,
                    "alert_ids_json": json.dumps(fields.alert_ids, ensure_ascii=False),
                    "summary": fields.summary,
                    "opened_by": sc.opened_by,
                    "discovered_at": case.discovered_at,
                    "opened_at": case.opened_at,
                },
            )
            legal = self._record(tx, cs, sc, changes, now)
            result = respond(sc, decision.scope, legal)
            tx.remember_request(request_key, fingerprint, result, now)
            self._touched.add(case.case_id)
            return result

        return WriteJob(run, request_key, command.case_id)

    def open_case(self, **kwargs: Any) -> bytes:
        return self.write(self.open_job(**kwargs))  # type: ignore[no-any-return]

    def command_job(
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
    ) -> WriteJob:
        """`team` (UpdateTeam only): the new team with names, stored beside the case."""
        action = Action.for_command(command)
        key = idem.make_key(request_id, principal.key, action.value)
        request_key = (key.request_id, key.principal, key.method)

        def run(tx: WriteTx) -> bytes:
            replay = self._idempotency(tx, request_key, fingerprint, now)
            if replay is not None:
                return replay
            cs = tx.case(case_id)
            if cs is None:
                raise CaseNotFound(f"no case {case_id}")
            current = cs.stored
            decision = authorize(principal, action, current.case)
            if not decision.allowed:
                self._deny(tx, principal, action.value, case_id, decision.reason, request_id, now)
                raise Denied(decision.reason)
            case, changes = apply(
                current.case, command, principal.actor, now, calendar=self.calendar
            )
            if team is not None:
                self._set_members(tx, cs, case, team)
            sc = StoredCase(
                case,
                current.task_id,
                current.alert_ids,
                team if team is not None else current.team,
                current.summary,
                current.opened_by,
                current.memo,
            )
            legal = self._record(tx, cs, sc, changes, now, via=_via(principal))
            result = respond(sc, decision.scope, legal)
            tx.remember_request(request_key, fingerprint, result, now)
            self._touched.add(case_id)
            return result

        return WriteJob(run, request_key, case_id)

    def _set_members(
        self, tx: WriteTx, cs: CaseState, case: Case, team: list[dict[str, str]]
    ) -> None:
        cs.team_json = json.dumps(team, ensure_ascii=False)
        cs.changed = True
        wanted = set((*case.officers, *case.monitoring_staff))
        have = tx.members(cs.case_id)
        tx.change_members(cs.case_id, sorted(wanted - have), sorted(have - wanted))

    def apply_command(self, **kwargs: Any) -> bytes:
        return self.write(self.command_job(**kwargs))  # type: ignore[no-any-return]

    def _deny(
        self,
        tx: WriteTx,
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
        tx.append(case_id, "AccessDenied", payload, principal.actor, now)
        # the denial is the job's result in the chain: it commits although the call fails
        tx.dirty = False

    def denial_job(
        self,
        principal: Principal,
        method: str,
        case_id: str,
        reason: str,
        request_id: str,
        now: datetime,
    ) -> WriteJob:
        """A refused attempt becomes an audit entry of the case it aimed at."""
        return WriteJob(
            lambda tx: self._deny(tx, principal, method, case_id, reason, request_id, now)
        )

    def check_clocks(self, now: datetime) -> list[tuple[str, LegalClock]]:
        """Announces every clock of an open case that is breached and not yet announced."""

        def run(tx: WriteTx) -> list[tuple[str, LegalClock]]:
            out: list[tuple[str, LegalClock]] = []
            due = tx.conn.execute(
                select(CaseFileRow.case_id)
                .where(CaseFileRow.next_due_at <= now.astimezone(UTC))  # type: ignore[operator]
                .where(CaseFileRow.state != State.CLOSED.value)
                .order_by(CaseFileRow.case_id)  # type: ignore[arg-type]
            ).all()
            self.checked_last = 0
            for (case_id,) in due:
                cs = tx.case(case_id)
                if cs is None:
                    continue
                self.checked_last += 1
                tx.dirty = True  # next_due_at moves on
                cs.changed = True
                _, fresh = self._breaches(tx, cs, cs.stored.case, now)
                if fresh:
                    self._touched.add(case_id)
                    out.extend((case_id, c) for c in fresh)
            return out

        return self.write(WriteJob(run))  # type: ignore[no-any-return]

    def mark_published(self, ids: list[int], now: datetime) -> None:
        if not ids:
            return
        with self._lock, self._write_engine.connect() as conn, conn.begin():
            conn.execute(update(EVENTS).where(EVENTS.c.id.in_(ids)).values(published_at=now))

    # ---- reads -------------------------------------------------------------------------------

    def get(self, case_id: str) -> StoredCase | None:
        """The case as stored, served only if its last audit entry vouches for the document
        and the columns served beside it (else CaseTampered)."""
        with Session(self.engine) as s:
            row = s.get(CaseFileRow, case_id)
            if row is None:
                return None
            self._vouched(s, [row])
            return stored_from_row(row)

    @staticmethod
    def _vouched(s: Session, rows: list[CaseFileRow]) -> None:
        """Raises CaseTampered unless each row is what its case's last audit entry vouches
        for (case_sha256 of the document, record_sha256 of the served columns)."""
        if not rows:
            return
        last = (
            select(AuditRow.case_id, func.max(AuditRow.case_seq).label("top"))
            .where(AuditRow.case_id.in_([r.case_id for r in rows]))  # type: ignore[attr-defined]
            .where(AuditRow.kind.not_in(UNVOUCHING_KINDS))  # type: ignore[attr-defined]
            .group_by(AuditRow.case_id)
            .subquery()
        )
        payloads = dict(
            s.exec(
                select(AuditRow.case_id, AuditRow.payload_json).join(
                    last,
                    (AuditRow.case_id == last.c.case_id) & (AuditRow.case_seq == last.c.top),  # type: ignore[arg-type]
                )
            ).all()
        )
        for row in rows:
            problem = row_problem(row, payloads.get(row.case_id))
            if problem:
                raise CaseTampered(row.case_id, problem)

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
        due_within_days: int = 0,
        now: datetime | None = None,
    ) -> list[StoredCase]:
        """`due_within_days` > 0: open cases with a clock whose last allowed day (CST) is at
        most that many days after today, or already breached, overdue first, then by the
        earliest due clock (`after` is then an offset into that order); else every case by
        id after `after`."""
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
            if due_within_days > 0:
                # the last allowed day (CST, as due_date) is at most N days after today's
                local = (now or datetime.now(UTC)).astimezone(CHINA)
                horizon = datetime(local.year, local.month, local.day, tzinfo=CHINA) + timedelta(
                    days=due_within_days + 1
                )
                # a clock breached once stays overdue until the case closes (clock_breaches)
                overdue = exists().where(col(BreachRow.case_id) == col(CaseFileRow.case_id))
                query = (
                    query.where(CaseFileRow.state != State.CLOSED.value)
                    .where(or_(col(CaseFileRow.next_due_at) <= horizon, overdue))
                    .order_by(
                        sql_case((overdue, 0), else_=1),
                        col(CaseFileRow.next_due_at).is_(None),
                        col(CaseFileRow.next_due_at),
                        CaseFileRow.case_id,
                    )
                    .offset(int(after) if after.isdigit() else 0)
                    .limit(limit)
                )
                due = list(s.exec(query).all())
                self._vouched(s, due)
                return [stored_from_row(r) for r in due]
            if after:
                query = query.where(CaseFileRow.case_id > after)
            query = query.order_by(CaseFileRow.case_id).limit(limit)  # type: ignore[arg-type]
            rows = list(s.exec(query).all())
            self._vouched(s, rows)
            return [stored_from_row(r) for r in rows]

    def verify_case(self, case_id: str) -> tuple[VerifyReport, str]:
        """The case's audit thread, then its stored document against the sha256 its last
        entry vouches for. Returns the chain report and a document problem ('' if none)."""
        entries = self.audit_entries(case_id)
        report = verify_case_chain(entries, case_id)
        with Session(self.engine) as s:
            row = s.get(CaseFileRow, case_id)
        if row is None:
            return report, f"case {case_id} is in the chain but not stored"
        vouched = next(
            (sha for e in reversed(entries) if (sha := e.payload.get("case_sha256"))), None
        )
        if vouched is not None and vouched != sha256_text(row.doc):
            return report, "stored case document differs from the one the audit chain vouches for"
        return report, ""

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

    def unpublished(self, limit: int = 500) -> list[tuple[int, str, bytes, dict[str, str]]]:
        """Unpublished events in commit order: id, case id, bytes, trace context headers."""
        with Session(self.engine) as s:
            rows = s.exec(
                select(EventRow)
                .where(EventRow.published_at.is_(None))  # type: ignore[union-attr]
                .order_by(EventRow.id)  # type: ignore[arg-type]
                .limit(limit)
            ).all()
            return [
                (
                    int(r.id or 0),
                    r.case_id,
                    r.event_bytes,
                    _trace_headers(r.traceparent, r.tracestate),
                )
                for r in rows
            ]

    def audit_entries(self, case_id: str | None = None) -> list[AuditEntry]:
        with Session(self.engine) as s:
            query = select(AuditRow)
            if case_id is not None:
                query = query.where(AuditRow.case_id == case_id)
            query = query.order_by(AuditRow.seq)  # type: ignore[arg-type]
            return [to_entry(r) for r in s.exec(query).all()]


CHINA = timezone(timedelta(hours=8), "CST")  # legal days are China Standard Time days


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


def _trace_headers(traceparent: str | None, tracestate: str | None) -> dict[str, str]:
    headers = {"traceparent": traceparent} if traceparent else {}
    if traceparent and tracestate:
        headers["tracestate"] = tracestate
    return headers


# audit entries that record no new case document (a clock breach, a refused attempt, a
# download of evidence, an exported bundle)
UNVOUCHING_KINDS = ("ClockBreached", "AccessDenied", "EvidenceDownloaded", "BundleExported")


class CaseTampered(Exception):
    """A stored case its audit chain does not vouch for: served to nobody."""

    def __init__(self, case_id: str, problem: str) -> None:
        super().__init__(f"case {case_id}: {problem}; run `liandong casefile verify`")
        self.case_id = case_id


def row_problem(row: CaseFileRow, last_payload_json: str | None) -> str:
    """What is wrong with a stored case row given its last audit entry's payload ("" if
    nothing): the document's hash, the served columns' hash, and the columns derived from
    the document (indexes)."""
    if last_payload_json is None:
        return "no audit entry vouches for it"
    payload = json.loads(last_payload_json)
    if sha256_text(row.doc) != payload.get("case_sha256"):
        return "document differs from its audit chain"
    vouched = payload.get("record_sha256")
    # entries written before record_sha256 existed vouch for the document only
    if vouched is not None and row_record_sha256(row) != vouched:
        return "task, alerts, team, summary or opened_by differ from its audit chain"
    case = case_from_doc(row.doc)
    derived = (
        case.state.value,
        case.version,
        case.county_code,
        case.enterprise_id,
        case.outlet_id,
    )
    if (row.state, row.version, row.county, row.enterprise_id, row.outlet_id) != derived:
        return "columns differ from its document"
    return ""
