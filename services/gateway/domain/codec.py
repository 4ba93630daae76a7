"""HJ 212 frame decoding and encoding (HJ 212-2017 §6.3, with HJ/T 212-2005 and field quirks).

A frame is ``##`` + 4-digit length + data segment + 4-hex CRC + CR LF. Length and CRC are over
the UTF-8 bytes of the data segment. ``decode`` has two modes:

* strict: any deviation from the standard raises ``FrameError``;
* lenient: tolerable deviations (hj212.md §11 and the list in ``decode``) become warnings of the
  form ``"<reason>: <detail>"`` and decoding carries on. Deviations that leave nothing trustworthy
  (bad CRC, no ``CP=&&``, no CN or MN, undecodable bytes) still raise.

Some warnings are notes rather than deviations and appear in both modes (header fields out of
Table 3 order, unknown header keys, zero-padded integers). A strict decode without warnings is
canonical: ``encode(decode(frame).packet) == frame``.

Times: ``DataTime`` and the other N14 fields carry no zone; they are station local time
(China Standard Time, UTC+8, for loggers in China). ``Packet.data_time`` returns a *naive*
datetime in that local time and callers attach the zone.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.domain.crc import CrcVariant, crc_hex, hj212_crc16, match_crc
from gateway.domain.factors import CODE_2005_TO_2017

_NativeSplit = tuple[
    str,
    str,
    str,
    str,
    str,
    int,
    int | None,
    int | None,
    str,
    dict[str, str],
    list[tuple[str, dict[str, str]]],
]
"""What the native extension returns for a clean frame: the header fields, the data area, its
fields and its factor groups (original code, values by suffix) in the order sent."""


def _load_native() -> Callable[[bytes, int], _NativeSplit | None] | None:
    """The native hot path (services/gateway/native, built by ``make install``); without it the
    pure-Python decoder does everything."""
    try:
        from hj212_native import decode_clean
    except ImportError:  # pragma: no cover - depends on the installation
        return None
    return decode_clean


_native_decode_clean = _load_native()

__all__ = [
    "HARD_MAX_SEGMENT",
    "MAX_SEGMENT",
    "DataFlag",
    "DecodeResult",
    "FactorValue",
    "FrameError",
    "Packet",
    "ProtocolVersion",
    "RejectReason",
    "build_data_segment",
    "build_frame",
    "decode",
    "decode_python",
    "encode",
    "native_available",
    "packet_segment",
    "parse_time",
    "peek_header",
    "render_cp",
    "render_cp_pairs",
]

MAX_SEGMENT = 1024
"""Largest data segment the standard allows (Table 2)."""
HARD_MAX_SEGMENT = 9999
"""Largest data segment the 4-digit length field can describe; lenient mode stops here."""


class RejectReason(enum.StrEnum):
    """Why a frame or a run of bytes was rejected. Published on the dead-letter topic: stable."""

    BAD_HEADER = "bad_header"
    """The frame does not start with ``##``."""
    BAD_LENGTH = "bad_length"
    """The length field is not 4 decimal digits, or the frame is too short to hold a CRC."""
    LENGTH_MISMATCH = "length_mismatch"
    """The length field disagrees with the data segment's UTF-8 byte count."""
    BAD_CRC = "bad_crc"
    """The check code matches no accepted algorithm (or is lower-case, in strict mode)."""
    BAD_TAIL = "bad_tail"
    """The frame does not end with CR LF (or the stream has no tail where one is due)."""
    TOO_LARGE = "too_large"
    """The data segment (or frame) is longer than allowed."""
    BAD_SEGMENT = "bad_segment"
    """The data segment's syntax is broken (no ``CP=&&``, empty or duplicate items, ...)."""
    MISSING_FIELD = "missing_field"
    """A required header field (CN, MN; in strict mode also QN, ST, PW, Flag) is absent."""
    BAD_FIELD = "bad_field"
    """A field value has the wrong format."""
    NOT_UTF8 = "not_utf8"
    """The data segment is not valid UTF-8."""
    GARBAGE = "garbage"
    """Stream bytes outside any frame (before ``##``)."""
    TRUNCATED = "truncated"
    """The stream ended in the middle of a frame."""
    INCOMPLETE_SUBPACKETS = "incomplete_subpackets"
    """A split upload timed out before all its subpackets arrived."""


