"""Hour windows: minute values of one (outlet, factor, hour) and the hour they add up to.

HJ 76-2017 App. B: an hour is valid with >= 45 valid minute values; its value is their mean
[domain 1.1]. O2 is averaged over the same minutes the pollutant counts, and the corrected
hourly mean is the measured hourly mean corrected with that O2 mean [domain 1.2].

`HourWindow` is the state the faust table stores: plain data with to_dict/from_dict.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from alerts.domain.correction import DEFAULT_O2_CEILING, o2_corrected
from alerts.domain.periods import HOUR, at, hour_start
from alerts.domain.registry import DataMark, Medium, Outlet
from alerts.domain.validity import (
    EXEMPTING_MARKS,
    EXPLAINED,
    FLAG_EXCLUSIONS,
    HJ76,
    MARK_EXCLUSIONS,
    Exclusion,
    ValidityRules,
    flag_code,
)

MISSING = ord(".")
_N = ord("N")
_UNKNOWN = ord("?")
_NAN = math.nan
_FLAG_BY_CODE: dict[int, Exclusion] = {ord(k): v for k, v in FLAG_EXCLUSIONS.items()}
_FLAG_BY_CODE[_UNKNOWN] = Exclusion.UNKNOWN_FLAG
# Codes of flue-gas state parameters (flow, velocity, temperature, pressure, humidity, O2):
# these are never O2-corrected [domain 1.5 gas codes].
_PARAMETER_PREFIXES = ("a00", "a01", "a19")


def needs_correction(outlet: Outlet, factor: str) -> bool:
    return (
        outlet.medium is Medium.GAS
        and outlet.reference_o2 is not None
        and not factor.startswith(_PARAMETER_PREFIXES)
    )


class AddOutcome(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # same value and flag again: at-least-once re-delivery
    CONFLICT = "conflict"  # same minute, different value: the first one stays in use


@dataclass(slots=True)
class HourWindow:
    outlet_id: str
    factor: str
    hour: int  # epoch hour index
    values: array[float] | None = None  # NaN = record without a value
    flags: bytearray | None = None  # one flag letter per minute, "." = nothing received
    refs: list[str | None] | None = None
    # Per-minute Cou (flow factors: volume in the minute), NaN = not sent; allocated only
    # when a minute carries one, so pollutant windows stay as small as before.
    cous: array[float] | None = None
    received: int = 0
    logger_avg: float | None = None  # the logger's own 2061 hour record
    logger_zs_avg: float | None = None
    logger_cou: float | None = None
    logger_flag: str | None = None
    logger_ref: str | None = None
    revision: int = -1  # how many times judged; -1 = never
    closed: bool = False
    last_digest: str = ""

    def add_minute(
        self,
        minute: int,
        value: float | None,
        flag: str | None,
        ref: str,
        cou: float | None = None,
    ) -> AddOutcome:
        flags = self.flags
        if flags is None:
            flags = self.flags = bytearray(b"." * 60)
            self.values = array("d", [_NAN]) * 60
            self.refs = [None] * 60
        code = _N if not flag or flag == "N" else ord(flag_code(flag))
        values = self.values
        refs = self.refs
        assert values is not None and refs is not None
        v = _NAN if value is None else value
        current = flags[minute]
        if current == MISSING:
            flags[minute] = code
            values[minute] = v
            refs[minute] = ref
            self.received += 1
            if cou is not None:
                if self.cous is None:
                    self.cous = array("d", [_NAN]) * 60
                self.cous[minute] = cou
            return AddOutcome.NEW
        old = values[minute]
        if current == code and (old == v or (old != old and v != v)):
            return AddOutcome.DUPLICATE
        return AddOutcome.CONFLICT

    def value_at(self, minute: int) -> float | None:
        if self.values is None or self.flags is None or self.flags[minute] == MISSING:
            return None
        v = self.values[minute]
        return None if v != v else v

    def set_logger_hour(
        self,
        avg: float | None,
        zs_avg: float | None,
        flag: str | None,
        ref: str,
        cou: float | None = None,
    ) -> AddOutcome:
        if self.logger_ref is not None:
            same = (avg, zs_avg, flag) == (self.logger_avg, self.logger_zs_avg, self.logger_flag)
            return AddOutcome.DUPLICATE if same else AddOutcome.CONFLICT
        self.logger_avg, self.logger_zs_avg, self.logger_flag = avg, zs_avg, flag
        self.logger_cou = cou
        self.logger_ref = ref
        return AddOutcome.NEW

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "outlet_id": self.outlet_id,
            "factor": self.factor,
            "hour": self.hour,
            "values": None if self.values is None else [None if v != v else v for v in self.values],
            "flags": None if self.flags is None else self.flags.decode("ascii"),
            "refs": None if self.refs is None else list(self.refs),
            "received": self.received,
            "logger_avg": self.logger_avg,
            "logger_zs_avg": self.logger_zs_avg,
            "logger_flag": self.logger_flag,
            "logger_ref": self.logger_ref,
            "revision": self.revision,
            "closed": self.closed,
            "last_digest": self.last_digest,
        }
        # Flow windows only: pollutant windows' stored state stays the size it was.
        if self.cous is not None:
            doc["cous"] = [None if v != v else v for v in self.cous]
        if self.logger_cou is not None:
            doc["logger_cou"] = self.logger_cou
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> HourWindow:
        values = doc.get("values")
        flags = doc.get("flags")
        refs = doc.get("refs")
        cous = doc.get("cous")  # absent in state written before Cou was kept
        return cls(
            outlet_id=doc["outlet_id"],
            factor=doc["factor"],
            hour=int(doc["hour"]),
            values=None
            if values is None
            else array("d", [_NAN if v is None else v for v in values]),
            flags=None if flags is None else bytearray(flags.encode("ascii")),
            refs=None if refs is None else list(refs),
            cous=None if cous is None else array("d", [_NAN if v is None else v for v in cous]),
            received=int(doc.get("received", 0)),
            logger_avg=doc.get("logger_avg"),
            logger_zs_avg=doc.get("logger_zs_avg"),
            logger_cou=doc.get("logger_cou"),
            logger_flag=doc.get("logger_flag"),
            logger_ref=doc.get("logger_ref"),
            revision=int(doc.get("revision", -1)),
            closed=bool(doc.get("closed", False)),
            last_digest=str(doc.get("last_digest", "")),
        )


@dataclass(frozen=True, slots=True)
class HourResult:
    outlet_id: str
    factor: str
    hour: int
    basis: str  # "minutes" (platform recomputation), "logger_hour" (2061 record) or "none"
    received: int
    valid_minutes: int
    valid: bool  # enough valid data (>= 45 minutes, or a logger hour flagged N)
    mean: float | None  # measured, over valid minutes
    o2_mean: float | None  # over the same minutes
    corrected: float | None
    correction_note: str | None
    minimum: float | None
    maximum: float | None
    needs_o2: bool
    excluded: dict[str, int] = field(default_factory=dict)
    explained: int = 0  # minutes excluded for a reason that explains them (marks, flag F)
    record_refs: tuple[str, ...] = ()
    exempting_marks: tuple[str, ...] = ()  # approved start-up/shut-down marks overlapping
    logger_avg: float | None = None
    logger_zs_avg: float | None = None
    # Flow factors: volume in the hour from Cou (see `close_hour`); None without Cou.
    volume: float | None = None

    @property
    def start(self) -> datetime:
        return at(hour_start(self.hour))

    @property
    def end(self) -> datetime:
        return at(hour_start(self.hour) + HOUR)

    @property
    def value(self) -> float | None:
        """The value a limit is compared with: corrected for corrected factors, else measured."""
        if not self.valid:
            return None
        return self.corrected if self.needs_o2 else self.mean

    def digest(self) -> str:
        base = f"{self.basis}|{self.valid_minutes}|{self.valid}|{self.value!r}|{self.mean!r}"
        # Only flow hours carry a volume; other digests stay as stored before it existed.
        return base if self.volume is None else f"{base}|{self.volume!r}"


def _minute_exclusions(
    window: HourWindow | None, marks: Iterable[DataMark], start: float
) -> list[Exclusion | None]:
    """Per minute: None if valid, else the reason (flags first, then approved marks)."""
    out: list[Exclusion | None] = [Exclusion.MISSING] * 60
    if window is not None and window.flags is not None and window.values is not None:
        flags = window.flags
        values = window.values
        for i in range(60):
            code = flags[i]
            if code == _N:
                out[i] = None if values[i] == values[i] else Exclusion.NO_VALUE
            elif code != MISSING:
                out[i] = _FLAG_BY_CODE.get(code, Exclusion.UNKNOWN_FLAG)
    for mark in marks:
        exclusion = MARK_EXCLUSIONS.get(mark.kind)
        if exclusion is None:
            continue
        for i in range(60):
            # An approved mark also explains minutes that never arrived.
            if (out[i] is None or out[i] is Exclusion.MISSING) and mark.covers(start + 60 * i):
                out[i] = exclusion
    return out


def close_hour(
    outlet: Outlet,
    factor: str,
    hour: int,
    window: HourWindow | None,
    o2_window: HourWindow | None,
    marks: list[DataMark],
    o2_marks: list[DataMark],
    rules: ValidityRules = HJ76,
    o2_ceiling: float = DEFAULT_O2_CEILING,
) -> HourResult:
    """Compute the hour from its minutes (or, with no minute at all, the logger's 2061 record)."""
    start = hour_start(hour)
    needs_o2 = needs_correction(outlet, factor)
    exempting = tuple(m.reference for m in marks if m.kind in EXEMPTING_MARKS)
    received = window.received if window else 0
    if received == 0 and window is not None and window.logger_ref is not None:
        return _from_logger_hour(
            outlet, factor, hour, window, o2_window, needs_o2, exempting, o2_ceiling
        )
    exclusions = _minute_exclusions(window, marks, start)
    o2_exclusions = _minute_exclusions(o2_window, o2_marks, start) if needs_o2 else None
    excluded: dict[str, int] = {}
    explained = 0
    total = 0.0
    o2_total = 0.0
    n = 0
    lo = math.inf
    hi = -math.inf
    refs: list[str] = []
    values = window.values if window else None
    o2_values = o2_window.values if o2_window else None
    window_refs = window.refs if window else None
    cous = window.cous if window else None
    cou_total = 0.0
    cou_complete = cous is not None
    for i in range(60):
        reason = exclusions[i]
        if reason is None and o2_exclusions is not None and o2_exclusions[i] is not None:
            reason = Exclusion.O2_INVALID
        if reason is not None:
            excluded[reason.value] = excluded.get(reason.value, 0) + 1
            if reason in EXPLAINED:
                explained += 1
            continue
        assert values is not None
        v = values[i]
        n += 1
        total += v
        lo = min(lo, v)
        hi = max(hi, v)
        if o2_exclusions is not None:
            assert o2_values is not None
            o2_total += o2_values[i]
        if cous is not None:
            cou = cous[i]
            if cou == cou:
                cou_total += cou
            else:
                cou_complete = False
        if window_refs is not None and window_refs[i] is not None:
            refs.append(window_refs[i])  # type: ignore[arg-type]
    mean = total / n if n else None
    o2_mean = o2_total / n if n and needs_o2 else None
    corrected: float | None = None
    note: str | None = None
    if mean is not None:
        if needs_o2:
            c = o2_corrected(mean, o2_mean, outlet.reference_o2, o2_ceiling)
            corrected, note = c.value, c.reason
        else:
            corrected = mean
    valid = rules.hour_is_valid(n) and (corrected is not None or not needs_o2)
    # The hour's volume: Cou of the valid minutes scaled to the full hour, i.e. the minutes
    # not counted flowed at the counted minutes' rate, as the hourly mean stands for the
    # whole hour. Only when every valid minute carried Cou.
    volume = cou_total * 60 / n if valid and cou_complete and n else None
    return HourResult(
        outlet_id=outlet.outlet_id,
        factor=factor,
        hour=hour,
        basis="minutes" if received else "none",
        received=received,
        valid_minutes=n,
        valid=valid,
        mean=mean,
        o2_mean=o2_mean,
        corrected=corrected,
        correction_note=note,
        minimum=lo if n else None,
        maximum=hi if n else None,
        needs_o2=needs_o2,
        excluded=excluded,
        explained=explained,
        record_refs=tuple(refs),
        exempting_marks=exempting,
        logger_avg=window.logger_avg if window else None,
        logger_zs_avg=window.logger_zs_avg if window else None,
        volume=volume,
    )


def _from_logger_hour(
    outlet: Outlet,
    factor: str,
    hour: int,
    window: HourWindow,
    o2_window: HourWindow | None,
    needs_o2: bool,
    exempting: tuple[str, ...],
    o2_ceiling: float,
) -> HourResult:
    """No minute data at all: fall back to the logger's hour record. HJ 212 C.16: a flue-gas
    hour is flagged N only with >= 75 % normal values (= 45 of 60 minutes), so flag N on the
    2061 record stands for a valid hour; any other flag makes it invalid."""
    code = flag_code(window.logger_flag)
    reason = None if code == "N" else _FLAG_BY_CODE.get(ord(code), Exclusion.UNKNOWN_FLAG)
    mean = window.logger_avg
    corrected: float | None = mean
    note: str | None = "logger 2061 hour record (no minute data received)"
    o2_mean = o2_window.logger_avg if o2_window else None
    if needs_o2:
        if window.logger_zs_avg is not None:
            corrected = window.logger_zs_avg
            note = "logger 2061 ZsAvg used (no minute data received)"
        elif mean is not None:
            c = o2_corrected(mean, o2_mean, outlet.reference_o2, o2_ceiling)
            corrected, note = c.value, c.reason or note
    valid = reason is None and corrected is not None
    return HourResult(
        outlet_id=outlet.outlet_id,
        factor=factor,
        hour=hour,
        basis="logger_hour",
        received=0,
        valid_minutes=0,
        valid=valid,
        mean=mean,
        o2_mean=o2_mean,
        corrected=corrected,
        correction_note=note,
        minimum=None,
        maximum=None,
        needs_o2=needs_o2,
        excluded={reason.value: 1} if reason else {},
        record_refs=(window.logger_ref,) if window.logger_ref else (),
        exempting_marks=exempting,
        logger_avg=window.logger_avg,
        logger_zs_avg=window.logger_zs_avg,
        volume=window.logger_cou if valid else None,
    )
