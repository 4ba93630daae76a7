"""Day windows for daily-basis outlets (water, MSW incineration): >= 20 valid hours make a
valid day [domain 1.1, 1.3, 1.4].

The day's value: for water, the flow-weighted mean of the valid hourly values, sum(c_h q_h) /
sum(q_h), with q_h the hour's flow volume (Cou of the outlet's flow factor, or its valid hourly
mean flow x 1 h when Cou is not sent) -- online water analysers are judged on the valid daily
mean, "usually flow-weighted" (HJ 356 section 7) [domain 1.3]. When flow is missing or invalid
for any hour used, or the flow over those hours sums to 0, the arithmetic mean is used and the
result says why. Flue gas (MSW incineration) days are the arithmetic mean (HJ 76).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from alerts.domain.periods import DAY, HOUR, at, day_start
from alerts.domain.validity import HJ76, ValidityRules, flag_code


@dataclass(slots=True)
class DayWindow:
    outlet_id: str
    factor: str
    day: int  # CST day index
    hours: list[float | None] = field(default_factory=lambda: [None] * 24)  # valid hour values
    judged: list[bool] = field(default_factory=lambda: [False] * 24)  # hour closed at least once
    logger_avg: float | None = None  # the logger's 2031 day record
    logger_flag: str | None = None
    logger_ref: str | None = None
    revision: int = -1
    closed: bool = False
    last_digest: str = ""
    # Flow factor only: each hour's volume from Cou (None = no Cou); allocated on first use.
    volumes: list[float | None] | None = None

    def set_hour(self, offset: int, value: float | None, volume: float | None = None) -> bool:
        """Record an hour's valid value (None = invalid) and, for the flow factor, its
        volume; True if either changed."""
        changed = self.hours[offset] != value or not self.judged[offset]
        self.hours[offset] = value
        self.judged[offset] = True
        if volume is not None and self.volumes is None:
            self.volumes = [None] * 24
        if self.volumes is not None:
            changed = changed or self.volumes[offset] != volume
            self.volumes[offset] = volume
        return changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "outlet_id": self.outlet_id,
            "factor": self.factor,
            "day": self.day,
            "hours": list(self.hours),
            "judged": list(self.judged),
            "logger_avg": self.logger_avg,
            "logger_flag": self.logger_flag,
            "logger_ref": self.logger_ref,
            "revision": self.revision,
            "closed": self.closed,
            "last_digest": self.last_digest,
            "volumes": None if self.volumes is None else list(self.volumes),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DayWindow:
        volumes = doc.get("volumes")  # absent in state written before flow weighting
        return cls(
            outlet_id=doc["outlet_id"],
            factor=doc["factor"],
            day=int(doc["day"]),
            hours=list(doc["hours"]),
            judged=list(doc["judged"]),
            logger_avg=doc.get("logger_avg"),
            logger_flag=doc.get("logger_flag"),
            logger_ref=doc.get("logger_ref"),
            revision=int(doc.get("revision", -1)),
            closed=bool(doc.get("closed", False)),
            last_digest=str(doc.get("last_digest", "")),
            volumes=None if volumes is None else list(volumes),
        )


class MeanBasis(StrEnum):
    ARITHMETIC = "arithmetic"
    FLOW_WEIGHTED = "flow-weighted"


@dataclass(frozen=True, slots=True)
class DayResult:
    outlet_id: str
    factor: str
    day: int
    basis: str  # "hours" (platform recomputation) or "logger_day" (2031, no hour data)
    valid_hours: int
    valid: bool
    mean: float | None
    hour_values: tuple[float | None, ...] = ()
    logger_avg: float | None = None
    mean_basis: MeanBasis = MeanBasis.ARITHMETIC
    mean_note: str = ""  # how the mean was formed; why not flow-weighted when it is not
    arithmetic_mean: float | None = None
    flow_total: float | None = None  # sum of the weights, when flow-weighted

    @property
    def start(self) -> datetime:
        return at(day_start(self.day))

    @property
    def end(self) -> datetime:
        return at(day_start(self.day) + DAY)

    @property
    def value(self) -> float | None:
        return self.mean if self.valid else None

    def digest(self) -> str:
        return f"{self.basis}|{self.valid_hours}|{self.valid}|{self.mean!r}|{self.mean_basis}"

    def hour_labels(self) -> tuple[str, ...]:
        base = day_start(self.day)
        return tuple(
            f"hour {at(base + i * HOUR).isoformat()}"
            for i, v in enumerate(self.hour_values)
            if v is not None
        )


def _hour_of_day(day: int, offset: int) -> str:
    return at(day_start(day) + offset * HOUR).strftime("%H:%M")


def _weights(
    window: DayWindow, flow: DayWindow | None, used: list[int]
) -> tuple[list[float] | None, str]:
    """Per used hour, the flow volume to weight it by, and where it came from; or None and
    why the day cannot be flow-weighted."""
    if flow is None:
        return None, "arithmetic, no flow data for the day"
    volumes = flow.volumes
    # One source for the whole day: Cou volumes (m3) and mean rates (L/s) have different
    # units, so they are never mixed within a day.
    if volumes is not None:
        cou = [volumes[i] for i in used]
        if all(v is not None and v >= 0.0 for v in cou):
            return [v for v in cou if v is not None], "hourly Cou volume"
    missing = [i for i in used if (q := flow.hours[i]) is None or q < 0.0]
    if missing:
        labels = ", ".join(_hour_of_day(window.day, i) for i in missing)
        return None, f"arithmetic, flow missing or invalid for hours {labels}"
    rates = [flow.hours[i] for i in used]  # none missing (checked above)
    return [q * HOUR for q in rates if q is not None], "hourly mean flow x 1 h"


def close_day(
    window: DayWindow,
    rules: ValidityRules = HJ76,
    flow: DayWindow | None = None,
    flow_weighted: bool = False,
) -> DayResult:
    """The day from its hours. `flow_weighted` (water outlets): weight each valid hour by
    the flow of the same hour from `flow`, the day window of the outlet's flow factor."""
    values = [v for v in window.hours if v is not None]
    if not any(window.judged) and window.logger_ref is not None:
        # No hour was ever seen: the logger's own day record, valid only when flagged N.
        ok = flag_code(window.logger_flag) == "N" and window.logger_avg is not None
        return DayResult(
            window.outlet_id,
            window.factor,
            window.day,
            "logger_day",
            0,
            ok,
            window.logger_avg,
            (),
            window.logger_avg,
            mean_note="the logger's 2031 day record (no hour data)",
        )
    n = len(values)
    arithmetic = sum(values) / n if n else None
    mean = arithmetic
    basis = MeanBasis.ARITHMETIC
    note = "arithmetic mean of the valid hours (HJ 76)"
    total: float | None = None
    if flow_weighted and n:
        used = [i for i, v in enumerate(window.hours) if v is not None]
        weights, note = _weights(window, flow, used)
        if weights is not None:
            total = sum(weights)
            if total > 0.0:
                mean = sum(w * v for w, v in zip(weights, values, strict=True)) / total
                basis = MeanBasis.FLOW_WEIGHTED
                note = f"flow-weighted by {note} over {n} valid hours"
            else:
                note = f"arithmetic, total flow over the {n} valid hours is 0 ({note})"
                total = None
    return DayResult(
        outlet_id=window.outlet_id,
        factor=window.factor,
        day=window.day,
        basis="hours",
        valid_hours=n,
        valid=rules.day_is_valid(n),
        mean=mean,
        hour_values=tuple(window.hours),
        logger_avg=window.logger_avg,
        mean_basis=basis,
        mean_note=note,
        arithmetic_mean=arithmetic,
        flow_total=total,
    )
