"""The response-time report tests (tests/unit/dispatch/test_response_report_api.py: who may
read it, jurisdiction, query checks, a report worked out by hand) again, with the dispatch store
on PostgreSQL (session time zone Asia/Shanghai: times must come back in UTC)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import SQLModel

from dispatch.adapters.report_store import REPORT_TABLES
from dispatch.adapters.store import TABLES, make_engine
from tests.unit.dispatch.test_response_report_api import *  # noqa: F403 (the tests, collected here again)


@pytest.fixture
def report_db_url(pg_database: str) -> Iterator[str]:
    yield pg_database
    engine = make_engine(pg_database)
    SQLModel.metadata.drop_all(engine, tables=TABLES + REPORT_TABLES)
    engine.dispose()
