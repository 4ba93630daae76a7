"""Waiting for the broker at start instead of exiting (issue 13, item 6).

A service that starts before Kafka (a cold cluster, a broker restart, a pod scheduled first)
waits with backoff, logs why on every try, and, when it has an HTTP health port, answers it
with 503 and the reason meanwhile, so its readiness probe says "not ready" rather than the
process dying and being restarted in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket

from liandong.kafka_ready import broker_answers
from liandong.settings import Settings
from liandong.topics import CATALOGUE

log = logging.getLogger(__name__)


class NotReadyEndpoint:
    """A minimal HTTP listener answering every request 503 with a JSON reason."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reason = "starting"
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")
            body = json.dumps({"status": "not-ready", "reason": self.reason}).encode()
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
            )
            writer.write(body)
            await writer.drain()
        writer.close()


def _missing(bootstrap: str, topics: tuple[str, ...]) -> str:
    """Why the broker is not usable yet, or "" when it answers and has every topic."""
    # A refused connection is answered at once; the admin client would back off for many
    # seconds inside its own bootstrap first.
    if not any(_accepts(address) for address in bootstrap.split(",")):
        return f"Kafka at {bootstrap} does not answer (connection refused)"
    if not broker_answers(bootstrap, 2.0):
        return f"Kafka at {bootstrap} does not answer"
    if not topics:
        return ""
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="liandong-ready")
        try:
            have = set(admin.list_topics())
        finally:
            admin.close()
    except Exception as err:  # the broker went away again between the two requests
        return f"Kafka at {bootstrap} does not answer ({err!r})"
    absent = sorted(set(topics) - have)
    return f"topics {', '.join(absent)} are not there (liandong topics ensure)" if absent else ""


def _accepts(address: str) -> bool:
    host, _, port = address.strip().rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


async def wait_for_broker(
    bootstrap: str,
    service: str,
    *,
    topics: tuple[str, ...] = (),
    health: tuple[str, int] | None = None,
    first_backoff: float = 0.5,
    max_backoff: float = 10.0,
) -> None:
    """Returns once the broker answers a metadata request and has ``topics``; never gives up."""
    endpoint = NotReadyEndpoint(*health) if health else None
    if endpoint is not None:
        endpoint.reason = f"waiting for Kafka at {bootstrap}"
        try:
            await endpoint.start()
        except OSError as err:  # the port is taken: wait without the endpoint
            log.warning("%s: cannot serve not-ready on %s (%s)", service, health, err)
            endpoint = None
    backoff = first_backoff
    tries = 0
    try:
        while why := await asyncio.to_thread(_missing, bootstrap, topics):
            tries += 1
            reason = f"{why} (try {tries}); next in {backoff:g} s"
            if endpoint is not None:
                endpoint.reason = reason
            log.warning("%s: %s", service, reason)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
    finally:
        if endpoint is not None:
            await endpoint.stop()
    if tries:
        log.info("%s: Kafka at %s ready after %d tries", service, bootstrap, tries)


def needed_topics(settings: Settings) -> tuple[str, ...]:
    """The catalogue's topics under this deployment's prefix (created by `topics ensure`)."""
    return tuple(settings.topic(spec.name) for spec in CATALOGUE)
