"""Creating dispatch's tables when a replica starts.

Several replicas may start at once on one PostgreSQL database (a rollout, `make chaos`).
`create_all` checks for a table and then creates it, so two processes can both find it
missing and the second CREATE fails on the catalogue's unique index (seen: one replica exited
at start). On PostgreSQL the creation runs in one transaction holding an advisory lock: DDL is
transactional there, so the second replica waits, then finds the tables. SQLite has one
process per file.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

SCHEMA_LOCK = 0x6C64_6470_7363_686D  # "ldpdschm": any constant unique to dispatch's schema


def create_tables(engine: Engine, tables: list[Any]) -> None:
    if engine.dialect.name != "postgresql":
        SQLModel.metadata.create_all(engine, tables=tables)
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        SQLModel.metadata.create_all(conn, tables=tables)
