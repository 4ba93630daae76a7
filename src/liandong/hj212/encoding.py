"""HJ 212 frame encoding: data areas, data segments (Table 3 order) and frames (``##``,
length, CRC, CR LF). A strict decode without warnings is canonical:
``encode(decode(frame).packet) == frame``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from liandong.hj212.crc import hj212_crc16
from liandong.hj212.packets import HARD_MAX_SEGMENT, FactorValue, Packet


def render_cp_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """A data area from ``(key, value)`` pairs: ``,`` between values of the same factor (adjacent
    keys sharing the code before ``-``), ``;`` between items."""
    out: list[str] = []
    previous: str | None = None
    for key, value in pairs:
        code, dash, _ = key.partition("-")
        current = code if dash else None
        if out:
            out.append("," if current is not None and current == previous else ";")
        out.append(f"{key}={value}")
        previous = current
    return "".join(out)


def render_cp(fields: Mapping[str, str], factors: Mapping[str, FactorValue]) -> str:
    """A data area from parsed fields and factors (factor codes written as originally sent)."""
    pairs = list(fields.items())
    for factor in factors.values():
        pairs.extend((f"{factor.original_code}-{suffix}", v) for suffix, v in factor.fields.items())
    return render_cp_pairs(pairs)


def _segment(
    qn: str | None,
    st: str | None,
    cn: str,
    pw: str | None,
    mn: str,
    flag: int | None,
    pnum: int | None,
    pno: int | None,
    extra: Mapping[str, str],
    cp: str,
) -> str:
    parts = []
    if qn is not None:
        parts.append(f"QN={qn}")
    if st is not None:
        parts.append(f"ST={st}")
    parts.append(f"CN={cn}")
    if pw is not None:
        parts.append(f"PW={pw}")
    parts.append(f"MN={mn}")
    if flag is not None:
        parts.append(f"Flag={flag}")
    if pnum is not None:
        parts.append(f"PNUM={pnum}")
    if pno is not None:
        parts.append(f"PNO={pno}")
    parts.extend(f"{key}={value}" for key, value in extra.items())
    parts.append(f"CP=&&{cp}&&")
    return ";".join(parts)


def packet_segment(packet: Packet) -> str:
    """The data segment of a packet: Table 3 order, unknown header keys before CP.

    The data area is ``packet.cp`` verbatim; ``fields``/``factors`` are its parsed view (use
    ``render_cp`` to rebuild ``cp`` after changing them).
    """
    return _segment(
        packet.qn,
        packet.st,
        packet.cn,
        packet.pw,
        packet.mn,
        packet.flag,
        packet.pnum,
        packet.pno,
        packet.header_extra,
        packet.cp,
    )


def build_frame(segment: str) -> bytes:
    """Wrap a data segment: ``##``, 4-digit UTF-8 length, upper-case CRC, CR LF."""
    data = segment.encode("utf-8")
    if len(data) > HARD_MAX_SEGMENT:
        raise ValueError(f"data segment of {len(data)} bytes does not fit the length field")
    return b"##%04d%s%04X\r\n" % (len(data), data, hj212_crc16(data))


def encode(packet: Packet) -> bytes:
    """The frame for a packet (see ``packet_segment``)."""
    return build_frame(packet_segment(packet))


def build_data_segment(
    *,
    qn: str | None,
    st: str | None,
    cn: str,
    pw: str | None,
    mn: str,
    flag: int | None,
    cp_fields: Sequence[tuple[str, str]] | str,
    pnum: int | None = None,
    pno: int | None = None,
    header_extra: Mapping[str, str] = MappingProxyType({}),
) -> str:
    """A data segment for an upload or command; ``cp_fields`` is a data area or its pairs.

    Example: ``cp_fields=[("DataTime", "20240101120000"), ("w01018-Avg", "21.5"),
    ("w01018-Flag", "N")]`` gives ``DataTime=20240101120000;w01018-Avg=21.5,w01018-Flag=N``.
    """
    cp = cp_fields if isinstance(cp_fields, str) else render_cp_pairs(cp_fields)
    return _segment(qn, st, cn, pw, mn, flag, pnum, pno, header_extra, cp)
