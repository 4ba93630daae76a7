"""Dispatch persistence with sqlmodel: SQLite by default, PostgreSQL by URL.

Only portable column types (String, Integer, Boolean, Text, LargeBinary, DateTime) are used,
and strings carry no length limit: ids are the producers' business, and a length SQLite
ignores would make PostgreSQL refuse the same step.
One `commit(Changes)` call writes everything one step of the dispatcher produced in a single
transaction: task snapshots, the consumed event id, the dispatch events to publish (outbox)
and the phone notifications. A crash therefore either keeps the whole step or none of it, and
the outbox is published (again, with the same event ids) after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, LargeBinary, Text, event, text, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, Session, SQLModel, col, create_engine, delete, select

from dispatch.adapters import state_codec as codec
from dispatch.adapters.report_store import REPORT_TABLES, Alarm, TaskFactRow, put_alarm, put_fact
from dispatch.adapters.schema import create_tables
from dispatch.domain.casefile_calls import CallMethod, CallStatus, CasefileCall
from dispatch.domain.dispatcher import DispatchState
from dispatch.domain.report_facts import task_fact


class TaskRow(SQLModel, table=True):
    __tablename__ = "dispatch_tasks"

    task_id: str = Field(primary_key=True)
    route: str
    priority: str
    state: str = Field(index=True)
    county: str = Field(index=True)
    enterprise_id: str
    outlet_id: str
    case_id: str = Field(default="")
    case_pending: bool = False  # a case was asked for and not yet opened in casefile
    alert_time: datetime
    event_seq: int = 0  # last DispatchEvent seq published for this task
    policy_version: str = Field(default="")
    evidence: str = Field(sa_column=Column(Text, nullable=False))
    task_json: str = Field(sa_column=Column(Text, nullable=False))
    acceptance_json: str = Field(sa_column=Column(Text, nullable=False))
    clocks_json: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime


class TaskMemberRow(SQLModel, table=True):
    """Who holds (or was offered) a slot on a task: the officer's "my tasks" index."""

    __tablename__ = "dispatch_task_members"

    task_id: str = Field(primary_key=True)
    person_id: str = Field(primary_key=True, index=True)


class ProcessedEventRow(SQLModel, table=True):
    """Consumed alert event ids: a redelivered or replayed event has no second effect."""

    __tablename__ = "dispatch_processed_events"

    event_id: str = Field(primary_key=True)
    processed_at: datetime


class OutboxRow(SQLModel, table=True):
    """Every DispatchEvent, in the order it was produced; `published` once Kafka acked it."""

    __tablename__ = "dispatch_events"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True)
    key: str = Field(index=True)
    kind: str
    seq: int = 0
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    published: bool = Field(default=False, index=True)
    created_at: datetime


class NotificationRow(SQLModel, table=True):
    """The per-person push log; `id` is the SSE event id (monotonic, never reused)."""

    __tablename__ = "dispatch_notifications"

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(index=True)
    task_id: str
    kind: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class MetaRow(SQLModel, table=True):
    """Dispatcher-wide state that is not per task: loads and active device faults."""

    __tablename__ = "dispatch_meta"

    name: str = Field(primary_key=True)
    body: str = Field(sa_column=Column(Text, nullable=False))


class CasefileCallRow(SQLModel, table=True):
    """Calls owed to casefile (outbox for gRPC): written with the step that asked for them,
    retried with backoff until done, or dead-lettered with casefile's reason."""

    __tablename__ = "dispatch_casefile_calls"

    id: int | None = Field(default=None, primary_key=True)  # the order calls were asked for
    request_id: str = Field(unique=True)
    task_id: str = Field(index=True)
    method: str
    status: str = Field(index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))
    trace: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    updated_at: datetime


TABLES = [
    SQLModel.metadata.tables[m.__tablename__]  # type: ignore[attr-defined]
    for m in (
        TaskRow,
        TaskMemberRow,
        ProcessedEventRow,
        OutboxRow,
        NotificationRow,
        MetaRow,
        CasefileCallRow,
    )
]


@dataclass
class TaskMeta:
    """What the adapters keep per task beyond the domain state."""

    alert_time: datetime
    evidence: dict[str, Any]
    policy_version: str = ""
    case_id: str = ""
    case_pending: bool = False
    event_seq: int = 0


