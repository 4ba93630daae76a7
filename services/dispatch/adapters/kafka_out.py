"""Publishes the outbox to `dispatch.events`, keyed by task id (by alert id for decisions
that made no task), waiting for the broker's acknowledgement (acks=all)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dispatch.adapters.store import OutgoingEvent
from liandong.renewing_producer import RenewingProducer


class KafkaSink:
    def __init__(self, producer: RenewingProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(self, events: Sequence[OutgoingEvent]) -> set[str]:
        """The ids of the events the broker acknowledged (the others fail alone)."""
        pending: list[tuple[str, asyncio.Future[object]]] = []
        for e in events:
            try:
                ack = await self.producer.send_instrumented(
                    self.topic, value=e.payload, key=e.key.encode()
                )
            except Exception:
                break  # not even queued: the rest waits for the next try, in order
            pending.append((e.event_id, ack))
        outcomes = await asyncio.gather(*(a for _, a in pending), return_exceptions=True)
        return {
            event_id
            for (event_id, _), outcome in zip(pending, outcomes, strict=True)
            if not isinstance(outcome, BaseException)
        }
