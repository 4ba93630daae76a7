"""Consumer of gateway.commands (and of gateway.command-results, to hear about other replicas).

Every gateway replica consumes *all* partitions of both topics with a consumer group of its
own (``liandong-gateway-<replica>``), because a command keyed by MN must reach the replica
that holds that logger's TCP session, and Kafka cannot route by connection. A replica without
the session holds the command until it expires; a result published by another replica (it
delivered the command) makes the others drop it, so NOT_CONNECTED is only published when no
replica delivered it before expiry (with a deterministic event id, so several replicas saying
so dedupe downstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer
from opentelemetry import trace

from gateway.entrypoints.tcp_server import CommandRequest, Gateway
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


class CommandConsumer:
    def __init__(self, settings: Settings, gateway: Gateway, replica: str) -> None:
        self._gateway = gateway
        self._replica = replica
        self._commands = settings.topic(GATEWAY_COMMANDS)
        self._results = settings.topic(GATEWAY_COMMAND_RESULTS)
        self._consumer = AIOKafkaConsumer(
            self._commands,
            self._results,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"{settings.topic_prefix}liandong-gateway-{replica}",
            auto_offset_reset="latest",
            enable_auto_commit=True,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _run(self) -> None:
        async for message in self._consumer:
            try:
                if message.topic == self._commands:
                    command = records_pb2.GatewayCommand.FromString(message.value)
                    with consumed_span(
                        tracer, message.topic, message.headers, {"hj212.mn": command.mn}
                    ):
                        await self._gateway.submit(
                            to_request(command, self._gateway.config.command_ttl)
                        )
                else:
                    result = records_pb2.CommandResult.FromString(message.value)
                    if result.meta.producer != f"gateway:{self._replica}":
                        self._gateway.delivered_elsewhere(result.command_id)
            except Exception:
                log.exception("bad message on %s at offset %s", message.topic, message.offset)