@dataclass(frozen=True)
class OutgoingEvent:
    event_id: str
    key: str
    kind: str
    seq: int
    payload: bytes


@dataclass(frozen=True)
class Notification:
    person_id: str
    task_id: str
    kind: str
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredNotification:
    id: int
    person_id: str
    task_id: str
    kind: str
    body: dict[str, Any]
    created_at: datetime


@dataclass
class Changes:
    tasks: set[str] = field(default_factory=set)  # task ids whose snapshot must be written
    processed: list[str] = field(default_factory=list)
    events: list[OutgoingEvent] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    calls: list[CasefileCall] = field(default_factory=list)  # new or changed casefile calls
    alarms: list[Alarm] = field(default_factory=list)  # alert episodes opened (reports)

    def __bool__(self) -> bool:
        return bool(
            self.tasks
            or self.processed
            or self.events
            or self.notifications
            or self.calls
            or self.alarms
        )


# PostgreSQL advisory lock key every dispatcher step holds (any constant unique to it)
STEP_LOCK = 0x6C64_6470_7374_6570  # "ldpdstep"
VERSION = "state_version"  # dispatch_meta row: bumped by every step a replica commits


WAKE_CHANNEL = "liandong_dispatch_wake"  # LISTEN/NOTIFY channel of the push wake-ups
WAKE_ALL = "*"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def wake_payload(listeners: Iterable[str]) -> str:
    """The NOTIFY payload naming whom to wake (everyone when the list is too long for
    PostgreSQL's 8000-byte payload: a spurious wake-up costs one re-read)."""
    text_ = json.dumps(sorted(set(listeners)), ensure_ascii=False)
    return text_ if len(text_.encode()) < 7000 else WAKE_ALL


@dataclass
class StepLock:
    """Held from before a step decides until after its commit (PostgreSQL only): the
    replicas' steps run one at a time, each on the state the previous one stored."""

    conn: Connection
    version: int  # the stored state's version when the lock was taken


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _call(r: CasefileCallRow) -> CasefileCall:
    return CasefileCall(
        request_id=r.request_id,
        task_id=r.task_id,
        method=CallMethod(r.method),
        created_at=_utc(r.created_at),
        body=json.loads(r.body),
        trace=json.loads(r.trace),
        status=CallStatus(r.status),
        attempts=r.attempts,
        next_attempt_at=_utc(r.next_attempt_at) if r.next_attempt_at is not None else None,
        last_error=r.last_error,
    )


class DispatchStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_tables(engine, TABLES + REPORT_TABLES)
        # several processes may share a PostgreSQL database (replicas); a SQLite file has one
        self.shared = engine.dialect.name == "postgresql"

    # ---- replicas ---------------------------------------------------------------------
    def lock_step(self) -> StepLock:
        """Waits for the other replicas' running step, then holds the lock (see StepLock)."""
        conn = self.engine.connect()
        try:
            conn.begin()
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STEP_LOCK})
            return StepLock(conn, self.version(conn))
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def unlock_step(lock: StepLock) -> None:
        lock.conn.rollback()  # ends the transaction, and with it the advisory lock
        lock.conn.close()

    def version(self, conn: Connection | None = None) -> int:
        """The stored state's version (0 before any step was committed)."""
        query = select(MetaRow.body).where(MetaRow.name == VERSION)
        if conn is None:
            with Session(self.engine) as s:
                body = s.exec(query).first()
        else:
            body = conn.execute(query).scalar()
        return int(body) if body else 0

    # ---- loading ----------------------------------------------------------------------
    def load(self) -> tuple[DispatchState, dict[str, TaskMeta]]:
        state = DispatchState()
        metas: dict[str, TaskMeta] = {}
        with Session(self.engine) as s:
            for row in s.exec(select(TaskRow)):
                state.tasks[row.task_id] = codec.load(codec.TASK, row.task_json)
                state.acceptance[row.task_id] = codec.load(codec.ACCEPTANCE, row.acceptance_json)
                state.clocks[row.task_id] = codec.load(codec.CLOCKS, row.clocks_json)
                metas[row.task_id] = TaskMeta(
                    alert_time=_utc(row.alert_time),
                    evidence=json.loads(row.evidence),
                    policy_version=row.policy_version,
                    case_id=row.case_id,
                    case_pending=row.case_pending,
                    event_seq=row.event_seq,
                )
            state.seen_events = set(s.exec(select(ProcessedEventRow.event_id)))
            faults = s.get(MetaRow, "active_faults")
            if faults is not None:
                state.active_faults = codec.load(codec.FAULTS, faults.body)
            loads = s.get(MetaRow, "loads")
            if loads is not None:
                state.loads = codec.load(codec.LOADS, loads.body)
            # tasks stored before the report facts existed get theirs once, here
            have = set(s.exec(select(TaskFactRow.task_id)))
            missing = [t for t in state.tasks if t not in have]
            for task_id in missing:
                self._put_fact(s, state, metas[task_id], task_id)
            if missing:
                s.commit()
        return state, metas

    @staticmethod
    def _put_fact(s: Session, state: DispatchState, meta: TaskMeta, task_id: str) -> None:
        fact = task_fact(
            state.tasks[task_id],
            meta.alert_time,
            state.clocks[task_id],
            str(meta.evidence.get("kind", "")),
            meta.case_id,
        )
        put_fact(s.connection(), fact)

    # ---- one dispatcher step ------------------------------------------------------------
    def commit(
        self,
        state: DispatchState,
        metas: dict[str, TaskMeta],
        changes: Changes,
        now: datetime,
        version: int | None = None,
        wake: Iterable[str] = (),
    ) -> None:
        """`version`: the state's new version (a step under `lock_step`), stored with it.
        `wake`: listeners (people) to wake in every replica once the step is committed."""
        with Session(self.engine) as s:
            if version is not None:
                s.merge(MetaRow(name=VERSION, body=str(version)))
            for task_id in sorted(changes.tasks):
                self._put_task(s, state, metas[task_id], task_id, now)
            for event_id in changes.processed:
                if s.get(ProcessedEventRow, event_id) is None:
                    s.add(ProcessedEventRow(event_id=event_id, processed_at=now))
            for e in changes.events:
                s.add(
                    OutboxRow(
                        event_id=e.event_id,
                        key=e.key,
                        kind=e.kind,
                        seq=e.seq,
                        payload=e.payload,
                        created_at=now,
                    )
                )
            for n in changes.notifications:
                s.add(
                    NotificationRow(
                        person_id=n.person_id,
                        task_id=n.task_id,
                        kind=n.kind,
                        body=json.dumps(n.body, ensure_ascii=False),
                        created_at=now,
                    )
                )
            for call in changes.calls:
                self._put_call(s, call, now)
            for alarm in changes.alarms:
                put_alarm(s.connection(), alarm)
            if changes.tasks or changes.processed:
                s.merge(
                    MetaRow(
                        name="active_faults", body=codec.dump(codec.FAULTS, state.active_faults)
                    )
                )
                s.merge(MetaRow(name="loads", body=codec.dump(codec.LOADS, state.loads)))
            if self.shared and wake:
                # delivered by PostgreSQL at the commit, to every replica's push listener
                s.connection().execute(
                    _NOTIFY, {"channel": WAKE_CHANNEL, "payload": wake_payload(wake)}
                )
            s.commit()

    def _put_task(
        self, s: Session, state: DispatchState, meta: TaskMeta, task_id: str, now: datetime
    ) -> None:
        task = state.tasks[task_id]
        acc = state.acceptance[task_id]
        row = TaskRow(
            task_id=task_id,
            route=task.route.value,
            priority=task.priority.value,
            state=task.state.value,
            county=task.county_code,
            enterprise_id=task.enterprise_id,
            outlet_id=task.outlet_id,
            case_id=meta.case_id,
            case_pending=meta.case_pending,
            alert_time=meta.alert_time,
            event_seq=meta.event_seq,
            policy_version=meta.policy_version,
            evidence=json.dumps(meta.evidence, ensure_ascii=False),
            task_json=codec.dump(codec.TASK, task),
            acceptance_json=codec.dump(codec.ACCEPTANCE, acc),
            clocks_json=codec.dump(codec.CLOCKS, state.clocks[task_id]),
            updated_at=now,
        )
        s.merge(row)
        self._put_fact(s, state, meta, task_id)
        wanted = set(acc.members())
        have = set(s.exec(select(TaskMemberRow.person_id).where(TaskMemberRow.task_id == task_id)))
        for pid in wanted - have:
            s.add(TaskMemberRow(task_id=task_id, person_id=pid))
        gone = have - wanted
        if gone:
            s.exec(  # type: ignore[call-overload]
                delete(TaskMemberRow).where(
                    col(TaskMemberRow.task_id) == task_id, col(TaskMemberRow.person_id).in_(gone)
                )
            )

    def _put_call(self, s: Session, call: CasefileCall, now: datetime) -> None:
        row = s.exec(
            select(CasefileCallRow).where(CasefileCallRow.request_id == call.request_id)
        ).first()
        if row is None:
            row = CasefileCallRow(
                request_id=call.request_id,
                task_id=call.task_id,
                method=call.method.value,
                body=json.dumps(call.body, ensure_ascii=False),
                trace=json.dumps(call.trace),
                created_at=call.created_at,
                status="",
                last_error="",
                updated_at=now,
            )
        row.status = call.status.value
        row.body = json.dumps(call.body, ensure_ascii=False)  # e.g. the team casefile answered
        row.attempts = call.attempts
        row.next_attempt_at = call.next_attempt_at
        row.last_error = call.last_error
        row.updated_at = now
        s.add(row)

    # ---- casefile calls -------------------------------------------------------------------
    def pending_calls(self, limit: int = 500) -> list[CasefileCall]:
        """Pending calls in the order they were asked for."""
        with Session(self.engine) as s:
            rows = s.exec(
                select(CasefileCallRow)
                .where(CasefileCallRow.status == CallStatus.PENDING.value)
                .order_by(col(CasefileCallRow.id))
                .limit(limit)
            ).all()
            return [_call(r) for r in rows]

    def calls_for(self, task_id: str) -> list[CasefileCall]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(CasefileCallRow)
                .where(CasefileCallRow.task_id == task_id)
                .order_by(col(CasefileCallRow.id))
            ).all()
            return [_call(r) for r in rows]

    # ---- outbox ---------------------------------------------------------------------------
    def unpublished(self, limit: int = 500) -> list[tuple[int, OutgoingEvent]]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(OutboxRow)
                .where(col(OutboxRow.published).is_(False))
                .order_by(col(OutboxRow.id))
                .limit(limit)
            ).all()
            return [
                (r.id or 0, OutgoingEvent(r.event_id, r.key, r.kind, r.seq, r.payload))
                for r in rows
            ]

    def mark_published(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        with Session(self.engine) as s:
            s.exec(update(OutboxRow).where(col(OutboxRow.id).in_(ids)).values(published=True))  # type: ignore[call-overload]
            s.commit()

    def events_for(self, key: str) -> list[OutgoingEvent]:
        with Session(self.engine) as s:
            rows = s.exec(select(OutboxRow).where(OutboxRow.key == key).order_by(col(OutboxRow.id)))
            return [OutgoingEvent(r.event_id, r.key, r.kind, r.seq, r.payload) for r in rows]

    # ---- notifications ----------------------------------------------------------------------
    def notifications_after(
        self, person_id: str, after: int, limit: int = 200
    ) -> list[StoredNotification]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(NotificationRow)
                .where(NotificationRow.person_id == person_id, col(NotificationRow.id) > after)
                .order_by(col(NotificationRow.id))
                .limit(limit)
            ).all()
            return [
                StoredNotification(
                    r.id or 0,
                    r.person_id,
                    r.task_id,
                    r.kind,
                    json.loads(r.body),
                    _utc(r.created_at),
                )
                for r in rows
            ]

    def task_ids_for(self, person_id: str) -> list[str]:
        with Session(self.engine) as s:
            return list(
                s.exec(select(TaskMemberRow.task_id).where(TaskMemberRow.person_id == person_id))
            )

    def count_tasks(self) -> int:
        with Session(self.engine) as s:
            return len(s.exec(select(TaskRow.task_id)).all())