class FrameError(Exception):
    """A frame that cannot be decoded (in the chosen mode)."""

    def __init__(self, code: RejectReason, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class ProtocolVersion(enum.Enum):
    """Edition announced by the Flag version bits (2-7)."""

    HJT212_2005 = "HJ/T 212-2005"
    HJ212_2017 = "HJ 212-2017"
    HJ212_2025 = "HJ 212-2025"
    UNKNOWN = "unknown"


_VERSIONS = (ProtocolVersion.HJT212_2005, ProtocolVersion.HJ212_2017, ProtocolVersion.HJ212_2025)


class DataFlag(enum.StrEnum):
    """Data flags (``xxxxxx-Flag``), Table 8; P is 2005 only."""

    NORMAL = "N"
    STOPPED = "F"
    MAINTENANCE = "M"
    SET_VALUE = "S"
    FAULT = "D"
    CALIBRATION = "C"
    OVER_RANGE = "T"
    COMMUNICATION = "B"
    POWER_FAILURE = "P"


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
_NUMERIC_SUFFIXES = frozenset(
    {"Rtd", "Min", "Avg", "Max", "Cou", "ZsRtd", "ZsMin", "ZsAvg", "ZsMax", "ZsCou"}
    | {"Data", "DayData", "NightData"}
)


@functools.lru_cache(maxsize=4096)
def parse_time(value: str) -> datetime | None:
    """An N14 time ``YYYYMMDDhhmmss`` (or 17 digits with milliseconds) as a naive local datetime.

    Returns None for anything else, including impossible dates.
    """
    n = len(value)
    if (n != 14 and n != 17) or not value.isascii() or not value.isdigit():
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]),
            int(value[12:14]),
            int(value[14:17]) * 1000 if n == 17 else 0,
        )
    except ValueError:
        return None


@dataclass(frozen=True)
class FactorValue:
    """All values of one monitoring factor in a packet, as raw strings by suffix."""

    code: str
    """The 2017 code (2005 codes are mapped, unknown codes kept as sent)."""
    original_code: str
    """The code as the logger sent it."""
    fields: Mapping[str, str]
    """Raw values by suffix: Rtd, Min, Avg, Max, Cou, ZsRtd, ZsAvg, Flag, EFlag, SampleTime, SN,
    Info, ... Unknown vendor suffixes are kept."""

    def get(self, suffix: str) -> str | None:
        return self.fields.get(suffix)

    def number(self, suffix: str) -> float | None:
        """The value of ``suffix`` as a number; None when absent, empty or not a plain decimal."""
        raw = self.fields.get(suffix)
        if raw is None or not _NUMBER.fullmatch(raw):
            return None
        return float(raw)

    @property
    def rtd(self) -> float | None:
        return self.number("Rtd")

    @property
    def avg(self) -> float | None:
        return self.number("Avg")

    @property
    def min(self) -> float | None:
        return self.number("Min")

    @property
    def max(self) -> float | None:
        return self.number("Max")

    @property
    def cou(self) -> float | None:
        return self.number("Cou")

    @property
    def flag(self) -> str | None:
        """The raw data flag (``N``, ``D``, ...), None when absent."""
        return self.fields.get("Flag")

    @property
    def data_flag(self) -> DataFlag | None:
        """The data flag as an enum; None when absent or not a known flag."""
        raw = self.fields.get("Flag")
        try:
            return DataFlag(raw) if raw is not None else None
        except ValueError:
            return None

    @property
    def eflag(self) -> str | None:
        return self.fields.get("EFlag")

    @property
    def sample_time(self) -> datetime | None:
        raw = self.fields.get("SampleTime")
        return parse_time(raw) if raw else None


