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

Per-frame cost (issue 17 item 4; ``bench/gateway_load.py``, docs/performance.md): when nothing
exports spans the frame's span is ``unsampled_root_span()`` (no SDK span, the record still
carries its traceparent); the ack deadline and the idle timeout are shared timers
(``timers.py``), not a ``Timeout`` per read and per ack; ``drain`` is skipped while nothing is
buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from opentelemetry import trace

from gateway.adapters.kafka_out import RecordPublisher
from gateway.domain.commands import CommandRequest, CommandTracker
from gateway.domain.reassembly import GroupKey, SubpacketAssembler
from gateway.domain.replies import (
    QnRtn,
    data_ack_9014,
    notify_ack_9013,
    refusal,
)
from gateway.domain.throttle import TokenBucket
from gateway.entrypoints.command_channel import CommandChannel
from gateway.entrypoints.instruments import (
    active_sessions,
    bytes_counter,
    frames_counter,
    sessions_counter,
    tracer,
)
from gateway.entrypoints.log_budget import LogBudget
from gateway.entrypoints.sessions import GarbageRun, GatewayConfig, KnownLogger, Reply, Session
from gateway.entrypoints.split_uploads import HeldSubpacket, SplitUploads
from gateway.entrypoints.timers import AckDeadlines, IdleWatch
from liandong.hj212.crc import CrcVariant
from liandong.hj212.decoding import decode
from liandong.hj212.framing import FrameChunk
from liandong.hj212.packets import DecodeResult, Packet
from liandong.hj212.records import to_record
from liandong.hj212.rejects import FrameError, RejectReason
from liandong.telemetry import span_headers, unsampled_root_span

log = logging.getLogger(__name__)
reject_log = LogBudget(log)  # rejected frames are logged within a budget

REPLY_CNS = frozenset({"9011", "9012", "9013", "9014"})
ALL_CRCS = frozenset({CrcVariant.MODBUS_MSB, CrcVariant.MODBUS_LSB})


class Gateway(CommandChannel, SplitUploads):
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
        self._held: dict[GroupKey, list[HeldSubpacket]] = {}
        self._tracker = CommandTracker()
        self._waiting: dict[str, list[CommandRequest]] = {}
        self._done_elsewhere: set[str] = set()
        self._qns = itertools.count()
        self._ack_deadlines = AckDeadlines()
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
        # One timer per idle period rather than a timeout (and a timer) per read.
        idle = IdleWatch(self.config.idle_timeout)
        try:
            while not session.closed:
                idle.reading()
                try:
                    data = await reader.read(self.config.read_size)
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    # Only our own cancellation is the idle timeout; any other is passed on.
                    if not idle.expired or task is None or task.uncancel() > 0:
                        raise
                    sessions_counter.add(1, {"event": "idle_timeout"})
                    break
                idle.done_reading()
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
            idle.close()
            self._end(session)
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _drain(self, session: Session) -> bool:
        if not session.writer.transport.get_write_buffer_size():
            # Everything written went straight to the socket: nothing to wait for, so no timer
            # per read (a connection error shows at the next read).
            return True
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
        quiet = unsampled_root_span()
        if quiet is not None:
            # Nothing would record this span: the SDK's span and the context around it are
            # skipped; the record still carries this span's traceparent (span_headers).
            return await self._decide(session, frame, received_at, quiet)
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
            ack = await self.publisher.enqueue_record(record, span_headers(span))
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
                # Giving up at the deadline leaves the ack (and the producer's own retries)
                # alone; one shared timer, not one per frame.
                await self._ack_deadlines.wait(ack, deadline)
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
