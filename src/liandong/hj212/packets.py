"""A decoded HJ 212 packet: header fields, the data area and its factors by code.

Times: ``DataTime`` and the other N14 fields carry no zone; they are station local time
(China Standard Time, UTC+8, for loggers in China). ``Packet.data_time`` returns a *naive*
datetime in that local time and callers attach the zone.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from liandong.hj212.crc import CrcVariant

MAX_SEGMENT = 1024
"""Largest data segment the standard allows (Table 2)."""
HARD_MAX_SEGMENT = 9999
"""Largest data segment the 4-digit length field can describe; lenient mode stops here."""


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


# ASCII digits only (\d would take full-width or Arabic-Indic digits, which float() reads)
NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")
NUMERIC_SUFFIXES = frozenset(
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
        if raw is None or not NUMBER.fullmatch(raw):
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