@dataclass(frozen=True)
class Packet:
    """One decoded HJ 212 data segment."""

    qn: str | None
    st: str | None
    cn: str
    pw: str | None
    mn: str
    flag: int | None
    pnum: int | None
    pno: int | None
    cp: str
    """The raw data area between ``CP=&&`` and the closing ``&&``; ``encode`` writes this."""
    fields: Mapping[str, str] = field(default_factory=dict)
    """Data-area fields that belong to no factor: DataTime, QnRtn, ExeRtn, SystemTime, ..."""
    factors: Mapping[str, FactorValue] = field(default_factory=dict)
    """Factor values keyed by 2017 code, in the order sent; unknown codes are kept."""
    header_extra: Mapping[str, str] = field(default_factory=dict)
    """Header keys outside Table 3 (e.g. the 2025 ``RF``), in the order sent."""

    @property
    def version(self) -> ProtocolVersion:
        if self.flag is None:
            return ProtocolVersion.UNKNOWN
        bits = self.flag >> 2
        return _VERSIONS[bits] if bits < 3 else ProtocolVersion.UNKNOWN

    @property
    def needs_ack(self) -> bool:
        """Flag bit A: the sender expects a reply (9014 for uploads)."""
        return self.flag is not None and bool(self.flag & 1)

    @property
    def is_split(self) -> bool:
        """Flag bit D: the packet is one of PNUM subpackets."""
        return self.flag is not None and bool(self.flag & 2)

    @property
    def data_time(self) -> datetime | None:
        """``DataTime`` as a naive datetime in station local time (see module docstring)."""
        raw = self.fields.get("DataTime")
        return parse_time(raw) if raw else None

    def time_field(self, name: str) -> datetime | None:
        """Any N14 data-area field (SystemTime, BeginTime, RestartTime, ...) as naive local time."""
        raw = self.fields.get(name)
        return parse_time(raw) if raw else None


@dataclass(frozen=True)
class DecodeResult:
    packet: Packet
    warnings: tuple[str, ...]
    crc_variant: CrcVariant


# --- decoding -------------------------------------------------------------------------------

_HEADER_KEYS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_HEADER_RANK = {key: rank for rank, key in enumerate(_HEADER_KEYS)}
_HEADER_BY_UPPER = {key.upper(): key for key in _HEADER_KEYS}
_CANONICAL_ORDERS = frozenset(
    {
        ("QN", "ST", "CN", "PW", "MN", "Flag"),
        ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"),
    }
)
_UPPER_HEX = "0123456789ABCDEF"
_ST_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TO_2017 = CODE_2005_TO_2017


class _Issues:
    """Collects warnings; in strict mode a deviation raises at once."""

    __slots__ = ("lenient", "warnings")

    def __init__(self, lenient: bool) -> None:
        self.lenient = lenient
        self.warnings: list[str] = []

    def deviation(self, code: RejectReason, detail: str) -> None:
        if not self.lenient:
            raise FrameError(code, detail)
        self.warnings.append(f"{code}: {detail}")

    def note(self, code: RejectReason, detail: str) -> None:
        self.warnings.append(f"{code}: {detail}")


def decode(
    frame: bytes,
    *,
    lenient: bool = False,
    accepted_crcs: frozenset[CrcVariant] = frozenset(),
    max_segment: int = MAX_SEGMENT,
) -> DecodeResult:
    """Decode one complete frame ``##LLLL<segment>CCCC\\r\\n`` (see ``decode_python``).

    A clean frame (no warning in either mode) is split by the native extension when it is
    installed; everything else, and every error, goes through ``decode_python``. Both give the
    same result (tests/unit/gateway/test_codec_native.py).
    """
    if _native_decode_clean is not None:
        result = _from_native(_native_decode_clean(frame, max_segment))
        if result is not None:
            return result
    return decode_python(
        frame, lenient=lenient, accepted_crcs=accepted_crcs, max_segment=max_segment
    )


def native_available() -> bool:
    """Whether the native decoder extension is installed."""
    return _native_decode_clean is not None


