"""Wires the gateway from the environment: registry view, Kafka publisher, TCP server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from liandong.registry.topics_io import RegistryView
from liandong.settings import Settings
from liandong.telemetry import setup_telemetry

from gateway.adapters.kafka_out import RecordPublisher
from gateway.entrypoints.tcp_server import Gateway, GatewayConfig, KnownLogger, serve_forever


class LoggerDirectory:
    """Known data loggers by MN, kept current from the registry's outlets topic."""

    def __init__(self) -> None:
        self._by_mn: dict[str, KnownLogger] = {}
        self._mn_of: dict[str, str] = {}

    def on_change(self, kind: str, entity_id: str, doc: dict[str, Any] | None) -> None:
        if kind != "outlet":
            return
        old = self._mn_of.pop(entity_id, None)
        if old is not None:
            self._by_mn.pop(old, None)
        if doc is not None:
            mn = str(doc["mn"])
            self._by_mn[mn] = KnownLogger(mn=mn, password=str(doc["password"]), outlet_id=entity_id)
            self._mn_of[entity_id] = mn

    def __call__(self, mn: str) -> KnownLogger | None:
        return self._by_mn.get(mn)


async def build(settings: Settings) -> tuple[Gateway, RegistryView, RecordPublisher]:
    directory = LoggerDirectory()
    view = RegistryView(settings, on_change=directory.on_change)
    await view.start(follow=True)
    publisher = RecordPublisher(settings)
    await publisher.start()
    config = GatewayConfig(host=settings.gateway_host, port=settings.gateway_port)
    return Gateway(config, publisher, directory), view, publisher


async def main(settings: Settings) -> None:
    gateway, view, publisher = await build(settings)
    try:
        await serve_forever(gateway)
    finally:
        await publisher.stop()
        await view.stop()


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(levelname)s %(message)s")
    telemetry = setup_telemetry("gateway")
    try:
        asyncio.run(main(settings))
    finally:
        telemetry.shutdown()
