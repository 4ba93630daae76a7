"""Kafka producer for the gateway: acks=all and idempotent, so an acked frame is durable."""

from __future__ import annotations

from datetime import datetime

from aiokafka import AIOKafkaProducer

from liandong.events import new_meta, to_timestamp
from liandong.settings import Settings
from liandong.topics import MONITORING_RECORDS, MONITORING_REJECTED
from liandong.v1 import records_pb2


class RecordPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._records = settings.topic(MONITORING_RECORDS)
        self._rejected = settings.topic(MONITORING_REJECTED)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=15000,
            client_id="liandong-gateway",
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish_record(self, record: records_pb2.MonitoringRecord) -> None:
        """Returns only once the broker has acknowledged the record (acks=all)."""
        await self._producer.send_and_wait(
            self._records, value=record.SerializeToString(), key=record.mn.encode()
        )

    async def publish_rejected(
        self,
        *,
        reason: str,
        detail: str,
        raw: bytes,
        peer: str,
        received_at: datetime,
        mn: str = "",
    ) -> None:
        key = mn or peer
        message = records_pb2.RejectedFrame(
            meta=new_meta(key=key, event_time=received_at, producer="gateway"),
            reason=reason,
            detail=detail,
            raw=raw,
            peer=peer,
            mn=mn,
            received_at=to_timestamp(received_at),
        )
        await self._producer.send_and_wait(
            self._rejected, value=message.SerializeToString(), key=key.encode()
        )
