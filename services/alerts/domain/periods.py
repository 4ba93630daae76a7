"""Event-time periods: hours and days on China Standard Time.

HJ 212 DataTime is local time (UTC+8, no daylight saving), and a daily mean is a local
calendar day, so day boundaries are computed on CST. Hot paths work on epoch seconds (float)
and integer hour/day indexes to keep per-reading work cheap.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CST = timezone(timedelta(hours=8), "CST")
HOUR = 3600
DAY = 86400
_CST_OFFSET = 8 * HOUR


def epoch(t: datetime) -> float:
    """Epoch seconds; a naive datetime is read as CST (how HJ 212 DataTime is written)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=CST)
    return t.timestamp()


def at(ts: float) -> datetime:
    """Epoch seconds back to an aware CST datetime."""
    return datetime.fromtimestamp(ts, CST)


def hour_index(ts: float) -> int:
    return int(ts // HOUR)


def hour_start(hour: int) -> float:
    return float(hour * HOUR)


def day_index(ts: float) -> int:
    """Local (CST) calendar day number."""
    return int((ts + _CST_OFFSET) // DAY)


def day_start(day: int) -> float:
    return float(day * DAY - _CST_OFFSET)


def day_of_hour(hour: int) -> int:
    return day_index(hour_start(hour))


def year_of(ts: float) -> int:
    return at(ts).year


def iso(ts: float) -> str:
    return at(ts).isoformat()
