"""Consumes alerts.events into the dispatch service.

At-least-once with idempotent effects: an alert event is marked processed in the same
transaction as the task it creates, the case is opened with a request id derived from the
task id, and dispatch events carry deterministic ids; offsets are committed only after a
batch was handled, so a crash anywhere replays safely and a replay creates no second task.
Each record is handled inside a consumer span parented on its Kafka headers, so the trace
runs from the alert through the dispatch steps into the casefile gRPC call.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from google.protobuf.message import DecodeError
from opentelemetry import metrics, trace
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from dispatch.entrypoints.dispatch_service import DispatchService
from liandong.settings import Settings
from liandong.telemetry import consumed_span
from liandong.topics import ALERTS_EVENTS
from liandong.v1 import alerts_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("liandong.dispatch")
skipped = metrics.get_meter("liandong.dispatch").create_counter(
    "dispatch.alert_events.skipped", description="alert events that could not be handled"
)


class AlertConsumer:
    def __init__(
        self,
        settings: Settings,
        service: DispatchService,
        group_id: str,
        group_instance_id: str | None = None,
    ) -> None:
        self.service = service
        self._stop = asyncio.Event()  # run's: no more holding a record once it is set
        self.retry_first_s = 0.5
        self.retry_max_s = 10.0
        self.consumer = AIOKafkaConsumer(
            settings.topic(ALERTS_EVENTS),
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=group_id,
            group_instance_id=group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=500)
            for _tp, records in batch.items():
                for record in records:
                    with consumed_span(
                        tracer,
                        record.topic,
                        record.headers,
                        {"messaging.kafka.offset": record.offset},
                    ):
                        await self.handle(record.value)
            if batch:
                try:
                    await self.consumer.commit()
                except CommitFailedError:
                    # The group rebalanced while the batch was handled (the other replica
                    # died or came back): the partitions may be another member's now, which
                    # re-reads them from the last commit. Handling is idempotent (processed
                    # events, deterministic ids), so nothing is lost or doubled; the next
                    # getmany rejoins. Raising here used to stop the process (make chaos).
                    log.warning("offset commit refused by a rebalance; the batch is re-read")

    async def handle(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            alert = alerts_pb2.AlertEvent.FromString(value)
        except DecodeError:
            # a bad record never stops the stream
            log.exception("undecodable alert event skipped")
            skipped.add(1, {"reason": "undecodable"})
            return
        delay = self.retry_first_s
        while True:
            try:
                result = await self.service.on_alert_event(alert)
                break
            except (DataError, IntegrityError):
                # the database refuses this record's content (it would refuse it on every
                # redelivery): skip it rather than stop the stream.
                log.exception("alert event %s could not be stored; skipped", alert.meta.event_id)
                skipped.add(1, {"reason": "refused by the database"})
                return
            except OperationalError as err:
                # The database is unreachable (restarting, failing over): hold this record
                # and try it again until it answers. Its offset is not committed meanwhile,
                # so it is not lost if the process stops; stopping the process instead
                # needed a restart from outside (make chaos: PostgreSQL restarted).
                if self._stop.is_set():
                    raise
                log.warning(
                    "database unreachable, alert event %s held; again in %.1f s: %s",
                    alert.meta.event_id,
                    delay,
                    str(err).splitlines()[0],
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        if result is not None:
            created = [e.key for e in result.changes.events if e.kind == "TASK_CREATED"]
            if created:
                log.info("alert %s opened task %s", alert.alert_id, ", ".join(created))
