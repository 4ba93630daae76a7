"""The faust agent under `agent.test_context()`: no broker; the output topic's send and the
table's changelog are replaced by mocks that record what would be produced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest

from alerts.entrypoints.judging import PartitionedJudge, decode_state
from alerts.entrypoints.worker import create_app
from liandong.settings import Settings
from liandong.v1 import alerts_pb2

from .hj212 import MN, nox_minutes, record
from .scenario import T0, registry
from .test_worker_state import LIMITS


@pytest.fixture()
async def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    monkeypatch.setattr("alerts.entrypoints.worker.BATCH_WITHIN_S", 0.001)
    # put() waits for the ack, which comes after the checkpoint: checkpoint every batch here.
    monkeypatch.setattr("alerts.entrypoints.worker.PERSIST_EVERY_S", 0.0)
    settings = Settings(
        kafka_bootstrap="127.0.0.1:1", topic_prefix="unit.", alerts_data_dir=str(tmp_path)
    )
    app = create_app(settings)
    app.loop = asyncio.get_running_loop()
    app.finalize()
    app.conf.store = "memory://"
    app.flow_control.resume()
    rt = app.liandong_runtime
    rt.pj = PartitionedJudge.create(registry(limits=LIMITS))
    rt.ready.set()
    sent: list[alerts_pb2.AlertEvent] = []

    async def send(*, key: bytes, value: bytes, headers: Any = None) -> asyncio.Future[None]:
        sent.append(alerts_pb2.AlertEvent.FromString(value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    rt.out.send = AsyncMock(side_effect=send)
    rt.table.send_changelog = Mock()
    app.sent = sent
    yield app


def minute_records(minutes: range, nox: float) -> list[bytes]:
    return [
        record(f, T0 + timedelta(minutes=m + 1)).SerializeToString()
        for m, f in zip(minutes, nox_minutes(T0, minutes, nox), strict=True)
    ]


async def test_agent_opens_an_exceedance_and_persists_state_per_partition(worker: Any) -> None:
    agent = worker.agents["alerts.entrypoints.worker.judge"]
    async with agent.test_context() as test_agent:
        for value in minute_records(range(66), 80.0):
            await test_agent.put(value, key=MN.encode(), partition=1)
    opened = [e for e in worker.sent if e.kind == "EXCEEDANCE"]
    assert [e.change for e in opened] == [alerts_pb2.ALERT_CHANGE_OPENED]
    assert opened[0].outlet_id == "OUT-G1" and opened[0].severity == "HIGH"
    rt = worker.liandong_runtime
    partition, doc = decode_state(rt.table.data["OUT-G1"])
    assert partition == 1 and doc["outlet_id"] == "OUT-G1"
    # Every changelog write went to the partition the outlet's records came from.
    assert {call.args[0] for call in rt.table.send_changelog.call_args_list} == {1}


async def test_agent_skips_a_bad_record_and_keeps_judging(worker: Any) -> None:
    agent = worker.agents["alerts.entrypoints.worker.judge"]
    values = minute_records(range(66), 80.0)
    async with agent.test_context() as test_agent:
        await test_agent.put(b"\x00not a record", key=b"x", partition=0)
        for value in values:
            await test_agent.put(value, key=MN.encode(), partition=0)
    assert worker.liandong_runtime.pj.counters["bad_records"] == 1
    assert any(e.kind == "EXCEEDANCE" for e in worker.sent)


async def test_replayed_records_publish_nothing_new(worker: Any) -> None:
    agent = worker.agents["alerts.entrypoints.worker.judge"]
    values = minute_records(range(66), 80.0)
    async with agent.test_context() as test_agent:
        for value in values:
            await test_agent.put(value, key=MN.encode(), partition=0)
        first = len(worker.sent)
        for value in values[40:]:  # re-delivered after a rebalance (at-least-once)
            await test_agent.put(value, key=MN.encode(), partition=0)
    assert first > 0 and len(worker.sent) == first
