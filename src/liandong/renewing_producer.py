"""An idempotent Kafka producer that replaces itself after a failed batch.

Why: aiokafka (0.14) gives a batch its sequence number when it leaves the accumulator
(``MessageAccumulator._pop_batch``). A batch that expires there while its partition has no
leader (the broker is restarting) is failed *after* taking its number, so it never reaches the
broker and leaves a gap in the producer's sequence. Every later batch is then answered
OutOfOrderSequenceNumber, forever: the producer never resets its id. The Java client bumps the
epoch in that case; aiokafka has no such path, so the way out is a new producer (a new producer
id, sequences from 0). Records of the old producer that were not acknowledged stay unacked, so
the sender (a logger, the outbox) sends them again; nothing is acked that Kafka has not.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)

Ack = asyncio.Future  # resolves to the RecordMetadata once the broker has the record


class RenewingProducer:
    """``send`` like AIOKafkaProducer's; a failed acknowledgement starts a renewal (once at a
    time), and sends go to the new producer as soon as it has connected."""

    def __init__(self, *, retry_backoff: float = 0.5, **options: Any) -> None:
        self._options = options
        self._backoff = retry_backoff
        self._producer = self._new()
        self._renewal: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._instrumented = True
        self.renewals = 0

    def _new(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(**self._options)

    async def start(self, *, instrumented: bool = True) -> None:
        """``instrumented=False`` bypasses the OpenTelemetry wrapper around ``send`` (a span
        per message costs several times the send itself)."""
        self._instrumented = instrumented
        await self._producer.start()

    async def stop(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        for task in list(self._retiring):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        await self._producer.stop()

    def _send_of(self, producer: AIOKafkaProducer) -> Callable[..., Awaitable[Ack]]:
        if self._instrumented:
            return producer.send
        send = type(producer).send
        return functools.partial(getattr(send, "__wrapped__", send), producer)

    async def send(self, topic: str, **kwargs: Any) -> Ack:
        producer = self._producer
        ack: Ack = await self._send_of(producer)(topic, **kwargs)
        ack.add_done_callback(functools.partial(self._on_outcome, producer))
        return ack

    async def send_instrumented(self, topic: str, **kwargs: Any) -> Ack:
        producer = self._producer
        ack: Ack = await producer.send(topic, **kwargs)
        ack.add_done_callback(functools.partial(self._on_outcome, producer))
        return ack

    async def send_and_wait(self, topic: str, **kwargs: Any) -> object:
        return await (await self.send_instrumented(topic, **kwargs))

    def _on_outcome(self, producer: AIOKafkaProducer, ack: Ack) -> None:
        if ack.cancelled() or ack.exception() is None:
            return
        if producer is not self._producer or self._renewal is not None:
            return  # an old producer's failure, or a renewal already under way
        log.warning("Kafka failed a batch (%r): replacing the producer", ack.exception())
        self._renewal = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        try:
            backoff = self._backoff
            while True:
                fresh = self._new()
                try:
                    await fresh.start()
                    break
                except Exception as err:  # broker still away: keep the old one, try again
                    log.warning("new producer could not connect (%r); retrying", err)
                    with contextlib.suppress(Exception):
                        await fresh.stop()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
            old, self._producer = self._producer, fresh
            self.renewals += 1
            log.warning("producer replaced (renewal %d)", self.renewals)
            retire = asyncio.get_running_loop().create_task(self._retire(old))
            self._retiring.add(retire)
            retire.add_done_callback(self._retiring.discard)
        finally:
            self._renewal = None

    @staticmethod
    async def _retire(old: AIOKafkaProducer) -> None:
        # Its unacked batches are not waited for: their senders already count them as unacked.
        with contextlib.suppress(Exception, TimeoutError):
            async with asyncio.timeout(5):
                await old.stop()
