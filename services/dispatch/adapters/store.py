"""Dispatch persistence with sqlmodel (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select


class TaskRow(SQLModel, table=True):
    __tablename__ = "tasks"

    task_id: str = Field(primary_key=True)
    first_alert_id: str = Field(index=True, unique=True)
    status: str
    priority: str
    outlet_id: str
    enterprise_id: str
    county: str = Field(index=True)
    team_json: str
    case_id: str = ""
    alert_time: datetime
    created_at: datetime


class ProcessedEvent(SQLModel, table=True):
    """Consumed event ids: a redelivered alert event has no second effect."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True)
    processed_at: datetime


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


class DispatchStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        SQLModel.metadata.create_all(engine)

    def seen(self, event_id: str) -> bool:
        with Session(self.engine) as session:
            return session.get(ProcessedEvent, event_id) is not None

    def task_for_alert(self, alert_id: str) -> TaskRow | None:
        with Session(self.engine) as session:
            return session.exec(select(TaskRow).where(TaskRow.first_alert_id == alert_id)).first()

    def record(self, event_id: str, at: datetime, task: TaskRow | None) -> None:
        """Marks an event processed and stores its task, in one transaction."""
        with Session(self.engine) as session:
            if task is not None and session.get(TaskRow, task.task_id) is None:
                session.add(task)
            if session.get(ProcessedEvent, event_id) is None:
                session.add(ProcessedEvent(event_id=event_id, processed_at=at))
            session.commit()

    def tasks(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            rows = session.exec(select(TaskRow)).all()
            return [r.model_dump() | {"team": json.loads(r.team_json)} for r in rows]
