"""The alert consumer's handling of records it cannot use (no broker: `handle` is called
directly with a record's value)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError

from dispatch.entrypoints.alert_consumer import AlertConsumer
from liandong.settings import Settings
from liandong.v1 import alerts_pb2
from tests.unit.dispatch.harness import alert_event, build


@dataclass
class StubService:
    refuse: set[str]
    error: type[Exception] = DataError
    handled: list[str] = field(default_factory=list)

    async def on_alert_event(self, alert: alerts_pb2.AlertEvent) -> None:
        if alert.alert_id in self.refuse:
            raise self.error("INSERT ...", {}, Exception("refused"))
        self.handled.append(alert.alert_id)


async def test_a_record_the_database_refuses_is_skipped_and_the_next_handled() -> None:
    service = StubService(refuse={"A1"})
    consumer = AlertConsumer(Settings(), service, "g")  # type: ignore[arg-type]
    await consumer.handle(alert_event("A1").SerializeToString())
    await consumer.handle(b"\xff\xff not protobuf")
    await consumer.handle(alert_event("A2").SerializeToString())
    assert service.handled == ["A2"]


async def test_an_unreachable_database_holds_the_record_until_it_answers() -> None:
    # It stopped the consumer (and the process) before: make chaos restarted PostgreSQL
    # while an alert arrived, and both dispatch replicas exited.
    service = StubService(refuse={"A1"}, error=OperationalError)
    consumer = AlertConsumer(Settings(), service, "g")  # type: ignore[arg-type]
    consumer.retry_first_s = 0.01
    handling = asyncio.ensure_future(consumer.handle(alert_event("A1").SerializeToString()))
    await asyncio.sleep(0.1)
    assert not handling.done()  # held, retried, not skipped
    service.refuse.clear()  # the database is back
    await asyncio.wait_for(handling, 5)
    assert service.handled == ["A1"]


async def test_a_held_record_is_given_up_when_the_consumer_stops() -> None:
    service = StubService(refuse={"A1"}, error=OperationalError)
    consumer = AlertConsumer(Settings(), service, "g")  # type: ignore[arg-type]
    consumer.retry_first_s = 0.01
    consumer._stop.set()
    with pytest.raises(OperationalError):  # not committed: read again by the next run
        await consumer.handle(alert_event("A1").SerializeToString())


def _down() -> OperationalError:
    return OperationalError("SELECT ...", {}, Exception("connection refused"))


async def test_a_commit_lost_with_the_database_leaves_no_task_unmade(tmp_path: Path) -> None:
    """The real service on its SQLite store, the database "down" for one commit and the
    reload after it: the alert's step was decided in memory but not stored. Decided again
    from memory, the alert counted as seen and no task was ever stored."""
    h = build(tmp_path)
    down = {"commit": 1, "load": 1}
    commit, load = h.store.commit, h.store.load

    def failing(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if down[name] > 0:
                down[name] -= 1
                raise _down()
            return real(*args, **kwargs)

        return call

    h.store.commit = failing("commit", commit)  # type: ignore[method-assign]
    h.store.load = failing("load", load)  # type: ignore[method-assign]
    consumer = AlertConsumer(Settings(), h.service, "g")
    consumer.retry_first_s = 0.01
    await asyncio.wait_for(consumer.handle(alert_event("A1").SerializeToString()), 10)
    assert down == {"commit": 0, "load": 0}
    stored, _ = h.store.load()
    assert len(stored.tasks) == 1
    assert "TASK_CREATED" in h.sink.kinds()
    h.close()
