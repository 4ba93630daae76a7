"""Split uploads through the TCP server: holding subpackets and publishing their groups."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from opentelemetry import trace

from gateway.domain.reassembly import GroupKey, IncompleteGroup, SubpacketAssembler
from gateway.domain.replies import (
    data_ack_9014,
)
from gateway.entrypoints.instruments import (
    frames_counter,
    tracer,
)
from gateway.entrypoints.sessions import GatewayConfig, KnownLogger, Reply, Session
from liandong.hj212.crc import CrcVariant
from liandong.hj212.packets import DecodeResult, Packet


@dataclass
class HeldSubpacket:
    """A subpacket waiting for the rest of its group."""

    session: Session
    packet: Packet
    frame: bytes
    received_at: datetime
    crc: CrcVariant
    warnings: tuple[str, ...]


class SplitUploads:
    """Split uploads (Flag bit D, PNUM/PNO) through the TCP server: subpackets are held until
    their group is complete, then published as one record and each acked; a group that times
    out is dead-lettered and published with what arrived. Mixed into ``Gateway``, whose state
    it shares (the grouping itself is ``gateway.domain.reassembly``)."""

    config: GatewayConfig
    directory: Callable[[str], KnownLogger | None]
    _assembler: SubpacketAssembler
    _held: dict[GroupKey, list[HeldSubpacket]]

    if TYPE_CHECKING:

        async def _drain(self, session: Session) -> bool: ...

        async def _enqueue_record(
            self,
            result: DecodeResult,
            frame: bytes,
            session: Session,
            received_at: datetime,
            known: KnownLogger,
            span: trace.Span,
        ) -> asyncio.Future[object] | None: ...

        async def _acked(
            self,
            ack: asyncio.Future[object] | None,
            packet: Packet,
            span: trace.Span,
            deadline: float,
        ) -> bool: ...

        async def _enqueue_reject(
            self, reason: str, detail: str, raw: bytes, peer: str, mn: str = ""
        ) -> Reply: ...

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
        held = HeldSubpacket(
            session, packet, frame, received_at, result.crc_variant, result.warnings
        )
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
        parts: list[HeldSubpacket],
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
