"""The HJ 212 TCP server that data loggers connect to.

A frame is acked (9014) only after Kafka has acknowledged its record, so an acked frame is never
lost; a frame that is not acked is re-sent by the logger (HJ 212 §6.2, Table 1).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from opentelemetry import metrics, trace

from gateway.adapters.kafka_out import RecordPublisher
from gateway.adapters.records import to_record
from gateway.domain.codec import FrameError, decode
from gateway.domain.crc import CrcVariant
from gateway.domain.framing import FrameReader
from gateway.domain.replies import data_ack_9014, notify_ack_9013, refusal

log = logging.getLogger(__name__)
tracer = trace.get_tracer("liandong.gateway")
meter = metrics.get_meter("liandong.gateway")
frames_counter = meter.create_counter("gateway.frames", description="frames by outcome")

REPLY_CNS = frozenset({"9011", "9012", "9013", "9014"})


@dataclass(frozen=True)
class KnownLogger:
    mn: str
    password: str
    outlet_id: str
    accepted_crcs: frozenset[CrcVariant] = frozenset()


@dataclass
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 9212
    lenient: bool = True
    max_frame: int = 4096
    station_tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        publisher: RecordPublisher,
        directory: Callable[[str], KnownLogger | None],
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.directory = directory
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.config.host, self.config.port)
        port = int(self._server.sockets[0].getsockname()[1])
        log.info("HJ 212 gateway listening on %s:%s", self.config.host, port)
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "unknown"
        frames = FrameReader(max_frame=self.config.max_frame)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for chunk in frames.feed(data):
                    if chunk.frame is None:
                        await self._reject(
                            str(chunk.reason), "bytes outside a frame", chunk.garbage or b"", peer
                        )
                        continue
                    reply = await self.on_frame(chunk.frame, peer)
                    if reply:
                        writer.write(reply)
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def on_frame(self, frame: bytes, peer: str) -> bytes | None:
        """Handles one complete frame; returns the reply to send, if any."""
        received_at = datetime.now(UTC)
        with tracer.start_as_current_span(
            "hj212 frame", kind=trace.SpanKind.SERVER, attributes={"net.peer": peer}
        ) as span:
            try:
                result = decode(frame, lenient=self.config.lenient, accepted_crcs=frozenset())
            except FrameError as err:
                await self._reject(str(err.code), err.detail, frame, peer)
                return None
            packet = result.packet
            span.set_attribute("hj212.mn", packet.mn)
            span.set_attribute("hj212.cn", packet.cn)
            known = self.directory(packet.mn)
            if known is None:
                await self._reject("UNKNOWN_MN", f"MN {packet.mn} is not registered", frame, peer, packet.mn)
                return refusal(packet, 4)
            if packet.pw != known.password:
                await self._reject("BAD_PASSWORD", f"wrong password for MN {packet.mn}", frame, peer, packet.mn)
                return refusal(packet, 3)
            if packet.cn in REPLY_CNS:
                frames_counter.add(1, {"outcome": "reply"})
                return None
            record = to_record(
                result,
                frame,
                peer=peer,
                received_at=received_at,
                station_tz=self.config.station_tz,
                outlet_id=known.outlet_id,
            )
            span.set_attribute("liandong.record_id", record.meta.event_id)
            try:
                await self.publisher.publish_record(record)
            except Exception:
                # Not acked: the logger re-sends it; nothing was lost.
                log.exception("Kafka did not acknowledge a record from %s; not acking", packet.mn)
                frames_counter.add(1, {"outcome": "kafka_unavailable"})
                span.set_status(trace.Status(trace.StatusCode.ERROR, "kafka unavailable"))
                return None
            frames_counter.add(1, {"outcome": "published", "cn": packet.cn})
            if packet.cn == "1013":
                return notify_ack_9013(packet)
            return data_ack_9014(packet) if packet.needs_ack else None

    async def _reject(
        self, reason: str, detail: str, raw: bytes, peer: str, mn: str = ""
    ) -> None:
        frames_counter.add(1, {"outcome": "rejected", "reason": reason})
        log.warning("rejected frame from %s: %s (%s)", peer, reason, detail)
        try:
            await self.publisher.publish_rejected(
                reason=reason, detail=detail, raw=raw, peer=peer,
                received_at=datetime.now(UTC), mn=mn,
            )
        except Exception:
            log.exception("could not dead-letter a rejected frame from %s", peer)


async def serve_forever(gateway: Gateway, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    await stop.wait()
    await gateway.stop()
