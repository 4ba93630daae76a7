"""Wires the gateway from the environment: registry view, Kafka publisher, TCP server, commands.

Gateway-only settings come from ``LIANDONG_GATEWAY_*`` variables (see docs/gateway.md); the
shared ones (broker, topic prefix, host, port) from ``liandong.settings``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from gateway.adapters.commands_in import CommandConsumer
from gateway.adapters.kafka_out import RecordPublisher
from gateway.entrypoints.sessions import GatewayConfig, KnownLogger
from gateway.entrypoints.tcp_server import Gateway, serve_forever
from liandong.broker_wait import needed_topics, wait_for_broker
from liandong.heap import settle_heap
from liandong.hj212.crc import CrcVariant
from liandong.registry.topics_io import RegistryView
from liandong.settings import Settings
from liandong.telemetry import setup_telemetry

log = logging.getLogger(__name__)


def _crcs(raw: Any) -> frozenset[CrcVariant]:
    names = [raw] if isinstance(raw, str) else list(raw or [])
    out = set()
    for name in names:
        try:
            out.add(CrcVariant(str(name)))
        except ValueError:
            log.warning("unknown accept_crc %r in the registry (want modbus-msb, modbus-lsb)", name)
    return frozenset(out)


class LoggerDirectory:
    """Known data loggers by MN, kept current from the registry's outlets topic.

    Reads the per-outlet extras ``accept_crc`` (list of ``modbus-msb``/``modbus-lsb``) and
    ``max_rate`` (frames per second) when the registry sets them.
    """

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
            rate = doc.get("max_rate")
            self._by_mn[mn] = KnownLogger(
                mn=mn,
                password=str(doc["password"]),
                outlet_id=entity_id,
                accepted_crcs=_crcs(doc.get("accept_crc")),
                max_rate=float(rate) if rate else None,
            )
            self._mn_of[entity_id] = mn

    def __call__(self, mn: str) -> KnownLogger | None:
        return self._by_mn.get(mn)

    def __len__(self) -> int:
        return len(self._by_mn)


def config_from_env(settings: Settings) -> GatewayConfig:
    env = os.environ.get
    defaults = GatewayConfig()

    def num(name: str, default: float) -> float:
        return float(env(f"LIANDONG_GATEWAY_{name}", str(default)))

    return GatewayConfig(
        host=settings.gateway_host,
        port=settings.gateway_port,
        lenient=env("LIANDONG_GATEWAY_STRICT", "0") != "1",
        max_frame=int(num("MAX_FRAME", defaults.max_frame)),
        max_connections=int(num("MAX_CONNECTIONS", defaults.max_connections)),
        max_per_mn=int(num("MAX_PER_MN", defaults.max_per_mn)),
        idle_timeout=num("IDLE_TIMEOUT", defaults.idle_timeout),
        write_timeout=num("WRITE_TIMEOUT", defaults.write_timeout),
        rate=num("RATE", defaults.rate),
        burst=num("BURST", defaults.burst),
        garbage_limit=int(num("GARBAGE_LIMIT", defaults.garbage_limit)),
        max_auth_failures=int(num("MAX_AUTH_FAILURES", defaults.max_auth_failures)),
        reassembly_timeout=num("REASSEMBLY_TIMEOUT", defaults.reassembly_timeout),
        command_ttl=num("COMMAND_TTL", defaults.command_ttl),
        command_lookback=num("COMMAND_LOOKBACK", defaults.command_lookback),
        kafka_timeout=num("KAFKA_TIMEOUT", defaults.kafka_timeout),
        reuse_port=env("LIANDONG_GATEWAY_REUSE_PORT", "0") == "1",
        send_buffer=int(env("LIANDONG_GATEWAY_SEND_BUFFER", "0")) or None,
        replica=env("LIANDONG_GATEWAY_REPLICA", socket.gethostname()),
    )


@dataclass
class Running:
    gateway: Gateway
    view: RegistryView
    publisher: RecordPublisher
    commands: CommandConsumer

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.commands.stop()
        await self.publisher.stop()
        await self.view.stop()


async def build(settings: Settings, config: GatewayConfig | None = None) -> Running:
    """Starts everything but the TCP listener (``gateway.start()``)."""
    config = config or config_from_env(settings)
    directory = LoggerDirectory()
    view = RegistryView(settings, on_change=directory.on_change)
    await view.start(follow=True)
    publisher = RecordPublisher(settings, request_timeout_ms=int(config.kafka_timeout * 1000))
    await publisher.start()
    gateway = Gateway(config, publisher, directory)
    commands = CommandConsumer(
        settings, gateway, config.replica, config.command_lookback, command_ttl=config.command_ttl
    )
    await commands.start()
    log.info("gateway replica %s: %d loggers known", config.replica, len(directory))
    return Running(gateway, view, publisher, commands)


async def main(settings: Settings) -> None:
    # Not listening for loggers until Kafka answers: the TCP readiness probe says not ready.
    await wait_for_broker(settings.kafka_bootstrap, "gateway", topics=needed_topics(settings))
    running = await build(settings)
    settle_heap()
    try:
        await serve_forever(running.gateway)
    finally:
        await running.stop()


def run(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gateway %(levelname)s %(message)s")
    telemetry = setup_telemetry("gateway")
    try:
        asyncio.run(main(settings))
    finally:
        telemetry.shutdown()
