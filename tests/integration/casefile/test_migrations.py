"""Alembic migrations produce exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from casefile import migrations
from casefile.adapters.store import SQLModel, make_engine


def test_upgrade_matches_models_and_downgrade_removes_them(db_url: str) -> None:
    engine = make_engine(db_url)
    migrations.upgrade(engine)
    migrations.upgrade(engine)  # idempotent at head
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_revision() == "0002"
    migrations.downgrade(engine, "base")
    tables = set(inspect(engine).get_table_names())
    assert tables == {migrations.VERSION_TABLE}
    engine.dispose()
