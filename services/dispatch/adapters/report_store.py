"""Managers' reports as SQL over dispatch's own tables (SQLite and PostgreSQL).

`dispatch_task_facts` holds one flat row per task (domain/report_facts.TaskFact), rewritten in
the transaction that writes the task's snapshot; `dispatch_alarms` one row per alarm dispatch
was told about (an alert episode OPENED), whatever became of it. Every query is bounded by an
indexed time range (raised_at) and the jurisdiction's county prefixes, and returns aggregates:
no request loads task snapshots.

Percentiles are nearest-rank, as `liandong.response_times.percentile`: on PostgreSQL
percentile_disc (both fractions in one sort per stage, one pass per query, groups sorted in
the "C" collation), on SQLite (no ordered-set aggregates) the row whose rank in its group is
ceil(q n), found with window functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    and_,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel

from dispatch.domain.report_facts import REPORT_STAGES, TaskFact
from dispatch.domain.sla import ClockName

STAGE_COLUMNS = [c for *_, c in REPORT_STAGES]
CLOCKS = [c.value for c in ClockName]


def _tz() -> Any:
    return DateTime(timezone=True)


class TaskFactRow(SQLModel, table=True):
    __tablename__ = "dispatch_task_facts"
    __table_args__ = (
        Index("ix_task_facts_raised", "raised_at", "county"),
        Index("ix_task_facts_open", "is_open", "county"),
    )

    task_id: str = Field(primary_key=True)
    county: str
    priority: str
    route: str
    state: str
    is_open: bool
    alert_kind: str = ""
    enterprise_id: str = ""
    outlet_id: str = ""
    case_id: str = ""
    raised_at: datetime = Field(sa_type=_tz())
    day: str
    week: str
    month: str
    dispatch_s: float | None = Field(default=None, sa_column=Column(Float))
    acceptance_s: float | None = Field(default=None, sa_column=Column(Float))
    travel_s: float | None = Field(default=None, sa_column=Column(Float))
    response_s: float | None = Field(default=None, sa_column=Column(Float))
    on_site_s: float | None = Field(default=None, sa_column=Column(Float))
    sampling_s: float | None = Field(default=None, sa_column=Column(Float))
    on_site_to_done_s: float | None = Field(default=None, sa_column=Column(Float))
    total_s: float | None = Field(default=None, sa_column=Column(Float))
    accept_due: datetime | None = Field(default=None, sa_type=_tz())
    arrive_due: datetime | None = Field(default=None, sa_type=_tz())
    finish_due: datetime | None = Field(default=None, sa_type=_tz())
    accept_breached: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    arrive_breached: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    finish_breached: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))


class AlarmRow(SQLModel, table=True):
    """An alert episode dispatch was told about (its OPENED change), with its kind."""

    __tablename__ = "dispatch_alarms"
    __table_args__ = (Index("ix_alarms_raised", "raised_at", "county"),)

    alert_id: str = Field(primary_key=True)
    kind: str
    severity: str = ""
    county: str
    outlet_id: str = ""
    raised_at: datetime = Field(sa_type=_tz())


REPORT_TABLES = [
    SQLModel.metadata.tables[m.__tablename__]  # type: ignore[attr-defined]
    for m in (TaskFactRow, AlarmRow)
]
F = TaskFactRow.__table__.c  # type: ignore[attr-defined]
A = AlarmRow.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Alarm:
    alert_id: str
    kind: str
    severity: str
    county: str
    outlet_id: str
    raised_at: datetime


def utc(moment: datetime) -> datetime:
    """Every instant is bound and read in UTC: SQLite keeps no offset, so a +08:00 bound
    would be compared by its wall-clock digits."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return utc(moment) if moment is not None else None


def _row(r: Any) -> dict[str, Any]:
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()}


def fact_values(f: TaskFact) -> dict[str, Any]:
    values: dict[str, Any] = {
        "task_id": f.task_id,
        "county": f.county,
        "priority": f.priority,
        "route": f.route,
        "state": f.state,
        "is_open": f.is_open,
        "alert_kind": f.alert_kind,
        "enterprise_id": f.enterprise_id,
        "outlet_id": f.outlet_id,
        "case_id": f.case_id,
        "raised_at": utc(f.raised_at),
        "day": f.day,
        "week": f.week,
        "month": f.month,
        **f.durations,
    }
    for clock in CLOCKS:
        values[f"{clock.lower()}_due"] = _utc_or_none(f.clock_due.get(clock))
        values[f"{clock.lower()}_breached"] = f.clock_breached.get(clock, False)
    return values


