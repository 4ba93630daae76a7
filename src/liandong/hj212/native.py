"""The native hot path of the decoder (the Rust crate in ``liandong/hj212/rust``, built by
``make install``): a clean frame is split natively and wrapped here in the codec's dataclasses.
Without the extension the pure-Python decoder does everything."""

from __future__ import annotations

from collections.abc import Callable

from liandong.hj212.crc import CrcVariant
from liandong.hj212.factors import CODE_2005_TO_2017
from liandong.hj212.packets import DecodeResult, FactorValue, Packet, parse_time

_TO_2017 = CODE_2005_TO_2017


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
    """The native hot path (liandong/hj212/rust, built by ``make install``); without it the
    pure-Python decoder does everything."""
    try:
        from hj212_native import decode_clean
    except ImportError:  # pragma: no cover - depends on the installation
        return None
    return decode_clean


_native_decode_clean = _load_native()


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
