"""Who may connect and under what limits (``KnownLogger``, ``GatewayConfig``), one logger
connection (``Session``), and a ``Reply``: what a frame's handling sends once its record has
settled."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from gateway.domain.throttle import TokenBucket
from liandong.hj212.crc import CrcVariant
from liandong.hj212.framing import FrameReader


@dataclass(frozen=True)
class KnownLogger:
    mn: str
    password: str
    outlet_id: str
    accepted_crcs: frozenset[CrcVariant] = frozenset()
    max_rate: float | None = None
    """Frames per second allowed for this logger (registry ``max_rate``); None: the default."""


@dataclass
class GatewayConfig:
    host: str = "127.0.0.1"
    port: int = 9212
    lenient: bool = True
    max_frame: int = 4096
    station_tz: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    max_connections: int = 10_000
    max_per_mn: int = 1
    idle_timeout: float = 600.0
    write_timeout: float = 10.0
    rate: float = 50.0
    """Frames per second per connection (a logger sends a few per minute; back-fill bursts)."""
    burst: float = 200.0
    garbage_limit: int = 64 * 1024
    max_auth_failures: int = 3
    reassembly_timeout: float = 30.0
    """HJ 212 Table 1 retries 3 times 10 s: a split upload not complete by then is published
    with what arrived."""
    command_ttl: float = 300.0
    """Expiry of a command that carries none."""
    command_lookback: float = 86_400.0
    """Seconds of gateway.commands a starting replica re-reads to take up commands no replica
    has reported on (held for a logger when the replica holding them stopped); a command
    should expire within it."""
    read_size: int = 16 * 1024
    reuse_port: bool = False
    """Listen with SO_REUSEPORT, so several gateway processes (one per core, each its own
    ``replica``) share one port and the kernel spreads the connections over them."""
    send_buffer: int | None = None
    """Bytes of unsent replies per connection (kernel SO_SNDBUF and asyncio's high-water mark);
    None keeps the defaults. A peer that leaves more than this unread for ``write_timeout`` is
    dropped, so it bounds the memory a non-reading peer can pin."""
    kafka_timeout: float = 8.0
    """Seconds a record may wait for the broker's acknowledgement before its frame is left
    un-acked (the producer keeps retrying; a late success is a duplicate with the same event
    id). Below the logger's 10 s ack timeout (HJ 212 Table 1), so during a broker outage the
    session keeps reading re-sends instead of hanging on a send that cannot complete."""
    sweep_interval: float = 1.0
    replica: str = "gateway-0"


class Session:
    """One logger connection."""

    _ids = itertools.count(1)

    def __init__(self, peer: str, writer: asyncio.StreamWriter, config: GatewayConfig) -> None:
        self.id = next(self._ids)
        self.peer = peer
        self.writer = writer
        self.frames = FrameReader(max_frame=config.max_frame)
        self.bucket = TokenBucket(config.rate, config.burst)
        self.mns: set[str] = set()
        self.st: dict[str, str] = {}
        self.garbage = 0
        self.run = GarbageRun()  # skipped bytes since the last frame: one dead letter
        self.auth_failures = 0
        self.closed = False
        self.opened_at = datetime.now(UTC)

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


Reply = Callable[[], Awaitable[None]]


class GarbageRun:
    """Bytes skipped since the last frame: their reason, count and first SAMPLE bytes."""

    SAMPLE = 256

    def __init__(self) -> None:
        self.reason = ""
        self.count = 0
        self.sample = bytearray()

    def add(self, reason: str, raw: bytes) -> None:
        self.reason = reason
        self.count += len(raw)
        room = self.SAMPLE - len(self.sample)
        if room > 0:
            self.sample += raw[:room]