def put_fact(conn: Connection, f: TaskFact) -> None:
    """Insert or replace the task's facts (portable: delete then insert, same transaction)."""
    table = TaskFactRow.__table__  # type: ignore[attr-defined]
    conn.execute(table.delete().where(table.c.task_id == f.task_id))
    conn.execute(table.insert().values(**fact_values(f)))


def put_alarm(conn: Connection, a: Alarm) -> None:
    table = AlarmRow.__table__  # type: ignore[attr-defined]
    if conn.execute(select(table.c.alert_id).where(table.c.alert_id == a.alert_id)).first():
        return  # an alarm is counted once, whatever redelivers it
    conn.execute(table.insert().values(**{**vars(a), "raised_at": utc(a.raised_at)}))


# ---- queries ----------------------------------------------------------------------------------


def within(column: Any, prefixes: Sequence[str]) -> ColumnElement[bool]:
    """County code starts with one of the jurisdiction's prefixes (none: nothing)."""
    codes = [p for p in prefixes if p]
    if not codes:
        return false()
    return or_(*[column.like(f"{p}%") for p in codes])


def breached_expr(clock: str, now: datetime) -> ColumnElement[bool]:
    """Reported breached, or running past its due time (the tick may not have run yet)."""
    lower = clock.lower()
    due = F[f"{lower}_due"]
    return or_(F[f"{lower}_breached"] == true(), and_(due.is_not(None), due < utc(now)))


def group_expr(by: str) -> Any:
    return {
        "county": F.county,
        "priority": F.priority,
        "route": F.route,
        "day": F.day,
        "week": F.week,
        "month": F.month,
    }.get(by, literal("all"))


@dataclass(frozen=True)
class Stats:
    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None


@dataclass
class GroupAggregate:
    group: str
    tasks: int = 0
    open_tasks: int = 0
    stages: dict[str, Stats] | None = None  # column -> stats
    breaches: dict[str, int] | None = None  # clock -> count


class ReportQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    # the common WHERE: raised in [since, until) within the prefixes
    @staticmethod
    def _where(prefixes: Sequence[str], since: datetime, until: datetime) -> list[Any]:
        return [F.raised_at >= utc(since), F.raised_at < utc(until), within(F.county, prefixes)]

    def groups(
        self,
        by: str,
        prefixes: Sequence[str],
        since: datetime,
        until: datetime,
        now: datetime,
        columns: Sequence[str] = tuple(STAGE_COLUMNS),
    ) -> list[GroupAggregate]:
        """Per group: tasks, open tasks, SLA breaches per clock, and per stage (`columns`, all
        by default) count/p50/p90/max."""
        where = self._where(prefixes, since, until)
        g = group_expr(by).label("g")
        counts = select(
            g,
            func.count().label("tasks"),
            func.sum(case((F.is_open == true(), 1), else_=0)).label("open"),
            *[func.sum(case((breached_expr(c, now), 1), else_=0)).label(f"b_{c}") for c in CLOCKS],
        ).where(*where)
        out: dict[str, GroupAggregate] = {}
        with self.engine.connect() as conn:
            if self.postgres:
                # one pass: counts and, per stage, percentile_disc over both fractions at once
                parts: list[Any] = []
                for column in columns:
                    x = F[column]
                    parts += [
                        func.count(x).label(f"{column}_n"),
                        func.percentile_disc(literal_column("ARRAY[0.5, 0.9]::float8[]"))
                        .within_group(x.asc())
                        .label(f"{column}_q"),
                        func.max(x).label(f"{column}_max"),
                    ]
                # codes and ISO dates group the same bytewise: "C" sorts them without a locale
                g = group_expr(by).collate("C").label("g") if by != "all" else g
                counts = counts.with_only_columns(g, *list(counts.selected_columns)[1:])
                query = counts.add_columns(*parts).group_by(g)
                for row in conn.execute(query):
                    agg = self._aggregate(row)
                    if agg is None:
                        continue
                    for column in columns:
                        n = int(getattr(row, f"{column}_n") or 0)
                        if n:
                            p50, p90 = getattr(row, f"{column}_q")
                            mx = float(getattr(row, f"{column}_max"))
                            agg.stages[column] = Stats(n, float(p50), float(p90), mx)  # type: ignore[index]
                    out[agg.group] = agg
                return [out[k] for k in sorted(out)]
            for row in conn.execute(counts.group_by(g)):
                agg = self._aggregate(row)
                if agg is not None:
                    out[agg.group] = agg
            for group, column, stats in self._percentiles(conn, by, where, columns):
                if group in out and out[group].stages is not None:
                    out[group].stages[column] = stats  # type: ignore[index]
        return [out[k] for k in sorted(out)]

    @staticmethod
    def _aggregate(row: Any) -> GroupAggregate | None:
        if not row.tasks:
            return None
        return GroupAggregate(
            str(row.g),
            tasks=int(row.tasks),
            open_tasks=int(row.open or 0),
            stages={},
            breaches={c: int(getattr(row, f"b_{c}") or 0) for c in CLOCKS},
        )

    def _percentiles(
        self, conn: Connection, by: str, where: list[Any], columns: Sequence[str]
    ) -> list[tuple[str, str, Stats]]:
        """SQLite: per stage, the rows ranked ceil(q n) in their group (window functions)."""
        found: list[tuple[str, str, Stats]] = []
        for column in columns:
            x = F[column]
            g = group_expr(by).label("g")
            ranked = (
                select(
                    g,
                    x.label("x"),
                    func.row_number().over(partition_by=g, order_by=x).label("rn"),
                    func.count().over(partition_by=g).label("n"),
                )
                .where(*where, x.is_not(None))
                .subquery()
            )
            r = ranked.c
            query = select(
                r.g,
                func.max(r.n).label("n"),
                func.min(case((r.rn == (r.n + 1) // 2, r.x))).label("p50"),
                func.min(case((r.rn == (9 * r.n + 9) // 10, r.x))).label("p90"),
                func.max(r.x).label("mx"),
            ).group_by(r.g)
            for row in conn.execute(query):
                found.append(
                    (str(row.g), column, Stats(int(row.n), float(row.p50), float(row.p90), row.mx))
                )
        return found

    def slowest_open(
        self, prefixes: Sequence[str], since: datetime, until: datetime, limit: int = 10
    ) -> list[dict[str, Any]]:
        query = (
            select(F.task_id, F.county, F.priority, F.route, F.state, F.raised_at)
            .where(*self._where(prefixes, since, until), F.is_open == true())
            .order_by(F.raised_at, F.task_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def open_by_state(self, prefixes: Sequence[str]) -> dict[str, int]:
        query = (
            select(F.state, func.count())
            .where(F.is_open == true(), within(F.county, prefixes))
            .group_by(F.state)
        )
        with self.engine.connect() as conn:
            return {str(s): int(n) for s, n in conn.execute(query)}

    def open_breached(self, prefixes: Sequence[str], now: datetime) -> dict[str, int]:
        """Open tasks whose clock is breached now, per clock."""
        query = select(
            *[func.sum(case((breached_expr(c, now), 1), else_=0)).label(c) for c in CLOCKS]
        ).where(F.is_open == true(), within(F.county, prefixes))
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
            return {c: int(getattr(row, c) or 0) for c in CLOCKS}

    def alarms_by_kind(
        self, prefixes: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, int]:
        query = (
            select(A.kind, func.count())
            .where(A.raised_at >= utc(since), A.raised_at < utc(until), within(A.county, prefixes))
            .group_by(A.kind)
        )
        with self.engine.connect() as conn:
            return {str(k): int(n) for k, n in conn.execute(query)}

    def tasks_in(
        self,
        prefixes: Sequence[str],
        since: datetime,
        until: datetime,
        limit: int = 200,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """One page of the tasks raised in the window, newest first, with their durations."""
        query = (
            select(TaskFactRow.__table__)  # type: ignore[attr-defined]
            .where(*self._where(prefixes, since, until))
            .order_by(F.raised_at.desc(), F.task_id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def open_tasks(self, prefixes: Sequence[str], limit: int = 2000) -> list[dict[str, Any]]:
        """Open tasks for the map: where and in which state."""
        query = (
            select(F.task_id, F.county, F.state, F.priority, F.outlet_id, F.raised_at)
            .where(F.is_open == true(), within(F.county, prefixes))
            .order_by(F.raised_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]