def _from_native(split: _NativeSplit | None) -> DecodeResult | None:
    """Wrap the native split in the codec's dataclasses; None when Python must decide (a 2005
    code colliding with its 2017 code, a DataTime that is no valid N14 time)."""
    if split is None:
        return None
    qn, st, cn, pw, mn, flag, pnum, pno, cp, fields, groups = split
    data_time = fields.get("DataTime")
    if data_time is not None and (len(data_time) != 14 or parse_time(data_time) is None):
        return None
    factors: dict[str, FactorValue] = {}
    new = object.__new__
    to_2017 = _TO_2017
    for original, values in groups:
        code = to_2017.get(original, original)
        if code in factors:
            return None
        # Same object as the frozen dataclass __init__ builds, without its per-field setattr.
        factor = new(FactorValue)
        slots = factor.__dict__
        slots["code"] = code
        slots["original_code"] = original
        slots["fields"] = values
        factors[code] = factor
    packet = new(Packet)
    packet.__dict__.update(
        qn=qn,
        st=st,
        cn=cn,
        pw=pw,
        mn=mn,
        flag=flag,
        pnum=pnum,
        pno=pno,
        cp=cp,
        fields=fields,
        factors=factors,
        header_extra={},
    )
    result = new(DecodeResult)
    result.__dict__.update(packet=packet, warnings=(), crc_variant=CrcVariant.HJ212)
    return result


def decode_python(
    frame: bytes,
    *,
    lenient: bool = False,
    accepted_crcs: frozenset[CrcVariant] = frozenset(),
    max_segment: int = MAX_SEGMENT,
) -> DecodeResult:
    """Decode one complete frame in pure Python ``##LLLL<segment>CCCC\\r\\n``.

    Raises ``FrameError`` with a ``RejectReason``. Lenient mode tolerates, with a warning:
    a length field that disagrees with the segment when the CRC is right; a lower-case CRC;
    an LF-only or missing tail; a segment longer than ``max_segment`` (up to 9999 bytes);
    missing QN, ST, PW or Flag; missing PNUM/PNO; bad QN/ST/PW/MN/Flag formats; DataTime with
    milliseconds or an impossible DataTime; whitespace around keys and values; ``,`` between
    header fields; no ``;`` before ``CP=``; an unclosed CP; empty or ``=``-less items (skipped);
    duplicate keys (the first wins); non-numeric measurement values; header keys in other case.
    MODBUS check codes are accepted only when listed in ``accepted_crcs``.
    """
    if frame[:2] != b"##":
        raise FrameError(RejectReason.BAD_HEADER, f"frame starts with {bytes(frame[:2])!r}")
    length_field = frame[2:6]
    if len(length_field) != 4 or not length_field.isdigit():
        raise FrameError(RejectReason.BAD_LENGTH, f"length field {bytes(length_field)!r}")
    issues = _Issues(lenient)

    end = len(frame)
    if frame[end - 2 :] == b"\r\n":
        end -= 2
    elif frame[end - 1 :] == b"\n":
        issues.deviation(RejectReason.BAD_TAIL, "LF-only tail")
        end -= 1
    else:
        issues.deviation(RejectReason.BAD_TAIL, "no CR LF tail")
    if end < 10:
        raise FrameError(RejectReason.BAD_LENGTH, "frame too short to hold a check code")
    segment = frame[6 : end - 4]
    given_crc = frame[end - 4 : end]
    size = len(segment)
    declared = int(length_field)

    if size > max_segment:
        if size > HARD_MAX_SEGMENT:
            raise FrameError(RejectReason.TOO_LARGE, f"data segment of {size} bytes")
        issues.deviation(RejectReason.TOO_LARGE, f"data segment of {size} > {max_segment} bytes")

    variant = CrcVariant.HJ212
    if given_crc != b"%04X" % hj212_crc16(segment):
        variant = _other_crc(segment, given_crc, accepted_crcs, issues, declared != size)
    if declared != size:
        issues.deviation(
            RejectReason.LENGTH_MISMATCH, f"length field {declared}, data segment {size} bytes"
        )

    try:
        text = segment.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(RejectReason.NOT_UTF8, str(exc)) from None
    packet = _parse_segment(text, issues)
    return DecodeResult(packet, tuple(issues.warnings), variant)


