"""The HJ 212 TCP server that data loggers connect to.

A frame is acked (9014) only after Kafka has acknowledged its record, so an acked frame is never
lost; a frame that is not acked is re-sent by the logger (HJ 212 §6.2, Table 1). Frames of one
read are pipelined: their records are handed to the producer together and each is answered,
in order, once its own record is acknowledged.

Protection (all counted in ``gateway.*`` metrics): a global and a per-MN connection limit (a new
session for an MN that is at its limit replaces the oldest one: after a mobile link drops, the
stale half-open session is the one to go); an idle timeout; a token bucket per connection (a
peer over its rate is slowed down by not reading, so TCP pushes back); bounded buffers (one
read of ``read_size`` bytes at a time, a frame reader capped at ``max_frame``, each batch
settled before the next read); a write timeout for peers that do not read their replies; a
connection that sends more than ``garbage_limit`` bytes that are no frame, or
``max_auth_failures`` frames with an unknown MN or wrong password, is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from opentelemetry import metrics, trace

from gateway.adapters.kafka_out import RecordPublisher
from gateway.adapters.records import to_record
from gateway.domain.codec import DecodeResult, FrameError, Packet, RejectReason, decode
from gateway.domain.commands import CommandState, CommandTracker, Outcome, PendingCommand
from gateway.domain.crc import CrcVariant
from gateway.domain.framing import FrameChunk, FrameReader
from gateway.domain.reassembly import GroupKey, IncompleteGroup, SubpacketAssembler
from gateway.domain.replies import (
    QnRtn,
    command_request,
    data_ack_9014,
    format_time,
    notify_ack_9013,
    refusal,
    set_time_1012,
)
from gateway.domain.throttle import TokenBucket
from gateway.entrypoints.log_budget import LogBudget

log = logging.getLogger(__name__)
reject_log = LogBudget(log)  # rejected frames are logged within a budget
tracer = trace.get_tracer("liandong.gateway")
meter = metrics.get_meter("liandong.gateway")
frames_counter = meter.create_counter("gateway.frames", description="frames by outcome")
bytes_counter = meter.create_counter("gateway.bytes", unit="By", description="bytes by outcome")
sessions_counter = meter.create_counter("gateway.sessions", description="session events")
active_sessions = meter.create_up_down_counter("gateway.sessions.active")
commands_counter = meter.create_counter("gateway.commands", description="command results")

REPLY_CNS = frozenset({"9011", "9012", "9013", "9014"})
ALL_CRCS = frozenset({CrcVariant.MODBUS_MSB, CrcVariant.MODBUS_LSB})


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


@dataclass(frozen=True)
class CommandRequest:
    """A GatewayCommand as the server needs it (decoded by the command consumer)."""

    command_id: str
    mn: str
    cn: str
    params: dict[str, str]
    expires_at: datetime


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


@dataclass
class _Held:
    """A subpacket waiting for the rest of its group."""

    session: Session
    packet: Packet
    frame: bytes
    received_at: datetime
    crc: CrcVariant
    warnings: tuple[str, ...]


Reply = Callable[[], Awaitable[None]]


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
        self._sweeper: asyncio.Task[None] | None = None
        self._sessions: dict[int, Session] = {}
        self._by_mn: dict[str, list[Session]] = {}
        self._assembler = SubpacketAssembler(timedelta(seconds=config.reassembly_timeout))
        self._held: dict[GroupKey, list[_Held]] = {}
        self._tracker = CommandTracker()
        self._waiting: dict[str, list[CommandRequest]] = {}
        self._done_elsewhere: set[str] = set()
        self._qns = itertools.count()
        self.port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._handle,
            self.config.host,
            self.config.port,
            limit=self.config.read_size,
            reuse_port=self.config.reuse_port or None,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._sweeper = asyncio.create_task(self._sweep_forever())
        log.info("HJ 212 gateway listening on %s:%s", self.config.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.close()
        if self._server is not None:
            await self._server.wait_closed()

    def held_commands(self) -> dict[str, list[str]]:
        """Command ids held for loggers not connected here, by MN."""
        return {mn: [c.command_id for c in waiting] for mn, waiting in self._waiting.items()}

    def connected(self, mn: str) -> bool:
        return any(not s.closed for s in self._by_mn.get(mn, ()))

    # --- connections -----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "unknown"
        if len(self._sessions) >= self.config.max_connections:
            sessions_counter.add(1, {"event": "refused_global_limit"})
            log.warning("refusing %s: %d connections open", peer, len(self._sessions))
            writer.close()
            return
        if self.config.send_buffer is not None:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer)
            writer.transport.set_write_buffer_limits(high=self.config.send_buffer)
        session = Session(peer, writer, self.config)
        self._sessions[session.id] = session
        sessions_counter.add(1, {"event": "opened"})
        active_sessions.add(1)
        loop = asyncio.get_running_loop()
        try:
            while not session.closed:
                try:
                    # asyncio.timeout, not wait_for: no extra task per read on the hot path.
                    async with asyncio.timeout(self.config.idle_timeout):
                        data = await reader.read(self.config.read_size)
                except TimeoutError:
                    sessions_counter.add(1, {"event": "idle_timeout"})
                    break
                if not data:
                    break
                chunks = session.frames.feed(data)
                frames = sum(1 for c in chunks if c.frame is not None)
                if frames:
                    wait = session.bucket.take(loop.time(), frames)
                    if wait > 0:
                        # Not reading is the back-pressure: the peer's TCP window fills up.
                        frames_counter.add(frames, {"outcome": "throttled"})
                        await asyncio.sleep(wait)
                await self._process(session, chunks)
                if not await self._drain(session):
                    break
            for chunk in session.frames.flush():
                await self._process(session, [chunk])
            await (await self._flush_run(session))()
        except (ConnectionError, asyncio.IncompleteReadError):
            sessions_counter.add(1, {"event": "reset"})
        finally:
            self._end(session)
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _drain(self, session: Session) -> bool:
        try:
            async with asyncio.timeout(self.config.write_timeout):
                await session.writer.drain()
        except TimeoutError:
            sessions_counter.add(1, {"event": "write_timeout"})
            log.warning(
                "dropping %s: replies not read for %ss", session.peer, self.config.write_timeout
            )
            session.close()
            return False
        return True

    def _end(self, session: Session) -> None:
        session.close()
        if self._sessions.pop(session.id, None) is not None:
            active_sessions.add(-1)
            sessions_counter.add(1, {"event": "closed"})
        for mn in session.mns:
            peers = self._by_mn.get(mn, [])
            if session in peers:
                peers.remove(session)
            if not peers:
                self._by_mn.pop(mn, None)

    def _bind(self, session: Session, mn: str, st: str | None) -> None:
        if st:
            session.st[mn] = st
        if mn in session.mns:
            return
        session.mns.add(mn)
        peers = self._by_mn.setdefault(mn, [])
        peers.append(session)
        while len(peers) > self.config.max_per_mn:
            oldest = peers.pop(0)
            sessions_counter.add(1, {"event": "replaced_per_mn_limit"})
            log.warning("MN %s reconnected from %s: closing %s", mn, session.peer, oldest.peer)
            oldest.close()
        waiting = self._waiting.pop(mn, [])
        for command in waiting:
            asyncio.get_running_loop().create_task(self._deliver(session, command))

    # --- frames ----------------------------------------------------------------------------

    async def _process(self, session: Session, chunks: list[FrameChunk]) -> None:
        """Handle the chunks of one read: enqueue every record, then answer in order."""
        settle: list[Reply] = []
        for chunk in chunks:
            if chunk.frame is None:
                raw = chunk.garbage or b""
                reason = str(chunk.reason or RejectReason.GARBAGE)
                bytes_counter.add(len(raw), {"outcome": reason})
                session.garbage += len(raw)
                if session.run.reason not in ("", reason):
                    settle.append(await self._flush_run(session))
                session.run.add(reason, raw)
            else:
                settle.append(await self._flush_run(session))
                reply = await self._on_frame(session, chunk.frame)
                if reply is not None:
                    settle.append(reply)
            if session.garbage > self.config.garbage_limit:
                sessions_counter.add(1, {"event": "dropped_flooding"})
                log.warning("dropping %s: %d bytes of garbage", session.peer, session.garbage)
                settle.append(await self._flush_run(session))
                settle.append(
                    await self._enqueue_reject(
                        "FLOOD", f"{session.garbage} bytes that are no frame", b"", session.peer
                    )
                )
                session.close()
                break
            if session.closed:
                break
        for reply in settle:
            await reply()

    async def _flush_run(self, session: Session) -> Reply:
        """One dead letter for the bytes skipped since the last frame (the count, and a
        bounded sample as raw); nothing to settle when there were none."""
        run = session.run
        if not run.count:
            return _nothing
        session.run = GarbageRun()
        detail = f"{run.count} bytes outside a frame"
        if run.count > len(run.sample):
            detail += f" (the first {len(run.sample)} kept)"
        return await self._enqueue_reject(run.reason, detail, bytes(run.sample), session.peer)

    async def on_frame(self, frame: bytes, peer: str) -> None:
        """Handle one frame outside a connection (tools and tests); replies are discarded."""
        session = Session(peer, _NullWriter(), self.config)  # type: ignore[arg-type]
        reply = await self._on_frame(session, frame)
        if reply is not None:
            await reply()

    async def _on_frame(self, session: Session, frame: bytes) -> Reply | None:
        received_at = datetime.now(UTC)
        span = tracer.start_span(
            "hj212 frame", kind=trace.SpanKind.SERVER, attributes={"net.peer": session.peer}
        )
        with trace.use_span(span, end_on_exit=False):
            try:
                return await self._decide(session, frame, received_at, span)
            except BaseException:
                span.end()
                raise

    async def _decide(
        self, session: Session, frame: bytes, received_at: datetime, span: trace.Span
    ) -> Reply | None:
        peer = session.peer
        try:
            result = decode(frame, lenient=self.config.lenient, accepted_crcs=ALL_CRCS)
        except FrameError as err:
            session.garbage += len(frame)
            bytes_counter.add(len(frame), {"outcome": str(err.code)})
            return self._ended(
                span, await self._enqueue_reject(str(err.code), err.detail, frame, peer)
            )
        packet = result.packet
        span.set_attribute("hj212.mn", packet.mn)
        span.set_attribute("hj212.cn", packet.cn)
        known = self.directory(packet.mn)
        if known is None:
            return self._refuse(
                session,
                span,
                packet,
                frame,
                "UNKNOWN_MN",
                QnRtn.MN_ERROR,
                await self._enqueue_reject(
                    "UNKNOWN_MN", f"MN {packet.mn} is not registered", frame, peer, packet.mn
                ),
            )
        if packet.pw != known.password:
            return self._refuse(
                session,
                span,
                packet,
                frame,
                "BAD_PASSWORD",
                QnRtn.PW_ERROR,
                await self._enqueue_reject(
                    "BAD_PASSWORD", f"wrong password for MN {packet.mn}", frame, peer, packet.mn
                ),
            )
        if (
            result.crc_variant is not CrcVariant.HJ212
            and result.crc_variant not in known.accepted_crcs
        ):
            session.garbage += len(frame)
            detail = f"{result.crc_variant.value} check code, not enabled for MN {packet.mn}"
            return self._ended(
                span,
                await self._enqueue_reject(
                    str(RejectReason.BAD_CRC), detail, frame, peer, packet.mn
                ),
            )
        session.auth_failures = 0
        self._bind(session, packet.mn, packet.st)
        if known.max_rate is not None and session.bucket.rate != known.max_rate:
            session.bucket = TokenBucket(known.max_rate, max(known.max_rate, self.config.burst))

        if packet.cn in REPLY_CNS:
            frames_counter.add(1, {"outcome": "reply", "cn": packet.cn})
            outcome = self._tracker.on_packet(packet)
            span.end()
            if outcome is not None:
                await self._publish_outcome(outcome)
            return None
        if self._tracker.is_pending(packet.mn, packet.qn):
            self._tracker.on_packet(packet)  # a data upload answering one of our commands

        if packet.is_split and packet.pnum is not None and packet.pnum > 1:
            return await self._subpacket(session, result, frame, received_at, span)

        ack = await self._enqueue_record(result, frame, session, received_at, known, span)
        deadline = asyncio.get_running_loop().time() + self.config.kafka_timeout

        async def reply() -> None:
            if not await self._acked(ack, packet, span, deadline):
                return
            frames_counter.add(1, {"outcome": "published", "cn": packet.cn})
            if packet.cn == "1013":
                session.send(notify_ack_9013(packet))
                await self._calibrate(session, packet, known)
            elif packet.needs_ack:
                session.send(data_ack_9014(packet))

        return reply

    def _ended(self, span: trace.Span, reply: Reply) -> Reply:
        span.end()
        return reply

    def _refuse(
        self,
        session: Session,
        span: trace.Span,
        packet: Packet,
        frame: bytes,
        reason: str,
        code: QnRtn,
        dead_letter: Reply,
    ) -> Reply:
        span.end()
        session.auth_failures += 1
        frames_counter.add(1, {"outcome": "refused", "reason": reason})

        async def reply() -> None:
            await dead_letter()
            session.send(refusal(packet, code))
            if session.auth_failures >= self.config.max_auth_failures:
                sessions_counter.add(1, {"event": "dropped_auth_failures"})
                log.warning(
                    "dropping %s after %d refused frames", session.peer, session.auth_failures
                )
                session.close()

        return reply

    async def _enqueue_record(
        self,
        result: DecodeResult,
        frame: bytes,
        session: Session,
        received_at: datetime,
        known: KnownLogger,
        span: trace.Span,
    ) -> asyncio.Future[object] | None:
        record = to_record(
            result,
            frame,
            peer=session.peer,
            received_at=received_at,
            station_tz=self.config.station_tz,
            outlet_id=known.outlet_id,
        )
        span.set_attribute("liandong.record_id", record.meta.event_id)
        try:
            ack = await self.publisher.enqueue_record(record)
        except Exception as err:
            log.warning("Kafka refused a record from %s: %r", result.packet.mn, err)
            return None
        ack.add_done_callback(_retrieve)
        return ack

    async def _acked(
        self,
        ack: asyncio.Future[object] | None,
        packet: Packet,
        span: trace.Span,
        deadline: float,
    ) -> bool:
        try:
            if ack is None:
                raise ConnectionError("not enqueued")
            if not ack.done():
                # shield: giving up on the ack must not cancel the producer's own retries.
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(ack)
            ack.result()  # raises what the producer raised
            return True
        except Exception as err:
            # Not acked: the logger re-sends it; nothing was lost.
            log.warning(
                "Kafka did not acknowledge a record from %s (%s): not acking", packet.mn, err
            )
            frames_counter.add(1, {"outcome": "kafka_unavailable"})
            span.set_status(trace.Status(trace.StatusCode.ERROR, "kafka unavailable"))
            return False
        finally:
            span.end()

    async def _enqueue_reject(
        self, reason: str, detail: str, raw: bytes, peer: str, mn: str = ""
    ) -> Reply:
        frames_counter.add(1, {"outcome": "rejected", "reason": reason})
        reject_log.info("rejected %d bytes from %s: %s (%s)", len(raw), peer, reason, detail)
        try:
            ack = await self.publisher.enqueue_rejected(
                reason=reason,
                detail=detail,
                raw=raw,
                peer=peer,
                received_at=datetime.now(UTC),
                mn=mn,
            )
        except Exception:
            log.exception("could not dead-letter a rejected frame from %s", peer)
            frames_counter.add(1, {"outcome": "dead_letter_failed"})
            ack = None

        async def settle() -> None:
            if ack is None:
                return
            try:
                await ack
            except Exception:
                log.exception("could not dead-letter a rejected frame from %s", peer)
                frames_counter.add(1, {"outcome": "dead_letter_failed"})

        return settle

    # --- subpackets ------------------------------------------------------------------------

    async def _subpacket(
        self,
        session: Session,
        result: DecodeResult,
        frame: bytes,
        received_at: datetime,
        span: trace.Span,
    ) -> Reply | None:
        packet = result.packet
        key = SubpacketAssembler.key_of(packet)
        held = _Held(session, packet, frame, received_at, result.crc_variant, result.warnings)
        self._held.setdefault(key, []).append(held)
        merged = self._assembler.add(packet, received_at)
        frames_counter.add(1, {"outcome": "subpacket"})
        if merged is None:
            span.end()
            return None
        parts = self._held.pop(key, [])
        return await self._publish_group(merged, parts, (), span)

    async def _publish_group(
        self,
        merged: Packet,
        parts: list[_Held],
        extra_warnings: tuple[str, ...],
        span: trace.Span,
    ) -> Reply | None:
        parts = sorted(parts, key=lambda h: h.packet.pno or 0)
        known = self.directory(merged.mn)
        if known is None or not parts:
            span.end()
            return None
        warnings = tuple(w for h in parts for w in h.warnings) + extra_warnings
        result = DecodeResult(merged, warnings, parts[0].crc)
        raw = b"".join(h.frame for h in parts)
        first = parts[0]
        ack = await self._enqueue_record(result, raw, first.session, first.received_at, known, span)
        deadline = asyncio.get_running_loop().time() + self.config.kafka_timeout

        async def reply() -> None:
            if not await self._acked(ack, merged, span, deadline):
                return
            frames_counter.add(1, {"outcome": "published", "cn": merged.cn})
            for held in parts:
                if held.packet.needs_ack:
                    held.session.send(data_ack_9014(held.packet))

        return reply

    async def _expire_groups(self, now: datetime) -> None:
        for group in self._assembler.expire(now):
            await self._publish_incomplete(group)

    async def _publish_incomplete(self, group: IncompleteGroup) -> None:
        parts = self._held.pop(group.key, [])
        frames_counter.add(1, {"outcome": "subpackets_incomplete"})
        missing = ",".join(str(n) for n in group.missing)
        detail = f"PNO {missing} of {group.pnum} missing after {self.config.reassembly_timeout}s"
        raw = b"".join(h.frame for h in parts)
        peer = parts[0].session.peer if parts else ""
        dead = await self._enqueue_reject(str(group.reason), detail, raw, peer, group.key[0])
        await dead()
        span = tracer.start_span("hj212 incomplete group", attributes={"hj212.mn": group.key[0]})
        with trace.use_span(span, end_on_exit=False):
            reply = await self._publish_group(
                group.partial_packet(), parts, (f"{group.reason}: {detail}",), span
            )
        if reply is not None:
            await reply()
        for held in {id(h.session): h.session for h in parts}.values():
            await self._drain(held)

    # --- time calibration and commands -----------------------------------------------------

    def _new_qn(self) -> str:
        now = datetime.now(self.config.station_tz)
        return now.strftime("%Y%m%d%H%M%S") + f"{next(self._qns) % 1000:03d}"

    async def _calibrate(self, session: Session, packet: Packet, known: KnownLogger) -> None:
        """A 1013 time-calibration request is answered 9013 (done), then with 1012 set time."""
        now = datetime.now(self.config.station_tz).replace(tzinfo=None)
        qn = self._new_qn()
        st = packet.st or "32"
        session.send(set_time_1012(packet.mn, known.password, now, qn, st=st))
        self._tracker.delivered(
            PendingCommand(
                command_id=f"auto-1012:{packet.mn}:{packet.qn or qn}",
                mn=packet.mn,
                cn="1012",
                qn=qn,
                expires_at=datetime.now(UTC) + timedelta(seconds=self.config.command_ttl),
            )
        )
        commands_counter.add(1, {"state": "time_calibration"})

    async def submit(self, command: CommandRequest) -> None:
        """A command from gateway.commands: deliver it if the logger is connected here,
        otherwise hold it until the logger connects or the command expires."""
        if command.command_id in self._done_elsewhere:
            return
        now = datetime.now(UTC)
        if command.expires_at <= now:
            await self._publish_outcome(
                Outcome(
                    command.command_id,
                    command.mn,
                    command.cn,
                    CommandState.EXPIRED,
                    detail="expired before delivery",
                )
            )
            return
        sessions = [s for s in self._by_mn.get(command.mn, []) if not s.closed]
        if not sessions:
            self._waiting.setdefault(command.mn, []).append(command)
            return
        await self._deliver(sessions[-1], command)

    def delivered_elsewhere(self, command_id: str) -> None:
        """Another replica reported on this command: stop holding it here."""
        self._done_elsewhere.add(command_id)
        for mn, waiting in list(self._waiting.items()):
            kept = [c for c in waiting if c.command_id != command_id]
            if kept:
                self._waiting[mn] = kept
            else:
                del self._waiting[mn]

    async def _deliver(self, session: Session, command: CommandRequest) -> None:
        known = self.directory(command.mn)
        if known is None:
            await self._publish_outcome(
                Outcome(
                    command.command_id,
                    command.mn,
                    command.cn,
                    CommandState.REJECTED,
                    detail="MN is not registered",
                )
            )
            return
        params = dict(command.params)
        if command.cn == "1012" and "SystemTime" not in params:
            params["SystemTime"] = format_time(datetime.now(self.config.station_tz))
        qn = self._new_qn()
        st = session.st.get(command.mn, "32")
        frame = command_request(command.cn, command.mn, known.password, qn, params, st=st)
        self._tracker.delivered(
            PendingCommand(command.command_id, command.mn, command.cn, qn, command.expires_at)
        )
        session.send(frame)
        if not await self._drain(session):
            return
        await self._publish_outcome(
            Outcome(
                command.command_id,
                command.mn,
                command.cn,
                CommandState.DELIVERED,
                detail=f"QN {qn} to {session.peer} by {self.config.replica}",
            )
        )

    async def _publish_outcome(self, outcome: Outcome) -> None:
        commands_counter.add(1, {"state": str(outcome.state)})
        try:
            await self.publisher.publish_command_result(
                command_id=outcome.command_id,
                mn=outcome.mn,
                cn=outcome.cn,
                state=str(outcome.state),
                at=datetime.now(UTC),
                qn_rtn=outcome.qn_rtn,
                exe_rtn=outcome.exe_rtn,
                detail=outcome.detail,
                replica=self.config.replica,
            )
        except Exception:
            log.exception("could not publish the result of command %s", outcome.command_id)

    async def _expire_commands(self, now: datetime) -> None:
        for outcome in self._tracker.expire(now):
            await self._publish_outcome(outcome)
        for mn, waiting in list(self._waiting.items()):
            kept = []
            for command in waiting:
                if command.expires_at > now:
                    kept.append(command)
                elif command.command_id not in self._done_elsewhere:
                    await self._publish_outcome(
                        Outcome(
                            command.command_id,
                            mn,
                            command.cn,
                            CommandState.NOT_CONNECTED,
                            detail=f"MN {mn} did not connect before expiry",
                        )
                    )
            if kept:
                self._waiting[mn] = kept
            else:
                del self._waiting[mn]

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            now = datetime.now(UTC)
            try:
                await self._expire_groups(now)
                await self._expire_commands(now)
            except Exception:
                log.exception("sweep failed")


async def _nothing() -> None:
    return None


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


def _retrieve(ack: asyncio.Future[object]) -> None:
    """Reads the outcome of an ack the server may have stopped waiting for (no asyncio
    'exception was never retrieved' noise)."""
    if not ack.cancelled():
        ack.exception()


class _NullWriter:
    def write(self, data: bytes) -> None:
        return None

    def close(self) -> None:
        return None

    async def drain(self) -> None:
        return None


async def serve_forever(gateway: Gateway, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gateway.start()
    await stop.wait()
    await gateway.stop()
