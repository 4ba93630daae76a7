"""The faust agent under `agent.test_context()`: no broker; the output topic's send and the
table's changelog are replaced by mocks that record what would be produced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

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
    # A changelog write's future resolves with the broker's ack: here at once.
    rt.write_state = AsyncMock(side_effect=lambda *a, **kw: _resolved())
    app.sent = sent
    yield app


def events_judged(rt: Any) -> list[Any]:
    """The events the agent hands to the runtime, as they come (their messages carry the
    acked flag)."""
    judged: list[Any] = []
    process = rt.process

    async def judging(stream: Any, events: list[Any]) -> None:
        judged.extend(events)
        await process(stream, events)

    rt.process = judging
    return judged


def writes_held(rt: Any) -> list[asyncio.Future[None]]:
    """Changelog writes whose broker ack the test gives (sets the futures) when it wants."""
    writes: list[asyncio.Future[None]] = []

    def pending(*args: Any, **kwargs: Any) -> asyncio.Future[None]:
        writes.append(asyncio.get_running_loop().create_future())
        return writes[-1]

    rt.write_state = AsyncMock(side_effect=pending)
    return writes


def _resolved() -> asyncio.Future[None]:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


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
    assert {call.args[0] for call in rt.write_state.call_args_list} == {1}


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


async def test_records_are_acked_only_after_the_broker_acks_the_state_they_changed(
    worker: Any,
) -> None:
    # faust's commit flushes its producer buffer for at most 0.1 s; a record acked before its
    # state's changelog write is acked could be committed past a state never written.
    rt = worker.liandong_runtime
    writes = writes_held(rt)
    judged = events_judged(rt)
    agent = worker.agents["alerts.entrypoints.worker.judge"]
    async with agent.test_context() as test_agent:
        value = minute_records(range(1), 80.0)[0]
        put = asyncio.ensure_future(test_agent.put(value, key=MN.encode(), partition=0))
        for _ in range(50):
            await asyncio.sleep(0.01)
            if writes:
                break
        assert len(writes) == 1, "the checkpoint wrote the outlet's state"
        await asyncio.sleep(0.2)
        assert len(judged) == 1
        assert not judged[0].message.acked, "acked before the broker acked the state"
        writes[0].set_result(None)
        await asyncio.wait_for(put, 5)
        await rt.acks_settled()
        assert judged[0].message.acked


@pytest.mark.parametrize("refused", ["by the broker", "before it was queued"])
async def test_a_failed_state_write_leaves_its_records_unacked_and_is_written_again(
    worker: Any, refused: str
) -> None:
    writes: list[asyncio.Future[None]] = []

    def first_fails(*args: Any, **kwargs: Any) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if writes:
            fut.set_result(None)
        elif refused == "by the broker":
            fut.set_exception(RuntimeError("NotLeaderForPartition"))
        else:
            writes.append(fut)
            raise RuntimeError("ProducerClosed")  # the producer's send itself raised
        writes.append(fut)
        return fut

    rt = worker.liandong_runtime
    rt.write_state = AsyncMock(side_effect=first_fails)
    judged = events_judged(rt)
    agent = worker.agents["alerts.entrypoints.worker.judge"]
    async with agent.test_context() as test_agent:
        await test_agent.put(minute_records(range(1), 80.0)[0], key=MN.encode(), partition=0)
        await rt.acks_settled()
        assert len(writes) == 1 and not judged[0].message.acked
        assert len(rt.unacked) == 1 and "OUT-G1" in rt.pj.dirty
        await rt.checkpoint()  # the next one (the idle timer's) writes the state again
        await rt.acks_settled()
        assert judged[0].message.acked and len(writes) == 2 and writes[1].result() is None
    assert [c.args[1] for c in rt.write_state.call_args_list] == ["OUT-G1", "OUT-G1"]
