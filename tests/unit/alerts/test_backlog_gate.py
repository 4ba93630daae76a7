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


async def test_gate_is_closed_while_behind_or_unreachable() -> None:
    ends = Ends()
    gate = BacklogGate(ends, committed=lambda p: {0: 100}.get(p), max_lag=10)
    ends.ends = {0: 5000}
    assert not await gate.caught_up([0])  # nothing judged yet: from the committed offset
    for offset in range(100, 4995):
        gate.judged(0, offset)
    assert await gate.caught_up([0])  # 5 records left: live
    ends.unreachable = True
    assert not await gate.caught_up([0])
    ends.unreachable = False
    ends.ends = {0: 9000}
    assert not await gate.caught_up([0])
    assert gate.last_lag == {0: 4005}


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
