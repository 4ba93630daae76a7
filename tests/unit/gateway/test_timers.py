"""Shared timers for the per-frame limits (gateway.entrypoints.timers): each ack still has its
own deadline, giving up never cancels the ack, and only a read that waits the whole idle
timeout ends a connection."""

from __future__ import annotations

import asyncio

import pytest

from gateway.entrypoints.timers import AckDeadlines, IdleWatch


async def test_an_ack_in_time_wakes_its_waiter() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AckDeadlines()
    ack: asyncio.Future[object] = loop.create_future()
    waiter = deadlines.wait(ack, loop.time() + 5)
    loop.call_later(0.01, ack.set_result, "metadata")
    await waiter
    assert ack.result() == "metadata"


async def test_each_ack_times_out_at_its_own_deadline_and_is_not_cancelled() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AckDeadlines()
    now = loop.time()
    acks: list[asyncio.Future[object]] = [loop.create_future() for _ in range(3)]
    late = deadlines.wait(acks[0], now + 0.15)
    early = deadlines.wait(acks[1], now + 0.05)  # earlier than the one armed: re-armed
    answered = deadlines.wait(acks[2], now + 0.10)
    acks[2].set_result(None)
    with pytest.raises(TimeoutError):
        await early
    assert loop.time() - now < 0.14 and not late.done()
    await answered
    with pytest.raises(TimeoutError):
        await late
    assert loop.time() - now >= 0.15
    assert not any(a.cancelled() for a in acks)
    acks[0].set_result("landed late")  # the producer's retry still lands
    assert acks[0].result() == "landed late" and len(deadlines) == 0


async def test_a_cancelled_wait_leaves_the_ack_alone() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AckDeadlines()
    ack: asyncio.Future[object] = loop.create_future()
    task = asyncio.ensure_future(deadlines.wait(ack, loop.time() + 5))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not ack.done()
    ack.set_result(None)


async def test_settled_waits_do_not_pile_up() -> None:
    loop = asyncio.get_running_loop()
    deadlines = AckDeadlines()
    for _ in range(1000):
        ack: asyncio.Future[object] = loop.create_future()
        waiter = deadlines.wait(ack, loop.time() + 5)
        ack.set_result(None)
        await waiter
    assert len(deadlines._pending) <= 1


async def _reads(watch: IdleWatch, gaps: list[float]) -> str:
    """Reads that each wait ``gap`` seconds for bytes (a sleep stands for the read)."""
    for gap in gaps:
        watch.reading()
        try:
            await asyncio.sleep(gap)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not watch.expired or task is None or task.uncancel() > 0:
                raise
            return "idle"
        watch.done_reading()
        await asyncio.sleep(gap)  # processing between reads does not count as idle
    return "active"


async def test_only_a_read_waiting_the_whole_timeout_is_idle() -> None:
    async def run(gaps: list[float]) -> str:
        watch = IdleWatch(0.1)
        try:
            return await _reads(watch, gaps)
        finally:
            watch.close()

    # many reads, each well within the timeout, over several timeout periods: never idle
    assert await run([0.06] * 6) == "active"
    assert await run([0.02, 0.02, 0.3]) == "idle"


async def test_another_cancellation_is_not_taken_for_idle() -> None:
    async def run() -> str:
        watch = IdleWatch(10)
        try:
            return await _reads(watch, [5.0])
        finally:
            watch.close()

    task = asyncio.ensure_future(run())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
