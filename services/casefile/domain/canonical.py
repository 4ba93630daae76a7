"""Canonical encoding of audit payloads, request fingerprints and exported bundles.

The bytes hashed for evidence must be reproducible by anyone, in any language, from the
stored text. The rules (also quoted in every exported bundle):

* JSON, keys sorted by code point, separators ``,`` and ``:`` (no whitespace), UTF-8, non-ASCII
  written as is (no ``\\u`` escapes), ``"``/``\\``/control characters escaped as Python's
  ``json`` does (``\\n``, ``\\u0001`` ...). Strings are not Unicode-normalised.
* datetimes must be timezone-aware and are written as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
  (always six fractional digits); dates as ``YYYY-MM-DD``.
* ``Decimal`` is written as a JSON *string* holding ``str(value)`` (scale is kept:
  ``"1.50"`` stays ``"1.50"``), so no binary rounding can change a measured value or a fine.
* floats are allowed only when finite and are written with Python's shortest round-trip
  ``repr`` (the same digits as ECMAScript's ``Number.prototype.toString`` for these values);
  domain values that matter (results, fines) are Decimals, not floats.
* timedeltas as an ISO-8601 duration ``P<days>DT<seconds>.<micro:06>S``; enums by value;
  dataclasses as objects of their fields; tuples/lists as arrays; dict keys must be strings;
  sets are refused (no defined order).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

_INSTANT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_instant(at: datetime) -> str:
    """UTC ISO-8601 with microseconds; refuses naive datetimes (their instant is unknown)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: an instant needs a timezone")
    utc = at.astimezone(UTC)
    # the year by hand: glibc's %Y does not pad years before 1000 to four digits, and
    # "415-04-14T..." is no ISO-8601 that the case document could be read back from
    return f"{utc.year:04d}" + utc.strftime(_INSTANT_FORMAT[2:])


def parse_instant(text: str) -> datetime:
    return datetime.strptime(text, _INSTANT_FORMAT).replace(tzinfo=UTC)


def format_duration(span: timedelta) -> str:
    return f"P{span.days}DT{span.seconds}.{span.microseconds:06d}S"


def to_jsonable(value: Any) -> Any:
    """Convert domain values to the plain JSON data model under the rules above."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite float cannot be encoded canonically")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite Decimal cannot be encoded canonically")
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"object keys must be strings, got {key!r}")
            out[key] = to_jsonable(item)
        return out
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, set | frozenset):
        raise ValueError("sets have no canonical order; pass a sorted tuple")
    raise ValueError(f"cannot encode {type(value).__name__} canonically")


def canonical_json(value: Any) -> str:
    return json.dumps(
        to_jsonable(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def canonical_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8")
