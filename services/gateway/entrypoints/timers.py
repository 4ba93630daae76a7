"""The gateway's two per-frame time limits with shared timers: the broker-ack deadline of each
record (``AckDeadlines``) and the idle timeout of each connection's reads (``IdleWatch``).

Why: ``asyncio.timeout`` around every read and ``asyncio.timeout_at`` + ``asyncio.shield``
around every ack made, per frame, two ``Timeout`` objects, two ``TimerHandle``s pushed on (and
cancelled in) the loop's heap, a shield's outer future and its callbacks: ~8 % of the
gateway's CPU per frame in ``bench/gateway_load.py``. Here a frame costs one future, one
callback and one deque append; a timer fires about once per deadline period, not per frame.
The limits themselves are unchanged (tests/unit/gateway/test_timers.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque


class AckDeadlines:
    """Waits for broker acknowledgements, each until its own deadline, with one timer armed
    for the earliest pending deadline."""

    def __init__(self) -> None:
        self._pending: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def wait(self, ack: asyncio.Future[object], deadline: float) -> asyncio.Future[None]:
        """A future that is done (None) once ``ack`` is done, or fails with ``TimeoutError`` at
        ``deadline`` (loop time) if ``ack`` is not done by then. ``ack`` is never cancelled,
        also not when the returned future is (the producer keeps its own retries, as under
        ``asyncio.shield``); read the outcome from ``ack`` itself."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        ack.add_done_callback(functools.partial(_wake, waiter))
        pending = self._pending
        while pending and pending[0][1].done():  # settled ones leave from the front
            pending.popleft()
        pending.append((deadline, waiter))
        timer = self._timer
        if timer is None or deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._expire)
        return waiter

    def _expire(self) -> None:
        now = asyncio.get_running_loop().time()
        kept: deque[tuple[float, asyncio.Future[None]]] = deque()
        for deadline, waiter in self._pending:
            if waiter.done():
                continue
            if deadline <= now:
                waiter.set_exception(TimeoutError())
            else:
                kept.append((deadline, waiter))
        self._pending = kept
        self._timer = (
            asyncio.get_running_loop().call_at(min(d for d, _ in kept), self._expire)
            if kept
            else None
        )

    def __len__(self) -> int:
        """Waits not yet known to be settled (settled ones are dropped lazily)."""
        return sum(1 for _, waiter in self._pending if not waiter.done())


def _wake(waiter: asyncio.Future[None], _ack: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class IdleWatch:
    """The idle timeout of one connection: a read that waits ``timeout`` seconds for bytes has
    its task cancelled, as ``asyncio.timeout`` around the read did; ``expired`` tells that
    cancellation from any other. One timer per idle period, re-armed when it fires."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("IdleWatch needs to run in a task")
        self._task = task
        self._since: float | None = None
        self.expired = False
        self._timer = self._loop.call_later(timeout, self._check)

    def reading(self) -> None:
        """A read starts: it may wait at most ``timeout`` seconds."""
        self._since = self._loop.time()

    def done_reading(self) -> None:
        self._since = None

    def _check(self) -> None:
        since = self._since
        due = (self._loop.time() if since is None else since) + self._timeout
        if since is not None and self._loop.time() >= due:
            self.expired = True
            self._task.cancel()
            return
        self._timer = self._loop.call_at(due, self._check)

    def close(self) -> None:
        self._timer.cancel()
