"""Alembic environment: runs on the connection handed over by `migrations.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from casefile.adapters import tables
from casefile.migrations import VERSION_TABLE

target_metadata = tables.SQLModel.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _migrate(conn)
        return
    _migrate(connection)


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
