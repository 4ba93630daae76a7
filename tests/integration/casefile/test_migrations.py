"""Alembic migrations produce exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from casefile import migrations
from casefile.adapters import tables
from casefile.adapters.store import make_engine
from casefile.adapters.tables import SQLModel


def casefile_metadata() -> MetaData:
    """Casefile's tables only: SQLModel's registry is shared with other services' models
    (dispatch) once they are imported in the same process, as in one pytest run."""
    names = {
        cls.__tablename__
        for cls in vars(tables).values()
        if isinstance(cls, type)
        and issubclass(cls, SQLModel)
        and cls.__module__ == tables.__name__
        and hasattr(cls, "__table__")
    }
    assert "audit_entries" in names and "case_files" in names
    metadata = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        if table.name in names:
            table.to_metadata(metadata)
    return metadata


def test_upgrade_matches_models_and_downgrade_removes_them(db_url: str) -> None:
    engine = make_engine(db_url)
    migrations.upgrade(engine)
    migrations.upgrade(engine)  # idempotent at head
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        assert compare_metadata(context, casefile_metadata()) == []
        assert context.get_current_revision() == "0003"
    migrations.downgrade(engine, "base")
    tables = set(inspect(engine).get_table_names())
    assert tables == {migrations.VERSION_TABLE}
    engine.dispose()
