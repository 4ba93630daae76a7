"""Publishes the outbox to `dispatch.events`, keyed by task id (by alert id for decisions
that made no task), waiting for the broker's acknowledgement (acks=all)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from dispatch.adapters.store import OutgoingEvent


class KafkaSink:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def send(self, events: Sequence[OutgoingEvent]) -> None:
        futures = [
            await self.producer.send(self.topic, value=e.payload, key=e.key.encode())
            for e in events
        ]
        await asyncio.gather(*futures)
