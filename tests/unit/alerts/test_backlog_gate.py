"""Hours close only when the worker has judged its partitions up to their ends and the broker
answered (issue 13, item 4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.entrypoints.backlog import BacklogGate
from alerts.entrypoints.worker import AlertsRuntime

from .test_worker_agent import minute_records, worker  # noqa: F401  (fixture)

HOUR_KINDS = {"HOUR_INCOMPLETE", "HOUR_MISSING"}


class Ends:
    """The broker's answer to a high-water-mark request, set by the test."""

    def __init__(self) -> None:
        self.ends: dict[int, int] = {}
        self.unreachable = False

    async def __call__(self, partitions: list[int]) -> Mapping[int, int]:
        if self.unreachable:
            raise ConnectionError("broker unreachable")
        return {p: self.ends[p] for p in partitions if p in self.ends}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_gate_opens_once_the_ends_read_recently_are_judged() -> None:
    ends, clock = Ends(), Clock()
    gate = BacklogGate(ends, committed=lambda p: {0: 100}.get(p), max_behind_s=30, clock=clock)
    ends.ends = {0: 5000}
    assert not await gate.caught_up([0])  # nothing judged yet: from the committed offset
    for offset in range(100, 4995):
        gate.judged(0, offset)
    assert not await gate.caught_up([0])  # 5 records of the end read now are unjudged
    assert gate.last_lag == {0: 5}
    # a live stream: the end moves on, the worker passes the end it read a tick ago
    for offset in range(4995, 5003):
        gate.judged(0, offset)
    clock.now += 5
    ends.ends = {0: 5010}
    assert await gate.caught_up([0])
    ends.unreachable = True
    assert not await gate.caught_up([0])
    ends.unreachable = False
    # a backlog: ends read within max_behind_s are all ahead of the worker
    clock.now += 31
    ends.ends = {0: 9000}
    assert not await gate.caught_up([0])
    assert gate.last_lag == {0: 3997}


async def test_a_partition_with_a_small_backlog_holds_the_others_hours() -> None:
    """Partition 1 has 1,896 unjudged records, fewer than any "live" count of old: its outlets'
    hours must not close on the wall clock until they are judged."""
    ends, clock = Ends(), Clock()
    gate = BacklogGate(ends, committed=lambda p: 660, max_behind_s=30, clock=clock)
    ends.ends = {0: 5400, 1: 660 + 1896, 2: 5000}
    assert not await gate.caught_up([0, 1, 2])
    for p, end in ends.ends.items():
        if p != 1:
            for offset in range(660, end):
                gate.judged(p, offset)
    clock.now += 5
    assert not await gate.caught_up([0, 1, 2])
    for offset in range(660, 660 + 1896):
        gate.judged(1, offset)
    clock.now += 5
    assert await gate.caught_up([0, 1, 2])


async def test_a_partition_taken_over_needs_an_end_read_since() -> None:
    ends, clock = Ends(), Clock()
    gate = BacklogGate(ends, committed=lambda p: 0, max_behind_s=30, clock=clock)
    ends.ends = {0: 0, 1: 50}
    assert await gate.caught_up([0])
    clock.now += 5
    assert not await gate.caught_up([0, 1])  # partition 1's end (50) read now, none judged
    for offset in range(50):
        gate.judged(1, offset)
    assert await gate.caught_up([0, 1])


async def test_a_worker_behind_its_partition_closes_no_hour(worker: Any) -> None:  # noqa: F811
    rt: AlertsRuntime = worker.liandong_runtime
    ends = Ends()
    rt.backlog.highwaters = ends
    rt.owned_partitions = lambda: {0}  # type: ignore[method-assign]
    agent = worker.agents["alerts.entrypoints.worker.judge"]
    async with agent.test_context() as test_agent:
        # 39 minutes of an hour judged; the other 21 wait on the topic
        for value in minute_records(range(39), 10.0):
            await test_agent.put(value, key=b"x", partition=0)
    judged = max(rt.backlog._next.values())
    ends.ends = {0: judged + 5000}
    await rt.tick()
    assert not HOUR_KINDS & {e.kind for e in worker.sent}
    ends.unreachable = True
    await rt.tick()
    assert not HOUR_KINDS & {e.kind for e in worker.sent}
    # caught up (nothing more on the topic): the hour closes as incomplete
    ends.unreachable, ends.ends = False, {0: judged}
    await rt.tick()
    assert HOUR_KINDS & {e.kind for e in worker.sent}


async def test_records_lost_before_the_agent_hold_the_hours_until_read_again() -> None:
    """faust lost the first fetch after the assignment (100-149); later records were judged.
    Hours close once the hole is read again, not when the last record is judged."""
    ends, clock = Ends(), Clock()
    gate = BacklogGate(ends, committed=lambda p: 100, max_behind_s=30, clock=clock)
    ends.ends = {0: 200}
    for offset in range(150, 200):
        gate.judged(0, offset)
    assert not await gate.caught_up([0])
    assert gate.last_lag == {0: 100}
    gate.reading_from(0, 100)
    for offset in [*range(100, 200)]:  # the hole, then the rest again (duplicates)
        gate.judged(0, offset)
    clock.now += 5
    assert await gate.caught_up([0])


async def test_reading_from_the_log_start_after_retention() -> None:
    ends, clock = Ends(), Clock()
    gate = BacklogGate(ends, committed=lambda p: 100, max_behind_s=30, clock=clock)
    ends.ends = {0: 400}
    for offset in range(300, 400):  # 100-299 removed by retention
        gate.judged(0, offset)
    assert not await gate.caught_up([0])
    gate.reading_from(0, 300)
    for offset in range(300, 400):
        gate.judged(0, offset)
    clock.now += 5
    assert await gate.caught_up([0])


async def test_a_hole_never_read_again_is_given_up_on(monkeypatch: Any) -> None:
    """Hours and offline alarms are not held for ever by records that never come."""
    import alerts.entrypoints.backlog as backlog

    monkeypatch.setattr(backlog, "HOLE_GIVE_UP_S", 300.0)
    ends, clock = Ends(), Clock()
    gate = BacklogGate(ends, committed=lambda p: 100, max_behind_s=30, clock=clock)
    ends.ends = {0: 200}
    for offset in range(150, 200):
        gate.judged(0, offset)
    clock.now += 299
    assert not await gate.caught_up([0])
    clock.now += 2
    assert await gate.caught_up([0])  # given up: the records after the hole are judged
