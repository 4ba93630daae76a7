"""The outbox relay: publishes committed case events to casefile.events, then marks them sent.

Events are written in the same transaction as the change (store.EventRow), so an uncommitted
change is never published and a committed one always is. The producer is idempotent with
acks=all; the stored bytes carry a deterministic event id, so a crash between publishing and
marking re-publishes the same event (a duplicate consumers drop by id), never a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from casefile.adapters.store import CaseStore

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, store: CaseStore, bootstrap: str, topic: str, batch: int = 500) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.topic = topic
        self.batch = batch
        self.wake = asyncio.Event()
        self.published = 0
        self.producer: AIOKafkaProducer | None = None  # while run() has one

    async def _producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all", linger_ms=5
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """Publishes every unpublished row in commit order; returns how many."""
        sent = 0
        while True:
            rows = await asyncio.to_thread(self.store.unpublished, self.batch)
            if not rows:
                return sent
            futures = [
                await producer.send(
                    self.topic,
                    value=data,
                    key=case_id.encode(),
                    # the change's request trace (traceparent), like every other topic's
                    headers=[(k, v.encode()) for k, v in trace.items()] or None,
                )
                for _, case_id, data, trace in rows
            ]
            await asyncio.gather(*futures)
            ids = [i for i, _, _, _ in rows]
            await asyncio.to_thread(self.store.mark_published, ids, datetime.now(UTC))
            sent += len(rows)
            self.published += len(rows)

    async def run(self, stop: asyncio.Event, poll_s: float = 1.0) -> None:
        producer: AIOKafkaProducer | None = None
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    if producer is None:
                        producer = self.producer = await self._producer()
                    await self.publish_pending(producer)
                    backoff = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception(
                        "outbox relay to %s failed; retrying in %.1fs", self.topic, backoff
                    )
                    if producer is not None:
                        await producer.stop()
                        producer = self.producer = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=poll_s)
        finally:  # also when cancelled at shutdown: close the producer's connections
            self.producer = None
            if producer is not None:
                await asyncio.shield(producer.stop())
