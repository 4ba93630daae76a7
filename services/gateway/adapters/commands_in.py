"""Consumer of gateway.commands (and of gateway.command-results, to hear about other replicas).

Every gateway replica reads *all* partitions of both topics (assigned, no consumer group),
because a command keyed by MN must reach the replica that holds that logger's TCP session, and
Kafka cannot route by connection. A replica without the session holds the command until it
expires; a result published by another replica (it delivered the command) makes the others
drop it, so NOT_CONNECTED is only published when no replica delivered it before expiry (with a
deterministic event id, so several replicas saying so dedupe downstream).

The topics are the store of pending commands, not the replica's memory: on start a replica
re-reads both topics over a look-back window (``command_lookback``, default a day) up to
their current ends, and takes up every command no replica has reported on. So a command held
for a disconnected logger survives a restart of the replica holding it, one that arrived
while no replica ran is delivered or reported EXPIRED, and one already reported is not sent
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import trace

from gateway.domain.commands import CommandRequest
from liandong.events import from_timestamp
from liandong.settings import Settings
from liandong.telemetry import consumed_span
from liandong.topics import GATEWAY_COMMAND_RESULTS, GATEWAY_COMMANDS
from liandong.v1 import records_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("liandong.gateway")


def to_request(message: records_pb2.GatewayCommand, default_ttl: float) -> CommandRequest:
    if message.HasField("expires_at"):
        expires = from_timestamp(message.expires_at)
    else:
        expires = datetime.now(UTC) + timedelta(seconds=default_ttl)
    return CommandRequest(
        command_id=message.command_id or message.meta.event_id,
        mn=message.mn,
        cn=message.cn,
        params=dict(message.params),
        expires_at=expires,
    )


class CommandTaker(Protocol):
    """What the consumer hands commands to (the TCP server's command channel)."""

    async def submit(self, command: CommandRequest) -> None: ...

    def delivered_elsewhere(self, command_id: str) -> None: ...


class CommandConsumer:
    def __init__(
        self,
        settings: Settings,
        gateway: CommandTaker,
        replica: str,
        lookback_s: float = 86_400.0,
        *,
        command_ttl: float,
    ) -> None:
        self._gateway = gateway
        self._command_ttl = command_ttl
        self._replica = replica
        self._lookback_s = lookback_s
        self._bootstrap = settings.kafka_bootstrap
        self._commands = settings.topic(GATEWAY_COMMANDS)
        self._results = settings.topic(GATEWAY_COMMAND_RESULTS)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,  # positions come from the look-back, not from committed offsets
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        self._task: asyncio.Task[None] | None = None
        self.taken_up = 0  # commands the start-up catch-up submitted

    async def start(self) -> None:
        await self._consumer.start()
        try:
            backlog = await self._catch_up()
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._run(backlog))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([self._commands, self._results])
        finally:
            await admin.close()
        found: list[TopicPartition] = []
        for topic in described:
            if topic["error_code"] != 0 or not topic["partitions"]:
                raise RuntimeError(
                    f"topic {topic['topic']} is not there (error {topic['error_code']}): "
                    "run `liandong topics ensure`"
                )
            found += sorted(
                TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]
            )
        return found

    async def _catch_up(self) -> list[ConsumerRecord]:
        """Reads both topics from the look-back up to their ends as of now, submits every
        command without a result (in topic order) and returns what was read beyond the ends
        (it belongs to the live stream)."""
        partitions = await self._partitions()
        self._consumer.assign(partitions)
        since = int((time.time() - self._lookback_s) * 1000)
        starts = await self._consumer.offsets_for_times({tp: since for tp in partitions})
        ends = await self._consumer.end_offsets(partitions)
        for tp in partitions:
            found = starts.get(tp)
            self._consumer.seek(tp, found.offset if found is not None else ends[tp])
        commands: dict[str, records_pb2.GatewayCommand] = {}
        reported: set[str] = set()
        beyond: list[ConsumerRecord] = []
        behind = [tp for tp in partitions if await self._consumer.position(tp) < ends[tp]]
        while behind:
            batch = await self._consumer.getmany(*behind, timeout_ms=1000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= ends[tp]:
                        beyond.append(message)
                        continue
                    try:
                        if tp.topic == self._commands:
                            command = records_pb2.GatewayCommand.FromString(message.value)
                            commands.setdefault(
                                command.command_id or command.meta.event_id, command
                            )
                        else:
                            # any replica's result, this one's before a restart included
                            reported.add(
                                records_pb2.CommandResult.FromString(message.value).command_id
                            )
                    except Exception:
                        log.exception("bad message on %s at offset %s", tp.topic, message.offset)
            behind = [tp for tp in behind if await self._consumer.position(tp) < ends[tp]]
        for command_id, command in commands.items():
            if command_id in reported:
                continue
            self.taken_up += 1
            await self._gateway.submit(to_request(command, self._command_ttl))
        if self.taken_up:
            log.info(
                "took up %d unreported command(s) from the last %.0f s",
                self.taken_up,
                self._lookback_s,
            )
        return beyond

    async def _run(self, backlog: list[ConsumerRecord]) -> None:
        for message in backlog:
            await self._handle(message)
        async for message in self._consumer:
            await self._handle(message)

    async def _handle(self, message: ConsumerRecord) -> None:
        try:
            if message.topic == self._commands:
                command = records_pb2.GatewayCommand.FromString(message.value)
                with consumed_span(
                    tracer, message.topic, message.headers, {"hj212.mn": command.mn}
                ):
                    await self._gateway.submit(to_request(command, self._command_ttl))
            else:
                result = records_pb2.CommandResult.FromString(message.value)
                if result.meta.producer != f"gateway:{self._replica}":
                    self._gateway.delivered_elsewhere(result.command_id)
        except Exception:
            log.exception("bad message on %s at offset %s", message.topic, message.offset)
