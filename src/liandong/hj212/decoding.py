"""HJ 212 frame decoding (HJ 212-2017 §6.3, with HJ/T 212-2005 and field quirks).

A frame is ``##`` + 4-digit length + data segment + 4-hex CRC + CR LF. Length and CRC are over
the UTF-8 bytes of the data segment. ``decode`` has two modes:

* strict: any deviation from the standard raises ``FrameError``;
* lenient: tolerable deviations (hj212.md §11 and the list in ``decode``) become warnings of the
  form ``"<reason>: <detail>"`` and decoding carries on. Deviations that leave nothing trustworthy
  (bad CRC, no ``CP=&&``, no CN or MN, undecodable bytes) still raise.

Some warnings are notes rather than deviations and appear in both modes (header fields out of
Table 3 order, unknown header keys, zero-padded integers). A strict decode without warnings is
canonical: ``encode(decode(frame).packet) == frame``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from liandong.hj212.crc import CrcVariant, crc_hex, hj212_crc16, match_crc
from liandong.hj212.factors import CODE_2005_TO_2017
from liandong.hj212.native import _from_native, _native_decode_clean
from liandong.hj212.packets import (
    HARD_MAX_SEGMENT,
    MAX_SEGMENT,
    NUMBER,
    NUMERIC_SUFFIXES,
    DecodeResult,
    FactorValue,
    Packet,
    parse_time,
)
from liandong.hj212.rejects import FrameError, RejectReason

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
            return check_data_area(result, lenient=lenient)
    return decode_python(
        frame, lenient=lenient, accepted_crcs=accepted_crcs, max_segment=max_segment
    )


# uploads whose data area must say when the data is from (HJ 212-2017 Table 5)
UPLOADS_WITH_DATA_TIME = frozenset({"2011", "2051", "2061", "2031"})
# a factor code: letters, digits and '-' / '_' (no control characters, no CR LF, no spaces)
_FACTOR_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_data_area(result: DecodeResult, *, lenient: bool) -> DecodeResult:
    """The data area's grammar, checked after either decoder: a factor code must be a code
    (a line-based splitter's damage, a CR LF or control character inside, is refused); an
    upload must carry DataTime. Strict mode raises; lenient mode (the gateway's default)
    drops a malformed factor with a warning (it never reaches a record) and takes an upload
    without DataTime with a warning."""
    packet = result.packet
    warnings = list(result.warnings)
    bad = [code for code in packet.factors if not _FACTOR_CODE.fullmatch(code)]
    bad += [
        f.original_code
        for f in packet.factors.values()
        if f.original_code != f.code and not _FACTOR_CODE.fullmatch(f.original_code)
    ]
    if bad:
        detail = f"malformed factor code(s) {', '.join(map(repr, bad))}"
        if not lenient:
            raise FrameError(RejectReason.BAD_FIELD, detail)
        warnings.append(f"{RejectReason.BAD_FIELD}: {detail} (dropped)")
        kept = {
            code: f
            for code, f in packet.factors.items()
            if _FACTOR_CODE.fullmatch(code) and _FACTOR_CODE.fullmatch(f.original_code)
        }
        packet = dataclasses.replace(packet, factors=kept)
    if packet.cn in UPLOADS_WITH_DATA_TIME and "DataTime" not in packet.fields:
        detail = f"CN={packet.cn} upload without DataTime"
        if not lenient:
            raise FrameError(RejectReason.MISSING_FIELD, detail)
        warnings.append(f"{RejectReason.MISSING_FIELD}: {detail}")
    if packet is result.packet and len(warnings) == len(result.warnings):
        return result
    return dataclasses.replace(result, packet=packet, warnings=tuple(warnings))


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
    return check_data_area(DecodeResult(packet, tuple(issues.warnings), variant), lenient=lenient)


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
        numeric.extend(start + n for n, s in enumerate(suffixes) if s in NUMERIC_SUFFIXES)
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
    numeric = NUMERIC_SUFFIXES
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
_NUMBERS_OK = re.compile(
    r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:,[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))*"
).fullmatch


def _report_numbers(groups: dict[str, dict[str, str]], issues: _Issues) -> None:
    for code, values in groups.items():
        for suffix, value in values.items():
            if suffix in NUMERIC_SUFFIXES and not NUMBER.fullmatch(value):
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
