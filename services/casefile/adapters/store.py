"""Case persistence with sqlmodel (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"

    case_id: str = Field(primary_key=True)
    state: str
    task_id: str = Field(index=True, unique=True)
    enterprise_id: str = Field(index=True)
    outlet_id: str
    county: str = Field(index=True)
    alert_ids_json: str
    team_json: str
    summary: str
    discovered_at: datetime
    opened_at: datetime
    opened_by: str
    version: int = 1


class RequestRow(SQLModel, table=True):
    """Request ids already answered: a retried write returns the first result."""

    __tablename__ = "requests"

    request_id: str = Field(primary_key=True)
    method: str
    case_id: str


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the writer; NORMAL sync is durable in WAL mode.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    SQLModel.metadata.create_all(engine)


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def row_to_dict(row: CaseRow) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "state": row.state,
        "task_id": row.task_id,
        "enterprise_id": row.enterprise_id,
        "outlet_id": row.outlet_id,
        "county": row.county,
        "alert_ids": json.loads(row.alert_ids_json),
        "team": json.loads(row.team_json),
        "summary": row.summary,
        "discovered_at": utc(row.discovered_at),
        "opened_at": utc(row.opened_at),
        "version": row.version,
    }


class CaseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_case(self, request_id: str, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Opens a case once per request id and once per task; returns (case, created)."""
        with Session(self.engine) as session:
            seen = session.get(RequestRow, request_id)
            if seen is not None:
                row = session.get(CaseRow, seen.case_id)
                assert row is not None
                return row_to_dict(row), False
            existing = session.exec(
                select(CaseRow).where(CaseRow.task_id == fields["task_id"])
            ).first()
            if existing is not None:
                session.add(RequestRow(request_id=request_id, method="OpenCase", case_id=existing.case_id))
                session.commit()
                return row_to_dict(existing), False
            row = CaseRow(
                case_id=fields["case_id"],
                state="OPENED",
                task_id=fields["task_id"],
                enterprise_id=fields["enterprise_id"],
                outlet_id=fields["outlet_id"],
                county=fields["county"],
                alert_ids_json=json.dumps(fields["alert_ids"]),
                team_json=json.dumps(fields["team"], ensure_ascii=False),
                summary=fields["summary"],
                discovered_at=fields["discovered_at"],
                opened_at=fields["opened_at"],
                opened_by=fields["opened_by"],
            )
            session.add(row)
            session.add(RequestRow(request_id=request_id, method="OpenCase", case_id=row.case_id))
            session.commit()
            session.refresh(row)
            return row_to_dict(row), True

    def get(self, case_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            row = session.get(CaseRow, case_id)
            return row_to_dict(row) if row else None

    def list(
        self,
        *,
        state: str = "",
        county: str = "",
        enterprise_id: str = "",
        limit: int = 50,
        after: str = "",
    ) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            query = select(CaseRow)
            if state:
                query = query.where(CaseRow.state == state)
            if county:
                query = query.where(CaseRow.county.startswith(county))  # type: ignore[attr-defined]
            if enterprise_id:
                query = query.where(CaseRow.enterprise_id == enterprise_id)
            if after:
                query = query.where(CaseRow.case_id > after)
            query = query.order_by(CaseRow.case_id).limit(limit)  # type: ignore[arg-type]
            return [row_to_dict(r) for r in session.exec(query).all()]
