"""Reassembling split uploads (Flag bit D, PNUM/PNO; §4 of hj212.md).

Each subpacket is a full frame with its own QN and the same DataTime, so groups are keyed by
(MN, CN, PNUM, DataTime); a subpacket without DataTime falls back to its QN, which only groups
when the logger reuses the QN. Subpackets may arrive in any order; a repeated PNO (a resend)
keeps the first copy. A group that is not complete ``timeout`` after its first subpacket is
handed back by ``expire`` so partial data can be published with a reason instead of lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from liandong.hj212.encoding import render_cp
from liandong.hj212.packets import FactorValue, Packet
from liandong.hj212.rejects import RejectReason

__all__ = ["GroupKey", "IncompleteGroup", "SubpacketAssembler", "merge_subpackets"]

GroupKey = tuple[str, str, int, str | None]


@dataclass(frozen=True)
class IncompleteGroup:
    """A split upload that timed out (or was evicted) before all subpackets arrived."""

    key: GroupKey
    pnum: int
    packets: tuple[Packet, ...]
    """The subpackets received, in PNO order."""
    missing: tuple[int, ...]
    first_seen: datetime
    reason: RejectReason = RejectReason.INCOMPLETE_SUBPACKETS

    def partial_packet(self) -> Packet:
        """The received subpackets merged, for publishing partial data."""
        return merge_subpackets(self.packets)


@dataclass
class _Group:
    pnum: int
    first_seen: datetime
    parts: dict[int, Packet] = field(default_factory=dict)


def merge_subpackets(packets: tuple[Packet, ...] | list[Packet]) -> Packet:
    """One packet from subpackets in PNO order: header of the first, fields and factors united.

    When subpackets repeat a field or a factor suffix, the earlier PNO wins. The result is no
    longer split: Flag bit D is cleared and PNUM/PNO are None.
    """
    if not packets:
        raise ValueError("nothing to merge")
    first = packets[0]
    fields: dict[str, str] = {}
    merged: dict[str, tuple[str, dict[str, str]]] = {}
    for packet in packets:
        for key, value in packet.fields.items():
            fields.setdefault(key, value)
        for code, factor in packet.factors.items():
            if code not in merged:
                merged[code] = (factor.original_code, dict(factor.fields))
            else:
                target = merged[code][1]
                for suffix, value in factor.fields.items():
                    target.setdefault(suffix, value)
    factors = {
        code: FactorValue(code, original, values) for code, (original, values) in merged.items()
    }
    flag = first.flag & ~2 if first.flag is not None else None
    return Packet(
        qn=first.qn,
        st=first.st,
        cn=first.cn,
        pw=first.pw,
        mn=first.mn,
        flag=flag,
        pnum=None,
        pno=None,
        cp=render_cp(fields, factors),
        fields=fields,
        factors=factors,
        header_extra=dict(first.header_extra),
    )


class SubpacketAssembler:
    """Collects subpackets per group; at most ``max_groups`` groups are held at once."""

    def __init__(self, timeout: timedelta, max_groups: int = 10_000) -> None:
        if timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        self._timeout = timeout
        self._max_groups = max_groups
        self._groups: dict[GroupKey, _Group] = {}
        self._evicted: list[IncompleteGroup] = []

    def pending(self) -> int:
        """Number of incomplete groups held."""
        return len(self._groups)

    def add(self, packet: Packet, now: datetime) -> Packet | None:
        """Add a packet. Returns it unchanged if it is not split, the merged packet when its
        group is complete, otherwise None."""
        pnum, pno = packet.pnum, packet.pno
        if not packet.is_split or pnum is None or pno is None:
            return packet
        if not 1 <= pno <= pnum:
            # A PNO outside 1..PNUM can never complete a group; pass it on as it is.
            return packet
        if pnum == 1:
            return merge_subpackets([packet])
        key = self.key_of(packet)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self._max_groups:
                self._evict_oldest()
            group = self._groups[key] = _Group(pnum, now)
        group.parts.setdefault(pno, packet)
        if len(group.parts) < pnum:
            return None
        del self._groups[key]
        return merge_subpackets([group.parts[n] for n in range(1, pnum + 1)])

    @staticmethod
    def key_of(packet: Packet) -> GroupKey:
        data_time = packet.fields.get("DataTime")
        return (packet.mn, packet.cn, packet.pnum or 0, data_time or packet.qn)

    def expire(self, now: datetime) -> list[IncompleteGroup]:
        """Groups whose first subpacket is at least ``timeout`` old (plus any evicted ones)."""
        out, self._evicted = self._evicted, []
        for key in [k for k, g in self._groups.items() if now - g.first_seen >= self._timeout]:
            out.append(self._incomplete(key, self._groups.pop(key)))
        return out

    def _evict_oldest(self) -> None:
        key = min(self._groups, key=lambda k: self._groups[k].first_seen)
        self._evicted.append(self._incomplete(key, self._groups.pop(key)))

    @staticmethod
    def _incomplete(key: GroupKey, group: _Group) -> IncompleteGroup:
        numbers = sorted(group.parts)
        return IncompleteGroup(
            key=key,
            pnum=group.pnum,
            packets=tuple(group.parts[n] for n in numbers),
            missing=tuple(n for n in range(1, group.pnum + 1) if n not in group.parts),
            first_seen=group.first_seen,
        )
