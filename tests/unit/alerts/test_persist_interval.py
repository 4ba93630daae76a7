"""The checkpoint interval stretches with the cost of the last checkpoint (worker.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any
from unittest.mock import AsyncMock

import pytest

from alerts.entrypoints import worker as worker_module

from .test_backlog_gate import _Event
from .test_worker_agent import minute_records, worker, writes_held  # noqa: F401


def test_a_cheap_checkpoint_keeps_the_base_interval() -> None:
    assert worker_module.next_persist_interval(0.001) == worker_module.PERSIST_EVERY_S


def test_a_costly_checkpoint_stretches_the_interval_up_to_the_cap() -> None:
    assert worker_module.next_persist_interval(0.6) == pytest.approx(
        0.6 * worker_module.PERSIST_COST_FACTOR
    )
    assert worker_module.next_persist_interval(60.0) == worker_module.PERSIST_MAX_S


def test_zero_means_every_batch_whatever_the_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "PERSIST_EVERY_S", 0.0)
    assert worker_module.next_persist_interval(5.0) == 0.0


async def test_writes_slow_to_be_acked_stretch_the_next_interval(
    worker: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Encoding is quick; faust's producer buffer sending thousands of state writes is not
    (bench/e2e_stack.py, 3,000 loggers: 'producer buffer full' at every checkpoint). The time
    until the broker acked them counts."""
    monkeypatch.setattr(worker_module, "PERSIST_EVERY_S", 0.01)
    rt = worker.liandong_runtime
    writes = writes_held(rt)
    stream = AsyncMock()
    values = minute_records(range(4), 10.0)
    await rt.process(stream, [_Event(v, 0, offset) for offset, v in enumerate(values[:3])])
    await rt.checkpoint()
    assert rt.persist_interval == pytest.approx(0.01)  # encoding alone: cheap
    await asyncio.sleep(0.3)  # the broker acks the writes 0.3 s after the checkpoint began
    for fut in writes:
        fut.set_result(None)
    await rt.acks_settled()
    assert rt.last_write_s >= 0.3
    await rt.process(stream, [_Event(values[3], 0, 3)])
    await rt.checkpoint()
    assert rt.persist_interval >= 0.3 * worker_module.PERSIST_COST_FACTOR


