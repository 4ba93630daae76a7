"""A gateway running in-process on a free port against the real broker, on isolated topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer

from gateway.bootstrap import Running, build
from gateway.entrypoints.sessions import GatewayConfig
from gateway.simulator.station import SimLogger, loggers_from_registry, write_synthetic_registry
from liandong.registry.document import RegistryDocument
from liandong.registry.topics_io import publish
from liandong.settings import Settings
from liandong.v1 import records_pb2


async def load_registry(settings: Settings, path: Path) -> list[SimLogger]:
    raw = path.read_bytes()
    await publish(settings, RegistryDocument.model_validate(yaml.safe_load(raw)), raw)
    return loggers_from_registry(path)


async def start_gateway(settings: Settings, **overrides: object) -> Running:
    options: dict[str, object] = {"port": 0, "replica": "test", "sweep_interval": 0.2}
    config = GatewayConfig(**{**options, **overrides})  # type: ignore[arg-type]
    running = await build(settings, config)
    await running.gateway.start()
    return running


async def read_topic(settings: Settings, topic: str, want: int, timeout: float = 20.0) -> list:
    """Reads ``topic`` from the beginning until ``want`` messages or the timeout."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        isolation_level="read_committed",
    )
    await consumer.start()
    out: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < want and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                out.extend(messages)
    finally:
        await consumer.stop()
    return out


def records(messages: list) -> list[records_pb2.MonitoringRecord]:
    return [records_pb2.MonitoringRecord.FromString(m.value) for m in messages]


def rejected(messages: list) -> list[records_pb2.RejectedFrame]:
    return [records_pb2.RejectedFrame.FromString(m.value) for m in messages]


@pytest.fixture()
async def fleet(isolated_settings: Settings, tmp_path: Path) -> list[SimLogger]:
    path = write_synthetic_registry(tmp_path / "registry.yaml", 4)
    return await load_registry(isolated_settings, path)


@pytest.fixture()
async def gateway(isolated_settings: Settings, fleet: list[SimLogger]) -> AsyncIterator[Running]:
    running = await start_gateway(isolated_settings)
    yield running
    await running.stop()
