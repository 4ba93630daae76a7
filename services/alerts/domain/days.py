"""Day windows for daily-basis outlets (water, MSW incineration): >= 20 valid hours make a
valid day, whose value is the mean of the valid hourly values [domain 1.1, 1.3, 1.4].

Flow weighting of water daily means is [M] in domain 1.3 and not applied: the arithmetic
mean is what HJ 76 states for flue gas and is the conservative reading until verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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

    def set_hour(self, offset: int, value: float | None) -> bool:
        """Record an hour's valid value (None = invalid); True if it changed."""
        changed = self.hours[offset] != value or not self.judged[offset]
        self.hours[offset] = value
        self.judged[offset] = True
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
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DayWindow:
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
        )


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
        return f"{self.basis}|{self.valid_hours}|{self.valid}|{self.mean!r}"

    def hour_labels(self) -> tuple[str, ...]:
        base = day_start(self.day)
        return tuple(
            f"hour {at(base + i * HOUR).isoformat()}"
            for i, v in enumerate(self.hour_values)
            if v is not None
        )


def close_day(window: DayWindow, rules: ValidityRules = HJ76) -> DayResult:
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
        )
    n = len(values)
    return DayResult(
        outlet_id=window.outlet_id,
        factor=window.factor,
        day=window.day,
        basis="hours",
        valid_hours=n,
        valid=rules.day_is_valid(n),
        mean=sum(values) / n if n else None,
        hour_values=tuple(window.hours),
        logger_avg=window.logger_avg,
    )
