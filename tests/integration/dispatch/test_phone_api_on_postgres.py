"""The phone API tests (tests/unit/dispatch/test_phone_api.py: tokens, 403s, answers,
geofence, SSE resume) again, with the dispatch store on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import SQLModel

from dispatch.adapters.store import TABLES, make_engine
from tests.unit.dispatch.test_phone_api import *  # noqa: F403 (the tests, collected here again)


@pytest.fixture
def phone_db_url(pg_database: str) -> Iterator[str]:
    yield pg_database
    engine = make_engine(pg_database)
    SQLModel.metadata.drop_all(engine, tables=TABLES)
    engine.dispose()
