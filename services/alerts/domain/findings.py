"""Findings: one rule evaluated over one period of one outlet/factor, firing or not.

A non-firing finding is evidence too: it clears episodes after their quiet period and
withdraws an hour from an episode when late data changes its judgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from alerts.domain.explain import Explanation

ALL_FACTORS = "*"


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    MAJOR = 2
    CRITICAL = 3


class FindingKind(StrEnum):
    EXCEEDANCE_HOURLY = "exceedance_hourly"
    EXCEEDANCE_DAILY = "exceedance_daily"
    PH_OUT_OF_RANGE = "ph_out_of_range"
    EXCEEDANCE_EXEMPTED = "exceedance_exempted"
    PREWARNING = "prewarning"
    CONSTANT_VALUE = "constant_value"
    ZERO_VALUE = "zero_value"
    NEGATIVE_VALUE = "negative_value"
    OVER_RANGE = "over_range"
    O2_DILUTION = "o2_dilution"
    SUDDEN_DROP = "sudden_drop"
    FLOW_MISMATCH = "flow_mismatch"
    LOGGER_OFFLINE = "logger_offline"
    HOUR_MISSING = "hour_missing"
    HOUR_INCOMPLETE = "hour_incomplete"
    FUTURE_TIMESTAMP = "future_timestamp"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    BULK_BACKFILL = "bulk_backfill"
    CORRECTED_MISMATCH = "corrected_mismatch"
    LOGGER_HOUR_MISMATCH = "logger_hour_mismatch"
    LIMIT_HUGGING = "limit_hugging"
    PARAMETER_CHANGED = "parameter_changed"


# Stable rule ids and the basis each rule rests on (domain.md section in brackets).
RULES: dict[FindingKind, tuple[str, str]] = {
    FindingKind.EXCEEDANCE_HOURLY: (
        "LD-EXC-H/1",
        "valid 1-h O2-corrected mean above the limit in force (HJ 76-2017 App. B) "
        "[domain 1.1, 1.3]",
    ),
    FindingKind.EXCEEDANCE_DAILY: (
        "LD-EXC-D/1",
        "valid daily mean (>= 20 valid hours) above the daily limit (GB 18918 4.1.4.2, "
        "GB 8978 4.2, GB 18485) [domain 1.1, 1.3]",
    ),
    FindingKind.PH_OUT_OF_RANGE: (
        "LD-PH/1",
        "valid hourly pH outside the permitted range; pH is a range limit, not a mean "
        "(GB 8978 / GB 18918 pH 6-9) [domain 3.5, 3.6]",
    ),
    FindingKind.EXCEEDANCE_EXEMPTED: (
        "LD-EXC-X/1",
        "exceedance inside an approved start-up/shut-down mark, charged to the annual cap "
        "(MEE 2022 No. 21 marking rule; MSW 60 h/yr) [domain 1.6]",
    ),
    FindingKind.PREWARNING: (
        "LD-PRE/1",
        "corrected real-time values above the limit for N consecutive readings before the "
        "hour closes (事前预警) [domain 1.6]",
    ),
    FindingKind.CONSTANT_VALUE: ("LD-ANO-CONST/1", "恒值: identical values [domain 2.2]"),
    FindingKind.ZERO_VALUE: ("LD-ANO-ZERO/1", "零值: value 0 for N readings [domain 2.2]"),
    FindingKind.NEGATIVE_VALUE: ("LD-ANO-NEG/1", "负值: value below 0 [domain 2.2]"),
    FindingKind.OVER_RANGE: (
        "LD-ANO-RANGE/1",
        "超量程: HJ 212 flag T or value pinned at the instrument range [domain 1.5, 2.2]",
    ),
    FindingKind.O2_DILUTION: (
        "LD-ANO-DIL/1",
        "稀释排放 signature: O2 near ambient, or O2 up while concentration down [domain 2.1 #4]",
    ),
    FindingKind.SUDDEN_DROP: (
        "LD-ANO-DROP/1",
        "hourly measured mean falls sharply below its trailing 24-h median [domain 2.2]",
    ),
    FindingKind.FLOW_MISMATCH: (
        "LD-ANO-FLOW/1",
        "排放流量异常: flow zero while concentration positive [domain 2.2]",
    ),
    FindingKind.LOGGER_OFFLINE: (
        "LD-ANO-OFF/1",
        "联网异常: no data for N minutes [domain 2.2]",
    ),
    FindingKind.HOUR_MISSING: ("LD-ANO-HMISS/1", "小时数据缺失 [domain 2.2]"),
    FindingKind.HOUR_INCOMPLETE: (
        "LD-ANO-HINC/1",
        "小时数据不完整: fewer than 45 valid minutes not explained by marks (HJ 76) [domain 2.2]",
    ),
    FindingKind.FUTURE_TIMESTAMP: (
        "LD-ANO-TFUT/1",
        "DataTime ahead of arrival or not aligned to its period [domain 2.2]",
    ),
    FindingKind.DUPLICATE_CONFLICT: (
        "LD-ANO-TDUP/1",
        "duplicate DataTime with different values; the first record stays in use [domain 2.2]",
    ),
    FindingKind.BULK_BACKFILL: (
        "LD-ANO-BACK/1",
        "large back-fill (补传) batch, worse shortly before an inspection [domain 2.2]",
    ),
    FindingKind.CORRECTED_MISMATCH: (
        "LD-ANO-ZS/1",
        "logger 折算 value inconsistent with measured value and O2 (> 1 %) [domain 2.2]",
    ),
    FindingKind.LOGGER_HOUR_MISMATCH: (
        "LD-ANO-H2061/1",
        "logger hourly record differs from the platform's recomputation from minutes [domain 1.1]",
    ),
    FindingKind.LIMIT_HUGGING: (
        "LD-ANO-HUG/1",
        "hugging the limit: most hourly 折算 means of the trailing window within 0.9-1.0x the "
        "limit with very low variance; clipping / formula manipulation [domain 2.1 #8, 2.2]",
    ),
    FindingKind.PARAMETER_CHANGED: (
        "LD-ANO-PARAM/1",
        "参数篡改 signature: an instrument or logger parameter reported with HJ 212 CN 3020 "
        "(i?3xxx: range, calibration slope/intercept, conversion factor, dilution ratio, "
        "digestion temperature/time) changed [domain 2.1 #8, 2.2; hj212 10]",
    ),
}

# Kinds whose judged value is material: a changed value for the same period is an amendment.
VALUE_MATERIAL = frozenset(
    {FindingKind.EXCEEDANCE_HOURLY, FindingKind.EXCEEDANCE_DAILY, FindingKind.PH_OUT_OF_RANGE}
)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    outlet_id: str
    factor: str
    start: datetime
    end: datetime
    firing: bool
    severity: Severity
    explanation: Explanation
    value: float | None = None
    ratio: float | None = None  # judged value / limit, when there is a limit
    revision: int = 0  # > 0: a re-judgement of a period already judged (late data, marks)

    @property
    def rule_id(self) -> str:
        return RULES[self.kind][0]

    def digest(self) -> str:
        """What must change for a re-delivered finding to count as new (idempotency)."""
        value = repr(self.value) if self.kind in VALUE_MATERIAL else ""
        return f"{int(self.firing)}|{int(self.severity)}|{value}|{self.end.timestamp():.0f}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "rule_id": self.rule_id,
            "outlet_id": self.outlet_id,
            "factor": self.factor,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "firing": self.firing,
            "severity": self.severity.name,
            "value": self.value,
            "ratio": self.ratio,
            "revision": self.revision,
            "explanation": self.explanation.to_dict(),
        }
