"""Kafka producer for the gateway: acks=all and idempotent, so an acked frame is durable.

``enqueue_*`` hand a message to the producer and return the broker-acknowledgement future, so
the server can pipeline several frames of one read and still answer each only once its own
record is acknowledged; ``publish_*`` wait for that acknowledgement themselves.

A record's trace context is given by the server (its frame's ``traceparent``, see
``liandong.telemetry.span_headers``); the partitioner is aiokafka's default with each key's hash
remembered (``KeyHashCache``), so a logger's records keep their partition and order.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiokafka.partitioner import DefaultPartitioner, murmur2

from liandong.events import deterministic_id, new_meta, to_timestamp
from liandong.hj212.redaction import redact_password
from liandong.renewing_producer import RenewingProducer
from liandong.settings import Settings
from liandong.telemetry import trace_headers
from liandong.topics import GATEWAY_COMMAND_RESULTS, MONITORING_RECORDS, MONITORING_REJECTED
from liandong.v1 import records_pb2

Ack = asyncio.Future  # resolves to the RecordMetadata once the broker has the record


class KeyHashCache:
    """aiokafka's ``DefaultPartitioner`` (murmur2 of the key, as the Java client) with the hash
    of each key remembered: records are keyed by MN, a few thousand keys per gateway, and the
    pure-Python murmur2 was ~2 % of the gateway's CPU per frame. Same partition for the same
    key and partition list as the default, so per-logger ordering and placement are unchanged
    (tests/unit/gateway/test_kafka_out.py)."""

    LIMIT = 50_000
    """Keys remembered; past it the cache starts afresh (bounded memory, ~10 MB)."""

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self.LIMIT:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class RecordPublisher:
    def __init__(self, settings: Settings, *, request_timeout_ms: int = 15000) -> None:
        self._settings = settings
        self._records = settings.topic(MONITORING_RECORDS)
        self._rejected = settings.topic(MONITORING_REJECTED)
        self._results = settings.topic(GATEWAY_COMMAND_RESULTS)
        # Renewed after a failed batch: aiokafka's idempotent producer otherwise answers
        # OutOfOrderSequenceNumber for good after a broker restart (see renewing_producer).
        self._producer = RenewingProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=request_timeout_ms,
            max_batch_size=256 * 1024,
            client_id="liandong-gateway",
            partitioner=KeyHashCache(),
        )

    @property
    def renewals(self) -> int:
        return self._producer.renewals

    async def start(self) -> None:
        # The aiokafka OpenTelemetry instrumentation wraps send() in a PRODUCER span per message,
        # which costs several times the send itself (profiled at thousands of frames/s). A
        # record instead carries the context of its own `hj212 frame` span in the traceparent
        # header, so consumers still join the frame's trace; rejects and results keep the
        # instrumented send.
        await self._producer.start(instrumented=False)

    async def stop(self) -> None:
        await self._producer.stop()

    async def enqueue_record(
        self,
        record: records_pb2.MonitoringRecord,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Ack:
        """``headers``: the record's trace context (``liandong.telemetry.span_headers`` of its
        frame's span); by default the current context's."""
        ack: Ack = await self._producer.send(
            self._records,
            value=record.SerializeToString(),
            key=record.mn.encode(),
            headers=trace_headers() if headers is None else headers,
        )
        return ack

    async def publish_record(self, record: records_pb2.MonitoringRecord) -> None:
        """Returns only once the broker has acknowledged the record (acks=all)."""
        await (await self.enqueue_record(record))

    async def enqueue_rejected(
        self,
        *,
        reason: str,
        detail: str,
        raw: bytes,
        peer: str,
        received_at: datetime,
        mn: str = "",
    ) -> Ack:
        key = mn or peer
        message = records_pb2.RejectedFrame(
            meta=new_meta(key=key, event_time=received_at, producer="gateway"),
            reason=reason,
            detail=detail,
            raw=redact_password(raw),  # a refused frame's password (even a wrong one) too
            peer=peer,
            mn=mn,
            received_at=to_timestamp(received_at),
        )
        return await self._producer.send_instrumented(
            self._rejected, value=message.SerializeToString(), key=key.encode()
        )

    async def publish_rejected(self, **kwargs: object) -> None:
        await (await self.enqueue_rejected(**kwargs))  # type: ignore[arg-type]

    async def publish_command_result(
        self,
        *,
        command_id: str,
        mn: str,
        cn: str,
        state: str,
        at: datetime,
        qn_rtn: int = 0,
        exe_rtn: int = 0,
        detail: str = "",
        replica: str = "",
    ) -> None:
        # Deterministic per (command, state): replicas that both decide NOT_CONNECTED publish
        # the same event id, which consumers dedupe.
        event_id = deterministic_id("command-result", command_id, state)
        message = records_pb2.CommandResult(
            meta=new_meta(key=mn, event_time=at, producer=f"gateway:{replica}", event_id=event_id),
            command_id=command_id,
            mn=mn,
            cn=cn,
            state=state,
            qn_rtn=qn_rtn,
            exe_rtn=exe_rtn,
            detail=detail,
        )
        await self._producer.send_and_wait(
            self._results, value=message.SerializeToString(), key=mn.encode()
        )