async def test_the_tick_writes_only_the_outlets_it_alone_changed(
    worker: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An outlet with judged records pending is written by the checkpoint that acks them, not
    also by the tick (a second encode of every busy outlet per interval); an outlet only the
    tick changed is written by the tick."""
    monkeypatch.setattr(worker_module, "PERSIST_EVERY_S", 60.0)
    rt = worker.liandong_runtime
    rt.persist_interval, rt.last_checkpoint = 60.0, time.monotonic()
    rt.backlog.highwaters = _AllJudged(rt)
    rt.owned_partitions = lambda: {0}
    stream = AsyncMock()
    values = minute_records(range(40), 10.0)
    writes = rt.write_state

    # records judged, not yet checkpointed: the tick's hour closing is left to the checkpoint
    await rt.process(stream, [_Event(v, 0, offset) for offset, v in enumerate(values[:30])])
    await rt.tick()
    closed = {e.kind for e in worker.sent} & {"HOUR_INCOMPLETE", "HOUR_MISSING", "OFFLINE"}
    assert closed, "the tick changed the outlet (it closed its hours)"
    assert writes.call_count == 0
    assert rt.pj.dirty == {"OUT-G1"} and not rt.checkpoint_due()  # interval not yet over
    rt.last_checkpoint -= 61
    assert rt.checkpoint_due()
    await rt.checkpoint()
    assert writes.call_count == 1 and not rt.pj.dirty

    # nothing pending: what the tick changes (the late minutes re-opened the closed hour,
    # re-judged once quiet) it writes itself
    await rt.process(stream, [_Event(v, 0, 30 + i) for i, v in enumerate(values[30:])])
    await rt.checkpoint()
    assert writes.call_count == 2
    sent_before = len(worker.sent)
    for deadline in rt.pj.judge.states["OUT-G1"].reopened:
        rt.pj.judge.states["OUT-G1"].reopened[deadline] = 0.0  # quiet long enough
    await rt.tick()
    assert len(worker.sent) > sent_before, "the tick re-judged the re-opened hour"
    assert writes.call_count == 3 and not rt.pj.dirty


class _AllJudged:
    """The broker's high-water marks: exactly what the worker judged (it is caught up)."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt

    async def __call__(self, partitions: list[int]) -> dict[int, int]:
        return {p: self.rt.backlog.expected(p) or 0 for p in partitions}


async def test_the_tick_closes_hours_in_slices_and_lets_judging_in_between(
    worker: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of outlets silent at once have their hours closed by one tick: in slices of
    TICK_SLICE outlets, with the lock (and so the agent) free between them."""
    monkeypatch.setattr(worker_module, "TICK_SLICE", 2)
    rt = worker.liandong_runtime
    rt.backlog.highwaters = _AllJudged(rt)
    rt.owned_partitions = lambda: {0}
    stream = AsyncMock()
    await rt.process(stream, [_Event(v, 0, o) for o, v in enumerate(minute_records(range(5), 1))])
    states = rt.pj.judge.states
    for n in range(4):  # outlets whose duties the spy below only notes
        states[f"OUT-X{n}"] = states["OUT-G1"]
    order: list[Any] = []
    real_tick = rt.pj.tick
    others: list[asyncio.Task[None]] = []

    async def judging_meanwhile() -> None:
        async with rt.lock:
            order.append("judged a batch")

    def tick(now: Any, outlet_ids: Any = None) -> Any:
        assert rt.lock.locked()
        order.append(sorted(outlet_ids))
        if not others:
            others.append(asyncio.ensure_future(judging_meanwhile()))
        return real_tick(now, [o for o in outlet_ids if o == "OUT-G1"])

    rt.pj.tick = tick
    await rt.tick()
    await asyncio.gather(*others)
    assert order == [
        ["OUT-G1", "OUT-X0"],
        "judged a batch",
        ["OUT-X1", "OUT-X2"],
        ["OUT-X3"],
    ]
    assert {"HOUR_INCOMPLETE", "HOUR_MISSING"} & {e.kind for e in worker.sent}


def test_the_judge_ticks_only_the_outlets_named() -> None:
    from alerts.domain.judge import Judge

    from .scenario import T0, minute, registry

    judge = Judge(registry())
    judge.on_reading(minute("a21026", T0, 10.0), T0)
    judge.on_reading(minute("w01018", T0, 10.0, outlet="OUT-W1", mn="MN-WATER-0001"), T0)
    later = T0 + timedelta(hours=3)
    assert judge.on_tick(later, ["OUT-W1"])
    assert judge.states["OUT-G1"].closed_through < judge.states["OUT-W1"].closed_through
    assert {c.outlet_id for c in judge.on_tick(later)} == {"OUT-G1"}


async def test_a_tick_write_the_broker_refused_is_written_at_the_next_checkpoint(
    worker: Any,  # noqa: F811
) -> None:
    rt = worker.liandong_runtime
    rt.backlog.highwaters = _AllJudged(rt)
    rt.owned_partitions = lambda: {0}
    stream = AsyncMock()
    values = minute_records(range(30), 10.0)
    await rt.process(stream, [_Event(v, 0, offset) for offset, v in enumerate(values)])
    await rt.checkpoint()
    await rt.acks_settled()
    assert not rt.pj.dirty

    def refused(*args: Any, **kwargs: Any) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_exception(RuntimeError("NotEnoughReplicas"))
        return fut

    rt.write_state = AsyncMock(side_effect=refused)
    await rt.tick()  # closes the outlet's hours: the tick writes it, the broker refuses
    assert rt.write_state.call_count == 1
    for _ in range(5):
        await asyncio.sleep(0)
    assert rt.pj.dirty == {"OUT-G1"} and rt.checkpoint_due()
