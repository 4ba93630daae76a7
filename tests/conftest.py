"""Shared fixtures. Integration tests need the real broker (`make kafka-up`, or `make test`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from liandong.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # Browser tests run last: Playwright's sync API keeps an event loop running on the main
    # thread for the rest of the session, after which pytest-asyncio cannot start its own.
    items.sort(key=lambda item: "/browser/" in str(item.fspath))


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from liandong.kafka_ready import broker_answers

    bootstrap = os.environ.get("LIANDONG_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    if not broker_answers(bootstrap, timeout_s=5):
        pytest.fail(f"no Kafka broker answers at {bootstrap}: run `make kafka-up` (make test does)")
    return bootstrap


@pytest.fixture()
def isolated_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings on topics of their own (unique prefix), created before and deleted after."""
    from liandong.stack import delete_prefixed_topics
    from liandong.topics import ensure_topics

    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        casefile_db=f"sqlite:///{tmp_path / 'casefile.db'}",
        dispatch_db=f"sqlite:///{tmp_path / 'dispatch.db'}",
        alerts_data_dir=str(tmp_path / "alerts"),
    )
    ensure_topics(settings)
    yield settings
    delete_prefixed_topics(settings)


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("LIANDONG_TEST_PG_URL", "")
    if not url:
        pytest.fail(
            "LIANDONG_TEST_PG_URL is not set: run `make pg-up` and "
            "export LIANDONG_TEST_PG_URL=$(deploy/postgres/postgres.sh url)"
        )
    return url
