"""Alembic migrations of the casefile schema; `upgrade(engine)` runs them to head."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "casefile_alembic_version"  # own table: a shared database may hold others
# PostgreSQL advisory lock key of casefile's migrations (any constant unique to them)
MIGRATION_LOCK = 0x6C64_6366_6D69_6772  # "ldcfmigr"


def config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Replicas starting together on one PostgreSQL database migrate one at a time (a
    transaction-level advisory lock): the second finds the schema at head and does nothing,
    where two at once would both create the tables and one would crash."""
    cfg = config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
