"""The alert consumer's handling of records it cannot use (no broker: `handle` is called
directly with a record's value)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy.exc import DataError, OperationalError

from dispatch.entrypoints.alert_consumer import AlertConsumer
from liandong.settings import Settings
from liandong.v1 import alerts_pb2
from tests.unit.dispatch.harness import alert_event


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


async def test_an_unreachable_database_stops_the_consumer_so_nothing_is_committed() -> None:
    service = StubService(refuse={"A1"}, error=OperationalError)
    consumer = AlertConsumer(Settings(), service, "g")  # type: ignore[arg-type]
    with pytest.raises(OperationalError):
        await consumer.handle(alert_event("A1").SerializeToString())
