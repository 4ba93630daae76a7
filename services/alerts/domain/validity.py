"""Which values count, and when an hour or a day is valid.

Sources: HJ 212-2017 Table 8 data flags [domain 1.5]; HJ 76-2017 App. B validity counts
(>= 45 valid minutes per hour, >= 20 valid hours per day) [domain 1.1]; MEE 2022 No. 21
marking rule: "标记为无效的自动监测数据，不作为超标判定依据" [domain 1.6]; rules-engine
takeaway 1: drop flags M, D, C, B, F and T before any exceedance test [domain 6].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from alerts.domain.registry import MarkKind


class Exclusion(StrEnum):
    """Why a minute (or hour) does not count."""

    MISSING = "missing"
    NO_VALUE = "no_value"
    STOPPED = "flag_F_stopped"
    MAINTENANCE = "flag_M_maintenance"
    FAULT = "flag_D_fault"
    CALIBRATION = "flag_C_calibration"
    OVER_RANGE = "flag_T_over_range"
    COMMS = "flag_B_comms"
    MANUAL = "flag_S_manual_value"
    POWER = "flag_P_power_failure"
    UNKNOWN_FLAG = "unknown_flag"
    MARK_MAINTENANCE = "mark_maintenance"
    MARK_CALIBRATION = "mark_calibration"
    MARK_FAULT = "mark_fault"
    MARK_STOPPED = "mark_stopped"
    O2_INVALID = "o2_invalid"


# HJ 212-2017 Table 8 [domain 1.5]. N = normal. F stopped -> excluded from statistics;
# M maintenance, D fault, C calibration, B comms -> invalid; T over range -> invalid for the
# value but an anomaly signal of its own (anomalies.OVER_RANGE); S is a manually entered set
# value, not a measurement, so it cannot ground an automatic exceedance; P is the 2005 power
# failure flag still sent by old loggers.
FLAG_EXCLUSIONS: dict[str, Exclusion] = {
    "F": Exclusion.STOPPED,
    "M": Exclusion.MAINTENANCE,
    "D": Exclusion.FAULT,
    "C": Exclusion.CALIBRATION,
    "T": Exclusion.OVER_RANGE,
    "B": Exclusion.COMMS,
    "S": Exclusion.MANUAL,
    "P": Exclusion.POWER,
}

# Approved equipment marks make data invalid [domain 1.6 "自动监测设备维护标记" -> invalid];
# a STOPPED mark removes the period from statistics. FAULT is read as an instrument fault
# (like flag D). STARTUP/SHUTDOWN are production-condition marks: the data stay valid, an
# exceedance inside them is exempt within the annual cap (see exceedance.ExemptionLedger).
MARK_EXCLUSIONS: dict[MarkKind, Exclusion] = {
    MarkKind.MAINTENANCE: Exclusion.MARK_MAINTENANCE,
    MarkKind.CALIBRATION: Exclusion.MARK_CALIBRATION,
    MarkKind.FAULT: Exclusion.MARK_FAULT,
    MarkKind.STOPPED: Exclusion.MARK_STOPPED,
}
EXEMPTING_MARKS = frozenset({MarkKind.STARTUP, MarkKind.SHUTDOWN})

# Exclusions that explain a short hour (so it is not a "data incomplete" anomaly).
EXPLAINED = frozenset(
    {Exclusion.STOPPED, *MARK_EXCLUSIONS.values()},
)


def flag_code(flag: str | None) -> str:
    """Normalise a data flag to one upper-case letter; no flag means the logger asserted
    nothing abnormal and is read as N (many loggers omit the flag)."""
    if not flag:
        return "N"
    code = flag.strip()[:1].upper()
    return code if code == "N" or code in FLAG_EXCLUSIONS else "?"


def flag_exclusion(flag: str | None) -> Exclusion | None:
    """None if the flag makes the value valid; otherwise the reason it does not count.
    Unknown flags (vendor extensions like H) are excluded: data of unknown status cannot
    ground a penalty."""
    code = flag_code(flag)
    if code == "N":
        return None
    return FLAG_EXCLUSIONS.get(code, Exclusion.UNKNOWN_FLAG)


@dataclass(frozen=True, slots=True)
class ValidityRules:
    minutes_per_hour: int = 60
    min_valid_minutes: int = 45  # HJ 76-2017 App. B [V]
    min_valid_hours: int = 20  # HJ 76-2017 App. B [V]

    def hour_is_valid(self, valid_minutes: int) -> bool:
        return valid_minutes >= self.min_valid_minutes

    def day_is_valid(self, valid_hours: int) -> bool:
        return valid_hours >= self.min_valid_hours


HJ76 = ValidityRules()