def _other_crc(
    segment: bytes,
    given: bytes,
    accepted: frozenset[CrcVariant],
    issues: _Issues,
    length_mismatch: bool,
) -> CrcVariant:
    """Slow path when the check code is not the canonical upper-case HJ 212 one."""
    try:
        given_text = given.decode("ascii")
    except UnicodeDecodeError:
        given_text = ""
    variant = match_crc(segment, given_text, accepted) if given_text.isalnum() else None
    if variant is None:
        if length_mismatch:
            # With a wrong length *and* a wrong CRC the frame boundary itself is suspect.
            raise FrameError(
                RejectReason.LENGTH_MISMATCH, f"length field wrong and CRC {given!r} wrong"
            )
        raise FrameError(
            RejectReason.BAD_CRC, f"CRC {given!r}, expected {crc_hex(segment)} (HJ 212)"
        )
    if not given_text.isupper() and not given_text.isdigit():
        issues.deviation(RejectReason.BAD_CRC, f"lower-case CRC {given_text}")
    return variant


def _parse_segment(text: str, issues: _Issues) -> Packet:
    cp_at = text.find("CP=&&")
    if cp_at < 0:
        raise FrameError(RejectReason.BAD_SEGMENT, "no CP=&& in data segment")
    if len(text) >= cp_at + 7 and text.endswith("&&"):
        cp = text[cp_at + 5 : -2]
    else:
        issues.deviation(RejectReason.BAD_SEGMENT, "CP not closed with &&")
        cp = text[cp_at + 5 :].rstrip("&")
    head = text[:cp_at]
    if head.endswith(";"):
        head = head[:-1]
    elif head:
        issues.deviation(RejectReason.BAD_SEGMENT, "no ';' before CP=")
    loose = " " in text or "\t" in text
    header = _parse_header(head, issues, loose)
    fields, factors = _parse_cp(cp, issues, loose)
    return _build_packet(header, cp, fields, factors, issues)


def _parse_header(head: str, issues: _Issues, loose: bool) -> dict[str, str]:
    if "," in head:
        issues.deviation(RejectReason.BAD_SEGMENT, "',' between header fields")
        head = head.replace(",", ";")
    header: dict[str, str] = {}
    if not head:
        return header
    for item in head.split(";"):
        key, sep, value = item.partition("=")
        if loose:
            key, value = _strip(key, value, issues)
        if not sep:
            issues.deviation(RejectReason.BAD_SEGMENT, f"header item without '=': {item!r}")
            continue
        if key not in _HEADER_RANK and key.upper() in _HEADER_BY_UPPER:
            issues.deviation(RejectReason.BAD_SEGMENT, f"header key {key!r} in wrong case")
            key = _HEADER_BY_UPPER[key.upper()]
        if key in header:
            issues.deviation(RejectReason.BAD_SEGMENT, f"duplicate header key {key}")
            continue
        header[key] = value
    return header


def _strip(key: str, value: str, issues: _Issues) -> tuple[str, str]:
    stripped_key, stripped_value = key.strip(), value.strip()
    if stripped_key != key or stripped_value != value:
        issues.deviation(RejectReason.BAD_SEGMENT, f"whitespace around {stripped_key!r}")
    return stripped_key, stripped_value


def _split_quoted(cp: str) -> list[str]:
    """Split CP items where a value may be ``//free text//`` containing separators."""
    items: list[str] = []
    start = i = 0
    n = len(cp)
    while i < n:
        c = cp[i]
        if c == "=" and cp.startswith("//", i + 1):
            close = cp.find("//", i + 3)
            i = n if close < 0 else close + 2
            continue
        if c == ";" or c == ",":
            items.append(cp[start:i])
            start = i + 1
        i += 1
    items.append(cp[start:])
    return items


@dataclass(frozen=True, slots=True)
class _KeyPlan:
    """How a data area with a given key skeleton splits into fields and factor groups.

    A logger sends the same keys in the same order every minute; only the values change. The
    skeleton (the data area with every value cut out) is computed in C by one regex
    substitution and the plan for it is cached, so the per-item Python loop runs once per
    logger layout instead of once per frame.
    """

    field_keys: tuple[str, ...]
    field_slice: slice
    groups: tuple[tuple[str, str, tuple[str, ...], slice], ...]
    """(2017 code, original code, suffixes, value slice) per factor, in the order sent."""
    numeric: tuple[int, ...]
    """Indexes of the values that must be numbers."""


