"""Dispatch integration fixtures: the service's database on SQLite and on PostgreSQL.

PostgreSQL gets one fresh database per test module (created through an autocommit connection,
session time zone Asia/Shanghai, dropped after the module); between tests the dispatch tables
are dropped, so every test starts from an empty schema as it does on a new SQLite file."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from dispatch.adapters.store import TABLES, make_engine
from dispatch.domain.policy import DispatchPolicy
from tests.unit.dispatch.harness import Harness, build


def _admin_dsn(url: str) -> str:
    base = make_url(url)
    return base.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="module")
def pg_database(pg_url: str) -> Iterator[str]:
    name = f"dispatch_{uuid.uuid4().hex[:12]}"
    dsn = _admin_dsn(pg_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # a server in China likely runs on local time: stored times must not depend on it
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Shanghai'")
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dispatch.db'}"
        return
    url: str = request.getfixturevalue("pg_database")
    yield url
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine, tables=TABLES)
    engine.dispose()


@pytest.fixture
def harness(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """`harness(policy=None)` builds a dispatch service on this test's database."""
    built: list[Harness] = []

    def make(policy: DispatchPolicy | None = None) -> Harness:
        h = build(tmp_path, policy, db_url=db_url)
        built.append(h)
        return h

    yield make
    for h in built:
        h.close()
