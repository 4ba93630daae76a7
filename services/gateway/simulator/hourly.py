"""The hourly record (2061) a data logger makes of the minute records (2051) of one hour.

A logger summarises the hour it closes, per factor: Avg is the mean of the minute Avgs, Min
the smallest minute Min, Max the largest minute Max, Cou (emitted amount, flow total) the sum
of the minute Cous, ZsAvg (O2-corrected) the mean of the minute ZsAvgs. The mean, Min, Max and
ZsAvg are over the normal (flag N) minutes, as the platform recomputes the hour from its valid
minutes (HJ 76-2017 App. B); Cou counts every minute, since the flow ran in all of them.

Hour flag (HJ 212-2017 C.16): flue gas is N with >= 75 % normal minutes, wastewater only when
every minute is normal. Otherwise the standard's flue-gas example says D; the simulator keeps
the minutes' own reason instead (their most common non-N flag, e.g. M for a maintenance
hour), so an hour of maintenance does not read as an instrument fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean

NORMAL = "N"
GAS_NORMAL_SHARE = 0.75  # HJ 212-2017 C.16, flue gas


@dataclass(frozen=True, slots=True)
class FactorPeriod:
    """One factor of a minute or hour record: the values the frame carries."""

    avg: float
    min: float
    max: float
    flag: str = NORMAL
    cou: float | None = None
    zs_avg: float | None = None


def hour_flag(flags: Sequence[str], medium: str) -> str:
    """The hour's data flag from its minutes' flags (see the module docstring)."""
    if not flags:
        raise ValueError("an hour record needs at least one minute")
    normal = sum(1 for f in flags if f == NORMAL)
    if medium == "gas":
        if normal >= GAS_NORMAL_SHARE * len(flags):
            return NORMAL
    elif normal == len(flags):
        return NORMAL
    # Counter keeps first-seen order among equal counts: ties go to the earlier flag.
    return Counter(f for f in flags if f != NORMAL).most_common(1)[0][0]


def summarise_factor(minutes: Sequence[FactorPeriod], medium: str) -> FactorPeriod:
    """One factor's hour from its minute records (at least one)."""
    flag = hour_flag([m.flag for m in minutes], medium)
    # Without a single normal minute the logger still reports what it measured.
    counted = [m for m in minutes if m.flag == NORMAL] or list(minutes)
    zs = [m.zs_avg for m in counted if m.zs_avg is not None]
    cous = [m.cou for m in minutes if m.cou is not None]
    return FactorPeriod(
        avg=fmean(m.avg for m in counted),
        min=min(m.min for m in counted),
        max=max(m.max for m in counted),
        flag=flag,
        cou=sum(cous) if cous else None,
        zs_avg=fmean(zs) if zs and len(zs) == len(counted) else None,
    )


def summarise_hour(
    minutes: Sequence[Mapping[str, FactorPeriod]], medium: str
) -> dict[str, FactorPeriod]:
    """The 2061 record of an hour from its 2051 records (factor code -> values), factors in
    the order they first appear."""
    by_factor: dict[str, list[FactorPeriod]] = {}
    for record in minutes:
        for code, values in record.items():
            by_factor.setdefault(code, []).append(values)
    return {code: summarise_factor(values, medium) for code, values in by_factor.items()}