_PLANS: dict[tuple[str, ...], _KeyPlan | None] = {}
_MAX_PLANS = 8192
_NOT_NUMBER_CHAR = re.compile(r"[^0-9.,+-]").search
_TWO_EQUALS = re.compile(r"=[^;=]*=").search


def _plan_for(keys: tuple[str, ...]) -> _KeyPlan | None:
    """The plan for a key layout, or None when it needs the general parser (odd layouts)."""
    try:
        return _PLANS[keys]
    except KeyError:
        pass
    plan = _build_plan(keys)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[keys] = plan
    return plan


def _build_plan(keys: tuple[str, ...]) -> _KeyPlan | None:
    if len(set(keys)) != len(keys):
        return None
    field_keys: list[str] = []
    codes: list[str] = []
    suffixes_of: dict[str, list[str]] = {}
    positions: dict[str, list[int]] = {}
    field_positions: list[int] = []
    for index, key in enumerate(keys):
        code, dash, suffix = key.partition("-")
        if dash:
            # Shapes a value could not have, so a misplaced value never passes for a key.
            if not (code.isascii() and code.isalnum() and suffix.isascii() and suffix.isalpha()):
                return None
            if code not in suffixes_of:
                suffixes_of[code] = []
                positions[code] = []
                codes.append(code)
            suffixes_of[code].append(suffix)
            positions[code].append(index)
        else:
            if not (key.isascii() and key.isalpha()) or codes:
                return None
            field_keys.append(key)
            field_positions.append(index)
    # Values are taken by contiguous slices: layouts that interleave factors use the general
    # parser.
    order = field_positions + [i for code in codes for i in positions[code]]
    if order != list(range(len(keys))):
        return None
    mapped = [_TO_2017.get(code, code) for code in codes]
    if len(set(mapped)) != len(mapped):
        return None
    groups = []
    start = len(field_keys)
    numeric: list[int] = []
    for code, target in zip(codes, mapped, strict=True):
        suffixes = tuple(suffixes_of[code])
        numeric.extend(start + n for n, s in enumerate(suffixes) if s in _NUMERIC_SUFFIXES)
        groups.append((target, code, suffixes, slice(start, start + len(suffixes))))
        start += len(suffixes)
    return _KeyPlan(tuple(field_keys), slice(0, len(field_keys)), tuple(groups), tuple(numeric))


def _parse_cp_planned(
    cp: str, lenient: bool
) -> tuple[dict[str, str], dict[str, FactorValue]] | None:
    """The fast path of ``_parse_cp``; None when the general parser must decide."""
    flat = cp.replace(",", ";")
    items = flat.count(";") + 1
    # Exactly one '=' per item: as many '=' as items and no item with two.
    if flat.count("=") != items or _TWO_EQUALS(flat):
        return None
    parts = flat.replace("=", ";").split(";")
    plan = _plan_for(tuple(parts[0::2]))
    if plan is None:
        return None
    values = parts[1::2]
    if plan.numeric:
        numbers = [values[i] for i in plan.numeric]
        joined = ",".join(numbers)
        if _NOT_NUMBER_CHAR(joined) or "" in numbers or (not lenient and not _NUMBERS_OK(joined)):
            return None
    # The plan guarantees equal lengths, so zip needs no strict check (hot path).
    fields = dict(zip(plan.field_keys, values[plan.field_slice]))  # noqa: B905
    factors: dict[str, FactorValue] = {}
    new = object.__new__
    for code, original, suffixes, part in plan.groups:
        # The frozen dataclass __init__ goes through object.__setattr__ per field; filling the
        # instance dict directly gives the same object at a third of the cost.
        factor = new(FactorValue)
        slots = factor.__dict__
        slots["code"] = code
        slots["original_code"] = original
        slots["fields"] = dict(zip(suffixes, values[part]))  # noqa: B905
        factors[code] = factor
    return fields, factors


