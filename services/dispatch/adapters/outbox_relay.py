"""Relays the outbox to Kafka: only what the broker did not acknowledge is sent again, after a
growing pause, and a relay under way is never waited for by another caller.

Why: re-sending a whole batch whenever any of it failed wrote every acknowledged event again on
each call; with one partition of `dispatch.events` unavailable that was hundreds of thousands
of copies, and the alert consumer, which flushes after each alert, stalled behind it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from dispatch.adapters.store import DispatchStore, OutgoingEvent
from dispatch.domain.casefile_calls import Backoff

log = logging.getLogger(__name__)


class EventSink(Protocol):
    async def send(self, events: Sequence[OutgoingEvent]) -> set[str]:
        """Sends the events; returns the ids of those the broker acknowledged."""
        ...


class OutboxRelay:
    def __init__(
        self,
        store: DispatchStore,
        sink: EventSink,
        clock: Callable[[], datetime],
        backoff: Backoff | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.clock = clock
        self.backoff = backoff or Backoff(cap=timedelta(seconds=30))
        self.failures = 0
        self.retry_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def flush(self) -> int:
        """Publishes unpublished rows in order; returns how many were acknowledged."""
        if self._lock.locked():
            return 0  # the relay under way picks up new rows before it ends
        if self.retry_at is not None and self.clock() < self.retry_at:
            return 0
        sent = 0
        async with self._lock:
            while True:
                rows = await asyncio.to_thread(self.store.unpublished)
                if not rows:
                    self._succeeded()
                    return sent
                try:
                    acked = await self.sink.send([e for _, e in rows])
                except Exception as err:
                    acked = set()
                    log.warning("publishing %d dispatch events failed: %r", len(rows), err)
                done = [i for i, e in rows if e.event_id in acked]
                if done:
                    await asyncio.to_thread(self.store.mark_published, done)
                    sent += len(done)
                if len(done) < len(rows):
                    self._failed(len(rows) - len(done))
                    return sent

    def _succeeded(self) -> None:
        self.failures, self.retry_at = 0, None

    def _failed(self, unacked: int) -> None:
        self.failures += 1
        delay = self.backoff.delay(self.failures)
        self.retry_at = self.clock() + delay
        log.warning(
            "%d dispatch events not acknowledged; next try in %.0f s",
            unacked,
            delay.total_seconds(),
        )