def _parse_cp(
    cp: str, issues: _Issues, loose: bool
) -> tuple[dict[str, str], dict[str, FactorValue]]:
    if not loose and cp and "//" not in cp:
        planned = _parse_cp_planned(cp, issues.lenient)
        if planned is not None:
            return planned
    fields: dict[str, str] = {}
    groups: dict[str, dict[str, str]] = {}
    if not cp:
        return fields, {}
    items = _split_quoted(cp) if "//" in cp else cp.replace(",", ";").split(";")
    numbers: list[str] = []
    numeric = _NUMERIC_SUFFIXES
    for item in items:
        key, sep, value = item.partition("=")
        if loose:
            key, value = _strip(key, value, issues)
        if not sep:
            issues.deviation(RejectReason.BAD_SEGMENT, f"CP item without '=': {item!r}")
            continue
        code, dash, suffix = key.partition("-")
        if dash and code:
            group = groups.get(code)
            if group is None:
                groups[code] = {suffix: value}
            elif suffix in group:
                issues.deviation(RejectReason.BAD_SEGMENT, f"duplicate CP key {key}")
                continue
            else:
                group[suffix] = value
            if suffix in numeric:
                numbers.append(value)
        elif key in fields:
            issues.deviation(RejectReason.BAD_SEGMENT, f"duplicate CP key {key}")
        else:
            fields[key] = value
    if numbers:
        joined = ",".join(numbers)
        # Lenient mode only screens the character set (cheap, in C); strict checks the grammar.
        if (
            joined.translate(_NUMBER_CHARS)
            or "" in numbers
            or (not issues.lenient and not _NUMBERS_OK(joined))
        ):
            _report_numbers(groups, issues)
    factors: dict[str, FactorValue] = {}
    for original, values in groups.items():
        code = _TO_2017.get(original, original)
        if code in factors:
            _merge_collision(factors, code, original, values, issues)
        else:
            factors[code] = FactorValue(code, original, values)
    return fields, factors


_NUMBER_CHARS = str.maketrans("", "", "0123456789.-+,")
_NUMBERS_OK = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:,[-+]?(?:\d+\.?\d*|\.\d+))*").fullmatch


def _report_numbers(groups: dict[str, dict[str, str]], issues: _Issues) -> None:
    for code, values in groups.items():
        for suffix, value in values.items():
            if suffix in _NUMERIC_SUFFIXES and not _NUMBER.fullmatch(value):
                issues.deviation(RejectReason.BAD_FIELD, f"{code}-{suffix}={value!r} not a number")


def _merge_collision(
    factors: dict[str, FactorValue],
    code: str,
    original: str,
    values: dict[str, str],
    issues: _Issues,
) -> None:
    existing = factors[code]
    issues.deviation(
        RejectReason.BAD_SEGMENT,
        f"factor {code} sent as both {existing.original_code} and {original}",
    )
    merged = dict(values)
    merged.update(existing.fields)  # the first occurrence wins, as for duplicate keys
    factors[code] = FactorValue(code, existing.original_code, merged)


def _int_field(
    header: dict[str, str], key: str, issues: _Issues, max_digits: int
) -> tuple[int | None, bool]:
    """(value, present) of an integer header field."""
    raw = header.get(key)
    if raw is None:
        return None, False
    if not raw.isascii() or not raw.isdigit() or len(raw) > max_digits:
        issues.deviation(RejectReason.BAD_FIELD, f"{key}={raw!r} not an integer")
        return None, True
    value = int(raw)
    if len(raw) > 1 and raw[0] == "0":
        issues.note(RejectReason.BAD_FIELD, f"{key}={raw} zero-padded")
    return value, True


def _build_packet(
    header: dict[str, str],
    cp: str,
    fields: dict[str, str],
    factors: dict[str, FactorValue],
    issues: _Issues,
) -> Packet:
    get = header.get
    cn = get("CN")
    mn = get("MN")
    if not cn:
        raise FrameError(RejectReason.MISSING_FIELD, "CN")
    if len(cn) != 4 or not cn.isascii() or not cn.isdigit():
        raise FrameError(RejectReason.BAD_FIELD, f"CN={cn!r}")
    if not mn:
        raise FrameError(RejectReason.MISSING_FIELD, "MN")
    qn = get("QN")
    st = get("ST")
    pw = get("PW")
    if qn is None:
        issues.deviation(RejectReason.MISSING_FIELD, "QN")
    elif len(qn) != 17 or not qn.isascii() or not qn.isdigit():
        issues.deviation(RejectReason.BAD_FIELD, f"QN={qn!r}")
    if st is None:
        issues.deviation(RejectReason.MISSING_FIELD, "ST")
    elif len(st) != 2 or st.strip(_ST_CHARS):
        issues.deviation(RejectReason.BAD_FIELD, f"ST={st!r}")
    if pw is None:
        issues.deviation(RejectReason.MISSING_FIELD, "PW")
    elif len(pw) > 6:
        issues.deviation(RejectReason.BAD_FIELD, f"PW of {len(pw)} characters")

    flag, has_flag = _int_field(header, "Flag", issues, 3)
    if not has_flag:
        issues.deviation(RejectReason.MISSING_FIELD, "Flag")
    elif flag is not None and flag > 255:
        issues.deviation(RejectReason.BAD_FIELD, f"Flag={flag} > 255")
    _check_mn(mn, flag, issues)

    pnum, has_pnum = _int_field(header, "PNUM", issues, 4)
    pno, has_pno = _int_field(header, "PNO", issues, 4)
    if flag is not None and flag & 2:
        if not has_pnum or not has_pno:
            issues.deviation(RejectReason.MISSING_FIELD, "PNUM/PNO with Flag bit D set")
        elif pnum is not None and pno is not None and not 1 <= pno <= pnum:
            issues.deviation(RejectReason.BAD_FIELD, f"PNO={pno} outside 1..PNUM={pnum}")
    elif has_pnum or has_pno:
        issues.deviation(RejectReason.BAD_FIELD, "PNUM/PNO without Flag bit D")

    keys = tuple(header)
    if keys not in _CANONICAL_ORDERS:
        extra = _check_order(keys, issues)
        header_extra = {key: header[key] for key in extra}
    else:
        header_extra = {}

    data_time = fields.get("DataTime")
    if data_time is not None:
        _check_data_time(data_time, issues)
    return Packet(qn, st, cn, pw, mn, flag, pnum, pno, cp, fields, factors, header_extra)


def _check_mn(mn: str, flag: int | None, issues: _Issues) -> None:
    version = flag >> 2 if flag is not None else None
    if version in (1, 2):
        if len(mn) != 24 or mn.strip(_UPPER_HEX):
            issues.deviation(RejectReason.BAD_FIELD, f"MN={mn!r} is not 24 upper-case hex")
    elif version == 0 and (len(mn) != 14 or not mn.isascii() or not mn.isalnum()):
        issues.deviation(RejectReason.BAD_FIELD, f"MN={mn!r} is not 14 characters (2005)")


def _check_order(keys: tuple[str, ...], issues: _Issues) -> list[str]:
    extra = [key for key in keys if key not in _HEADER_RANK]
    if extra:
        issues.note(RejectReason.BAD_SEGMENT, f"unknown header keys {', '.join(extra)}")
    ranks = [_HEADER_RANK.get(key, len(_HEADER_KEYS)) for key in keys]
    if ranks != sorted(ranks):
        issues.note(RejectReason.BAD_SEGMENT, "header fields not in Table 3 order")
    return extra


def _check_data_time(raw: str, issues: _Issues) -> None:
    parsed = parse_time(raw)
    if parsed is None:
        issues.deviation(RejectReason.BAD_FIELD, f"DataTime={raw!r}")
    elif len(raw) == 17:
        issues.deviation(RejectReason.BAD_FIELD, f"DataTime={raw} has milliseconds")


def peek_header(frame: bytes) -> dict[str, str]:
    """Best-effort header fields of a frame that did not decode (for error replies and logs)."""
    start = frame.find(b"##")
    if start < 0:
        return {}
    body = frame[start + 6 :]
    cp_at = body.find(b"CP=")
    if cp_at >= 0:
        body = body[:cp_at]
    header: dict[str, str] = {}
    text = body.decode("utf-8", errors="replace").replace(",", ";")
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip()
        if sep and key and key not in header:
            header[_HEADER_BY_UPPER.get(key.upper(), key)] = value.strip()
    return header


# --- encoding -------------------------------------------------------------------------------


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
